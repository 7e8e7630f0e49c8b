/**
 * The CLI loads only the area of the command being run (host/cli/main.ts): every top-level command must
 * still be found with the global options before it, help and unknown commands still see all of them,
 * and the daemon's own process does not load what only other commands use.
 */
import { describe, expect, it } from 'vitest';
import { envFor, runCli, tempHome } from './helpers/cli.js';

const COMMANDS = ['daemon', 'config', 'system', 'version', 'deploy', 'list', 'logs', 'start', 'stop', 'restart', 'remove', 'invoke', 'check', 'keys', 'module', 'new', 'findings', 'events', 'attest', 'tpm', 'confidential'];

describe('edgeward command dispatch', () => {
  it('lists every command in the top-level help', async () => {
    const { home, cleanup } = tempHome();
    try {
      const r = await runCli(['--help'], envFor(home));
      expect(r.code).toBe(0);
      const listed = [...r.stdout.matchAll(/^ {2}([a-z]+)\b/gm)].map((m) => m[1]);
      for (const c of COMMANDS) expect(listed, c).toContain(c);
    } finally {
      cleanup();
    }
  });

  it('finds each command, also after the global options with their values', async () => {
    const { home, cleanup } = tempHome();
    try {
      for (const c of COMMANDS) {
        const r = await runCli(['-H', 'unix:///nowhere.sock', '--config', '/nowhere.toml', c, '--help'], envFor(home));
        expect(r.code, `${c}: ${r.stderr}`).toBe(0);
        expect(r.stdout).toContain(`Usage: edgeward ${c}`);
      }
    } finally {
      cleanup();
    }
  }, 60_000);

  it('suggests a known command for a misspelt one, and `help CMD` works', async () => {
    const { home, cleanup } = tempHome();
    try {
      const r = await runCli(['delpoy'], envFor(home));
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('deploy');
      const h = await runCli(['help', 'keys'], envFor(home));
      expect(h.code).toBe(0);
      expect(h.stdout).toContain('Usage: edgeward keys');
    } finally {
      cleanup();
    }
  });
});
