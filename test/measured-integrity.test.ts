/**
 * Integrity monitoring (host/measure/integrity.ts) on a real runtime: a running module whose stored
 * component or sealed transpile cache is changed on disk is found by the periodic re-measurement, stopped
 * with an `integrity-violation` event, not restarted, refused at a manual start, and runs again once redeployed.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Fixture, rejection, spec, waitFor } from './helpers/runtime.js';
import { IntegrityMonitor } from '../host/measure/integrity.js';
import { silentLogger } from '../host/log.js';
import type { ComponentRuntime } from '../host/runtime/runtime.js';

let fx: Fixture;
beforeEach(() => {
  fx = new Fixture();
});
afterEach(() => fx.cleanup());

const statusOf = async (rt: ComponentRuntime, name: string) => (await rt.get(name)).status.runtimeStatus.status;

describe('integrity monitoring', () => {
  it('stops a running module whose stored component changed, keeps it stopped until redeployed', async () => {
    const rt = await fx.runtime();
    const file = await fx.guest('echo');
    const d = await rt.create(spec('echo', file, { restartPolicy: 'always' }));
    const digest = String(d.config.settings.imageHash);
    await waitFor(async () => (await statusOf(rt, 'echo')) === 'running');
    const monitor = new IntegrityMonitor(rt, 50, silentLogger());
    expect(await monitor.sweep()).toEqual([]); // unchanged: nothing happens

    const stored = rt.loader.componentPath(digest as `sha256:${string}`);
    const bytes = await fs.readFile(stored);
    bytes[bytes.length - 1]! ^= 0xff;
    await fs.writeFile(stored, bytes);
    monitor.start();
    try {
      await waitFor(() => rt.events('echo').some((e) => e.kind === 'integrity-violation'), 5_000);
    } finally {
      monitor.close();
    }
    const ev = rt.events('echo').find((e) => e.kind === 'integrity-violation')!;
    expect(ev.message).toContain('re-measurement while running');
    expect(ev.expected).toBe(digest);
    expect(ev.measured).toMatch(/^sha256:/);
    expect(ev.measured).not.toBe(digest);
    await new Promise((r) => setTimeout(r, 300)); // restartPolicy "always" does not bring it back
    expect(await statusOf(rt, 'echo')).not.toBe('running');
    expect((await rejection(rt.start('echo'))).code).toBe('integrity-mismatch');

    // Redeployed from the original file: runs again.
    await rt.update(spec('echo', file, { restartPolicy: 'always' }));
    await waitFor(async () => (await statusOf(rt, 'echo')) === 'running');
    expect(await monitor.sweep()).toEqual([]);
  });

  it('stops a running module whose sealed transpile cache (glue) changed', async () => {
    const rt = await fx.runtime();
    const d = await rt.create(spec('echo', await fx.guest('echo')));
    await waitFor(async () => (await statusOf(rt, 'echo')) === 'running');
    const glue = path.join(fx.dir, 'state', 'cache', String(d.config.settings.imageHash).slice(7), 'component.mjs');
    await fs.appendFile(glue, '\n// changed\n');
    const monitor = new IntegrityMonitor(rt, 0, silentLogger());
    expect(await monitor.sweep()).toEqual(['echo']);
    expect(rt.events('echo').find((e) => e.kind === 'integrity-violation')?.message).toMatch(/cached component\.mjs .* measured/);
    expect(await statusOf(rt, 'echo')).not.toBe('running');
  });
});
