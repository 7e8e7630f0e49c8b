/**
 * Crash safety (reliability scenario H1, applied to the foundation's state): SIGKILL at random points
 * while state is being written leaves the old or the new content, never a half, and the daemon restarts
 * on it.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT, envFor, runCli, startDaemon, stopDaemon, tempHome } from './helpers/cli.js';
import { sweepTempFiles } from '../host/state/atomic.js';
import { loadConfig } from '../host/config/load.js';

const SIZE = 512 * 1024;

function writerLoop(file: string): ReturnType<typeof spawn> {
  const atomic = path.join(ROOT, 'dist', 'host', 'state', 'atomic.js');
  const script = `
    const { writeFileAtomic } = await import(${JSON.stringify(atomic)});
    for (let i = 0; ; i++) {
      await writeFileAtomic(${JSON.stringify(file)}, (i % 2 ? 'A' : 'B').repeat(${SIZE}));
      if (i === 0) process.stdout.write('ready\\n');
    }`;
  return spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
}

describe('crash safety', () => {
  it('SIGKILL during atomic writes never leaves a half-written file (40 kills at 0-50 ms)', async () => {
    const { home, cleanup } = tempHome();
    try {
      const file = path.join(home, 'state.bin');
      let leftovers = 0;
      let halfWritten = 0;
      for (let i = 0; i < 40; i++) {
        const child = writerLoop(file);
        await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
        await new Promise((r) => setTimeout(r, Math.random() * 50));
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
        const content = readFileSync(file, 'utf8');
        const whole = content.length === SIZE && (content === 'A'.repeat(SIZE) || content === 'B'.repeat(SIZE));
        if (!whole) halfWritten++;
        leftovers += (await sweepTempFiles(home)).length;
      }
      console.log(`[H1 atomic] kills=40 half-written=${halfWritten} temp files reconciled=${leftovers}`);
      expect(halfWritten).toBe(0);
      expect(readdirSync(home).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    } finally {
      cleanup();
    }
  }, 120_000);

  it('a daemon killed with SIGKILL at random points restarts on a consistent state', async () => {
    const { home, cleanup } = tempHome();
    const env = envFor(home);
    try {
      for (let i = 0; i < 6; i++) {
        const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'host', 'cli', 'main.js'), 'daemon'], { env, stdio: 'ignore' });
        await new Promise((r) => setTimeout(r, 100 + Math.random() * 500));
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
      }
      // The killed daemons left a stale socket and pid file behind, maybe temp files: the next start copes.
      const d = await startDaemon(env);
      const status = JSON.parse((await runCli(['system', 'status', '--json'], env)).stdout);
      expect(status.running).toBe(true);
      expect(status.pid).toBe(d.child.pid);
      const eff = await loadConfig(path.join(home, 'state', 'effective-config.toml'), env);
      expect(eff.config.state_dir).toBe(path.join(home, 'state'));
      expect(readdirSync(path.join(home, 'state')).filter((n) => n.endsWith('.tmp'))).toEqual([]);
      expect(await stopDaemon(d)).toBe(0);
    } finally {
      cleanup();
    }
  }, 120_000);
});
