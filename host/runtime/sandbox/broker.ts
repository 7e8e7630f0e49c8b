/**
 * The host half of the broker: serves one instance's host-capability calls, which the sandbox worker makes
 * synchronously through shared memory (worker.mjs `brokerCall`; the slots and codes are broker-protocol.mjs).
 * The daemon's thread never blocks on a guest: it waits with `Atomics.waitAsync`.
 */
import { deserialize, serialize } from 'node:v8';
import type { HostFunction } from '../capabilities.js';
import { RuntimeError } from '../types.js';
import type { InstanceType } from '../../boundary/types.js';
import { protocol, validator } from './shared.js';
import type { BrokerInit } from './worker-api.js';

const {
  ANSWER_FALSE, ANSWER_LEN, ANSWER_NUMBER, ANSWER_SEQ, ANSWER_TRUE, ANSWER_UNDEFINED, FLAG_SLOTS, MAX_NUMBER_ARGS, PRIVATE_PREFIX,
  REQ_FN, REQ_LEN, REQ_SEQ, valueBytes,
} = protocol;

/** How long a guest may block on one host-capability call before the worker gives up on it. */
const BROKER_TIMEOUT_MS = 30_000;
/** After a synchronous answer, how long the daemon's thread watches for the same guest's next call. */
const HOST_SPIN_MS = 0.03;
/** The longest the daemon's thread serves one guest's back-to-back calls before yielding to the event loop. */
const HOST_BURST_MS = 1;

/**
 * A shared buffer of `bytes` whose pages cost memory only once written. A plain SharedArrayBuffer is
 * calloc'ed: once glibc's mmap threshold has risen past its size (it does after the first large buffer is
 * freed, e.g. a component's bytes), it comes from the heap and is zeroed page by page, so every instance
 * paid its two value-sized buffers (2 MiB with the default `max_value_bytes`) in RSS, and a restart loop
 * grew the daemon until V8 collected the old ones. A growable one is reserved and committed by V8 itself,
 * zero pages from the kernel (100 × 1 MiB after a freed 4 MiB Buffer: +13 MiB plain, +0 growable).
 */
function untouched(bytes: number): SharedArrayBuffer {
  return new SharedArrayBuffer(bytes, { maxByteLength: bytes });
}

/** A host-side failure while serving the instance: `where` names the place, `cause` is for the daemon log. */
export type Fault = (where: string, cause: unknown) => void;

/** Run host-side code for an instance; whatever it throws goes to `fault` (never thrown on). */
export function guard(fault: Fault, where: string, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    fault(where, err);
  }
}

/** One host function linked for an instance, at its call index. */
interface HostEntry {
  iface: string;
  fn: string;
  impl: HostFunction;
  /** The argument check from the host's WIT (undefined for `edgeward-private:` interfaces). */
  check: ((args: unknown[]) => void) | undefined;
}

/**
 * The host functions of one instance, by call index. Defence in depth: the worker checked the arguments
 * against the WIT already; the daemon checks again what arrives over the broker. A host function with no
 * WIT definition is not served at all (the instance does not start).
 */
function linkHostFunctions(module: string, host: Record<string, Record<string, HostFunction>>, types: Readonly<Record<string, InstanceType>>): HostEntry[] {
  const byIface = new Map<string, Map<string, (args: unknown[]) => void>>();
  const checkerOf = (iface: string, fn: string): ((args: unknown[]) => void) | undefined => {
    if (iface.startsWith(PRIVATE_PREFIX)) return undefined;
    const t = types[iface];
    if (!t) throw new RuntimeError('invalid', `module "${module}": host interface ${iface} has no WIT types; not linked`);
    if (!byIface.has(iface)) byIface.set(iface, validator.functionCheckers(iface, t));
    const check = byIface.get(iface)!.get(fn);
    if (!check) throw new RuntimeError('invalid', `module "${module}": host function ${iface}.${fn} is not in the WIT of ${iface}; not linked`);
    return check;
  };
  return Object.entries(host).flatMap(([iface, fns]) => Object.entries(fns).map(([fn, impl]) => ({ iface, fn, impl, check: checkerOf(iface, fn) })));
}

/**
 * A deliberate WIT `result` error from a capability: an Error carrying `payload` (jco lowers it as the
 * error case; hsm-keys/errors.ts, workload-identity/errors.ts). Anything else a capability throws is a
 * host bug.
 */
function isWitError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && Object.hasOwn(err, 'payload');
}

