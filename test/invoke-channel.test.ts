/**
 * The invoke channel (host/runtime/sandbox/call-channel.ts, worker.mjs `serveCalls`): a call into the
 * guest and its reply travel through shared memory. Through the real runtime: what crosses, up to the
 * module's value cap, and in what order beside the worker's messages. On the daemon's half alone: a reply
 * the worker wrote wrongly is refused, never read out of bounds.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CallChannel } from '../host/runtime/sandbox/call-channel.js';
import type { Reply } from '../host/runtime/sandbox/messages.js';
import { protocol } from '../host/runtime/sandbox/shared.js';
import { GUEST_ERROR_STATUS } from '../host/runtime/types.js';
import { Fixture, rejection, spec, TEST_LIMITS } from './helpers/runtime.js';

let fx: Fixture;
beforeEach(() => { fx = new Fixture(); });
afterEach(async () => { await fx.cleanup(); });

describe('invoke through the channel', () => {
  it('carries UTF-8 both ways, up to the module\'s max_value_bytes, and the guest\'s error and trap', async () => {
    const rt = await fx.runtime();
    await rt.create(spec('echo', await fx.guest('echo')));
    await rt.create(spec('crash', await fx.guest('crash')));
    for (const payload of ['', 'héllo ✓ 𝄞', { nested: ['ü', 1, null] }]) {
      expect(await rt.invoke('echo', 'x', payload)).toEqual({ status: 200, payload });
    }
    expect(await rt.invoke('echo', 'méthode ✓', 'a')).toEqual({ status: 200, payload: 'a' });
    // The echo guest keeps a value in its one page (61,440 bytes above its scratch area): a payload near
    // that, with 3- and 4-byte characters, and the same again after it (the buffer is reused).
    const big = '𝄞✓'.repeat(8_000); // 56,000 UTF-8 bytes, JSON quotes add 2
    expect(Buffer.byteLength(JSON.stringify(big))).toBeLessThan(TEST_LIMITS.max_value_bytes);
    expect(await rt.invoke('echo', 'x', big)).toEqual({ status: 200, payload: big });
    expect(await rt.invoke('echo', 'x', 'short')).toEqual({ status: 200, payload: 'short' });
    const over = 'x'.repeat(TEST_LIMITS.max_value_bytes);
    expect((await rejection(rt.invoke('echo', 'x', over))).message).toBe(`payload larger than the module's limit of ${TEST_LIMITS.max_value_bytes} bytes`);
    expect(await rt.invoke('echo', 'fail', 'a')).toEqual({ status: GUEST_ERROR_STATUS, payload: { code: 'guest-error', message: 'bad method' } });
    const trap = await rejection(rt.invoke('crash', 'x', null));
    expect(trap.message).toBe('module "crash" trapped: RuntimeError: wasm trap: wasm `unreachable` instruction executed');
    expect((await rt.get('crash')).status.runtimeStatus.status).toBe('failed');
    expect(await rt.invoke('echo', 'x', 'still')).toEqual({ status: 200, payload: 'still' });
  });

  it('hands a call\'s reply back only after the log lines the call wrote (they travel as messages)', async () => {
    const rt = await fx.runtime();
    await rt.create(spec('chatty', await fx.guest('chatty')));
    const log = path.join(fx.dir, 'state', 'logs', 'modules', 'chatty', 'module.log');
    for (let round = 1; round <= 20; round++) {
      await rt.invoke('chatty', 'x', ''); // JSON "": 2 lines, each "started"; a call quick enough for the daemon to watch for its reply
      // Read at once, with no await in between (no worker message can be handled meanwhile); the log
      // store appends synchronously.
      const lines = readFileSync(log, 'utf8').split('\n');
      expect(lines.filter((l) => l.endsWith('INFO  started')), `round ${round}`).toHaveLength(1 + 2 * round);
    }
  });

  it('answers calls made at once each with its own reply, and a call sent before a stop before the guest stops', async () => {
    const rt = await fx.runtime();
    await rt.create(spec('echo', await fx.guest('echo')));
    const calls = Array.from({ length: 50 }, (_, i) => rt.invoke('echo', 'x', `${i}`.repeat(i)));
    expect(await Promise.all(calls)).toEqual(Array.from({ length: 50 }, (_, i) => ({ status: 200, payload: `${i}`.repeat(i) })));
    // The stop message follows the call on the channel: the worker answers the call first, also when it
    // was asleep (no longer watching the channel) and both wake it.
    await new Promise((r) => setTimeout(r, 50));
    const last = rt.invoke('echo', 'x', 'before the stop');
    const stopped = rt.stop('echo');
    expect(await last).toEqual({ status: 200, payload: 'before the stop' });
    await stopped;
    expect((await rt.get('echo')).status.runtimeStatus.status).toBe('stopped');
  });
});

describe('the daemon\'s half of the channel', () => {
  const { REPLY_SEQ, REPLY_KIND, REPLY_LEN, REPLY_MICROS, CALL_SEQ, CALL_METHOD_LEN, CALL_PAYLOAD_LEN, REPLY_OK, REPLY_EXIT, REPLY_GUEST_ERROR } = protocol;

  /** A channel over a 64-byte buffer, and a stand-in for the worker that answers the current call. */
  function channel() {
    const data = new SharedArrayBuffer(64);
    const ch = new CallChannel(data, () => 0);
    const flag = new Int32Array(ch.workerInit.callFlag);
    const reply = (kind: number, len: number, text = ''): void => {
      Buffer.from(data).write(text, 0, 'utf8');
      Atomics.store(flag, REPLY_KIND, kind);
      Atomics.store(flag, REPLY_LEN, len);
      Atomics.store(flag, REPLY_MICROS, 5);
      Atomics.store(flag, REPLY_SEQ, Atomics.load(flag, CALL_SEQ));
      Atomics.notify(flag, REPLY_SEQ);
    };
    const call = (method: string, payload: string): Promise<Reply> => new Promise((resolve) => ch.send(method, payload, resolve));
    return { ch, data, flag, reply, call };
  }

  it('writes the call as UTF-8 with its lengths, and reads a well-formed reply', async () => {
    const { data, flag, reply, call } = channel();
    const ok = call('mé', 'ab✓');
    expect([Atomics.load(flag, CALL_METHOD_LEN), Atomics.load(flag, CALL_PAYLOAD_LEN)]).toEqual([3, 5]);
    expect(Buffer.from(data).toString('utf8', 0, 8)).toBe('méab✓');
    reply(REPLY_OK, 3, 'ü!');
    expect(await ok).toEqual({ t: 'ok', value: 'ü!' });
    const err = call('m', '');
    reply(REPLY_GUEST_ERROR, 2, 'no');
    expect(await err).toEqual({ t: 'guest-error', message: 'no' });
    const exit = call('m', '');
    reply(REPLY_EXIT, 3);
    expect(await exit).toEqual({ t: 'exit', code: 3 });
  });

  it('refuses a reply of an unknown kind or a length outside the buffer, as a trap', async () => {
    const { reply, call } = channel();
    for (const [kind, len, why] of [[99, 0, 'kind 99'], [0, 0, 'kind 0'], [REPLY_OK, 65, 'length 65'], [REPLY_OK, -1, 'length -1'], [REPLY_GUEST_ERROR, 1 << 30, `length ${1 << 30}`]] as const) {
      const r = call('m', '');
      reply(kind, len);
      expect(await r).toEqual({ t: 'trap', message: `sandbox worker sent an invalid reply: ${why}` });
    }
  });

  it('refuses a call larger than its buffer before sending anything', () => {
    const { ch, flag } = channel();
    expect(() => ch.send('m', 'x'.repeat(64), () => undefined)).toThrow('call larger than the channel');
    expect(Atomics.load(flag, CALL_SEQ)).toBe(0);
  });

  it('once closed, hands no reply back, and a wait in progress ends', async () => {
    const { ch, reply } = channel();
    let got: Reply | undefined;
    ch.send('m', '', (r) => { got = r; });
    ch.close();
    reply(REPLY_OK, 0);
    await new Promise((r) => setTimeout(r, 20));
    expect(got).toBeUndefined();
  });
});
