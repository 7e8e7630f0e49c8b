/**
 * The device side of the DPS REST protocol (api-version 2021-06-01, as aziot-identityd): `PUT
 * {endpoint}/{idScope}/registrations/{regId}/register`, then `GET …/operations/{operationId}` until the
 * status is no longer `assigning`, honouring `Retry-After`. Transient failures (no answer, 429, 5xx) are
 * retried `retries` times with bounded exponential back-off; every request has `requestTimeoutMs`, and the
 * whole registration `totalTimeoutMs`. TPM attestation first sends the EK/SRK without authorization and
 * imports the `authenticationKey` of the expected 401, then signs with it; a key in the assigned answer is
 * imported again.
 */
import type { SecureContext } from 'node:tls';
import { CloudHttpError, requestJson, retryAfterMs, type JsonRequest, type JsonResponse } from '../http.js';
import { DPS_FIX, DpsError } from './errors.js';
import { dpsSasToken, type HmacSigner } from './sas.js';

export const DPS_API_VERSION = '2021-06-01';
/** Poll interval when DPS gives no Retry-After (aziot: 5 s). */
export const DEFAULT_POLL_MS = 5_000;
const BACKOFF_BASE_MS = 1_000;
const BACKOFF_CAP_MS = 30_000;
/** Most polls of one operation, whatever Retry-After says. */
export const MAX_POLLS = 120;

export type DpsAttestation =
  | { kind: 'symmetric_key'; sign: HmacSigner }
  | { kind: 'x509'; secureContext: SecureContext }
  | { kind: 'tpm'; endorsementKey: string; storageRootKey: string; sign: HmacSigner; importKey(authenticationKey: string): Promise<void> };

export interface DpsAssignment {
  registrationId: string;
  assignedHub: string;
  deviceId: string;
  substatus: string;
  createdDateTimeUtc?: string;
  lastUpdatedDateTimeUtc?: string;
  payload?: unknown;
}

export interface DpsRegisterOptions {
  endpoint: string;
  idScope: string;
  registrationId: string;
  attestation: DpsAttestation;
  payload?: unknown;
  requestTimeoutMs: number;
  retries: number;
  totalTimeoutMs: number;
  pollMs?: number;
  /** Extra server trust (PEM); otherwise Node's CAs and NODE_EXTRA_CA_CERTS. */
  ca?: string;
  /** Injected in tests to count the waits instead of waiting. */
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One registration, start to assignment. Throws DpsError. */
export async function registerWithDps(o: DpsRegisterOptions): Promise<DpsAssignment> {
  const ctx = new Ctx(o);
  const att = o.attestation;
  if (att.kind === 'tpm') await tpmChallenge(ctx, att);
  let last = await ctx.send('PUT', 'register', { registrationId: o.registrationId, ...(o.payload === undefined ? {} : { payload: o.payload }) });
  let answer = operationOf(last);
  const operationId = answer.operationId;
  for (let polls = 0; answer.status === 'assigning'; polls++) {
    if (polls >= MAX_POLLS) throw new DpsError('timeout', `DPS kept ${o.registrationId} assigning for ${MAX_POLLS} polls`, DPS_FIX.timeout);
    await ctx.wait(retryAfterMs(last.headers) ?? ctx.pollMs, 'polling');
    last = await ctx.send('GET', `operations/${encodeURIComponent(operationId)}`);
    answer = operationOf(last);
  }
  return finish(ctx, answer);
}

interface Operation {
  operationId: string;
  status: string;
  registrationState?: Record<string, unknown>;
}

function operationOf(r: JsonResponse): Operation {
  const b = r.body as Partial<Operation> | undefined;
  if (!b || typeof b !== 'object' || typeof b.status !== 'string') throw new DpsError('protocol', `DPS answered ${r.status} without an operation status`, DPS_FIX.protocol);
  if (b.status === 'assigning' && typeof b.operationId !== 'string') throw new DpsError('protocol', 'DPS answered "assigning" without an operationId', DPS_FIX.protocol);
  return b as Operation;
}

async function finish(ctx: Ctx, op: Operation): Promise<DpsAssignment> {
  const s = op.registrationState ?? {};
  if (op.status === 'assigned') {
    const { assignedHub, deviceId } = s as { assignedHub?: unknown; deviceId?: unknown };
    if (typeof assignedHub !== 'string' || typeof deviceId !== 'string') throw new DpsError('protocol', 'DPS answered "assigned" without assignedHub and deviceId', DPS_FIX.protocol);
    const tpmKey = (s.tpm as { authenticationKey?: unknown } | undefined)?.authenticationKey;
    const att = ctx.o.attestation;
    if (att.kind === 'tpm' && typeof tpmKey === 'string') await att.importKey(tpmKey);
    return {
      registrationId: ctx.o.registrationId,
      assignedHub,
      deviceId,
      substatus: typeof s.substatus === 'string' ? s.substatus : 'initialAssignment',
      createdDateTimeUtc: s.createdDateTimeUtc as string | undefined,
      lastUpdatedDateTimeUtc: s.lastUpdatedDateTimeUtc as string | undefined,
      ...(s.payload === undefined ? {} : { payload: s.payload }),
    };
  }
  const code = typeof s.errorCode === 'number' ? s.errorCode : undefined;
  const msg = typeof s.errorMessage === 'string' ? s.errorMessage.slice(0, 200) : '';
  if (op.status === 'disabled') throw new DpsError('disabled', `DPS: the enrollment for ${ctx.o.registrationId} is disabled`, DPS_FIX.disabled, { errorCode: code });
  throw new DpsError('failed', `DPS registration of ${ctx.o.registrationId} ${op.status}${code ? ` (${code}${msg ? ` ${msg}` : ''})` : ''}`, DPS_FIX.failed, { errorCode: code });
}

/** TPM round 1: EK/SRK, no authorization → the expected 401 with the authenticationKey, imported. */
async function tpmChallenge(ctx: Ctx, att: Extract<DpsAttestation, { kind: 'tpm' }>): Promise<void> {
  const r = await ctx.send('PUT', 'register', { registrationId: ctx.o.registrationId, tpm: { endorsementKey: att.endorsementKey, storageRootKey: att.storageRootKey } }, { unauthenticated: true });
  const key = (r.body as { authenticationKey?: unknown } | undefined)?.authenticationKey;
  if (r.status === 401 && typeof key === 'string') return att.importKey(key);
  if (r.status === 401) throw refusal(r, ctx.o.registrationId); // no enrollment for this EK
  throw new DpsError('protocol', `DPS answered ${r.status} to the TPM registration instead of a 401 challenge`, DPS_FIX.protocol);
}

/** One registration's deadline, retries and authorization. */
class Ctx {
  readonly deadline: number;
  readonly pollMs: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly now: () => number;

