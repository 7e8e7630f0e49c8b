/**
 * A small JSON-over-HTTPS request helper for the cloud clients (DPS and IoT Hub): one request, a hard
 * timeout (connection to last byte), the body parsed as JSON when it is JSON, and transport failures as a typed `CloudHttpError`
 * saying what kind of failure it was (DNS, connection refused, TLS trust, timeout) so callers can tell the
 * user the one thing to fix. Trust: Node's default CAs plus `NODE_EXTRA_CA_CERTS`, or `ca` when given.
 * Nothing here logs request headers (they carry SAS tokens).
 */
import https from 'node:https';
import type { SecureContextOptions, SecureContext } from 'node:tls';

export interface JsonRequest {
  method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  body?: unknown;
  timeoutMs: number;
  /** Extra trust (PEM) and a TLS client certificate (`cert` + `key`, PEM) for X.509 attestation. */
  tls?: Pick<SecureContextOptions, 'ca' | 'cert' | 'key'> | { secureContext: SecureContext };
  /** A (keep-alive) agent to send through, e.g. one carrying a TLS client identity; default: a fresh connection. */
  agent?: https.Agent;
}

export interface JsonResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON, or the raw text when the body is not JSON, or undefined when empty. */
  body: unknown;
}

/** Largest response body read (DPS and Hub answers are a few KiB). */
export const MAX_RESPONSE_BYTES = 1024 * 1024;

export type CloudHttpFailure = 'dns' | 'refused' | 'tls' | 'timeout' | 'network' | 'too-large';

/** The request never got an HTTP answer. `kind` says why; the message never carries headers. */
export class CloudHttpError extends Error {
  constructor(readonly kind: CloudHttpFailure, message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'CloudHttpError';
  }
}

const TLS_CODES = new Set(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_UNTRUSTED']);

/** Map a socket/TLS error onto a failure kind with a message naming the host. */
export function classify(err: NodeJS.ErrnoException, host: string): CloudHttpError {
  const code = err.code ?? '';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new CloudHttpError('dns', `cannot resolve ${host} (${code}): check DNS and the endpoint name`, err);
  if (code === 'ECONNREFUSED') return new CloudHttpError('refused', `${host} refused the connection: check the endpoint and port, and that it is reachable`, err);
  if (TLS_CODES.has(code) || code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS')) {
    return new CloudHttpError('tls', `TLS with ${host} failed (${code}): the server certificate is not trusted`, err);
  }
  return new CloudHttpError('network', `request to ${host} failed (${code || err.message})`, err);
}

/** One request; resolves with any HTTP status (the caller decides), rejects only without an answer. */
export function requestJson(req: JsonRequest): Promise<JsonResponse> {
  const url = new URL(req.url);
  const payload = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body), 'utf8');
  const headers: Record<string, string> = { accept: 'application/json', ...req.headers };
  if (payload) {
    headers['content-type'] = 'application/json; charset=utf-8';
    headers['content-length'] = String(payload.length);
  }
  return new Promise((resolve, reject) => {
    const r = https.request(url, { method: req.method, headers, ...req.tls, agent: req.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_RESPONSE_BYTES) r.destroy(new CloudHttpError('too-large', `${url.host} answered more than ${MAX_RESPONSE_BYTES} bytes`));
        else chunks.push(c);
      });
      res.on('end', () => {
        clearTimeout(deadline);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parseBody(Buffer.concat(chunks)) });
      });
      res.on('error', fail);
    });
    // Connection to last byte, not an idle timeout: a server that trickles its answer is cut too.
    const deadline = setTimeout(() => r.destroy(new CloudHttpError('timeout', `${url.host} did not answer within ${req.timeoutMs} ms`)), req.timeoutMs);
    const fail = (err: Error): void => {
      clearTimeout(deadline);
      reject(err instanceof CloudHttpError ? err : classify(err as NodeJS.ErrnoException, url.host));
    };
    r.on('error', fail);
    r.end(payload);
  });
}

function parseBody(b: Buffer): unknown {
  if (b.length === 0) return undefined;
  const text = b.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** `Retry-After` in milliseconds (seconds, possibly fractional, or an HTTP date); undefined if absent or bad. */
export function retryAfterMs(headers: JsonResponse['headers'], now = Date.now()): number | undefined {
  const v = headers['retry-after'];
  const s = Array.isArray(v) ? v[0] : v;
  if (s === undefined || s.trim() === '') return undefined;
  const n = Number(s);
  if (Number.isFinite(n) && n >= 0) return Math.round(n * 1000);
  const at = Date.parse(s);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
