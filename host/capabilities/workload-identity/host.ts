/**
 * `edgeward:workload/identity` for one instance: decode → check the instance's measurement against its
 * registration → call the identity or certificate service → encode. The functions close over the
 * instance, so the module they serve is the one the runtime bound, never an argument.
 */
import { isIP } from 'node:net';
import type { InstanceContext } from '../../runtime/capabilities.js';
import type { IdentityService } from '../../identity/identity.js';
import { MAX_SAS_TTL_SECONDS } from '../../identity/identity.js';
import type { CertService } from '../../../hsm/certs/service.js';
import { renewalDue, DEFAULT_RENEW_POLICY } from '../../../hsm/certs/renewal.js';
import type { Caller, KeyService } from '../../../hsm/keys/index.js';
import { IdentityErrorPayload, toIdentityError } from './errors.js';

/** Limits on what crosses the boundary (STYLE: every list and string has a named cap). */
export const MAX_IDENTITY_SIGN_BYTES = 16 * 1024;
export const MAX_AUDIENCE_LENGTH = 512;
export const MAX_COMMON_NAME_LENGTH = 64;
export const MAX_SANS = 16;
export const MAX_SAN_LENGTH = 253;
/** Server certificates one instance may hold in its cache (distinct name sets). */
export const MAX_SERVER_CERTS = 8;
const HOSTNAME_RE = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export interface WorkloadIdentityDeps {
  identity: IdentityService;
  certs: CertService;
  keys: KeyService;
  now?: () => Date;
}

export interface WitCertificate {
  chain: string;
  keyHandle: string;
  notAfter: bigint;
}

export interface WorkloadIdentityImports {
  sign(data: Uint8Array): Promise<Uint8Array>;
  sasToken(audience: string, ttlSeconds: number): Promise<string>;
  identityCertificate(): Promise<WitCertificate>;
  serverCertificate(commonName: string, sans: string[]): Promise<WitCertificate>;
  trustBundle(): Promise<string>;
  manifestTrustBundle(): Promise<string>;
}

interface Cached {
  cert: WitCertificate;
  renewAt: number;
}

/** Issued certificates by cache key (`identity`, `server:<names>`), at most MAX_SERVER_CERTS + 1. */
export type CertCache = Map<string, Cached>;

/**
 * Certificate caches that outlive one instance: a restarted module gets its certificates back instead of
 * a new issuance on every start (their key is the same key in the module's namespace, `createKeyPair`
 * loads it). A module's cache is dropped when the runtime says it was removed or replaced (`forget`), and
 * is never handed to an instance that is no longer its registration's.
 */
export class ModuleCertCaches {
  private readonly byModule = new Map<string, { generationId: string; digest: string; signer: string; cache: CertCache }>();

  /** The module's cache for `instance`; a throwaway one when the instance is not its registration's. */
  for(instance: Pick<InstanceContext, 'module' | 'generationId' | 'digest' | 'signer' | 'current'>): CertCache {
    if (!instance.current()) return new Map();
    const have = this.byModule.get(instance.module);
    if (have && have.generationId === instance.generationId && have.digest === instance.digest && have.signer === instance.signer) return have.cache;
    const cache: CertCache = new Map();
    this.byModule.set(instance.module, { generationId: instance.generationId, digest: instance.digest, signer: instance.signer, cache });
    return cache;
  }

  forget(module: string): void {
    this.byModule.delete(module);
  }
}

/** `cache` defaults to one for this instance only; the capability passes the module's (ModuleCertCaches). */
export function identityFunctions(deps: WorkloadIdentityDeps, instance: InstanceContext, cache: CertCache = new Map()): WorkloadIdentityImports {
  const now = deps.now ?? (() => new Date());
  const module = instance.module;
  const caller: Caller = { kind: 'module', module };

  /** Attestation: the identity goes only to an instance whose measurement and signer are its registration's. */
  const attest = () => {
    if (!instance.current()) throw new IdentityErrorPayload({ tag: 'measurement-mismatch' });
  };

  const call = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      attest();
      return await fn();
    } catch (err) {
      throw toIdentityError(err);
    }
  };

  /** A certificate for a key that lives in the module's own key namespace; reissued past 80% of its life. */
  const certificate = async (cacheKey: string, keyId: string, issue: (spki: Uint8Array) => Promise<{ chainPem: string; notAfter: Date }>): Promise<WitCertificate> => {
    const hit = cache.get(cacheKey);
    if (hit && now().getTime() < hit.renewAt) return hit.cert;
    const handle = await deps.keys.createKeyPair(caller, { id: keyId }, 'ec-p256');
    const issued = await issue(await deps.keys.getPublicKey(caller, handle));
    const cert = { chain: issued.chainPem, keyHandle: handle, notAfter: BigInt(Math.floor(issued.notAfter.getTime() / 1000)) };
    if (!cache.has(cacheKey) && cache.size >= MAX_SERVER_CERTS) cache.delete(cache.keys().next().value!);
    cache.set(cacheKey, { cert, renewAt: renewalDue(now(), issued.notAfter, DEFAULT_RENEW_POLICY).getTime() });
    return cert;
  };

  return {
    sign: (data) =>
      call(async () => {
        if (!(data instanceof Uint8Array)) throw invalid('data must be list<u8>');
        if (data.byteLength > MAX_IDENTITY_SIGN_BYTES) throw limit(`data over ${MAX_IDENTITY_SIGN_BYTES} bytes`);
        return new Uint8Array(await deps.identity.signForModule(module, data));
      }),
    sasToken: (audience, ttlSeconds) =>
      call(async () => {
        if (typeof audience !== 'string' || audience.length === 0) throw invalid('audience must be a non-empty string');
        if (audience.length > MAX_AUDIENCE_LENGTH) throw limit(`audience over ${MAX_AUDIENCE_LENGTH} characters`);
        if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_SAS_TTL_SECONDS) throw invalid(`ttl-seconds must be 1..${MAX_SAS_TTL_SECONDS}`);
        return deps.identity.sasToken(module, audience, ttlSeconds, now().getTime());
      }),
    identityCertificate: () => call(() => certificate('identity', 'workload-identity', (spki) => deps.certs.issueIdentityCertificate(module, spki))),
    serverCertificate: (commonName, sans) =>
      call(async () => {
        const cn = hostName(commonName, 'common-name', MAX_COMMON_NAME_LENGTH);
        if (!Array.isArray(sans)) throw invalid('sans must be list<string>');
        if (sans.length > MAX_SANS) throw limit(`more than ${MAX_SANS} sans`);
        const names = sans.map((s) => hostName(s, 'san', MAX_SAN_LENGTH));
        const key = JSON.stringify([cn, [...new Set(names)].sort()]);
        return certificate(`server:${key}`, 'workload-server', (spki) => deps.certs.issueServerCertificate(module, cn, spki, names));
      }),
    trustBundle: () => call(async () => deps.certs.trustBundle()),
    manifestTrustBundle: () => call(async () => deps.certs.manifestTrustBundle()),
  };
}

function hostName(v: unknown, what: string, max: number): string {
  if (typeof v !== 'string' || v.length === 0) throw invalid(`${what} must be a non-empty string`);
  if (v.length > max) throw limit(`${what} over ${max} characters`);
  if (!isIP(v) && !HOSTNAME_RE.test(v)) throw invalid(`${what} "${v.slice(0, 64)}" is not a host name or IP address`);
  return v;
}

const invalid = (why: string) => new IdentityErrorPayload({ tag: 'invalid-argument', val: why });
const limit = (why: string) => new IdentityErrorPayload({ tag: 'limit-exceeded', val: why });
