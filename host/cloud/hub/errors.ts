/**
 * Typed errors of the IoT Hub client. `kind` is what callers branch on; `message` says what happened and
 * what to do, and never carries a token, a signature or a key. A hub `500` is `not-connected`, as
 * aziot-identityd treats it (a parent edgeHub relays its own network errors that way).
 */
import type { CloudHttpError } from '../http.js';
export type HubErrorKind =
  | 'not-connected' // network error, connection reset, DNS, or the hub answered 500
  | 'timeout'
  | 'tls' // the hub's certificate is not trusted
  | 'unauthorized' // 401: the device credentials were refused (device disabled, deleted, moved to another hub)
  | 'forbidden' // 403
  | 'not-found' // 404 other than "module not found" (the device itself is unknown)
  | 'conflict' // 409
  | 'precondition-failed' // 412
  | 'throttled' // 429
  | 'server' // other 5xx
  | 'bad-request' // other 4xx
  | 'protocol'; // an answer we cannot read

/** Kinds that say nothing about one module: the whole queue waits for the next attempt. */
export const GLOBAL_KINDS: ReadonlySet<HubErrorKind> = new Set(['not-connected', 'timeout', 'tls', 'unauthorized', 'throttled', 'server']);

export class HubError extends Error {
  override readonly name = 'HubError';
  constructor(
    readonly kind: HubErrorKind,
    message: string,
    readonly status?: number,
    /** IoT Hub's `ErrorCode:` value when it sent one (e.g. `ModuleNotFound`). */
    readonly code?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A transport failure (no HTTP answer, as the cloud request helper classified it) as a HubError. */
export function transportError(err: CloudHttpError, hub: string): HubError {
  const code = (err.cause as NodeJS.ErrnoException | undefined)?.code ?? 'unknown';
  const opts = { cause: err };
  switch (err.kind) {
    case 'tls':
      return new HubError('tls', `IoT Hub ${hub}: TLS certificate not trusted (${code}); add the hub's CA to the system store or NODE_EXTRA_CA_CERTS`, undefined, code, opts);
    case 'dns':
      return new HubError('not-connected', `IoT Hub ${hub}: cannot resolve the name (${code}); check DNS and the hub hostname`, undefined, code, opts);
    case 'timeout':
      return new HubError('timeout', `IoT Hub ${hub}: ${err.message}; retried`, undefined, undefined, opts);
    case 'too-large':
      return new HubError('protocol', `IoT Hub ${hub}: ${err.message}`, undefined, undefined, opts);
    default:
      return new HubError('not-connected', `IoT Hub ${hub}: no connection (${code}); check the network`, undefined, code, opts);
  }
}

/** IoT Hub error bodies: `{"Message":"ErrorCode:X;text", …}` (or `errorMessage` from a parent edgeHub). */
function parseHubBody(body: unknown): { code?: string; text?: string } {
  if (typeof body !== 'object' || body === null) return {};
  const j = body as { Message?: unknown; message?: unknown; errorMessage?: unknown };
  const msg = [j.Message, j.message, j.errorMessage].find((v): v is string => typeof v === 'string');
  if (!msg) return {};
  const m = /^ErrorCode:([A-Za-z]+);(.*)$/s.exec(msg);
  return m ? { code: m[1], text: m[2]!.slice(0, 200) } : { text: msg.slice(0, 200) };
}

const STATUS_KINDS: Record<number, HubErrorKind> = { 401: 'unauthorized', 403: 'forbidden', 404: 'not-found', 409: 'conflict', 412: 'precondition-failed', 429: 'throttled', 500: 'not-connected' };

const HINTS: Partial<Record<HubErrorKind, string>> = {
  unauthorized: 'the hub refused the device credentials: is the device enabled, on this hub, with this key? (DPS devices reprovision)',
  forbidden: 'the device may not manage module identities (is it an IoT Edge device in the hub?)',
  'not-connected': 'the hub (or the parent edgeHub) is not reachable; retried',
  throttled: 'the hub is throttling requests; retried later',
};

/** An HTTP error answer as a HubError. */
export function statusError(status: number, body: unknown, what: string): HubError {
  const { code, text } = parseHubBody(body);
  const kind = STATUS_KINDS[status] ?? (status >= 500 ? 'server' : 'bad-request');
  const hint = HINTS[kind];
  const detail = [code, text].filter(Boolean).join(': ');
  return new HubError(kind, `${what}: IoT Hub answered ${status}${detail ? ` (${detail})` : ''}${hint ? `; ${hint}` : ''}`, status, code);
}
