/**
 * The host side of wasi:http/outgoing-handler: one `send` per instance, run on the daemon's thread
 * through the broker while the guest blocks. It checks the authority against THIS instance's grant
 * before any DNS lookup or connect, then makes one node:http(s) request to exactly the host that
 * matched: no agent (no connection shared with another module), no proxy, no redirect followed (a 3xx is
 * the guest's answer; a follow-up request goes through this check again), bodies buffered whole and the
 * response capped. Every call leaves one line in the module's log, without headers or query strings.
 */
import http from 'node:http';
import type { InstanceContext } from '../../runtime/capabilities.js';
import { HostAllowList, type Scheme, type Target } from './hosts.js';
import type { ErrorCode } from './generated/interfaces/wasi-http-types.js';

/** A request as the worker hands it over (decoded from the wasi:http resources). */
export interface SendRequest {
  method: string;
  scheme: string;
  authority: string;
  pathWithQuery: string;
  /** Header lines, values as latin1 strings (field values are bytes; HTTP/1.1 carries them as octets). */
  headers: [string, string][];
  body?: Uint8Array;
  /** From request-options, in ms; undefined: the defaults below. */
  connectTimeoutMs?: number;
  firstByteTimeoutMs?: number;
  betweenBytesTimeoutMs?: number;
}

/** wasi:http/types `error-code`, as jco generates it from the WASI WIT (`{tag, val}`; tags as in the WIT). */
export type { ErrorCode };

export interface SendResponse {
  status: number;
  headers: [string, string][];
  body: Uint8Array;
}

export type SendResult = { ok: SendResponse } | { error: ErrorCode };

/** Defaults when the guest passes no request-options (wasmtime uses 600 s; a blocked sandbox cannot wait that long). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
export const DEFAULT_FIRST_BYTE_TIMEOUT_MS = 10_000;
export const DEFAULT_BETWEEN_BYTES_TIMEOUT_MS = 10_000;
/** Whole request, whatever the options say: under the broker's 30 s, so the guest gets an error-code, not a trap. */
export const MAX_REQUEST_MS = 25_000;
/** A request ends this long before the guest call's deadline, so its error-code still reaches the guest. */
export const DEADLINE_MARGIN_MS = 250;

/**
 * Headers the host drops from a guest's request: connection management and framing are the host's
 * (wasmtime-wasi-http's forbidden list, which worker.mjs refuses already, plus content-length, derived
 * from the buffered body, and te/expect, which would change how the exchange is framed).
 */
export const FORBIDDEN_HEADERS: ReadonlySet<string> = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host', 'http2-settings',
  'content-length', 'te', 'expect',
]);

export interface SendOptions {
  hosts: readonly string[];
  /** Response status line + headers + body may not exceed this (the module's max_value_bytes). */
  maxResponseBytes: number;
  /** The instance's call deadline: a request ends (HTTP-response-timeout) before the instance would be killed. */
  callTimeoutMs: number;
}

