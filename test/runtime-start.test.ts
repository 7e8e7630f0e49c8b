/**
 * Start-time work the runtime leaves out (issue 14): per-phase timings of each start; a restart of an
 * unsigned module whose stored copy is unchanged neither reads nor hashes it again, while any write to the
 * copy brings the full measurement (and a refusal of changed bytes) back; one spare worker only while a
 * module is registered, which has imported the worker-side modules ahead of need; a restart runs in that
 * spare, never in its old instance's worker.
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { drainWorkerPool, keepSpare, preloadWorkerModules, setSpareIdleMs, spareThreadIds, spareWorkers, warmWorkerPool, workersExited, type Instance } from '../host/runtime/sandbox/index.js';
import { Fixture, rejection, spec, TEST_LIMITS } from './helpers/runtime.js';
import { testCapability } from './helpers/wit.js';

let fx: Fixture;
beforeEach(() => { fx = new Fixture(); });
// These tests look at the spare itself: it must not retire (after 5 s idle) under a slow machine's feet.
beforeEach(() => setSpareIdleMs(120_000));
afterEach(() => setSpareIdleMs(5_000));
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

describe('a start sends init without waiting for the load to answer', () => {
  it('keeps the start\'s call deadline for the capabilities the guest calls from start', async () => {
    const seen: (number | undefined)[] = [];
    const echo = await testCapability('echo', (ctx) => ({ 'edgeward:test/echo': { echo: (x: unknown) => { seen.push(ctx.callDeadline?.()); return x; } } }));
    const rt = await fx.runtime({ capabilities: [echo] });
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      if (i === 0) await rt.create(spec('hs', await fx.guest('hoststart'), { capabilities: ['edgeward:test/echo'] }));
      else await rt.restart('hs');
      // The start's deadline: 10 s from when init went (MIN_START_TIMEOUT_MS, above the call timeout).
      const d = seen.at(-1);
      expect(d, `start ${i}`).toBeGreaterThanOrEqual(t0 + 10_000);
      expect(d!).toBeLessThanOrEqual(performance.now() + 10_000);
    }
    expect(seen).toHaveLength(3);
    const t1 = performance.now();
    expect(await rt.invoke('hs', 'x', null)).toEqual({ status: 200, payload: 4 });
    const t2 = performance.now();
    expect(seen).toHaveLength(4);
    expect(seen[3]!).toBeGreaterThanOrEqual(t1 + TEST_LIMITS.call_timeout_ms);
    expect(seen[3]!).toBeLessThanOrEqual(t2 + TEST_LIMITS.call_timeout_ms);
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

  it('ends a spare no start took within its idle time; the next operation spawns one again', async () => {
    setSpareIdleMs(300);
    const rt = await fx.runtime();
    await rt.create(spec('echo', await fx.guest('echo')));
    await new Promise((r) => setImmediate(r));
    expect(spareWorkers()).toBe(1);
    for (let i = 0; i < 100 && spareWorkers() > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(spareWorkers()).toBe(0); // at rest: no idle worker held
    expect(await rt.invoke('echo', 'x', 2)).toEqual({ status: 200, payload: 2 }); // the module itself runs on
    setSpareIdleMs(120_000);
    await rt.restart('echo');
    await new Promise((r) => setImmediate(r));
    expect(spareWorkers()).toBe(1);
    expect(await rt.invoke('echo', 'x', 3)).toEqual({ status: 200, payload: 3 });
  });
});

describe('warm spare', () => {
  it('imports the worker-side modules it was told of before any instance takes it', async () => {
    await drainWorkerPool();
    const out = path.join(fx.dir, 'preloaded');
    const probe = new URL('./helpers/preload-probe.worker.mjs', import.meta.url);
    probe.searchParams.set('out', out);
    try {
      preloadWorkerModules([probe.href, pathToFileURL(path.join(fx.dir, 'no-such-module.mjs')).href]);
      keepSpare();
      await warmWorkerPool();
      for (let i = 0; i < 100 && !existsSync(out); i++) await new Promise((r) => setTimeout(r, 50));
      expect(existsSync(out)).toBe(true); // no instance, no load: the spare imported it on its own
      expect(spareWorkers()).toBe(1); // a module that fails to import leaves the spare as it was
    } finally {
      preloadWorkerModules([]);
      await drainWorkerPool();
    }
  });

  it("runs a restart in the spare that was already running, never in the old instance's worker", async () => {
    const rt = await fx.runtime();
    await rt.create(spec('echo', await fx.guest('echo')));
    const instances = (rt as unknown as { instances: ReadonlyMap<string, Instance> }).instances;
    const old = instances.get('echo')!;
    await warmWorkerPool();
    const [spare] = spareThreadIds();
    expect(spare).toBeDefined();
    expect(spare).not.toBe(old.threadId);
    await rt.restart('echo');
    const now = instances.get('echo')!;
    expect(now).not.toBe(old);
    expect(old.alive).toBe(false);
    expect(now.threadId).toBe(spare);
    expect(await rt.invoke('echo', 'x', 1)).toEqual({ status: 200, payload: 1 });
    await new Promise((r) => setImmediate(r));
    expect(spareThreadIds()).toHaveLength(1); // the next spare was spawned at once
    expect(spareThreadIds()).not.toContain(spare);
    expect(spareThreadIds()).not.toContain(old.threadId);
    await workersExited(); // the old worker's teardown, which the restart did not wait for, ends
  });
});
