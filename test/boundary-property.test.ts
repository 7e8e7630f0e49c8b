/**
 * W4 (reliability scenarios): property tests of the guest boundary with fast-check. Arbitrary JSON values
 * go into a guest's `invoke` and must come back unchanged: through jco's string lowering and lifting
 * alone (echo guest), and through a host capability call as well (hoststr guest: payload → host function
 * over the broker's shared memory → back into the guest's linear memory → answer). Values near the
 * module's max_value_bytes are refused with a typed error, never truncated.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ComponentRuntime } from '../host/runtime/runtime.js';
import { RuntimeError } from '../host/runtime/types.js';
import { Fixture, spec } from './helpers/runtime.js';
import { testCapability } from './helpers/wit.js';
import { report } from './helpers/reliability.js';

/** What JSON can carry: -0 becomes 0, undefined members vanish. */
const viaJson = (v: unknown): unknown => JSON.parse(JSON.stringify(v));
/** Values small enough for the guests' one-page bump allocator (payload and answer share it). */
const values = fc.jsonValue({ maxDepth: 4, stringUnit: 'binary' }).filter((v) => JSON.stringify(v).length < 12_000);

describe('W4: arbitrary values through the boundary', () => {
  let fx: Fixture;
  let rt: ComponentRuntime;
  let hostSaw = 0;

  beforeAll(async () => {
    fx = new Fixture();
    rt = await fx.runtime({
      capabilities: [await testCapability('strings', () => ({ 'edgeward:test/strings': { echoStr: (s: unknown) => { hostSaw++; return s; } } }))],
    });
    await rt.create(spec('echo', await fx.guest('echo')));
    await rt.create(spec('hoststr', await fx.guest('hoststr'), { capabilities: ['edgeward:test/strings'] }));
  });
  afterAll(async () => { await fx.cleanup(); });

  it('invoke returns what it was given (echo guest)', async () => {
    await fc.assert(fc.asyncProperty(values, async (v) => {
      expect(await rt.invoke('echo', 'x', v)).toEqual({ status: 200, payload: viaJson(v) });
    }), { numRuns: 300 });
  });

  it('a host capability call carries the value there and back (hoststr guest, broker)', async () => {
    const before = hostSaw;
    await fc.assert(fc.asyncProperty(values, async (v) => {
      expect(await rt.invoke('hoststr', 'x', v)).toEqual({ status: 200, payload: viaJson(v) });
    }), { numRuns: 300 });
    expect(hostSaw - before).toBeGreaterThanOrEqual(300);
    report('W4', `300 arbitrary JSON values through invoke and 300 through a host capability over the broker: 0 differences (host saw ${hostSaw - before} calls)`);
  });

  it('refuses a payload over max_value_bytes with a typed error instead of cutting it', async () => {
    await fc.assert(fc.asyncProperty(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }), async (s) => {
      const big = s.repeat(Math.ceil((70 * 1024) / s.length));
      const err = await rt.invoke('echo', 'x', big).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(RuntimeError);
      expect((err as RuntimeError).code).toBe('invalid');
    }), { numRuns: 30 });
  });
});
