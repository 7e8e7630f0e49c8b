// wasi:http (types, outgoing-handler) for one instance, inside the sandbox worker. The resources live here;
// the request itself is made by the host (`send`, host.ts) through the broker, which checks the authority
// against this instance's `network.hosts` before any DNS lookup or connect. Nothing from preview2-shim:
// its http is process-global and reaches any host.
//
// Bodies are buffered whole (the broker carries one value each way): the request is sent when its
// response is first asked for (`future-incoming-response.get`, or a poll on it) and its body is complete
// (never taken, finished, or dropped), so a guest that streams its body before waiting works as it
// would on wasmtime. Streams are the shared wasi:io classes (io/worker.mjs); header fields are fields.mjs.
import { InputStream, OutputStream, Pollable, Resource, consumed, ioImports, uncounted } from '../io/worker.mjs';
import { ELEMENT_BYTES, valueBytes } from '../../runtime/broker-protocol.mjs';
import { Fields, MAX_FIELDS, S, TOKEN, fieldError, frozen } from './fields.mjs';
/** @import { Sink } from '../io/worker.mjs' */
/** @import { ImportObject, WorkerContext } from '../../runtime/sandbox/worker-api.js' */

/** A WIT variant value as jco represents it (method, scheme, error-code, header-error). @typedef {{ tag: string; val?: any }} Tagged */
/** @import { FieldEntry } from './fields.mjs' */
/**
 * What the worker hands the host's `send` (host.ts), and what it answers.
 * @typedef {{ method: string; scheme: string; authority: string; pathWithQuery: string; headers: [string, string][];
 *   connectTimeoutMs: number | undefined; firstByteTimeoutMs: number | undefined; betweenBytesTimeoutMs: number | undefined }} SendRequest
 * @typedef {{ status: number; headers: [string, string][]; body: Uint8Array }} SendResponse
 * @typedef {{ ok?: SendResponse; error?: Tagged }} SendAnswer
 */
/**
 * The host's `send` as this instance reaches it (absent: no network grant), and its value cap.
 * @typedef {(request: SendRequest & { body: Uint8Array | undefined }) => SendAnswer} Send
 * @typedef {{ send: Send | undefined; limit: number }} Link
 */
/** @typedef {{ chunks: Uint8Array[]; size: number; streamTaken: boolean; finished: boolean; dropped: boolean; tooLarge: boolean }} BodyState */

export { MAX_LIVE_RESOURCES } from '../io/worker.mjs';
export { Fields, MAX_FIELDS, MAX_FIELD_NAME_BYTES, MAX_FIELD_VALUE_BYTES } from './fields.mjs';

/** Interface under which the host's `send` reaches this module (never linked into a guest's imports). */
export const HOST_INTERFACE = 'edgeward-private:http';
/** Bytes the guest may hand over per body write. */
export const MAX_BODY_WRITE_BYTES = 64n * 1024n;

const METHODS = ['get', 'head', 'post', 'put', 'delete', 'connect', 'options', 'trace', 'patch'];

const latin1 = new TextDecoder('latin1');
/** @param {string} s */
const toBytes = (s) => Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);

/**
 * Buffers what the guest writes to an outgoing body, up to the module's value cap.
 * @param {{ [S]: BodyState }} body @param {number} limit @returns {Sink}
 */
function bodySink(body, limit) {
  return {
    checkWrite: MAX_BODY_WRITE_BYTES,
    write(bytes) {
      const st = body[S];
      if (st.finished) return 'body already finished';
      st.size += bytes.length;
      if (st.size > limit) {
        st.tooLarge = true;
        return `request body larger than ${limit} bytes`;
      }
      st.chunks.push(bytes.slice());
      return undefined;
    },
    httpCode: () => ({ tag: 'HTTP-request-body-size', val: BigInt(body[S].size) }),
  };
}