  constructor(readonly o: DpsRegisterOptions) {
    this.now = o.now ?? Date.now;
    this.sleep = o.sleep ?? realSleep;
    this.deadline = this.now() + o.totalTimeoutMs;
    this.pollMs = o.pollMs ?? DEFAULT_POLL_MS;
  }

  private url(rest: string): string {
    const base = this.o.endpoint.replace(/\/+$/, '');
    return `${base}/${encodeURIComponent(this.o.idScope)}/registrations/${encodeURIComponent(this.o.registrationId)}/${rest}?api-version=${DPS_API_VERSION}`;
  }

  /** Wait `ms`, unless that passes the deadline. */
  async wait(ms: number, what: string): Promise<void> {
    if (this.now() + ms > this.deadline) throw new DpsError('timeout', `DPS ${what} for ${this.o.registrationId} would exceed the ${Math.round(this.o.totalTimeoutMs / 1000)} s bound`, DPS_FIX.timeout);
    await this.sleep(ms);
  }

  private async request(method: JsonRequest['method'], rest: string, body: unknown, unauthenticated: boolean): Promise<JsonResponse> {
    const att = this.o.attestation;
    const headers: Record<string, string> = {};
    if (!unauthenticated && att.kind !== 'x509') headers.authorization = await dpsSasToken(att.sign, this.o.idScope, this.o.registrationId, this.now());
    // An X.509 device's context carries its certificate, key and server trust (made with the same `ca`).
    const tls = att.kind === 'x509' ? { secureContext: att.secureContext } : this.o.ca ? { ca: this.o.ca } : undefined;
    const timeoutMs = Math.max(1, Math.min(this.o.requestTimeoutMs, this.deadline - this.now()));
    return requestJson({ method, url: this.url(rest), headers, body, timeoutMs, tls });
  }

  /** A request with retries of transient failures; refusals become DpsError. */
  async send(method: JsonRequest['method'], rest: string, body?: unknown, opts: { unauthenticated?: boolean } = {}): Promise<JsonResponse> {
    for (let attempt = 0; ; attempt++) {
      let r: JsonResponse | undefined;
      let failure: DpsError;
      try {
        r = await this.request(method, rest, body, opts.unauthenticated ?? false);
      } catch (err) {
        if (!(err instanceof CloudHttpError)) throw err;
        failure = new DpsError(err.kind === 'timeout' ? 'timeout' : 'network', `DPS ${err.message}`, err.kind === 'tls' ? 'trust the DPS server certificate: add its CA to the system store or to NODE_EXTRA_CA_CERTS' : DPS_FIX.network, { cause: err });
      }
      if (r) {
        if (r.status < 300 || (opts.unauthenticated && r.status === 401)) return r;
        failure = refusal(r, this.o.registrationId);
        if (failure.kind !== 'throttled' && failure.kind !== 'unavailable') throw failure;
      }
      if (attempt >= this.o.retries) throw failure!;
      const backoff = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
      await this.wait((r && retryAfterMs(r.headers)) ?? backoff, 'retry');
    }
  }
}

/** A non-2xx DPS answer as a DpsError (never echoing anything but the DPS error code and message). */
function refusal(r: JsonResponse, regId: string): DpsError {
  const b = (r.body ?? {}) as { errorCode?: unknown; message?: unknown };
  const code = typeof b.errorCode === 'number' ? b.errorCode : undefined;
  const detail = `${r.status}${code ? ` (${code})` : ''}`;
  if (r.status === 401 || r.status === 403) return new DpsError('unauthorized', `DPS refused the credentials of ${regId}: ${detail}`, DPS_FIX.unauthorized, { errorCode: code });
  if (r.status === 404) return new DpsError('not-found', `DPS answered 404 for ${regId}`, DPS_FIX['not-found'], { errorCode: code });
  if (r.status === 429) return new DpsError('throttled', `DPS throttled ${regId}: ${detail}`, DPS_FIX.throttled, { errorCode: code });
  if (r.status >= 500) return new DpsError('unavailable', `DPS answered ${detail}`, DPS_FIX.unavailable, { errorCode: code });
  return new DpsError('protocol', `DPS answered ${detail}`, DPS_FIX.protocol, { errorCode: code });
}