function errorReply(err: unknown): { err: { message: string; payload?: unknown } } {
  const e = err as { message?: string; payload?: unknown };
  return { err: { message: e?.message ?? String(err), ...(e?.payload === undefined ? {} : { payload: e.payload }) } };
}

export interface BrokerOptions {
  module: string;
  /** The module's `max_value_bytes`: the cap on a call's arguments and on its answer. */
  maxValueBytes: number;
  host: Record<string, Record<string, HostFunction>>;
  interfaceTypes: Readonly<Record<string, InstanceType>>;
  /** A host function threw something that is not a WIT error, or an answer could not be written. */
  fault: Fault;
}

export class Broker {
  private readonly flag = new Int32Array(new SharedArrayBuffer(FLAG_SLOTS * 4));
  private readonly answerBuf: Uint8Array<SharedArrayBuffer>;
  private readonly answerNumber: Float64Array;
  private readonly requestBuf: Buffer;
  private readonly requestNumbers: Float64Array;
  private readonly table: HostEntry[];
  private closed = false;
  /** The worker's half, sent in its `load` message (worker.mjs `load`). */
  readonly workerInit: BrokerInit;

  /** Throws RuntimeError `invalid` when a host function has no WIT definition (before any worker is taken). */
  constructor(private readonly opts: BrokerOptions) {
    this.table = linkHostFunctions(opts.module, opts.host, opts.interfaceTypes);
    // Capability calls travel through shared memory only: arguments and answers each get the value cap
    // plus room for the serialisation envelope.
    this.answerBuf = new Uint8Array(untouched(opts.maxValueBytes + 4096));
    this.answerNumber = new Float64Array(this.answerBuf.buffer, 0, 1);
    const requestSab = untouched(Math.max(opts.maxValueBytes + 4096, MAX_NUMBER_ARGS * 8));
    this.requestBuf = Buffer.from(requestSab);
    this.requestNumbers = new Float64Array(requestSab, 0, MAX_NUMBER_ARGS);
    this.workerInit = { brokerFlag: this.flag.buffer, brokerData: this.answerBuf.buffer, brokerRequest: requestSab, maxValueBytes: opts.maxValueBytes, brokerTimeoutMs: BROKER_TIMEOUT_MS };
  }

  /** The host functions in call-index order, as the worker links its proxies: [interface, function]. */
  get functions(): [string, string][] {
    return this.table.map((e) => [e.iface, e.fn]);
  }

  /**
   * The request buffer, for the invoke channel (call-channel.ts) while the guest is not running: the
   * guest writes its capability calls' arguments there only while it runs.
   */
  get idleBuffer(): SharedArrayBuffer {
    return this.workerInit.brokerRequest;
  }

  /** How many capability calls the guest has made (wraps): one made since a reading moves it. */
  calls(): number {
    return Atomics.load(this.flag, REQ_SEQ);
  }

  /** Start serving calls (nothing to serve when no host function is linked). */
  start(): void {
    if (this.table.length > 0) this.loop().catch((err: unknown) => this.opts.fault('the broker', err));
  }

  /** Stop serving: late answers are dropped and the loop ends. Idempotent. */
  close(): void {
    this.closed = true;
    Atomics.notify(this.flag, REQ_SEQ); // ends the loop
  }