/** A request body the guest writes, buffered whole up to the instance's value cap. */
class OutgoingBody extends Resource {
  /** @type {BodyState} */
  [S] = { chunks: [], size: 0, streamTaken: false, finished: false, dropped: false, tooLarge: false };
  #limit;
  /** @param {number} limit the instance's max_value_bytes */
  constructor(limit) { super(); this.#limit = limit; }
  write() {
    if (this[S].streamTaken) throw undefined;
    this[S].streamTaken = true;
    return new OutputStream(bodySink(this, this.#limit));
  }
  /** @param {OutgoingBody} body @param {Fields | undefined} trailers */
  static finish(body, trailers) {
    consumed(body);
    consumed(trailers);
    const st = body[S];
    st.finished = true;
    if (st.tooLarge) throw { tag: 'HTTP-request-body-size', val: BigInt(st.size) };
    if (trailers && trailers[S].entries.length > 0) throw { tag: 'HTTP-request-trailer-section-size', val: undefined };
  }
  /** @override */
  [Symbol.dispose]() {
    this[S].dropped = true;
    super[Symbol.dispose]();
  }
}

/** A request the guest builds; the class it constructs is the subclass `imports` binds to its value cap. */
class OutgoingRequest extends Resource {
  /** @type {{ headers: Fields; method: Tagged; path: string | undefined; scheme: Tagged | undefined; authority: string | undefined; body: OutgoingBody | undefined }} */
  [S];
  #limit;
  /** @param {Fields} headers @param {number} limit the instance's max_value_bytes */
  constructor(headers, limit) {
    super();
    this.#limit = limit;
    consumed(headers);
    this[S] = { headers: frozen(headers), method: { tag: 'get' }, path: undefined, scheme: undefined, authority: undefined, body: undefined };
  }
  body() {
    if (this[S].body) throw undefined;
    return (this[S].body = new OutgoingBody(this.#limit));
  }
  method() { return this[S].method; }
  /** @param {Tagged} m */
  setMethod(m) {
    if (m.tag === 'other' ? !TOKEN.test(m.val) : !METHODS.includes(m.tag)) throw undefined;
    this[S].method = m;
  }
  pathWithQuery() { return this[S].path; }
  /** @param {string | undefined} p */
  setPathWithQuery(p) {
    // Origin-form only (RFC 9112 §3.2.1): an absolute-form target ("http://other/") would be sent
    // to the granted host as is, and a granted proxy would forward it.
    if (p !== undefined && (p.length > 8192 || !/^(\/[\x21-\x7e]*|\*)$/.test(p))) throw undefined;
    this[S].path = p;
  }
  scheme() { return this[S].scheme; }
  /** @param {Tagged | undefined} s */
  setScheme(s) {
    if (s !== undefined && s.tag === 'other' && !/^[a-z][a-z0-9+.-]{0,31}$/i.test(s.val)) throw undefined;
    this[S].scheme = s;
  }
  authority() { return this[S].authority; }
  /** @param {string | undefined} a */
  setAuthority(a) {
    if (a !== undefined && (a.length > 262 || !/^[\x21-\x7e]*$/.test(a))) throw undefined;
    this[S].authority = a;
  }
  headers() { return this[S].headers; }
}

/** @typedef {bigint | undefined} Duration a WIT option<duration>, in ns */
class RequestOptions extends Resource {
  /** @type {{ connect?: Duration; firstByte?: Duration; betweenBytes?: Duration }} */
  [S] = {};
  connectTimeout() { return this[S].connect; }
  /** @param {Duration} d */
  setConnectTimeout(d) { this[S].connect = d; }
  firstByteTimeout() { return this[S].firstByte; }
  /** @param {Duration} d */
  setFirstByteTimeout(d) { this[S].firstByte = d; }
  betweenBytesTimeout() { return this[S].betweenBytes; }
  /** @param {Duration} d */
  setBetweenBytesTimeout(d) { this[S].betweenBytes = d; }
}

class IncomingBody extends Resource {
  /** @type {{ bytes: Uint8Array; streamTaken: boolean }} */
  [S];
  /** @param {Uint8Array} bytes */
  constructor(bytes) { super(); this[S] = { bytes, streamTaken: false }; }
  stream() {
    if (this[S].streamTaken) throw undefined;
    this[S].streamTaken = true;
    return new InputStream(this[S].bytes);
  }
  /** @param {IncomingBody} body */
  static finish(body) {
    consumed(body);
    return new FutureTrailers();
  }
}

class IncomingResponse extends Resource {
  /** @type {{ status: number; headers: Fields; body: Uint8Array; consumed: boolean }} */
  [S];
  /** @param {SendResponse} r */
  constructor(r) {
    super();
    // Connection headers and lines a guest could not have set are not handed over (never a trap here).
    const lines = r.headers.map(([n, v]) => /** @type {FieldEntry} */ ([n, toBytes(v)])).filter(([n, v]) => !fieldError(n, v)).slice(0, MAX_FIELDS);
    this[S] = { status: r.status, headers: frozen(uncounted(() => Fields.fromList(lines))), body: r.body, consumed: false };
  }
  status() { return this[S].status; }
  headers() { return this[S].headers; }
  consume() {
    if (this[S].consumed) throw undefined;
    this[S].consumed = true;
    return new IncomingBody(this[S].body);
  }
}

/** The whole body arrived with the response: trailers are never sent, the future is ready at once. */
class FutureTrailers extends Resource {
  [S] = { taken: false };
  subscribe() { return new Pollable(); }
  get() {
    if (this[S].taken) return { tag: 'err', val: undefined };
    this[S].taken = true;
    return { tag: 'ok', val: { tag: 'ok', val: undefined } };
  }
}

class FutureIncomingResponse extends Resource {
  /** @type {{ request: SendRequest; body: OutgoingBody | undefined; result: Tagged | undefined; taken: boolean }} */
  [S];
  #link;
  /** @param {Link} link @param {SendRequest} request @param {OutgoingBody | undefined} body */
  constructor(link, request, body) { super(); this.#link = link; this[S] = { request, body, result: undefined, taken: false }; }
  #ready() {
    const b = this[S].body?.[S];
    return this[S].result !== undefined || !b || b.finished || b.dropped;
  }
  subscribe() { return new Pollable(() => this.#ready()); }
  get() {
    const st = this[S];
    if (st.result === undefined) {
      if (!this.#ready()) return undefined;
      st.result = deliver(this.#link, st.request, st.body?.[S]);
    }
    if (st.taken) return { tag: 'err', val: undefined };
    st.taken = true;
    return { tag: 'ok', val: st.result };
  }
}

/**
 * Send through the host and wrap its answer; a broker failure is an internal-error, not a trap.
 * @param {Link} link @param {SendRequest} request @param {BodyState | undefined} body @returns {Tagged}
 */
function deliver({ send, limit }, request, body) {
  if (body && !body.finished) return { tag: 'err', val: { tag: 'HTTP-request-body-size', val: BigInt(body.size) } };
  if (body?.tooLarge) return { tag: 'err', val: { tag: 'HTTP-request-body-size', val: BigInt(body.size) } };
  if (!send) return { tag: 'err', val: { tag: 'HTTP-request-denied' } };
  // The broker refuses arguments over max_value_bytes, measured by the one size function both sides
  // use (broker-protocol.mjs): say which part is too large instead of an internal-error. The body is a
  // typed array (its bytes); the envelope (the argument list, the body member) adds 2 elements.
  const head = valueBytes(request) + 3 * ELEMENT_BYTES;
  if (head > limit) return { tag: 'err', val: { tag: 'HTTP-request-header-section-size', val: undefined } };
  if (body && head + body.size > limit) return { tag: 'err', val: { tag: 'HTTP-request-body-size', val: BigInt(body.size) } };
  let answer;
  try {
    answer = send({ ...request, body: body ? concat(body.chunks, body.size) : undefined });
  } catch (err) {
    return { tag: 'err', val: { tag: 'internal-error', val: String(/** @type {{ message?: unknown } | undefined} */ (err)?.message ?? err) } };
  }
  if (answer.error) return { tag: 'err', val: answer.error };
  return { tag: 'ok', val: new IncomingResponse(/** @type {SendResponse} */ (answer.ok)) };
}

/** wasi:http/outgoing-handler.handle. @param {Link} link @param {OutgoingRequest} request @param {RequestOptions | undefined} options */
function handle(link, request, options) {
  consumed(request);
  consumed(options);
  const st = request[S];
  if (st.authority === undefined) throw { tag: 'HTTP-request-URI-invalid' };
  const scheme = st.scheme === undefined ? 'https' : st.scheme.tag === 'HTTP' ? 'http' : st.scheme.tag === 'HTTPS' ? 'https' : st.scheme.val;
  const o = options?.[S] ?? {};
  /** @param {Duration} d */
  const ms = (d) => (d === undefined ? undefined : Number(d / 1_000_000n));
  // The request resource is consumed here: what is sent is what it says now.
  const req = {
    method: st.method.tag === 'other' ? st.method.val : st.method.tag.toUpperCase(),
    scheme,
    authority: st.authority,
    pathWithQuery: st.path ?? '/',
    headers: st.headers[S].entries.map(([n, v]) => /** @type {[string, string]} */ ([n, latin1.decode(v)])),
    connectTimeoutMs: ms(o.connect),
    firstByteTimeoutMs: ms(o.firstByte),
    betweenBytesTimeoutMs: ms(o.betweenBytes),
  };
  return new FutureIncomingResponse(link, req, st.body);
}

/** @param {string} what */
const unsupported = (what) => class {
  constructor() { throw new Error(`wasi:http/types ${what}: this world has no incoming handler`); }
};

/** @param {Partial<Pick<WorkerContext, 'host'>> & Pick<WorkerContext, 'maxValueBytes'>} ctx @returns {ImportObject} */
export function imports(ctx) {
  /** @type {Link} */
  const link = { send: /** @type {Send | undefined} */ (ctx.host?.[HOST_INTERFACE]?.send), limit: ctx.maxValueBytes };
  return {
    ...ioImports(),
    'wasi:http/types': {
      Fields, OutgoingBody, RequestOptions, FutureIncomingResponse, IncomingResponse, IncomingBody, FutureTrailers,
      // What the guest constructs: a request whose body this instance's value cap bounds.
      OutgoingRequest: class extends OutgoingRequest {
        /** @param {Fields} headers */
        constructor(headers) { super(headers, link.limit); }
      },
      IncomingRequest: unsupported('incoming-request'),
      OutgoingResponse: unsupported('outgoing-response'),
      ResponseOutparam: unsupported('response-outparam'),
      httpErrorCode: (/** @type {unknown} */ err) => /** @type {{ httpCode?: unknown } | undefined} */ (err)?.httpCode,
    },
    'wasi:http/outgoing-handler': { handle: (/** @type {OutgoingRequest} */ request, /** @type {RequestOptions | undefined} */ options) => handle(link, request, options) },
  };
}

/** @param {Uint8Array[]} chunks @param {number} size */
function concat(chunks, size) {
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.length; }
  return out;
}
