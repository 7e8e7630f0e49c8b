/**
 * Workload identity: what a module may ask about its own identity, whichever way it asks — the IoT
 * Edge-compatible HTTP workload API (host/api/workload) or the `edgeward:workload/identity` capability
 * (host/capabilities/workload-identity). One set of limits and validators, the ciphertext format and its
 * AAD, and certificate issuance (a fresh RSA key handed over on HTTP, a key kept in the module's namespace
 * on WIT). Callers decide which module is calling (socket or instance binding); nothing here takes that
 * from a request.
 */
import { generateKeyPair } from 'node:crypto';
import { promisify } from 'node:util';
import type { IdentityService } from './identity.js';
import { MAX_SAS_TTL_SECONDS } from './identity.js';
import type { CertService, IssuedCertificate } from '../../hsm/certs/service.js';
import { DEFAULT_RENEW_POLICY, renewalDue } from '../../hsm/certs/renewal.js';
import { ipVersion } from '../../hsm/support/ip.js';
import { DAEMON_CALLER, KeyError, type Caller, type KeyService } from '../../hsm/keys/index.js';
import { invalidArgument, limitExceeded } from './workload-errors.js';

export { WorkloadIdentityError, type WorkloadIdentityErrorTag } from './workload-errors.js';

/** Largest data one sign (or encrypt) handles: a SAS string is a few hundred bytes. */
export const MAX_WORKLOAD_DATA_BYTES = 16 * 1024;
export const MAX_AUDIENCE_LENGTH = 512;
/** Longest common name (RFC 5280 ub-common-name). */
export const MAX_COMMON_NAME_LENGTH = 64;
export const MAX_SANS = 16;
export const MAX_SAN_LENGTH = 253;
/** Server certificates one module may hold in its cache (distinct name sets). */
export const MAX_SERVER_CERTS = 8;
/** The daemon-namespace key behind encrypt/decrypt (IoT Edge: `iotedge_master_encryption_id`). */
export const WORKLOAD_ENCRYPTION_KEY_ID = 'workload-encryption';
/** Ciphertext format version: 0x03 || iv(12) || ct || tag(16). IoT Edge's v2 is 0x02 || ct || tag. */
const CIPHERTEXT_V3 = 0x03;
const HOSTNAME_RE = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

const generateKeyPairAsync = promisify(generateKeyPair);

export interface WorkloadIdentityDeps {
  identity: IdentityService;
  certs: CertService;
  keys: KeyService;
  now?: () => Date;
}

/** A certificate whose private key stays in the module's namespace of the key service. */
export interface HeldCertificate {
  chainPem: string;
  keyHandle: string;
  notAfter: Date;
}

/** Certificates issued with a key in the module's namespace, by cache key; at most MAX_SERVER_CERTS + 1. */
export type CertCache = Map<string, { cert: HeldCertificate; renewAt: number }>;

/** One create-or-load of the encryption key per key service, shared by every caller. */
const encryptionKeys = new WeakMap<KeyService, Promise<string>>();

export class WorkloadIdentity {
  private readonly now: () => Date;

