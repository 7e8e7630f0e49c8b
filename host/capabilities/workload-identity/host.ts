/**
 * `edgeward:workload/identity` for one instance: check the instance's measurement against its
 * registration → call the workload identity service (host/identity/workload.ts: validators, limits,
 * issuance) → encode. The functions close over the instance, so the module they serve is the one the
 * runtime bound, never an argument.
 */
import type { InstanceContext } from '../../runtime/capabilities.js';
import { WorkloadIdentity, type CertCache, type HeldCertificate, type WorkloadIdentityDeps } from '../../identity/workload.js';
import type { Certificate } from './generated/interfaces/edgeward-workload-identity.js';
import type { Imports } from './generated/imports.js';
import { IdentityErrorPayload, toIdentityError } from './errors.js';

export {
  MAX_AUDIENCE_LENGTH, MAX_COMMON_NAME_LENGTH, MAX_SAN_LENGTH, MAX_SANS, MAX_SERVER_CERTS, MAX_WORKLOAD_DATA_BYTES as MAX_IDENTITY_SIGN_BYTES,
  type CertCache, type WorkloadIdentityDeps,
} from '../../identity/workload.js';

/** The jco-shaped import object for `edgeward:workload/identity`, generated from the WIT. */
export type WorkloadIdentityImports = Imports;
/** The WIT `certificate` record. */
export type WitCertificate = Certificate;

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

/**
 * `cache` defaults to one for this instance only; the capability passes the module's (ModuleCertCaches).
 * `service` defaults to one over `deps`; the capability shares one across instances.
 */
export function identityFunctions(deps: WorkloadIdentityDeps, instance: InstanceContext, cache: CertCache = new Map(), service = new WorkloadIdentity(deps)): WorkloadIdentityImports {
  const module = instance.module;

  /** Attestation: the identity goes only to an instance whose measurement and signer are its registration's. */
  const call = async <T>(fn: () => T | Promise<T>): Promise<T> => {
    try {
      if (!instance.current()) throw new IdentityErrorPayload({ tag: 'measurement-mismatch' });
      return await fn();
    } catch (err) {
      throw toIdentityError(err);
    }
  };

  return {
    sign: (data) => call(async () => new Uint8Array(await service.sign(module, data))),
    sasToken: (audience, ttlSeconds) => call(() => service.sasToken(module, audience, ttlSeconds)),
    identityCertificate: () => call(async () => witCertificate(await service.identityCertificate(module, cache))),
    serverCertificate: (commonName, sans) => call(async () => witCertificate(await service.serverCertificate(module, commonName, sans, cache))),
    trustBundle: () => call(() => service.trustBundle()),
    manifestTrustBundle: () => call(() => service.manifestTrustBundle()),
  };
}

function witCertificate(cert: HeldCertificate): Certificate {
  return { chain: cert.chainPem, keyHandle: cert.keyHandle, notAfter: BigInt(Math.floor(cert.notAfter.getTime() / 1000)) };
}
