/**
 * Typed errors of the IoT Hub client. `kind` is what callers branch on; `message` says what happened and
 * what to do, and never carries a token, a signature or a key. A hub `500` is `not-connected`, as
 * aziot-identityd treats it (a parent edgeHub relays its own network errors that way).
 */
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

const TLS_CODES = new Set(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID']);

/** A transport failure (no HTTP answer) as a HubError. */
export function transportError(err: NodeJS.ErrnoException, hub: string): HubError {
  const code = err.code ?? 'unknown';
  if (TLS_CODES.has(code)) {
    return new HubError('tls', `IoT Hub ${hub}: TLS certificate not trusted (${code}); add the hub's CA to the system store or NODE_EXTRA_CA_CERTS`, undefined, code, { cause: err });
  }
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new HubError('not-connected', `IoT Hub ${hub}: cannot resolve the name (${code}); check DNS and the hub hostname`, undefined, code, { cause: err });
  }
  return new HubError('not-connected', `IoT Hub ${hub}: no connection (${code}); check the network`, undefined, code, { cause: err });
}

/** IoT Hub error bodies: `{"Message":"ErrorCode:X;text", …}` (or `errorMessage` from a parent edgeHub). */
function parseHubBody(body: string): { code?: string; text?: string } {
  try {
    const j = JSON.parse(body) as { Message?: unknown; message?: unknown; errorMessage?: unknown };
    const msg = [j.Message, j.message, j.errorMessage].find((v): v is string => typeof v === 'string');
    if (!msg) return {};
    const m = /^ErrorCode:([A-Za-z]+);(.*)$/s.exec(msg);
    return m ? { code: m[1], text: m[2]!.slice(0, 200) } : { text: msg.slice(0, 200) };
  } catch {
    return {};
  }
}

const STATUS_KINDS: Record<number, HubErrorKind> = { 401: 'unauthorized', 403: 'forbidden', 404: 'not-found', 409: 'conflict', 412: 'precondition-failed', 429: 'throttled', 500: 'not-connected' };

const HINTS: Partial<Record<HubErrorKind, string>> = {
  unauthorized: 'the hub refused the device credentials: is the device enabled, on this hub, with this key? (DPS devices reprovision)',
  forbidden: 'the device may not manage module identities (is it an IoT Edge device in the hub?)',
  'not-connected': 'the hub (or the parent edgeHub) is not reachable; retried',
  throttled: 'the hub is throttling requests; retried later',
};

/** An HTTP error answer as a HubError. */
export function statusError(status: number, body: string, what: string): HubError {
  const { code, text } = parseHubBody(body);
  const kind = STATUS_KINDS[status] ?? (status >= 500 ? 'server' : 'bad-request');
  const hint = HINTS[kind];
  const detail = [code, text].filter(Boolean).join(': ');
  return new HubError(kind, `${what}: IoT Hub answered ${status}${detail ? ` (${detail})` : ''}${hint ? `; ${hint}` : ''}`, status, code);
}
