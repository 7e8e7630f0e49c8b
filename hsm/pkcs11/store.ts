/**
 * The PKCS#11 key store (pkcs11js): keys live on the token as sensitive, non-extractable objects labelled
 * `edgeward/<namespace>/<id>`. Object handles are cached per label; every operation borrows a session from
 * the pool for its whole Init + call. Sign/encrypt/decrypt go through the `OperationExecutor` (inline, or on
 * worker threads with `worker_threads > 0`); key generation uses pkcs11js' *Async calls (libuv's pool),
 * since RSA generation takes long enough to matter.
 *
 * Crash safety (reliability scenario H1): every generated key is made under a pending label and then
 * relabelled — a pair public half first, private half last. A key counts as present only when all its
 * objects carry the final label, so a kill at any instant leaves it fully usable or absent; `reconcile` at
 * open (and `generate` for its own label) destroys pending objects and lone halves — the orphans. (An
 * import is one C_CreateObject, one SoftHSM2 transaction: its final label from the start.)
 */
import { randomBytes } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import type * as P from 'pkcs11js';
import type { Pkcs11Options } from '../support/options.js';
import { StartupError } from '../support/errors.js';
import type { Logger } from '../support/log.js';
import { rawEcdsaToDer } from '../keys/ecdsa.js';
import {
  isKeyPairType, KeyError, type EncryptAlgorithm, type KeyStore, type KeyType, type SecretKeyType, type SignAlgorithm, type StoredKey,
} from '../keys/types.js';
import { parsePkcs11Uri } from '../keys/uri.js';
import { acquireLibrary, findTokenSlot, login, readPin, releaseLibrary, toKeyError, type Handle } from './library.js';
import { OperationExecutor, OperationError } from './executor.js';
import { SessionPool, type PoolStats } from './session-pool.js';
import { gcm, oaep, signSpec } from './mechanisms.js';
import { attrText, entryOf, findByLabel, findKeyObjects, nameGenerated, PENDING_PREFIX, reconcileObjects, type Entry } from './objects.js';
import { keyPairTemplates, publicKeySpki, secretKeyTemplate } from './templates.js';

// Node's ESM loader sees only `default` of this CommonJS module; the CK* constants hang off it.
const p = pkcs11js;

export { PENDING_PREFIX } from './objects.js';

export interface Pkcs11KeyStore extends KeyStore {
  readonly kind: 'pkcs11';
  poolStats(): PoolStats;
}