  /**
   * Wait (without blocking the daemon's thread) for the guest's next capability call: the worker bumps
   * REQ_SEQ and notifies; `Atomics.waitAsync` resolves here. One call is outstanding at a time (the
   * guest is blocked until answered). Ends when the broker is closed (`close` notifies the waiter).
   *
   * Waking this thread costs tens of µs on an idle CPU, more than the call itself. So after a call answered
   * synchronously, the loop watches the flag for HOST_SPIN_MS for the guest's next call and serves it at
   * once; such a burst holds the daemon's thread for at most HOST_BURST_MS, then yields to the event loop.
   */
  private async loop(): Promise<void> {
    let seen = 0;
    while (!this.closed) {
      const w = Atomics.waitAsync(this.flag, REQ_SEQ, seen);
      if (w.async) await w.value;
      const burstEnd = performance.now() + HOST_BURST_MS;
      for (;;) {
        if (this.closed) return;
        const seq = Atomics.load(this.flag, REQ_SEQ);
        if (seq === seen) break;
        seen = seq;
        if (!this.serve(seq)) break; // answered later (a promise): nothing to wait for meanwhile
        const now = performance.now();
        if (now >= burstEnd) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          break;
        }
        const spinUntil = Math.min(now + HOST_SPIN_MS, burstEnd);
        while (Atomics.load(this.flag, REQ_SEQ) === seen && performance.now() < spinUntil);
      }
    }
  }

  /**
   * One capability call from the guest. Synchronous results are answered at once (no promise tick on
   * the hot path; returns true); a promise is awaited while the guest stays blocked on the flag (false).
   * A WIT error the capability throws (`payload`) is the guest's answer; any other exception is a host
   * bug and ends the call as `internal` (settle). Never throws.
   */
  private serve(seq: number): boolean {
    let entry: HostEntry | undefined;
    let args: unknown[];
    try {
      entry = this.table[Atomics.load(this.flag, REQ_FN)];
      if (!entry) throw new Error('call to a host function that is not linked for this instance');
      args = this.readArgs();
      if (valueBytes(args) > this.opts.maxValueBytes) throw new Error(`arguments larger than ${this.opts.maxValueBytes} bytes`);
      entry.check?.(args);
    } catch (err) {
      // The request itself is malformed (the guest's doing): answered as an error, which traps the guest.
      guard(this.opts.fault, entry ? `capability ${entry.iface}.${entry.fn}` : 'the broker', () => this.answer(seq, errorReply(err)));
      return true;
    }
    const where = `capability ${entry.iface}.${entry.fn}`;
    let out: unknown;
    try {
      out = entry.impl(...args);
    } catch (err) {
      this.settle(seq, where, { err });
      return true;
    }
    if (out instanceof Promise) {
      out.then((ok: unknown) => this.settle(seq, where, { ok }), (err: unknown) => this.settle(seq, where, { err }));
      return false;
    }
    this.settle(seq, where, { ok: out });
    return true;
  }

  /**
   * Answer capability call `seq` with what the host function returned or threw. A thrown WIT error is
   * answered; anything else thrown, or an answer that cannot be written, is a fault (the instance traps).
   */
  private settle(seq: number, where: string, outcome: { ok: unknown } | { err: unknown }): void {
    if ('err' in outcome && !isWitError(outcome.err)) return this.opts.fault(where, outcome.err);
    guard(this.opts.fault, where, () => this.answer(seq, 'err' in outcome ? errorReply(outcome.err) : { ok: outcome.ok }));
  }

  /** The current request's arguments, from shared memory (the guest is blocked, so they hold still). */
  private readArgs(): unknown[] {
    const len = Atomics.load(this.flag, REQ_LEN);
    if (len <= 0) {
      if (-len > MAX_NUMBER_ARGS) throw new Error('malformed capability call');
      return Array.from(this.requestNumbers.subarray(0, -len));
    }
    if (len > this.requestBuf.length) throw new Error('malformed capability call');
    // Deserialised from a copy: v8.deserialize makes typed arrays that view its input, and the shared
    // request buffer is overwritten by the guest's next call (a host function keeping a list<u8> would
    // see it change under it).
    const args: unknown = deserialize(new Uint8Array(this.requestBuf.subarray(0, len)));
    if (!Array.isArray(args)) throw new Error('malformed capability call');
    return args;
  }

  /** Write the answer into shared memory (scalars by fast path, see worker.mjs) and wake the guest. */
  private answer(seq: number, reply: { ok?: unknown; err?: { message: string; payload?: unknown } }): void {
    // The guest gave up on a call that answers too late (broker timeout) and may be in its next one.
    if (this.closed || seq !== Atomics.load(this.flag, REQ_SEQ)) return;
    let code: number;
    const v = reply.ok;
    if (!reply.err && typeof v === 'number') {
      this.answerNumber[0] = v;
      code = ANSWER_NUMBER;
    } else if (!reply.err && (v === undefined || typeof v === 'boolean')) {
      code = v === undefined ? ANSWER_UNDEFINED : v ? ANSWER_TRUE : ANSWER_FALSE;
    } else {
      let bytes = serialize(reply);
      if (bytes.length > this.answerBuf.length) bytes = serialize({ err: { message: `answer larger than ${this.opts.maxValueBytes} bytes` } });
      this.answerBuf.set(bytes);
      code = bytes.length;
    }
    Atomics.store(this.flag, ANSWER_LEN, code);
    Atomics.store(this.flag, ANSWER_SEQ, seq); // last: publishes the answer
    Atomics.notify(this.flag, ANSWER_SEQ);
  }
}
