/**
 * The PKCS#11 key store (pkcs11js): keys live on the token as sensitive, non-extractable objects labelled
 * `edgeward/<namespace>/<id>`. Object handles are cached per label; every operation borrows a session from
 * the pool for its whole Init + call. Sign/encrypt/decrypt go through the `OperationExecutor` (inline, or on
 * worker threads with `worker_threads > 0`); key generation uses pkcs11js' *Async calls (libuv's pool),
 * since RSA generation takes long enough to matter.
 *
 * Crash safety (reliability scenario H1): a key pair is generated under a pending label and then relabelled,
 * public half first, private half last. A key counts as present only when both halves carry the final label,
 * so a kill at any instant leaves it fully usable or absent; `reconcile` at open (and `generate` for its own
 * label) destroys pending objects and lone halves — the orphans.
 */
import { randomBytes } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import type * as P from 'pkcs11js';
import type { Pkcs11Config } from '../../host/config/schema.js';
import { StartupError } from '../../host/errors.js';
import type { Logger } from '../../host/log.js';
import { rawEcdsaToDer } from '../keys/ecdsa.js';
import {
  isKeyPairType, KeyError, type EncryptAlgorithm, type KeyStore, type KeyType, type SecretKeyType, type SignAlgorithm, type StoredKey,
} from '../keys/types.js';
import { parsePkcs11Uri } from '../keys/uri.js';
import { acquireLibrary, findTokenSlot, login, readPin, releaseLibrary, toKeyError, type Handle } from './library.js';
import { OperationExecutor, OperationError } from './executor.js';
import { SessionPool, type PoolStats } from './session-pool.js';
import { keyPairTemplates, keyTypeOf, publicKeySpki, secretKeyTemplate, SHA256_DIGEST_INFO } from './templates.js';

// Node's ESM loader sees only `default` of this CommonJS module; the CK* constants hang off it.
const p = pkcs11js;

/** Labels of keys being created; never a complete key. */
export const PENDING_PREFIX = 'edgeward-pending/';
const OWN_PREFIX = 'edgeward/';
const KEY_CLASSES: ReadonlySet<number> = new Set([p.CKO_PRIVATE_KEY, p.CKO_PUBLIC_KEY, p.CKO_SECRET_KEY]);

interface Entry extends StoredKey {
  readonly priv?: Handle;
  readonly pub?: Handle;
  readonly secret?: Handle;
}

interface Found {
  readonly handle: Handle;
  readonly cls: number;
}

export interface Pkcs11KeyStore extends KeyStore {
  readonly kind: 'pkcs11';
  poolStats(): PoolStats;
}

/** Load the library, find the token, log in, open the session pool and reconcile orphans. */
export async function openPkcs11KeyStore(cfg: Pkcs11Config, logger: Logger): Promise<Pkcs11KeyStore> {
  const module = acquireLibrary(cfg.library);
  const opened: Handle[] = [];
  try {
    const token = findTokenSlot(module, cfg);
    const pin = readPin(cfg);
    const flags = p.CKF_SERIAL_SESSION | p.CKF_RW_SESSION;
    for (let i = 0; i < cfg.sessions; i++) opened.push(module.C_OpenSession(token.slot, flags));
    login(module, opened[0]!, pin, token.label);
    const mechanisms = new Set(module.C_GetMechanismList(token.slot));
    // worker_threads = 0: operations run inline on this thread (see [keys.pkcs11] worker_threads).
    const executor = new OperationExecutor(cfg.library, Math.min(cfg.worker_threads ?? 0, cfg.sessions), module);
    const store = new Pkcs11Store(module, cfg.library, new SessionPool(module, opened), executor, mechanisms, token.label, token.serial);
    const reconciled = await store.reconcile();
    logger.info({ library: cfg.library, token: token.label, sessions: cfg.sessions, reconciled }, 'PKCS#11 key store open');
    return store;
  } catch (err) {
    for (const s of opened) {
      try {
        module.C_CloseSession(s);
      } catch {
        // best effort on a failed open
      }
    }
    releaseLibrary(cfg.library);
    if (err instanceof StartupError) throw err;
    throw new StartupError(`PKCS#11 token could not be opened: ${(err as Error).message}`);
  }
}

