/**
 * Start-time work the runtime leaves out (issue 14): per-phase timings of each start; a restart of an
 * unsigned module whose stored copy is unchanged neither reads nor hashes it again, while any write to the
 * copy brings the full measurement (and a refusal of changed bytes) back; one spare worker only while a
 * module is registered.
 */
import { promises as fs } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spareWorkers } from '../host/runtime/sandbox/index.js';
import { Fixture, rejection, spec } from './helpers/runtime.js';

let fx: Fixture;
beforeEach(() => { fx = new Fixture(); });
afterEach(async () => { await fx.cleanup(); });

describe('start phases', () => {
  it('times every phase of a deploy and of a restart', async () => {
    const rt = await fx.runtime();
    expect(rt.startPhases('echo')).toBeUndefined();
    await rt.create(spec('echo', await fx.guest('echo')));
    const first = rt.startPhases('echo')!;
    for (const p of ['read', 'measure', 'verify', 'store', 'prepare', 'compile', 'types', 'gate', 'worker', 'load', 'link', 'instantiate', 'start'] as const) {
      expect(first.phases[p], p).toBeGreaterThanOrEqual(0);
    }
    expect(first.total).toBeGreaterThan(0);
    await rt.restart('echo');
    const again = rt.startPhases('echo')!;
    expect(again.phases.halt).toBeGreaterThan(0);
    expect(again.phases.store).toBeUndefined(); // nothing is admitted again
  });
});

describe('restart without re-reading unchanged bytes', () => {
  it('skips read and sha256 of an unchanged stored copy, and measures again after any write to it', async () => {
    const rt = await fx.runtime();
    const d = await rt.create(spec('echo', await fx.guest('echo')));
    await rt.restart('echo');
    expect(rt.startPhases('echo')!.phases.read).toBeUndefined();
    expect(rt.startPhases('echo')!.phases.measure).toBeUndefined();
    const stored = rt.loader.componentPath(d.config.settings.imageHash as `sha256:${string}`);
    // The same bytes written again: a write moves the file's ctime, so the start reads and measures.
    await fs.writeFile(stored, await fs.readFile(stored));
    await rt.restart('echo');
    expect(rt.startPhases('echo')!.phases.read).toBeGreaterThan(0);
    expect(await rt.invoke('echo', 'x', 1)).toEqual({ status: 200, payload: 1 });
    // Measured once more, the copy is known again: the next restart skips it.
    await rt.restart('echo');
    expect(rt.startPhases('echo')!.phases.read).toBeUndefined();
    // Changed bytes are read, measured and refused.
    const bytes = await fs.readFile(stored);
    bytes[bytes.length - 1]! ^= 0xff;
    await fs.writeFile(stored, bytes);
    expect((await rejection(rt.restart('echo'))).code).toBe('integrity-mismatch');
  });

  it('a new runtime measures the stored copy before its first start', async () => {
    const rt = await fx.runtime();
    await rt.create(spec('echo', await fx.guest('echo')));
    await rt.close();
    const again = await fx.runtime(); // the same state directory
    await again.startAll();
    expect(again.startPhases('echo')!.phases.read).toBeGreaterThan(0);
    expect(again.startPhases('echo')!.phases.measure).toBeGreaterThan(0);
  });
});

describe('spare worker', () => {
  it('holds none without modules, one while a module is registered', async () => {
    const rt = await fx.runtime();
    await new Promise((r) => setImmediate(r));
    expect(spareWorkers()).toBe(0);
    await rt.create(spec('echo', await fx.guest('echo')));
    expect(spareWorkers()).toBe(1);
    await rt.remove('echo');
    expect(spareWorkers()).toBe(0);
  });
});