/** Build `send` for one instance. The allow-list is compiled here and captured: no state outside. */
export function outgoingSender(instance: InstanceContext, opts: SendOptions): (req: SendRequest) => Promise<SendResult> {
  const allow = HostAllowList.of(opts.hosts);
  const budgetMs = Math.max(1, Math.min(MAX_REQUEST_MS, opts.callTimeoutMs - DEADLINE_MARGIN_MS));
  const log = rateLimited(instance.log);
  return async (req) => {
    const scheme = req.scheme === 'http' || req.scheme === 'https' ? (req.scheme as Scheme) : undefined;
    const shown = JSON.stringify(String(req.authority).slice(0, 100));
    const target = scheme ? allow.check(scheme, String(req.authority)) : undefined;
    if (!scheme || !target) {
      log('warn', `http: ${String(req.method).slice(0, 16)} ${scheme ?? 'unsupported scheme'} ${shown} denied: not in network.hosts`);
      instance.denied?.(`wasi:http/outgoing-handler: ${String(req.method).slice(0, 16)} ${scheme ?? 'unsupported scheme'} ${JSON.stringify(withoutUserinfo(String(req.authority)).slice(0, 100))} refused: not in network.hosts`);
      return { error: { tag: 'HTTP-request-denied' } };
    }
    // CONNECT would make the granted host a tunnel to anywhere (and Node answers it on 'connect', not 'response').
    if (String(req.method).toUpperCase() === 'CONNECT') {
      log('warn', `http: CONNECT ${scheme}://${hostPort(target)} refused: tunnels are not granted`);
      instance.denied?.(`wasi:http/outgoing-handler: CONNECT ${scheme}://${hostPort(target)} refused: tunnels are not granted`);
      return { error: { tag: 'HTTP-request-method-invalid' } };
    }
    if (!/^(\/[\x21-\x7e]*|\*)$/.test(String(req.pathWithQuery))) {
      log('warn', `http: ${String(req.method).slice(0, 16)} ${scheme}://${hostPort(target)} refused: the path is not origin-form`);
      return { error: { tag: 'HTTP-request-URI-invalid' } };
    }
    const t0 = performance.now();
    // Not past what is left of the guest's call: an error-code before the deadline, not a killed instance.
    const deadline = instance.callDeadline?.();
    const budget = deadline === undefined ? budgetMs : Math.min(budgetMs, Math.floor(deadline - performance.now() - DEADLINE_MARGIN_MS));
    if (budget < 1) {
      log('warn', `http: ${String(req.method).slice(0, 16)} ${scheme}://${hostPort(target)} not sent: the call's time is up`);
      return { error: { tag: 'HTTP-response-timeout' } };
    }
    const result = await request(scheme, target, req, opts.maxResponseBytes, budget, instance.signal);
    const ms = Math.round(performance.now() - t0);
    const where = `${req.method} ${scheme}://${hostPort(target)}${pathOnly(req.pathWithQuery)}`;
    if ('ok' in result) log('info', `http: ${where} → ${result.ok.status} (${result.ok.body.length} bytes, ${ms} ms)`);
    else log('warn', `http: ${where} failed: ${result.error.tag} (${ms} ms)`);
    return result;
  };
}

/** Log lines per second one instance's requests may write (a guest fetching in a loop must not flood its log). */
export const HTTP_LOG_LINES_PER_SECOND = 50;

/** A token bucket over `log`, with one line saying how many were dropped (as the worker does for guest logs). */
function rateLimited(log: InstanceContext['log']): InstanceContext['log'] {
  let tokens = HTTP_LOG_LINES_PER_SECOND;
  let last = performance.now();
  let dropped = 0;
  return (level, message) => {
    const now = performance.now();
    tokens = Math.min(HTTP_LOG_LINES_PER_SECOND, tokens + ((now - last) * HTTP_LOG_LINES_PER_SECOND) / 1000);
    last = now;
    if (tokens < 1) {
      dropped++;
      return;
    }
    tokens--;
    if (dropped > 0) log('warn', `http: ${dropped} request log lines dropped (limit ${HTTP_LOG_LINES_PER_SECOND}/s)`);
    dropped = 0;
    log(level, message);
  };
}

const hostPort = (t: Target) => `${t.host}:${t.port}`;
/** An authority without its userinfo (`user:password@`), which may be a credential: events never carry it. */
const withoutUserinfo = (a: string) => (a.includes('@') ? `(userinfo withheld)@${a.slice(a.lastIndexOf('@') + 1)}` : a);
/** The path without its query: a query string may carry a token (SAS `sig=`), never logged. */
const pathOnly = (p: string) => {
  const q = p.indexOf('?');
  return JSON.stringify(q < 0 ? p : `${p.slice(0, q)}?…`).slice(1, -1).slice(0, 200);
};

function clampMs(v: number | undefined, dflt: number, max: number): number {
  return Math.max(1, Math.min(v ?? dflt, max));
}