class Pkcs11Store implements Pkcs11KeyStore {
  readonly kind = 'pkcs11' as const;
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly m: P.PKCS11,
    private readonly library: string,
    private readonly pool: SessionPool,
    private readonly executor: OperationExecutor,
    private readonly mechanisms: ReadonlySet<number>,
    private readonly tokenLabel: string,
    private readonly tokenSerial: string,
  ) {}

  poolStats(): PoolStats {
    return this.pool.stats();
  }

  /**
   * Destroy pending objects, lone halves of pairs under our prefix, and fragments: key objects with neither
   * CKA_LABEL nor CKA_ID whose key-defining attribute is missing too. SoftHSM2 killed inside
   * C_GenerateKeyPair leaves such an object (observed: a public key with no label, ID or EC point); Edgeward
   * always sets label and ID, and a complete key of another application is never touched.
   * Returns what was removed.
   */
  async reconcile(): Promise<string[]> {
    return this.pool.use((s) => {
      const byLabel = new Map<string, Found[]>();
      const fragments: Found[] = [];
      for (const o of this.findObjects(s, [])) {
        const label = this.attrText(s, o.handle, p.CKA_LABEL);
        if (label === '' && (o.cls === -1 || (KEY_CLASSES.has(o.cls) && this.isFragment(s, o)))) fragments.push(o);
        if (!KEY_CLASSES.has(o.cls) || (!label.startsWith(OWN_PREFIX) && !label.startsWith(PENDING_PREFIX))) continue;
        byLabel.set(label, [...(byLabel.get(label) ?? []), o]);
      }
      const removed: string[] = [];
      for (const [label, objs] of byLabel) {
        if (label.startsWith(PENDING_PREFIX) || isLoneHalf(objs)) {
          objs.forEach((o) => this.destroyQuietly(s, o.handle));
          removed.push(label);
        }
      }
      fragments.forEach((o) => this.destroyQuietly(s, o.handle));
      if (fragments.length > 0) removed.push(`${fragments.length} unlabelled fragment(s)`);
      return removed;
    });
  }

  /** Reconcile must not stop the daemon over one object the token refuses to destroy; it is retried next open. */
  private destroyQuietly(s: Handle, obj: Handle): void {
    try {
      this.m.C_DestroyObject(s, obj);
    } catch {
      // left for the next open
    }
  }

  /** No ID, and the attribute that carries the key itself is absent: a half-written object. */
  private isFragment(s: Handle, o: Found): boolean {
    if (this.attrBytes(s, o.handle, p.CKA_ID).length > 0) return false;
    const keyType = this.attrBytes(s, o.handle, p.CKA_KEY_TYPE);
    if (keyType.length === 0) return true;
    const kt = keyType.readUIntLE(0, Math.min(4, keyType.length));
    if (kt === p.CKK_EC) return this.attrBytes(s, o.handle, o.cls === p.CKO_PUBLIC_KEY ? p.CKA_EC_POINT : p.CKA_EC_PARAMS).length === 0;
    if (kt === p.CKK_RSA) return this.attrBytes(s, o.handle, p.CKA_MODULUS).length === 0;
    return false;
  }

  private attrBytes(s: Handle, obj: Handle, type: number): Buffer {
    try {
      const [a] = this.m.C_GetAttributeValue(s, obj, [{ type }]);
      return (a?.value as Buffer | undefined) ?? Buffer.alloc(0);
    } catch {
      return Buffer.alloc(0); // CKR_ATTRIBUTE_TYPE_INVALID: the object has no such attribute
    }
  }

  private attrText(s: Handle, obj: Handle, type: number): string {
    return this.attrBytes(s, obj, type).toString('utf8');
  }

  async describe(label: string): Promise<StoredKey | undefined> {
    const e = await this.lookup(label);
    return e && { label: e.label, type: e.type };
  }

  async generate(label: string, type: KeyType): Promise<StoredKey> {
    if (await this.lookup(label)) throw new KeyError('already-exists', 'key already exists');
    await this.pool.use((s) => {
      for (const o of this.findByLabel(s, label)) this.m.C_DestroyObject(s, o.handle); // an earlier crash's lone half
    });
    const id = randomBytes(16);
    try {
      if (isKeyPairType(type)) {
        const pending = `${PENDING_PREFIX}${label}/${id.toString('hex')}`;
        const t = keyPairTemplates(type, pending, id);
        this.requireMechanism(t.mechanism.mechanism, `${type} key generation`);
        await this.pool.use(async (s) => {
          const kp = await this.m.C_GenerateKeyPairAsync(s, t.mechanism, t.publicKey, t.privateKey);
          this.m.C_SetAttributeValue(s, kp.publicKey, [{ type: p.CKA_LABEL, value: label }]);
          this.m.C_SetAttributeValue(s, kp.privateKey, [{ type: p.CKA_LABEL, value: label }]);
        });
      } else {
        const t = secretKeyTemplate(type as SecretKeyType, label, id);
        this.requireMechanism(t.mechanism.mechanism, `${type} key generation`);
        await this.pool.use((s) => this.m.C_GenerateKeyAsync(s, t.mechanism, t.template));
      }
    } catch (err) {
      throw toKeyError(err, `${type} key generation`);
    }
    return { label, type };
  }

  async importSecret(label: string, type: SecretKeyType, bytes: Buffer): Promise<StoredKey> {
    if (await this.lookup(label)) throw new KeyError('already-exists', 'key already exists');
    const t = secretKeyTemplate(type, label, randomBytes(16), bytes);
    try {
      await this.pool.use((s) => this.m.C_CreateObject(s, t.template));
    } catch (err) {
      throw toKeyError(err, `${type} key import`);
    }
    return { label, type };
  }

  async resolveUri(uri: string): Promise<StoredKey> {
    const cached = this.entries.get(uri);
    if (cached) return cached;
    const u = parsePkcs11Uri(uri);
    if ((u.token !== undefined && u.token !== this.tokenLabel) || (u.serial !== undefined && u.serial !== this.tokenSerial)) {
      throw new KeyError('not-found', 'the URI names a token other than the configured one');
    }
    if (u.object === undefined && u.id === undefined) throw new KeyError('invalid-argument', 'the URI names no object (object= or id=)');
    const template: P.Template = [
      ...(u.object !== undefined ? [{ type: p.CKA_LABEL, value: u.object }] : []),
      ...(u.id !== undefined ? [{ type: p.CKA_ID, value: u.id }] : []),
    ];
    const entry = await this.pool.use((s) => this.entryOf(s, uri, this.find(s, template)));
    if (!entry) throw new KeyError('not-found', 'no usable key at that URI');
    this.entries.set(uri, entry);
    return entry;
  }

  async publicKeyDer(label: string): Promise<Buffer> {
    const e = await this.require(label);
    if (!e.pub) throw new KeyError('unsupported', 'not a key pair');
    return this.pool.use((s) => publicKeySpki(this.m, s, e.pub!, e.type));
  }

  async sign(key: StoredKey, algorithm: SignAlgorithm, message: Buffer, digest?: Buffer): Promise<Buffer> {
    const e = this.entries.get(key.label) ?? (await this.require(key.label));
    const { mechanism, input, out } = signSpec(algorithm, message, digest);
    this.requireMechanism(mechanism.mechanism, algorithm);
    const handle = algorithm === 'hmac-sha256' ? e.secret : e.priv;
    if (!handle) throw new KeyError('invalid-argument', `a ${e.type} key cannot ${algorithm}`);
    try {
      const sig = await this.pool.use((s, lane) => this.executor.run(lane, 'sign', s, mechanism, handle, input, out));
      return algorithm === 'ecdsa-sha256' || algorithm === 'ecdsa-sha384' ? rawEcdsaToDer(sig) : sig;
    } catch (err) {
      throw toKeyError(err, algorithm);
    }
  }

  async encryptAesGcm(key: StoredKey, iv: Buffer, aad: Buffer, plaintext: Buffer): Promise<Buffer> {
    const e = await this.require(key.label);
    this.requireMechanism(p.CKM_AES_GCM, 'AES-GCM');
    const mech = gcm(iv, aad);
    try {
      return await this.pool.use((s, lane) => this.executor.run(lane, 'encrypt', s, mech, e.secret!, plaintext, plaintext.length + 16));
    } catch (err) {
      throw toKeyError(err, 'AES-GCM encryption');
    }
  }

  async decrypt(key: StoredKey, algorithm: EncryptAlgorithm, iv: Buffer, aad: Buffer, ciphertext: Buffer): Promise<Buffer> {
    const e = await this.require(key.label);
    const aes = algorithm === 'aes-256-gcm';
    const mech: P.Mechanism = aes ? gcm(iv, aad) : oaep(algorithm);
    this.requireMechanism(mech.mechanism, algorithm);
    const handle = aes ? e.secret : e.priv;
    if (!handle) throw new KeyError('invalid-argument', `a ${e.type} key cannot ${algorithm}`);
    try {
      return await this.pool.use((s, lane) => this.executor.run(lane, 'decrypt', s, mech, handle, ciphertext, ciphertext.length + 16));
    } catch (err) {
      const k = toKeyError(err, algorithm);
      if (k.tag !== 'internal') throw k;
      // Refused parameters at Init mean the token lacks this variant (SoftHSM2 2.6: OAEP with SHA-1 only);
      // a failure of the call itself is a bad tag or padding — the caller's data: one coarse answer.
      if (err instanceof OperationError && err.stage === 'init') throw new KeyError('unsupported', `the token does not support ${algorithm}`, { cause: err });
      throw new KeyError('decrypt-failed', 'decryption failed', { cause: err });
    }
  }

  async randomBytes(n: number): Promise<Buffer> {
    if (n === 0) return Buffer.alloc(0);
    try {
      return await this.pool.use((s) => this.m.C_GenerateRandom(s, Buffer.alloc(n)));
    } catch (err) {
      throw toKeyError(err, 'random generation');
    }
  }

  async delete(label: string): Promise<boolean> {
    this.entries.delete(label);
    return this.pool.use((s) => {
      const objs = this.findByLabel(s, label);
      // Private half first: a crash in between leaves a lone public half, which reconcile removes.
      objs.sort((a, b) => Number(b.cls === p.CKO_PRIVATE_KEY) - Number(a.cls === p.CKO_PRIVATE_KEY));
      for (const o of objs) this.m.C_DestroyObject(s, o.handle);
      return objs.length > 0;
    });
  }

  async list(prefix: string): Promise<StoredKey[]> {
    return this.pool.use((s) => {
      const labels = new Set<string>();
      for (const o of this.findAll(s, [])) {
        const label = this.attrText(s, o.handle, p.CKA_LABEL);
        if (label.startsWith(prefix)) labels.add(label);
      }
      const out: StoredKey[] = [];
      for (const label of labels) {
        const e = this.entryOf(s, label, this.findByLabel(s, label));
        if (e) out.push({ label, type: e.type });
      }
      return out;
    });
  }

  async close(): Promise<void> {
    this.entries.clear();
    await this.executor.close();
    this.pool.close();
    releaseLibrary(this.library);
  }

  private async lookup(label: string): Promise<Entry | undefined> {
    const cached = this.entries.get(label);
    if (cached) return cached;
    const e = await this.pool.use((s) => this.entryOf(s, label, this.findByLabel(s, label)));
    if (e) this.entries.set(label, e);
    return e;
  }

  private async require(label: string): Promise<Entry> {
    const e = await this.lookup(label);
    if (!e) throw new KeyError('not-found', 'key not found');
    return e;
  }

  /** A complete key from the objects under one name: a private+public pair, or one secret key. */
  private entryOf(s: Handle, label: string, objs: Found[]): Entry | undefined {
    const secret = objs.find((o) => o.cls === p.CKO_SECRET_KEY)?.handle;
    if (secret) {
      const type = keyTypeOf(this.m, s, secret);
      return type && { label, type, secret };
    }
    const priv = objs.find((o) => o.cls === p.CKO_PRIVATE_KEY)?.handle;
    const pub = objs.find((o) => o.cls === p.CKO_PUBLIC_KEY)?.handle;
    if (!priv || !pub) return undefined;
    const type = keyTypeOf(this.m, s, priv, pub);
    return type && { label, type, priv, pub };
  }

  private findByLabel(s: Handle, label: string): Found[] {
    return this.find(s, [{ type: p.CKA_LABEL, value: label }]);
  }

  private findAll(s: Handle, template: P.Template): Found[] {
    return this.find(s, template);
  }

  private find(s: Handle, template: P.Template): Found[] {
    return this.findObjects(s, template).filter((o) => KEY_CLASSES.has(o.cls));
  }

  /** Every matching object with its class; a class that cannot be read (a half-written object) is -1. */
  private findObjects(s: Handle, template: P.Template): Found[] {
    this.m.C_FindObjectsInit(s, template);
    const handles: Handle[] = [];
    try {
      for (let batch = this.m.C_FindObjects(s, 64); batch.length > 0; batch = this.m.C_FindObjects(s, 64)) handles.push(...batch);
    } finally {
      this.m.C_FindObjectsFinal(s);
    }
    return handles.map((handle) => {
      const c = this.attrBytes(s, handle, p.CKA_CLASS);
      return { handle, cls: c.length > 0 ? c.readUIntLE(0, Math.min(4, c.length)) : -1 };
    });
  }

  private requireMechanism(mechanism: number, what: string): void {
    if (!this.mechanisms.has(mechanism)) throw new KeyError('unsupported', `the token does not support ${what} (mechanism 0x${mechanism.toString(16)})`);
  }
}

