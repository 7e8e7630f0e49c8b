// The broker's protocol, in one module both sides import: sandbox/broker.ts (the daemon's thread) and worker.mjs
// (the sandbox worker). A capability call travels through shared memory only: the Int32 `flag` array holds
// the slots below, the guest's arguments go into the request buffer, the host's answer into the answer
// buffer. Plain ESM (no imports): tsc emits none, the build copies it into dist/ beside the worker.

// Slots of the shared Int32 flag array.
/** Answer length, or one of the ANSWER_* codes. */
export const ANSWER_LEN = 0;
/** Bumped by the worker for each call; the host waits on it. */
export const REQ_SEQ = 1;
/** Serialised argument length, or -n for n plain numbers in the request buffer's first float64s. */
export const REQ_LEN = 2;
/** Index of the host function called (the table sent at load). */
export const REQ_FN = 3;
/** Set by the host to the REQ_SEQ it answered, after the answer is written; the worker waits on it. */
export const ANSWER_SEQ = 4;
export const FLAG_SLOTS = 5;

// Answer encodings in flag[ANSWER_LEN] besides a serialised length: fast paths for the common scalar
// answers, which skip v8 (de)serialisation on the hot path.
export const ANSWER_NUMBER = -1;
export const ANSWER_UNDEFINED = -2;
export const ANSWER_TRUE = -3;
export const ANSWER_FALSE = -4;

/** At most this many plain-number arguments travel without serialisation. */
export const MAX_NUMBER_ARGS = 8;

/** Host interfaces for worker modules only (Capability.prepare), never linked into a guest's imports. */
export const PRIVATE_PREFIX = 'edgeward-private:';

/**
 * Every element of a list and member of a record counts at least this much (its cost to the host's heap as
 * a JS value, more than its bytes): a list of 100,000 empty strings is not "0 bytes" (reliability G4).
 */
export const ELEMENT_BYTES = 16;

/**
 * The size of a value crossing the boundary, for the `max_value_bytes` cap and per-function caps: the one
 * size function both sides use (UTF-8 bytes of strings, bytes of typed arrays, ELEMENT_BYTES per member).
 * @param {unknown} v
 * @returns {number}
 */
export function valueBytes(v) {
  if (typeof v === 'string') return Buffer.byteLength(v, 'utf8');
  if (ArrayBuffer.isView(v)) return v.byteLength;
  if (Array.isArray(v)) {
    let n = 0;
    for (const x of v) n += ELEMENT_BYTES + valueBytes(x);
    return n;
  }
  if (v && typeof v === 'object') {
    let n = 0;
    for (const k in v) n += ELEMENT_BYTES + valueBytes(/** @type {Record<string, unknown>} */ (v)[k]);
    return n;
  }
  return 8;
}

// The invoke channel: the daemon's calls INTO the guest (`invoke`) travel through shared memory too, the
// other way round (sandbox/call-channel.ts is the daemon's half, worker.mjs `serveCalls` the worker's). A
// message would cost a serialisation, a thread wake-up and an event dispatch each way (~30 µs here).
// The call and its reply use the broker's request buffer, idle whenever the guest is not running: the
// daemon writes the method and the payload as UTF-8 there, their lengths into the slots below, and bumps
// CALL_SEQ; the worker reads them out before the guest runs, writes the reply there once the guest has
// returned, and sets REPLY_SEQ last. The daemon sends its next call only after it has read the reply.

// Slots of the channel's shared Int32 array.
/** Bumped by the daemon for each call; the worker waits on it. */
export const CALL_SEQ = 0;
/** UTF-8 bytes of the method at the start of the buffer; the payload follows it. */
export const CALL_METHOD_LEN = 1;
export const CALL_PAYLOAD_LEN = 2;
/** Set by the worker to the CALL_SEQ it answered, after the reply is written; the daemon waits on it. */
export const REPLY_SEQ = 3;
/** One of the REPLY_* kinds. */
export const REPLY_KIND = 4;
/** UTF-8 bytes of the reply's value or message, from the buffer's start; the exit code for REPLY_EXIT. */
export const REPLY_LEN = 5;
/** How long the guest's call took in the worker, in µs (the daemon's guess whether to wait spinning). */
export const REPLY_MICROS = 6;
/**
 * How many messages the worker had posted when it wrote the reply (wraps): the daemon handles the reply
 * only after those (the module log lines the call wrote, in order, and what handling them did).
 */
export const REPLY_POSTED = 7;
export const CALL_SLOTS = 8;

// Reply kinds: the guest's answer (ok), its WIT error (guest-error), a trap, or its exit.
export const REPLY_OK = 1;
export const REPLY_GUEST_ERROR = 2;
export const REPLY_TRAP = 3;
export const REPLY_EXIT = 4;
