// wasi:io (error, poll, streams) for one sandbox worker: the ONE set of resource classes every capability
// hands out. jco's glue checks `instanceof` against the classes of the import object it was instantiated
// with, so an output-stream from wasi:cli/stdout and one from a wasi:http outgoing-body must be the same
// class (the worker links whichever capability provides wasi:io; all of them return these).
//
// A stream is a class instance over a sink or a source the capability supplies; nothing here blocks or
// touches the host's process streams. Every pollable is ready when it is asked (what it waits on has
// already happened, or never will), except one whose `ready` function says otherwise; `poll` returns the
// ready ones and refuses to block forever.

/**
 * Most live wasi:io and wasi:http resources (streams, pollables, errors, fields, requests, bodies, futures)
 * one instance may hold at once (reliability G3, like wasmtime's `max_resources`). One sandbox worker runs
 * one instance, so the count is this module's. Their constructors have no error case in WIT: creating one
 * more traps the instance. A resource counts from its creation until the guest drops it.
 */
export const MAX_LIVE_RESOURCES = 10_000;
let liveResources = 0;
let counting = true;


/**
 * Base of every resource class here and in http/worker.mjs: counted against MAX_LIVE_RESOURCES from
 * construction until the guest drops it or hands it back to the host for good (`consumed`).
 */
export class Resource {
  #live = counting;
  constructor() {
    if (!this.#live) return;
    if (liveResources >= MAX_LIVE_RESOURCES) throw new Error(`more than ${MAX_LIVE_RESOURCES} live wasi:http/wasi:io resources in this instance`);
    liveResources++;
  }
  /**
   * Dropped by the guest. jco's glue calls `Symbol.dispose ?? Symbol.for('dispose')`, which is
   * Symbol.dispose on every Node this runs on (package.json engines; Node has it since 20.4).
   */
  [Symbol.dispose]() {
    if (!this.#live) return;
    this.#live = false;
    liveResources--;
  }
}

/** An own handle the guest passed to the host (a request to `handle`, a body to `finish`): no longer its. @param {unknown} resource */
export function consumed(resource) {
  if (resource instanceof Resource) Resource.prototype[Symbol.dispose].call(resource);
}

/**
 * Make a resource the host keeps for itself (not counted: the guest may never be handed it).
 * @template T @param {() => T} make @returns {T}
 */
export function uncounted(make) {
  counting = false;
  try {
    return make();
  } finally {
    counting = true;
  }
}

/** Bytes a guest may hand over per write call unless the sink sets its own (wasi:io/streams check-write). */
export const MAX_WRITE_BYTES = 4096n;
/** Most bytes one read returns. */
export const MAX_READ_BYTES = 64 * 1024;

export class IoError extends Resource {
  /** @param {string} message @param {unknown} [httpCode] the wasi:http error-code behind it, if any */
  constructor(message, httpCode) {
    super();
    this.message = message;
    this.httpCode = httpCode;
  }
  toDebugString() { return this.message; }
}

export class Pollable extends Resource {
  #ready;
  /** @param {() => boolean} [ready] */
  constructor(ready) {
    super();
    this.#ready = ready;
  }
  ready() { return this.#ready ? this.#ready() : true; }
  block() {
    if (!this.ready()) throw new Error('wasi:io/poll: blocking on a pollable that can never become ready (single-threaded sandbox)');
  }
}

/** wasi:io/poll.poll: the indexes of the ready pollables (at least one, or the call traps). @param {Pollable[]} list */
export function poll(list) {
  /** @type {number[]} */
  const ready = [];
  list.forEach((p, i) => { if (p.ready()) ready.push(i); });
  if (ready.length === 0) throw new Error('wasi:io/poll: no pollable can become ready (single-threaded sandbox)');
  return new Uint32Array(ready);
}

const closed = () => ({ tag: 'closed' });
/** @param {string} message @param {unknown} [httpCode] */
const failed = (message, httpCode) => ({ tag: 'last-operation-failed', val: new IoError(message, httpCode) });

/** An input stream over bytes already in memory (or none: an empty stream is closed at once). */
export class InputStream extends Resource {
  #bytes;
  #at = 0;
  /** @param {Uint8Array} [bytes] */
  constructor(bytes) {
    super();
    this.#bytes = bytes ?? new Uint8Array(0);
  }
  /** @param {bigint} len */
  read(len) {
    if (this.#at >= this.#bytes.length) throw closed();
    const n = Math.min(Number(len), MAX_READ_BYTES, this.#bytes.length - this.#at);
    const out = this.#bytes.slice(this.#at, this.#at + n);
    this.#at += n;
    return out;
  }
  /** @param {bigint} len */
  blockingRead(len) { return this.read(len); }
  /** @param {bigint} len */
  skip(len) { return BigInt(this.read(len).length); }
  /** @param {bigint} len */
  blockingSkip(len) { return this.skip(len); }
  subscribe() { return new Pollable(); }
}

/**
 * Where an output stream's bytes go. `write` answers a refused write with the reason; `checkWrite` is
 * what one write may hand over (MAX_WRITE_BYTES unless set); `httpCode` is the wasi:http error-code
 * behind a refusal, if any.
 * @typedef {{ write(bytes: Uint8Array): string | undefined; flush?(): void; checkWrite?: bigint; httpCode?(): unknown }} Sink
 */

/**
 * An output stream over a sink (above). A sink answers a refused write with the reason (the stream then
 * fails with `last-operation-failed`, and stays failed).
 */
export class OutputStream extends Resource {
  #sink;
  /** @type {{ message: string; httpCode: unknown } | undefined} */
  #failed;
  /** @param {Sink} sink */
  constructor(sink) {
    super();
    this.#sink = sink;
  }
  checkWrite() {
    if (this.#failed) throw failed(this.#failed.message, this.#failed.httpCode);
    return this.#sink.checkWrite ?? MAX_WRITE_BYTES;
  }
  /** @param {Uint8Array} contents */
  write(contents) {
    const max = this.checkWrite();
    if (BigInt(contents.byteLength) > max) throw failed('write larger than check-write allowed');
    const refused = this.#sink.write(contents);
    if (refused !== undefined) {
      this.#failed = { message: refused, httpCode: this.#sink.httpCode?.() };
      throw failed(refused, this.#failed.httpCode);
    }
  }
  /** @param {Uint8Array} contents */
  blockingWriteAndFlush(contents) {
    this.write(contents);
    this.flush();
  }
  flush() { this.#sink.flush?.(); }
  blockingFlush() { this.flush(); }
  subscribe() { return new Pollable(); }
  // checkWrite first: the zeroes are allocated only once the stream has said it takes that many.
  /** @param {bigint} n */
  writeZeroes(n) { this.write(this.zeroes(n)); }
  /** @param {bigint} n */
  blockingWriteZeroesAndFlush(n) { this.blockingWriteAndFlush(this.zeroes(n)); }
  /** @param {bigint} n */
  zeroes(n) {
    const len = Number(n);
    if (!Number.isSafeInteger(len) || len < 0 || BigInt(len) > BigInt(this.checkWrite())) throw failed('write-zeroes larger than check-write allows');
    return new Uint8Array(len);
  }
  splice() { throw failed('splice is not supported'); }
  blockingSplice() { return this.splice(); }
}

/** The three wasi:io interfaces, as one import-object fragment (the same classes for every capability). */
export function ioImports() {
  return {
    'wasi:io/error': { Error: IoError },
    'wasi:io/poll': { Pollable, poll },
    'wasi:io/streams': { InputStream, OutputStream },
  };
}
