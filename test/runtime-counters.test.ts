/**
 * Supervisor counters survive a daemon restart: restart count, crash count, last exit and last error are
 * saved beside the registry (runtime/supervisor.json) and loaded when a runtime opens the same state
 * directory. A missing or corrupt counter file does not block a start, and a corrupt one is reported.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../host/log.js';
import { Fixture, spec, waitFor } from './helpers/runtime.js';

let fx: Fixture;
beforeEach(() => { fx = new Fixture(); });
afterEach(async () => { await fx.cleanup(); });

const countersFile = () => path.join(fx.dir, 'state', 'runtime', 'supervisor.json');

/** A logger whose JSON lines land in `lines`. */
function capturingLogger(lines: Record<string, unknown>[]) {
  const sink = new Writable({ write(chunk, _enc, done) { lines.push(JSON.parse(String(chunk))); done(); } });
  return createLogger('info', [sink]);
}

async function crashOnce(rt: Awaited<ReturnType<Fixture['runtime']>>, name: string): Promise<void> {
  await rt.invoke(name, 'x', null).catch(() => undefined);
}

describe('supervisor counters across a restart of the runtime', () => {
  it('keeps restart count, crash count, last exit and last error; back-off counting carries on', async () => {
    const backoff = { coolOffUnitMs: 20, maxRestartCount: 5 };
    const rt = await fx.runtime({ backoff });
    await rt.create(spec('crash', await fx.guest('crash'), { restartPolicy: 'on-failure' }));
    await rt.create(spec('once', await fx.guest('crash'), { restartPolicy: 'never' }));
    for (let i = 0; i < 2; i++) {
      await waitFor(async () => (await rt.get('crash')).status.runtimeStatus.status === 'running');
      await crashOnce(rt, 'crash');
    }
    await waitFor(async () => (await rt.get('crash')).edgeward?.restartCount === 2 && (await rt.get('crash')).status.runtimeStatus.status === 'running');
    await crashOnce(rt, 'once');
    const before = await rt.get('once');
    expect(before.edgeward).toMatchObject({ restartCount: 0, crashCount: 1 });
    await rt.close();

    const rt2 = await fx.runtime({ backoff });
    expect(rt2.countersProblem).toBeUndefined();
    expect((await rt2.get('crash')).edgeward).toMatchObject({ restartCount: 2, crashCount: 2 });
    const once = await rt2.get('once');
    expect(once.edgeward).toMatchObject({ restartCount: 0, crashCount: 1, lastError: before.edgeward?.lastError });
    expect(once.status.exitStatus).toEqual(before.status.exitStatus);
    // The daemon's own start resumes the modules without clearing their back-off.
    await rt2.startAll();
    await waitFor(async () => (await rt2.get('crash')).status.runtimeStatus.status === 'running');
    await crashOnce(rt2, 'crash');
    const next = await waitFor(() => rt2.events('crash').find((e) => e.kind === 'restart-scheduled'));
    expect(next?.message).toContain('(restart 3, cool-off 80 ms)');
    expect((await rt2.get('crash')).edgeward).toMatchObject({ crashCount: 3 });
    // An operator's start still clears the back-off, and that too is saved.
    await rt2.stop('crash');
    await rt2.start('crash');
    await rt2.close();
    const saved = JSON.parse(await fs.readFile(countersFile(), 'utf8'));
    expect(saved.modules.crash).toMatchObject({ restartCount: 0, crashCount: 3 });
    expect((await fs.stat(countersFile())).mode & 0o077).toBe(0);
  });

  it('a removed module leaves no counters behind', async () => {
    const rt = await fx.runtime();
    await rt.create(spec('a', await fx.guest('echo')));
    await rt.remove('a');
    await rt.close();
    expect(JSON.parse(await fs.readFile(countersFile(), 'utf8')).modules).toEqual({});
  });

  it('a missing counter file means zeros; a corrupt one is reported and does not block the start', async () => {
    const rt = await fx.runtime();
    await rt.create(spec('a', await fx.guest('echo')));
    await rt.close();
    await fs.rm(countersFile());
    const fresh = await fx.runtime();
    expect(fresh.countersProblem).toBeUndefined();
    expect((await fresh.get('a')).edgeward).toMatchObject({ restartCount: 0, crashCount: 0 });
    await fresh.close();

    for (const junk of ['{"version": 1, "modules": {"a": {"restartCount": -3', '{"version": 1, "modules": {"a": {"restartCount": "many", "crashCount": 0}}}']) {
      await fs.writeFile(countersFile(), junk, { mode: 0o600 });
      const lines: Record<string, unknown>[] = [];
      const rt2 = await fx.runtime({ logger: capturingLogger(lines) });
      expect(rt2.countersProblem).toMatch(/supervisor\.json/);
      expect(lines).toContainEqual(expect.objectContaining({ level: 40, file: countersFile(), msg: expect.stringContaining('restart and crash counts start from zero') }));
      await rt2.startAll();
      expect((await rt2.get('a')).status.runtimeStatus.status).toBe('running');
      expect((await rt2.get('a')).edgeward).toMatchObject({ restartCount: 0, crashCount: 0 });
      await rt2.close();
      // Rewritten whole at the next change: valid again.
      expect(JSON.parse(await fs.readFile(countersFile(), 'utf8'))).toEqual({ version: 1, modules: { a: expect.objectContaining({ restartCount: 0 }) } });
    }
  });
});
