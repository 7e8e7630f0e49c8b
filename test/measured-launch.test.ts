/**
 * The runtime's measured-launch hook (`onLaunch`, used by host/measure): called with the verified
 * registration before the instance runs; a measurement that fails keeps the module from starting.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Fixture, spec, waitFor } from './helpers/runtime.js';
import { moduleStartData } from '../host/measure/service.js';
import { RuntimeError } from '../host/runtime/errors.js';

let fx: Fixture;
beforeEach(() => {
  fx = new Fixture();
});
afterEach(() => fx.cleanup());

describe('measured launch hook', () => {
  it('measures a module start before its instance runs, with digest, signer, kind and grants', async () => {
    const rt = await fx.runtime();
    const seen: { data: Record<string, unknown>; startedBefore: boolean }[] = [];
    rt.onLaunch(async (r) => {
      seen.push({ data: moduleStartData(r), startedBefore: rt.events(r.name).some((e) => e.kind === 'started') });
    });
    const d = await rt.create(spec('echo', await fx.guest('echo')));
    await waitFor(() => rt.events('echo').some((e) => e.kind === 'started'));
    expect(seen).toEqual([{ data: { module: 'echo', digest: d.config.settings.imageHash, signer: 'unsigned', kind: 'module', grants: [], network: null }, startedBefore: false }]);
    await rt.restart('echo');
    expect(seen).toHaveLength(2);
  });

  it('does not start a module whose start cannot be measured', async () => {
    const rt = await fx.runtime();
    rt.onLaunch(async () => {
      throw new RuntimeError('failed', 'its start could not be measured into TPM PCR 13 (test)');
    });
    await rt.create(spec('echo', await fx.guest('echo'))).catch(() => undefined);
    await waitFor(() => rt.events('echo').some((e) => e.kind === 'start-failed'));
    expect(rt.events('echo').some((e) => e.kind === 'started')).toBe(false);
    expect(rt.events('echo').find((e) => e.kind === 'start-failed')?.message).toContain('could not be measured');
  });
});
