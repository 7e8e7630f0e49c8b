/**
 * The transpiler process (transpiler.ts, transpile.child.mjs): its output is jco's `transpile` output,
 * byte for byte, for WAT guests and for the stubbed sample components the loader hands it; it runs in a
 * process of its own with Liftoff only; and it does not outlive a daemon killed with SIGKILL.
 */
import { transpile } from '@bytecodealliance/jco';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildTestGuest } from '../../guests/adversarial/components.js';
import { assetPath } from './assets.js';
import { stubComponent } from './stub-core.js';
import { setTranspilerIdleMs, TRANSPILER_FLAGS, transpileComponent, transpilerPid } from './transpiler.js';

const OPTIONS = { name: 'component', instantiation: 'async', base64Cutoff: 0, quiet: true } as const;
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('the transpiler process', () => {
  it("gives jco's own transpile output, byte for byte (WAT guests, stubbed QuickJS and componentize-js samples)", async () => {
    const components: [string, Uint8Array][] = [
      ['echo', await buildTestGuest('echo')],
      ['hostcall', await buildTestGuest('hostcall')],
      ['hello (stubbed)', stubComponent(new Uint8Array(readFileSync(assetPath('guests/hello/dist/hello.wasm'))))!.component],
      ['console (stubbed)', stubComponent(new Uint8Array(readFileSync(assetPath('guests/console/dist/console.wasm'))))!.component],
    ];
    for (const [what, bytes] of components) {
      const ours = await transpileComponent(bytes);
      const jco = await transpile(bytes, OPTIONS as Parameters<typeof transpile>[1]);
      const theirs = Object.entries(jco.files as Record<string, Uint8Array>).filter(([n]) => !n.endsWith('.d.ts'));
      expect(Object.keys(ours.files).sort(), what).toEqual(theirs.map(([n]) => n).sort());
      for (const [name, data] of theirs) expect(Buffer.from(ours.files[name]!).equals(Buffer.from(data)), `${what} ${name}`).toBe(true);
      expect(ours.imports, what).toEqual(jco.imports);
      expect(ours.exports, what).toEqual(jco.exports.map(([n]) => n));
    }
  }, 120_000);

  it('runs in a process of its own, with Liftoff only, and says what is wrong with bad bytes', async () => {
    await transpileComponent(await buildTestGuest('echo'));
    const pid = transpilerPid();
    expect(pid).toBeDefined();
    expect(pid).not.toBe(process.pid);
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    for (const flag of TRANSPILER_FLAGS) expect(argv).toContain(flag);
    expect(argv.some((a) => a.endsWith('transpile.child.mjs'))).toBe(true);
    await expect(transpileComponent(new Uint8Array([0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0, 0xff]))).rejects.toThrow(/./);
    expect(await transpileComponent(await buildTestGuest('echo'))).toHaveProperty('files');
  }, 60_000);

  it('ends after a quiet spell, and the next transpile starts a new one', async () => {
    await transpileComponent(await buildTestGuest('echo'));
    const first = transpilerPid()!;
    setTranspilerIdleMs(200);
    try {
      await transpileComponent(await buildTestGuest('echo')); // the quiet spell starts after this one
      const t0 = Date.now();
      while (alive(first) && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 50));
      expect(alive(first)).toBe(false);
      expect(transpilerPid()).toBeUndefined();
      expect(await transpileComponent(await buildTestGuest('echo'))).toHaveProperty('files');
      expect(transpilerPid()).not.toBe(first);
    } finally {
      setTranspilerIdleMs(15_000);
    }
  }, 60_000);

  it('ends when the process that started it is killed with SIGKILL', async () => {
    const here = path.dirname(fileURLToPath(import.meta.url));
    const script = [
      `import { transpileComponent, transpilerPid } from ${JSON.stringify(path.join(here, 'transpiler.ts'))};`,
      `import { buildTestGuest } from ${JSON.stringify(path.join(here, '../../guests/adversarial/components.ts'))};`,
      'await transpileComponent(await buildTestGuest("echo"));',
      'console.log(transpilerPid());',
      'setInterval(() => {}, 1000);',
    ].join('\n');
    const parent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const pid = await new Promise<number>((resolve, reject) => {
      let out = '';
      parent.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(Number(out.trim()));
      });
      parent.on('exit', (code) => reject(new Error(`parent exited (${code}) before it printed the transpiler's pid`)));
    });
    expect(alive(pid)).toBe(true);
    parent.kill('SIGKILL');
    const t0 = Date.now();
    while (alive(pid) && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 50));
    expect(alive(pid), 'transpiler still running 10 s after its parent was killed').toBe(false);
  }, 60_000);
});