  constructor(private readonly deps: WorkloadIdentityDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  /** HMAC-SHA256 of `data` with the module's SAS key. */
  sign(module: string, data: unknown): Promise<Buffer> {
    try {
      return this.deps.identity.signForModule(module, checkData(data));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** An IoT Hub SAS token for `audience`, valid `ttlSeconds`. */
  async sasToken(module: string, audience: unknown, ttlSeconds: unknown): Promise<string> {
    if (typeof audience !== 'string' || audience.length === 0) throw invalidArgument('audience must be a non-empty string');
    if (audience.length > MAX_AUDIENCE_LENGTH) throw limitExceeded(`audience over ${MAX_AUDIENCE_LENGTH} characters`);
    if (!Number.isInteger(ttlSeconds) || (ttlSeconds as number) < 1 || (ttlSeconds as number) > MAX_SAS_TTL_SECONDS) {
      throw invalidArgument(`ttl-seconds must be 1..${MAX_SAS_TTL_SECONDS}`);
    }
    return this.deps.identity.sasToken(module, audience, ttlSeconds as number, this.now().getTime());
  }

  /** AES-256-GCM under the daemon's workload key, bound to the module, its generation and `iv`. */
  async encrypt(module: string, genid: string, plaintext: Uint8Array, iv: Uint8Array): Promise<Buffer> {
    const r = await this.deps.keys.encrypt(DAEMON_CALLER, await this.encryptionKey(), 'aes-256-gcm', plaintext, aad(module, genid, iv));
    return Buffer.concat([Buffer.from([CIPHERTEXT_V3]), r.iv, r.ciphertext]);
  }

  /** The plaintext of what `encrypt` made for the same module, generation and `iv`. */
  async decrypt(module: string, genid: string, ciphertext: Buffer, iv: Uint8Array): Promise<Buffer> {
    if (ciphertext.length < 1 + 12 + 16 || ciphertext[0] !== CIPHERTEXT_V3) throw invalidArgument('not produced by this device');
    const key = await this.encryptionKey();
    try {
      return await this.deps.keys.decrypt(DAEMON_CALLER, key, 'aes-256-gcm', ciphertext.subarray(1, 13), ciphertext.subarray(13), aad(module, genid, iv));
    } catch (err) {
      if (err instanceof KeyError && err.tag === 'decrypt-failed') throw invalidArgument('authentication failed');
      throw err;
    }
  }

  /** The module's identity certificate for a fresh key pair handed to the caller (the HTTP API, as aziot-edged). */
  async identityCertificateWithNewKey(module: string): Promise<{ cert: IssuedCertificate; privateKeyPem: string }> {
    const { publicKey, privateKeyPem } = await freshKeyPair();
    return { cert: await this.deps.certs.issueIdentityCertificate(module, publicKey), privateKeyPem };
  }

  /** A server certificate for `commonName` and a fresh key pair handed to the caller. */
  async serverCertificateWithNewKey(module: string, commonName: unknown): Promise<{ cert: IssuedCertificate; privateKeyPem: string }> {
    const cn = hostName(commonName, 'common-name', MAX_COMMON_NAME_LENGTH);
    const { publicKey, privateKeyPem } = await freshKeyPair();
    return { cert: await this.deps.certs.issueServerCertificate(module, cn, publicKey), privateKeyPem };
  }

  /** The module's identity certificate, its key in the module's namespace; reissued past 80% of its life. */
  identityCertificate(module: string, cache: CertCache): Promise<HeldCertificate> {
    return this.held(module, cache, 'identity', 'workload-identity', (spki) => this.deps.certs.issueIdentityCertificate(module, spki));
  }

  /** A server certificate for `commonName` plus `sans`, its key in the module's namespace. */
  async serverCertificate(module: string, commonName: unknown, sans: unknown, cache: CertCache): Promise<HeldCertificate> {
    const cn = hostName(commonName, 'common-name', MAX_COMMON_NAME_LENGTH);
    if (!Array.isArray(sans)) throw invalidArgument('sans must be list<string>');
    if (sans.length > MAX_SANS) throw limitExceeded(`more than ${MAX_SANS} sans`);
    const names = sans.map((s) => hostName(s, 'san', MAX_SAN_LENGTH));
    const key = JSON.stringify([cn, [...new Set(names)].sort()]);
    return this.held(module, cache, `server:${key}`, 'workload-server', (spki) => this.deps.certs.issueServerCertificate(module, cn, spki, names));
  }

  trustBundle(): string {
    return this.deps.certs.trustBundle();
  }

  manifestTrustBundle(): string {
    return this.deps.certs.manifestTrustBundle();
  }

  private async held(module: string, cache: CertCache, cacheKey: string, keyId: string, issue: (spki: Uint8Array) => Promise<IssuedCertificate>): Promise<HeldCertificate> {
    const hit = cache.get(cacheKey);
    if (hit && this.now().getTime() < hit.renewAt) return hit.cert;
    const caller: Caller = { kind: 'module', module };
    const handle = await this.deps.keys.createKeyPair(caller, { id: keyId }, 'ec-p256');
    const issued = await issue(await this.deps.keys.getPublicKey(caller, handle));
    const cert = { chainPem: issued.chainPem, keyHandle: handle, notAfter: issued.notAfter };
    if (!cache.has(cacheKey) && cache.size >= MAX_SERVER_CERTS) cache.delete(cache.keys().next().value!);
    cache.set(cacheKey, { cert, renewAt: renewalDue(this.now(), issued.notAfter, DEFAULT_RENEW_POLICY).getTime() });
    return cert;
  }

  private encryptionKey(): Promise<string> {
    const keys = this.deps.keys;
    let h = encryptionKeys.get(keys);
    if (!h) {
      h = keys.createSecretKey(DAEMON_CALLER, { id: WORKLOAD_ENCRYPTION_KEY_ID }, 'aes-256-gcm');
      h.catch(() => encryptionKeys.delete(keys));
      encryptionKeys.set(keys, h);
    }
    return h;
  }
}

/** Bytes to sign: at most MAX_WORKLOAD_DATA_BYTES. */
function checkData(data: unknown): Uint8Array {
  if (!(data instanceof Uint8Array)) throw invalidArgument('data must be list<u8>');
  if (data.byteLength > MAX_WORKLOAD_DATA_BYTES) throw limitExceeded(`data over ${MAX_WORKLOAD_DATA_BYTES} bytes`);
  return data;
}

/** A DNS host name (RFC 1123 labels) or an IP address, as a certificate's subject and SANs carry them. */
function hostName(v: unknown, what: string, max: number): string {
  if (typeof v !== 'string' || v.length === 0) throw invalidArgument(`${what} must be a non-empty string`);
  if (v.length > max) throw limitExceeded(`${what} over ${max} characters`);
  if (ipVersion(v) === 0 && !HOSTNAME_RE.test(v)) throw invalidArgument(`${what} "${v.slice(0, 64)}" is not a host name or IP address`);
  return v;
}

/** AAD binds a ciphertext to the module, its generation and the caller's IV (IoT Edge: name + genid). */
function aad(module: string, genid: string, iv: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`${module}${genid}`, 'utf8'), Buffer.from([0]), iv]);
}

/** A fresh RSA-2048 key pair per request, as aziot-edged does (the HTTP API must hand the private key over). */
async function freshKeyPair(): Promise<{ publicKey: Buffer; privateKeyPem: string }> {
  const { publicKey, privateKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048 });
  return { publicKey: publicKey.export({ type: 'spki', format: 'der' }), privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}
