/**
 * The daemon's half of the invoke channel: a call into the guest (`invoke`) and its reply travel through
 * shared memory, not as messages (slots and kinds in broker-protocol.mjs; the worker's half is worker.mjs
 * `serveCalls`). One call at a time (Instance chains them); the call and its reply travel in the broker's
 * request buffer, which the guest uses only while it runs. The reply is written by the worker, which
 * runs the guest: its kind and length are checked before anything is read.
 *
 * Waking a thread costs tens of µs on an idle CPU, more than most guest calls. So the worker watches the
 * channel for a short while after each reply, and the daemon's thread watches for the reply for at most
 * SPIN_MS when the guest's previous call took less than that (a slow guest is awaited with
 * `Atomics.waitAsync` at once); a capability call the guest makes meanwhile ends the watch, so the broker
 * is served.
 *
 * A reply must not overtake the messages the worker posted before it (the call's module log lines, and
 * what handling them did: a module log that cannot be written traps the instance): the worker says how
 * many it had posted, the instance tells the channel of each one it handled (`arrived`), and the reply is
 * handed back only after those.
 */
import type { Reply } from './messages.js';
import { protocol } from './shared.js';
import type { CallInit } from './worker-api.js';

const {
  CALL_SEQ, CALL_METHOD_LEN, CALL_PAYLOAD_LEN, REPLY_SEQ, REPLY_KIND, REPLY_LEN, REPLY_MICROS, REPLY_POSTED, CALL_SLOTS,
  REPLY_OK, REPLY_GUEST_ERROR, REPLY_TRAP, REPLY_EXIT,
} = protocol;

/** The longest the daemon's thread watches for a reply before it waits without blocking. */
const SPIN_MS = 0.05;

export class CallChannel {
  private readonly flag = new Int32Array(new SharedArrayBuffer(CALL_SLOTS * 4));
  /** The call, then its reply (the broker's request buffer). */
  private readonly data: Buffer;
  private seq = 0;
  private closed = false;
  /** Whether the guest's last call was short enough to watch for the next reply. */
  private quick = true;
  /** Worker messages the instance has handled (wraps), and a reply waiting for the ones posted before it. */
  private arrivedCount = 0;
  private held: { posted: number; reply: Reply; onReply: (r: Reply) => void } | undefined;
  /** The worker's half, sent in its `load` message. */
  readonly workerInit: CallInit;

  /**
   * `data` is the broker's request buffer (at least `max_value_bytes`); `brokerCalls` reads the broker's
   * call counter: a guest calling the host ends the daemon's watch.
   */
  constructor(data: SharedArrayBuffer, private readonly brokerCalls: () => number) {
    this.data = Buffer.from(data);
    this.workerInit = { callFlag: this.flag.buffer as SharedArrayBuffer };
  }

  /**
   * Send one call: `method` and `payload` (their UTF-8 sizes together at most the module's
   * `max_value_bytes`, checked by the caller). `onReply` gets the checked reply once the messages the
   * worker posted before it have arrived, unless the channel was closed first (the instance ended: its
   * pending call is answered there).
   */
  send(method: string, payload: string, onReply: (r: Reply) => void): void {
    const m = this.data.write(method, 0, 'utf8');
    const p = payload.length === 0 ? 0 : this.data.write(payload, m, 'utf8');
    if (m !== Buffer.byteLength(method) || p !== Buffer.byteLength(payload)) throw new Error('call larger than the channel');
    const seq = (this.seq = (this.seq + 1) | 0);
    Atomics.store(this.flag, CALL_METHOD_LEN, m);
    Atomics.store(this.flag, CALL_PAYLOAD_LEN, p);
    Atomics.store(this.flag, CALL_SEQ, seq); // last: publishes the call
    Atomics.notify(this.flag, CALL_SEQ);
    if (this.quick) {
      const calls = this.brokerCalls();
      const until = performance.now() + SPIN_MS;
      while (Atomics.load(this.flag, REPLY_SEQ) !== seq && this.brokerCalls() === calls && performance.now() < until);
    }
    void this.await(seq, onReply);
  }

  /** One more worker message handled by the instance: a reply waiting for it is handed back. */
  arrived(): void {
    this.arrivedCount = (this.arrivedCount + 1) | 0;
    const held = this.held;
    if (held && ((this.arrivedCount - held.posted) | 0) >= 0) {
      this.held = undefined;
      held.onReply(held.reply);
    }
  }

  private async await(seq: number, onReply: (r: Reply) => void): Promise<void> {
    for (;;) {
      if (this.closed) return;
      const got = Atomics.load(this.flag, REPLY_SEQ);
      if (got === seq) break;
      const w = Atomics.waitAsync(this.flag, REPLY_SEQ, got);
      if (w.async) await w.value;
    }
    const reply = this.read();
    const posted = Atomics.load(this.flag, REPLY_POSTED);
    if (((this.arrivedCount - posted) | 0) >= 0) onReply(reply);
    else this.held = { posted, reply, onReply };
  }

  /** The reply in shared memory, checked: the worker wrote it. */
  private read(): Reply {
    const kind = Atomics.load(this.flag, REPLY_KIND);
    const len = Atomics.load(this.flag, REPLY_LEN);
    const micros = Atomics.load(this.flag, REPLY_MICROS);
    this.quick = micros >= 0 && micros <= SPIN_MS * 1000;
    if (kind === REPLY_EXIT) return { t: 'exit', code: len };
    if (kind !== REPLY_OK && kind !== REPLY_GUEST_ERROR && kind !== REPLY_TRAP) return { t: 'trap', message: `sandbox worker sent an invalid reply: kind ${kind}` };
    if (len < 0 || len > this.data.length) return { t: 'trap', message: `sandbox worker sent an invalid reply: length ${len}` };
    const text = this.data.toString('utf8', 0, len);
    return kind === REPLY_OK ? { t: 'ok', value: text } : { t: kind === REPLY_GUEST_ERROR ? 'guest-error' : 'trap', message: text };
  }

  /** No more replies are read; a wait in progress ends. Idempotent. */
  close(): void {
    this.closed = true;
    Atomics.notify(this.flag, REPLY_SEQ);
  }
}