/** One request, answered exactly once. */
function request(scheme: Scheme, target: Target, req: SendRequest, maxBytes: number, budgetMs: number, signal?: AbortSignal): Promise<SendResult> {
  return new Promise<SendResult>((resolve) => {
    if (signal?.aborted) return resolve({ error: { tag: 'internal-error', val: 'instance ended' } });
    let creq: http.ClientRequest;
    try {
      creq = openRequest(scheme, target, req, maxBytes, signal);
    } catch (err) {
      resolve({ error: mapRequestError(err) });
      return;
    }
    const exchange = new Exchange(creq, resolve);
    exchange.after(budgetMs, { tag: 'HTTP-response-timeout' });
    const stopFirstByte = watchConnect(exchange, creq, req, budgetMs);
    creq.on('error', (err) => exchange.finish({ error: mapNetworkError(err) }));
    // A 101 (or any upgrade) is not HTTP this capability speaks: answered at once, not at the timeout.
    creq.on('upgrade', (_res, socket) => { socket.destroy(); exchange.finish({ error: { tag: 'HTTP-protocol-error' } }); });
    creq.on('response', (res) => {
      stopFirstByte();
      receive(exchange, res, clampMs(req.betweenBytesTimeoutMs, DEFAULT_BETWEEN_BYTES_TIMEOUT_MS, budgetMs), maxBytes);
    });
    creq.end(req.body && req.body.length > 0 ? req.body : undefined);
  });
}

/** The timers of one exchange and its one answer: `finish` clears them all and resolves once. */
class Exchange {
  readonly #timers: NodeJS.Timeout[] = [];
  #settled = false;
  constructor(
    private readonly creq: http.ClientRequest,
    private readonly resolve: (r: SendResult) => void,
  ) {}

  finish(r: SendResult): void {
    if (this.#settled) return;
    this.#settled = true;
    for (const t of this.#timers) clearTimeout(t);
    if ('error' in r) this.creq.destroy();
    this.resolve(r);
  }

  /** Answer `error` in `ms` unless the exchange is finished (or the timer cleared) first. */
  after(ms: number, error: ErrorCode): NodeJS.Timeout {
    const t = setTimeout(() => this.finish({ error }), ms);
    this.#timers.push(t);
    return t;
  }
}

/** The client request, not yet sent: hop-by-hop and framing headers are the host's. Throws on a bad method, path or header. */
function openRequest(scheme: Scheme, target: Target, req: SendRequest, maxBytes: number, signal?: AbortSignal): http.ClientRequest {
  const headers: Record<string, string[]> = Object.create(null) as Record<string, string[]>; // `__proto__` is a valid field name
  for (const [name, value] of req.headers) {
    const n = name.toLowerCase();
    if (!FORBIDDEN_HEADERS.has(n)) (headers[n] ??= []).push(value);
  }
  if (req.body && req.body.length > 0) headers['content-length'] = [String(req.body.length)];
  // node:https (with node:tls, ~1 MiB) is loaded by the first https request, not by the daemon's start.
  return (scheme === 'https' ? process.getBuiltinModule('node:https') : http).request({
    host: target.host.startsWith('[') ? target.host.slice(1, -1) : target.host,
    port: target.port,
    method: req.method,
    path: req.pathWithQuery,
    headers,
    agent: false,
    // The instance ended (killed mid-request): the socket closes now, not at the timeout.
    ...(signal ? { signal } : {}),
    maxHeaderSize: Math.min(16 * 1024, maxBytes),
  });
}

/** The connect timeout, then the first-byte one from the connect on; returns what stops the latter at the response. */
function watchConnect(exchange: Exchange, creq: http.ClientRequest, req: SendRequest, budgetMs: number): () => void {
  const connectTimer = exchange.after(clampMs(req.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS, budgetMs), { tag: 'connection-timeout' });
  let firstByteTimer: NodeJS.Timeout | undefined;
  creq.on('socket', (socket) => {
    socket.once('connect', () => {
      clearTimeout(connectTimer);
      firstByteTimer = exchange.after(clampMs(req.firstByteTimeoutMs, DEFAULT_FIRST_BYTE_TIMEOUT_MS, budgetMs), { tag: 'HTTP-response-timeout' });
    });
  });
  return () => clearTimeout(firstByteTimer);
}

/** Reads the response whole: header lines and body count against `maxBytes`, each gap between chunks against `idleMs`. */
function receive(exchange: Exchange, res: http.IncomingMessage, idleMs: number, maxBytes: number): void {
  const headerLines: [string, string][] = [];
  let total = 0;
  for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
    headerLines.push([res.rawHeaders[i]!, res.rawHeaders[i + 1]!]);
    total += res.rawHeaders[i]!.length + res.rawHeaders[i + 1]!.length + 8;
  }
  const chunks: Buffer[] = [];
  let idle = exchange.after(idleMs, { tag: 'connection-read-timeout' });
  const declared = Number(res.headers['content-length']);
  res.on('data', (chunk: Buffer) => {
    total += chunk.length;
    if (total > maxBytes) {
      exchange.finish({ error: { tag: 'HTTP-response-body-size', val: Number.isSafeInteger(declared) ? BigInt(declared) : undefined } });
      return;
    }
    chunks.push(chunk);
    clearTimeout(idle);
    idle = exchange.after(idleMs, { tag: 'connection-read-timeout' });
  });
  res.on('end', () => {
    const body = Buffer.concat(chunks);
    exchange.finish({ ok: { status: res.statusCode ?? 0, headers: headerLines, body: new Uint8Array(body.buffer, body.byteOffset, body.length) } });
  });
  res.on('aborted', () => exchange.finish({ error: { tag: 'HTTP-response-incomplete' } }));
  res.on('error', (err) => exchange.finish({ error: mapNetworkError(err) }));
}

/** Errors thrown while the request is built (before any I/O): bad method, path or header. */
function mapRequestError(err: unknown): ErrorCode {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'ERR_INVALID_HTTP_TOKEN' && /method/i.test((err as Error).message)) return { tag: 'HTTP-request-method-invalid' };
  if (code === 'ERR_UNESCAPED_CHARACTERS' || code === 'ERR_INVALID_URL') return { tag: 'HTTP-request-URI-invalid' };
  if (code === 'ERR_INVALID_HTTP_TOKEN' || code === 'ERR_INVALID_CHAR') return { tag: 'HTTP-request-header-size', val: undefined };
  return { tag: 'internal-error', val: code ?? 'request refused' };
}

