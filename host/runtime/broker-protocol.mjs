// The broker's protocol, in one module both sides import: sandbox/broker.ts (the daemon's thread) and worker.mjs
// (the sandbox worker). A capability call travels through shared memory only: the Int32 `flag` array holds
// the slots below, the guest's arguments go into the request buffer, the host's answer into the answer
// buffer. Plain ESM (no imports) so the worker can load it from the package's sources.

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