/** Load the library, find the token, log in, open the session pool and reconcile orphans. */
export async function openPkcs11KeyStore(cfg: Pkcs11Options, logger: Logger): Promise<Pkcs11KeyStore> {
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
  private catalog: Promise<unknown> = Promise.resolve();

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
   * Run an operation on the token's set of objects — a search, a creation, a destruction — after the ones
   * before it. Key generation runs on a libuv thread (the *Async calls), and SoftHSM2 2.6 fails a
   * C_GenerateKeyPair that overlaps a C_FindObjects on another session (CKR_GENERAL_ERROR or
   * CKR_TEMPLATE_INCONSISTENT, about one in ten under reliability H3); signing with known handles overlaps
   * freely.
   */
  private inCatalog<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.catalog.then(fn, fn);
    this.catalog = run.catch(() => undefined);
    return run;
  }

  /** Remove what a crash left behind (see `reconcileObjects`). Returns what was removed. */
  async reconcile(): Promise<string[]> {
    return this.inCatalog(() => this.pool.use((s) => reconcileObjects(this.m, s)));
  }

  async describe(label: string): Promise<StoredKey | undefined> {
    const e = await this.lookup(label);
    return e && { label: e.label, type: e.type };
  }

  generate(label: string, type: KeyType): Promise<StoredKey> {
    return this.inCatalog(() => this.generateInCatalog(label, type));
  }

  private async generateInCatalog(label: string, type: KeyType): Promise<StoredKey> {
    if (await this.lookupInCatalog(label)) throw new KeyError('already-exists', 'key already exists');
    await this.pool.use((s) => {
      for (const o of findByLabel(this.m, s, label)) this.m.C_DestroyObject(s, o.handle); // an earlier crash's lone half
    });
    const id = randomBytes(16);
    const pending = `${PENDING_PREFIX}${label}/${id.toString('hex')}`;
    try {
      if (isKeyPairType(type)) {
        const t = keyPairTemplates(type, pending, id);
        this.requireMechanism(t.mechanism.mechanism, `${type} key generation`);
        await this.pool.use(async (s) => {
          const kp = await this.m.C_GenerateKeyPairAsync(s, t.mechanism, t.publicKey, t.privateKey);
          nameGenerated(this.m, s, label, [kp.publicKey, kp.privateKey]);
        });
      } else {
        // Pending too (see nameGenerated): made under its final label, a secret key killed inside SoftHSM2's
        // C_GenerateKey was listed with no value and failed every MAC (CKR_KEY_SIZE_RANGE) — reliability H1.
        const t = secretKeyTemplate(type as SecretKeyType, pending, id);
        this.requireMechanism(t.mechanism.mechanism, `${type} key generation`);
        await this.pool.use(async (s) => nameGenerated(this.m, s, label, [await this.m.C_GenerateKeyAsync(s, t.mechanism, t.template)]));
      }
    } catch (err) {
      throw toKeyError(err, `${type} key generation`);
    }
    return { label, type };
  }

  importSecret(label: string, type: SecretKeyType, bytes: Buffer): Promise<StoredKey> {
    return this.inCatalog(async () => {
      if (await this.lookupInCatalog(label)) throw new KeyError('already-exists', 'key already exists');
      const t = secretKeyTemplate(type, label, randomBytes(16), bytes);
      try {
        await this.pool.use((s) => this.m.C_CreateObject(s, t.template));
      } catch (err) {
        throw toKeyError(err, `${type} key import`);
      }
      return { label, type };
    });
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
    const entry = await this.inCatalog(() => this.pool.use((s) => entryOf(this.m, s, uri, findKeyObjects(this.m, s, template))));
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
    return this.inCatalog(() => this.pool.use((s) => {
      const objs = findByLabel(this.m, s, label);
      // Private half first: a crash in between leaves a lone public half, which reconcile removes.
      objs.sort((a, b) => Number(b.cls === p.CKO_PRIVATE_KEY) - Number(a.cls === p.CKO_PRIVATE_KEY));
      for (const o of objs) this.m.C_DestroyObject(s, o.handle);
      return objs.length > 0;
    }));
  }

  async list(prefix: string): Promise<StoredKey[]> {
    return this.inCatalog(() => this.pool.use((s) => {
      const labels = new Set<string>();
      for (const o of findKeyObjects(this.m, s, [])) {
        const label = attrText(this.m, s, o.handle, p.CKA_LABEL);
        if (label.startsWith(prefix)) labels.add(label);
      }
      const out: StoredKey[] = [];
      for (const label of labels) {
        const e = entryOf(this.m, s, label, findByLabel(this.m, s, label));
        if (e) out.push({ label, type: e.type });
      }
      return out;
    }));
  }

  async close(): Promise<void> {
    this.entries.clear();
    await this.executor.close();
    this.pool.close();
    releaseLibrary(this.library);
  }

  private async lookup(label: string): Promise<Entry | undefined> {
    return this.entries.get(label) ?? this.inCatalog(() => this.lookupInCatalog(label));
  }

  private async lookupInCatalog(label: string): Promise<Entry | undefined> {
    const cached = this.entries.get(label);
    if (cached) return cached;
    const e = await this.pool.use((s) => entryOf(this.m, s, label, findByLabel(this.m, s, label)));
    if (e) this.entries.set(label, e);
    return e;
  }

  private async require(label: string): Promise<Entry> {
    const e = await this.lookup(label);
    if (!e) throw new KeyError('not-found', 'key not found');
    return e;
  }

  private requireMechanism(mechanism: number, what: string): void {
    if (!this.mechanisms.has(mechanism)) throw new KeyError('unsupported', `the token does not support ${what} (mechanism 0x${mechanism.toString(16)})`);
  }
}
