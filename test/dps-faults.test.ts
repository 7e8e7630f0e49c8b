/**
 * The DPS client under scripted faults of the fixture: 429 and 503 retried honouring Retry-After (the waits
 * are counted through an injected sleep, not timed), exponential back-off without it, bounded retries,
 * slow assignment polled, the total-time bound, a server that never answers, an untrusted server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHmac, randomBytes } from 'node:crypto';
import net from 'node:net';
import { registerWithDps, DpsError, type DpsRegisterOptions } from '../host/cloud/dps/index.js';
import { CloudCa } from './fixtures/cloud/ca.js';
import { DpsFixture } from './fixtures/cloud/dps.js';

let ca: CloudCa;
let dps: DpsFixture;
beforeAll(async () => {
  ca = new CloudCa();
  dps = await DpsFixture.start({ ca });
});
afterAll(async () => {
  await dps?.stop();
  ca?.cleanup();
});

/** A fresh enrollment and client options whose sleeps are recorded (and advance a fake clock). */
function setup(regId: string, over: Partial<DpsRegisterOptions> = {}): { opts: DpsRegisterOptions; waits: number[] } {
  const key = randomBytes(32);
  dps.enrollSymmetric(regId, key);
  const waits: number[] = [];
  let clock = Date.now();
  const opts: DpsRegisterOptions = {
    endpoint: dps.endpoint,
    idScope: dps.idScope,
    registrationId: regId,
    attestation: { kind: 'symmetric_key', sign: async (d) => createHmac('sha256', key).update(d).digest() },
    requestTimeoutMs: 5_000,
    retries: 3,
    totalTimeoutMs: 120_000,
    ca: ca.caPem,
    sleep: async (ms) => {
      waits.push(ms);
      clock += ms;
    },
    now: () => clock,
    ...over,
  };
  return { opts, waits };
}
const statuses = (regId: string) => dps.requests.filter((q) => q.path.includes(`/${regId}/`)).map((q) => `${q.method} ${q.status}`);

describe('DPS client faults', () => {
  it('429 and 503 with Retry-After are retried after exactly the time DPS asked', async () => {
    const { opts, waits } = setup('f-retry');
    dps.faults.push({ status: 429, retryAfter: '7', on: 'register' }, { status: 503, retryAfter: '2', on: 'register' });
    const a = await registerWithDps(opts);
    expect(a.deviceId).toBe('f-retry');
    expect(statuses('f-retry')).toEqual(['PUT 429', 'PUT 503', 'PUT 202', 'GET 200']);
    expect(waits).toEqual([7000, 2000, 0]); // the last: the fixture's Retry-After 0 before polling
  });

  it('without Retry-After the back-off is exponential; retries are bounded (cloud_retries)', async () => {
    const { opts, waits } = setup('f-backoff', { retries: 2 });
    dps.faults.push({ status: 500, on: 'register' }, { status: 502, on: 'register' }, { status: 503, on: 'register' });
    const err = await registerWithDps(opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DpsError);
    expect((err as DpsError).kind).toBe('unavailable');
    expect((err as Error).message).toBe('DPS answered 503 (503001): DPS is unavailable; the daemon retries at the next start, or raise cloud_retries');
    expect(waits).toEqual([1000, 2000]);
    expect(statuses('f-backoff')).toEqual(['PUT 500', 'PUT 502', 'PUT 503']);
  });

  it('a slow assignment is polled as often as Retry-After says, a 503 during polling is retried', async () => {
    const { opts, waits } = setup('f-slow');
    dps.assigningPolls = 3;
    dps.retryAfter = '3';
    dps.faults.push({ status: 503, retryAfter: '1', on: 'poll' });
    try {
      const a = await registerWithDps(opts);
      expect(a.substatus).toBe('initialAssignment');
    } finally {
      dps.assigningPolls = 0;
      dps.retryAfter = '0';
    }
    expect(statuses('f-slow')).toEqual(['PUT 202', 'GET 503', 'GET 202', 'GET 202', 'GET 202', 'GET 200']);
    expect(waits).toEqual([3000, 1000, 3000, 3000, 3000]);
  });

  it('the total time is bounded: an assignment that never ends is a timeout DpsError', async () => {
    const { opts, waits } = setup('f-forever', { totalTimeoutMs: 10_000 });
    dps.assigningPolls = 1000;
    dps.retryAfter = '4';
    try {
      const err = await registerWithDps(opts).catch((e: unknown) => e);
      expect((err as DpsError).kind).toBe('timeout');
      expect((err as Error).message).toMatch(/would exceed the 10 s bound: DPS did not assign the device in time; raise cloud_timeout_sec or cloud_retries/);
    } finally {
      dps.assigningPolls = 0;
      dps.retryAfter = '0';
    }
    expect(waits).toEqual([4000, 4000]);
    expect(statuses('f-forever')).toEqual(['PUT 202', 'GET 202', 'GET 202']);
  });

  it('a server that accepts and never answers: each request times out; then a timeout DpsError', async () => {
    const server = net.createServer(() => undefined);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const { opts } = setup('f-hang', { endpoint: `https://127.0.0.1:${port}`, requestTimeoutMs: 300, retries: 1, sleep: undefined, now: undefined });
    const t0 = Date.now();
    const err = await registerWithDps(opts).catch((e: unknown) => e);
    server.close();
    expect((err as DpsError).kind).toBe('timeout');
    expect(Date.now() - t0).toBeLessThan(5_000);
  });

  it('an untrusted server certificate: a network DpsError saying how to trust it', async () => {
    const { opts } = setup('f-trust', { ca: undefined, retries: 0 });
    const err = await registerWithDps(opts).catch((e: unknown) => e);
    expect((err as DpsError).kind).toBe('network');
    expect((err as Error).message).toMatch(/TLS with 127\.0\.0\.1:\d+ failed \(\w+\).*: trust the DPS server certificate: add its CA to the system store or to NODE_EXTRA_CA_CERTS$/);
  });
});