const TLS_CERT_CODES = /^(CERT_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_(GET_ISSUER_CERT|VERIFY_LEAF_SIGNATURE|DECRYPT_CERT_SIGNATURE)|ERR_TLS_CERT_ALTNAME_INVALID|HOSTNAME_MISMATCH)/;

/** A node/libuv/OpenSSL error during the exchange → the WIT error-code (wasi:http types.wit). */
export function mapNetworkError(err: unknown): ErrorCode {
  const code = String((err as NodeJS.ErrnoException)?.code ?? '');
  switch (code) {
    case 'ENOTFOUND':
      return { tag: 'DNS-error', val: { rcode: 'NXDOMAIN', infoCode: undefined } };
    case 'EAI_AGAIN':
      return { tag: 'DNS-timeout' };
    case 'ECONNREFUSED':
      return { tag: 'connection-refused' };
    case 'ECONNRESET':
    case 'EPIPE':
      return { tag: 'connection-terminated' };
    case 'ETIMEDOUT':
      return { tag: 'connection-timeout' };
    case 'EHOSTUNREACH':
    case 'EHOSTDOWN':
      return { tag: 'destination-unavailable' };
    case 'ENETUNREACH':
      return { tag: 'destination-IP-unroutable' };
    case 'EADDRNOTAVAIL':
      return { tag: 'destination-IP-prohibited' };
    case 'ABORT_ERR':
      return { tag: 'internal-error', val: 'instance ended' };
    default:
      break;
  }
  if (TLS_CERT_CODES.test(code)) return { tag: 'TLS-certificate-error' };
  if (code.startsWith('ERR_SSL_') || code === 'EPROTO' || code.startsWith('ERR_TLS_')) return { tag: 'TLS-protocol-error' };
  if (code === 'HPE_HEADER_OVERFLOW') return { tag: 'HTTP-response-header-section-size', val: undefined };
  if (code.startsWith('HPE_')) return { tag: 'HTTP-protocol-error' };
  return { tag: 'internal-error', val: code || 'request failed' };
}
