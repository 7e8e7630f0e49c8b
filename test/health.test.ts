/**
 * Health probes (issue 15): a module exporting `edgeward:module/health` is probed while it runs; after
 * `failure_threshold` failed probes in a row it is unhealthy (an event, status shows it), restarted with
 * back-off under `on-unhealthy` and only reported under the other policies. A module without the export
 * is never probed, whatever its policy.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decideRestart, IOT_EDGE_BACKOFF, restartsWhenUnhealthy } from '../host/runtime/policy.js';
import { parseManifest } from '../host/runtime/manifest.js';
import { Fixture, spec, waitFor } from './helpers/runtime.js';

let fx: Fixture;
beforeEach(() => { fx = new Fixture(); });
afterEach(async () => { await fx.cleanup(); });

const FAST = { interval_ms: 50, timeout_ms: 1_000, failure_threshold: 2 };
const BACKOFF = { coolOffUnitMs: 100 };

describe('health probes', () => {
  it('a healthy module is probed and shows healthy; status carries the probe state', async () => {
    const rt = await fx.runtime({ backoff: BACKOFF });
    await rt.create(spec('h', await fx.guest('health'), { restartPolicy: 'on-unhealthy', health: FAST }));
    const d = await waitFor(async () => { const x = await rt.get('h'); return (x.edgeward?.health as { status?: string } | undefined)?.status === 'healthy' ? x : undefined; });
    expect(d!.edgeward?.health).toMatchObject({ status: 'healthy', failures: 0 });
    expect(rt.events('h').some((e) => e.kind === 'unhealthy')).toBe(false);
  });

  it('on-unhealthy: failed probes → unhealthy event, the instance restarted with back-off (counted)', async () => {
    const rt = await fx.runtime({ backoff: BACKOFF });
    await rt.create(spec('h', await fx.guest('health'), { restartPolicy: 'on-unhealthy', health: FAST }));
    const first = rt.events('h').filter((e) => e.kind === 'started').length;
    expect(await rt.invoke('h', 'sick', 'x')).toEqual({ status: 200, payload: 'x' });
    const ev = await waitFor(() => rt.events('h').find((e) => e.kind === 'unhealthy'));
    expect(ev!.message).toMatch(/2 health probes failed in a row \(last: bad method\); restarting/);
    await waitFor(() => rt.events('h').some((e) => e.kind === 'restart-scheduled'));
    // A new instance (its state reset: healthy again) after the cool-off; the restart is counted.
    await waitFor(() => rt.events('h').filter((e) => e.kind === 'started').length > first, 5_000);
    const d = await waitFor(async () => { const x = await rt.get('h'); return (x.edgeward?.health as { status?: string } | undefined)?.status === 'healthy' ? x : undefined; });
    expect(d!.status.runtimeStatus.status).toBe('running');
    expect(d!.edgeward?.restartCount).toBe(1);
    expect(d!.edgeward?.lastError).toMatch(/^unhealthy: /);
  });

  it('on-failure: failed probes are reported (event, status) but the module keeps running', async () => {
    const rt = await fx.runtime({ backoff: BACKOFF });
    await rt.create(spec('h', await fx.guest('health'), { restartPolicy: 'on-failure', health: FAST }));
    await rt.invoke('h', 'sick', null);
    const ev = await waitFor(() => rt.events('h').find((e) => e.kind === 'unhealthy'));
    expect(ev!.message).toMatch(/restart policy on-failure: reported only/);
    const d = await rt.get('h');
    expect(d.status.runtimeStatus.status).toBe('running');
    expect(d.edgeward?.health).toMatchObject({ status: 'unhealthy', lastError: 'bad method' });
    expect(rt.events('h').some((e) => e.kind === 'restart-scheduled' || e.kind === 'stopped')).toBe(false);
    // It recovers: the next good probe makes it healthy again, with no restart.
    await rt.invoke('h', 'well', null);
    await waitFor(async () => ((await rt.get('h')).edgeward?.health as { status?: string }).status === 'healthy');
    expect((await rt.get('h')).edgeward?.restartCount).toBe(0);
  });

  it('a probe past its deadline ends the instance like any call past its deadline (a timeout event)', async () => {
    const rt = await fx.runtime({ backoff: BACKOFF });
    await rt.create(spec('h', await fx.guest('health'), { restartPolicy: 'never', health: { ...FAST, timeout_ms: 200 } }));
    await rt.invoke('h', 'hang', null);
    const ev = await waitFor(() => rt.events('h').find((e) => e.kind === 'timeout'));
    expect(ev!.message).toMatch(/health probe exceeded the 200 ms limit; instance terminated/);
    expect((await rt.get('h')).status.runtimeStatus.status).toBe('failed');
  });

  it('a module without the health export is never probed (existing guests unchanged)', async () => {
    const rt = await fx.runtime({ backoff: BACKOFF });
    await rt.create(spec('e', await fx.guest('echo'), { restartPolicy: 'on-unhealthy', health: FAST }));
    await new Promise((r) => setTimeout(r, 300));
    const d = await rt.get('e');
    expect(d.edgeward).not.toHaveProperty('health');
    expect(d.status.runtimeStatus.status).toBe('running');
    expect(rt.events('e').some((e) => e.kind === 'unhealthy')).toBe(false);
  });

  it('policy: only on-unhealthy restarts on failed probes; a crash restarts under it as under on-failure', () => {
    expect(restartsWhenUnhealthy('on-unhealthy')).toBe(true);
    for (const p of ['never', 'on-failure', 'always'] as const) expect(restartsWhenUnhealthy(p)).toBe(false);
    expect(decideRestart('on-unhealthy', 'running', 'failed', 0, IOT_EDGE_BACKOFF)).toEqual({ restart: true, delayMs: 10_000 });
  });

  it('a manifest carries the probe settings; bad ones are refused', () => {
    const [s] = parseManifest({ modules: { h: { settings: { image: '/h.wasm' }, health: { interval_ms: 1000, failure_threshold: 5 } } } });
    expect(s!.health).toEqual({ interval_ms: 1000, failure_threshold: 5 });
    expect(() => parseManifest({ modules: { h: { settings: { image: '/h.wasm' }, health: { interval_ms: 1 } } } })).toThrow(/interval_ms/);
  });
});
