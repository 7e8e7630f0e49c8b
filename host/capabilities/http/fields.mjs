// wasi:http/types `fields` for one instance, inside the sandbox worker (worker.mjs): header lines as the
// guest sets them, refused with the WIT header-error when malformed, forbidden or past the caps. Counted
// against the instance's live resources like every wasi:http resource (io/worker.mjs Resource).
import { Resource } from '../io/worker.mjs';

/** One header line: its name and its value's bytes. @typedef {[name: string, value: Uint8Array]} FieldEntry */

/** Most header lines in one fields resource, and the longest name and value (bytes). */
export const MAX_FIELDS = 128;
export const MAX_FIELD_NAME_BYTES = 256;
export const MAX_FIELD_VALUE_BYTES = 8 * 1024;

// What a guest may not set: connection management belongs to the host. Refused with
// header-error.forbidden, the list wasmtime-wasi-http forbids (content-length is allowed there, and
// StarlingMonkey sets it; the host drops it with the other framing headers and derives its own from the
// buffered body, host.ts FORBIDDEN_HEADERS).
const FORBIDDEN = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host', 'http2-settings']);
/** A header name, or a method other than the WIT cases (RFC 9110 §5.6.2 token). */
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** The state slot of every wasi:http resource (worker.mjs reads the fields of requests and responses). */
export const S = Symbol('edgeward.http.state');

/** The header-error for one field line, or undefined if the guest may set it. @param {unknown} name @param {Uint8Array} [value] */
export function fieldError(name, value) {
  if (typeof name !== 'string' || name.length > MAX_FIELD_NAME_BYTES || !TOKEN.test(name)) return { tag: 'invalid-syntax' };
  if (FORBIDDEN.has(name.toLowerCase())) return { tag: 'forbidden' };
  if (value !== undefined && (value.length > MAX_FIELD_VALUE_BYTES || value.some((b) => b === 0 || b === 10 || b === 13))) return { tag: 'invalid-syntax' };
  return undefined;
}

/** @param {string} name @param {Uint8Array} [value] */
function checkField(name, value) {
  const err = fieldError(name, value);
  if (err) throw err;
}

/** wasi:http/types `fields`: immutable once it belongs to a request or response (`frozen`). */
export class Fields extends Resource {
  /** @type {{ entries: FieldEntry[]; immutable: boolean }} */
  [S] = { entries: [], immutable: false };
  /** @param {FieldEntry[]} entries */
  static fromList(entries) {
    const f = new Fields();
    if (entries.length > MAX_FIELDS) throw { tag: 'invalid-syntax' };
    for (const [name, value] of entries) checkField(name, value);
    f[S].entries = entries.map(([n, v]) => [n, v.slice()]);
    return f;
  }
  #mutable() {
    if (this[S].immutable) throw { tag: 'immutable' };
  }
  /** @param {string} name */
  get(name) { const n = name.toLowerCase(); return this[S].entries.filter(([k]) => k.toLowerCase() === n).map(([, v]) => v.slice()); }
  /** @param {string} name */
  has(name) { const n = name.toLowerCase(); return this[S].entries.some(([k]) => k.toLowerCase() === n); }
  /** @param {string} name @param {Uint8Array[]} values */
  set(name, values) {
    this.#mutable();
    checkField(name);
    for (const v of values) checkField(name, v);
    const n = name.toLowerCase();
    const kept = this[S].entries.filter(([k]) => k.toLowerCase() !== n);
    if (kept.length + values.length > MAX_FIELDS) throw { tag: 'invalid-syntax' };
    this[S].entries = [...kept, ...values.map((v) => /** @type {FieldEntry} */ ([name, v.slice()]))];
  }
  /** @param {string} name */
  delete(name) {
    this.#mutable();
    checkField(name);
    const n = name.toLowerCase();
    this[S].entries = this[S].entries.filter(([k]) => k.toLowerCase() !== n);
  }
  /** @param {string} name @param {Uint8Array} value */
  append(name, value) {
    this.#mutable();
    checkField(name, value);
    if (this[S].entries.length >= MAX_FIELDS) throw { tag: 'invalid-syntax' };
    this[S].entries.push([name, value.slice()]);
  }
  /** @returns {FieldEntry[]} */
  entries() { return this[S].entries.map(([n, v]) => [n, v.slice()]); }
  clone() { const f = new Fields(); f[S].entries = this.entries(); return f; }
}

/** Make `fields` immutable (the headers of a request or a response). @param {Fields} fields */
export function frozen(fields) {
  fields[S].immutable = true;
  return fields;
}