/** A pair half without its other half (a crash between the two relabels, or between two destroys). */
function isLoneHalf(objs: Found[]): boolean {
  if (objs.some((o) => o.cls === p.CKO_SECRET_KEY)) return false;
  const priv = objs.some((o) => o.cls === p.CKO_PRIVATE_KEY);
  const pub = objs.some((o) => o.cls === p.CKO_PUBLIC_KEY);
  return priv !== pub;
}

function signSpec(algorithm: SignAlgorithm, message: Buffer, digest?: Buffer): { mechanism: P.Mechanism; input: Buffer; out: number } {
  const d = (): Buffer => {
    if (!digest) throw new KeyError('internal', 'internal error');
    return digest;
  };
  switch (algorithm) {
    case 'ecdsa-sha256':
    case 'ecdsa-sha384':
      return { mechanism: { mechanism: p.CKM_ECDSA }, input: d(), out: 132 };
    case 'rsa-pkcs1-sha256':
      return { mechanism: { mechanism: p.CKM_RSA_PKCS }, input: Buffer.concat([SHA256_DIGEST_INFO, d()]), out: 512 };
    case 'rsa-pss-sha256':
      return {
        mechanism: { mechanism: p.CKM_RSA_PKCS_PSS, parameter: { type: p.CK_PARAMS_RSA_PSS, hashAlg: p.CKM_SHA256, mgf: p.CKG_MGF1_SHA256, saltLen: 32 } as P.RsaPSS },
        input: d(),
        out: 512,
      };
    case 'hmac-sha256':
      return { mechanism: { mechanism: p.CKM_SHA256_HMAC }, input: message, out: 32 };
    default: {
      const never: never = algorithm;
      throw new KeyError('unsupported', `unknown algorithm ${String(never)}`);
    }
  }
}

function gcm(iv: Buffer, aad: Buffer): P.Mechanism {
  return { mechanism: p.CKM_AES_GCM, parameter: { type: p.CK_PARAMS_AES_GCM, iv, ivBits: iv.length * 8, aad, tagBits: 128 } as P.GcmParams };
}

function oaep(algorithm: 'rsa-oaep-sha256' | 'rsa-oaep-sha1'): P.Mechanism {
  const sha1 = algorithm === 'rsa-oaep-sha1';
  // CKZ_DATA_SPECIFIED = 1 (PKCS#11 v2.40 §2.1.8) with an empty label.
  const parameter = { type: p.CK_PARAMS_RSA_OAEP, hashAlg: sha1 ? p.CKM_SHA_1 : p.CKM_SHA256, mgf: sha1 ? p.CKG_MGF1_SHA1 : p.CKG_MGF1_SHA256, source: 1 };
  return { mechanism: p.CKM_RSA_PKCS_OAEP, parameter: parameter as P.RsaOAEP };
}
