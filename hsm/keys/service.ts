/**
 * The key service over any `KeyStore`: handles, namespaces, the authorizer, limits, and the parts of each
 * operation that need no secret (hashing, verification and RSA-OAEP encryption with the public key).
 * Backends only ever see labels; callers only ever see handles.
 */
import { createHmac, createPublicKey, publicEncrypt, randomBytes, timingSafeEqual, verify as cryptoVerify, constants } from 'node:crypto';
import type { Logger } from '../support/log.js';
import type { Authorizer } from './authz.js';
import type { HandleCodec, HandlePayload } from './handles.js';
import { asBuffer, checkFits, checkNamespace, digestFor, oaepHash, ownNamespace } from './algorithms.js';
import { KeyedMutex } from './mutex.js';
import {
  accessDenied, DAEMON_NAMESPACE, isKeyPairType, KeyError, KEY_ID_PATTERN, MAX_AAD_BYTES, MAX_DERIVATION_DATA_BYTES,
  MAX_ENCRYPT_INPUT_BYTES, MAX_IMPORT_KEY_BYTES, MAX_KEY_ID_LENGTH, MAX_KEY_URI_LENGTH, MAX_KEYS_PER_MODULE, MAX_RANDOM_BYTES, MAX_SIGN_INPUT_BYTES,
  MAX_SIGNATURE_BYTES, type Caller, type EncryptAlgorithm, type KeyBackendKind, type EncryptResult, type KeyInfo,
  type KeyOperation, type KeyPairType, type KeyRef, type KeyService, type KeyStore, type KeyType, type Namespace,
  type SecretKeyType, type SignAlgorithm, type StoredKey,
} from './types.js';
import { codeUnitOrder } from '../support/order.js';

/** Label of a service-created key: readable in `pkcs11-tool --list-objects`. */
export function keyLabel(namespace: Namespace, id: string): string {
  return `edgeward/${namespace}/${id}`;
}

/** A resolved handle: what it names, the stored key, and the derived secret if any. */
interface Resolved {
  readonly payload: HandlePayload;
  readonly key: StoredKey;
  readonly derived?: Buffer;
}

/** Derived secrets remembered (one per module key in use), so a sign with a derived key costs one HMAC. */
export const DERIVED_SECRET_CACHE = 1024;

export interface KeyServiceDeps {
  readonly store: KeyStore;
  readonly handles: HandleCodec;
  readonly authorize: Authorizer;
  readonly logger: Logger;
}

export function createKeyService(deps: KeyServiceDeps): KeyService {
  return new StoreKeyService(deps);
}

class StoreKeyService implements KeyService {
  readonly backend: KeyBackendKind;
  private readonly store: KeyStore;
  private readonly handles: HandleCodec;
  private readonly authorize: Authorizer;
  private readonly log: Logger;
  private readonly creating = new KeyedMutex();
  private readonly known = new Map<string, StoredKey>();
  private readonly publicKeys = new Map<string, Buffer>();
  /** Derived secrets by base label and derivation data; dropped with their base key (deleteKey). */
  private readonly derivedSecrets = new Map<string, Buffer>();
  private closed = false;

  constructor(deps: KeyServiceDeps) {
    this.store = deps.store;
    this.handles = deps.handles;
    this.authorize = deps.authorize;
    this.log = deps.logger;
    this.backend = deps.store.kind;
  }

  async createKeyPair(caller: Caller, ref: KeyRef, type: KeyPairType): Promise<string> {
    return this.createOrLoad(caller, ref, type, (label) => this.store.generate(label, type));
  }

  async createSecretKey(caller: Caller, ref: KeyRef, type: SecretKeyType): Promise<string> {
    return this.createOrLoad(caller, ref, type, (label) => this.store.generate(label, type));
  }

  async importSecretKey(caller: Caller, ref: KeyRef, type: SecretKeyType, bytes: Uint8Array): Promise<string> {
    if (bytes.byteLength === 0 || bytes.byteLength > MAX_IMPORT_KEY_BYTES) throw new KeyError('limit-exceeded', `key bytes must be 1..${MAX_IMPORT_KEY_BYTES}`);
    if (type === 'aes-256-gcm' && bytes.byteLength !== 32) throw new KeyError('invalid-argument', 'an AES-256 key is 32 bytes');
    const { namespace, id } = this.target(caller, ref, 'import');
    const label = keyLabel(namespace, id);
    return this.guard(() =>
      this.creating.run(label, async () => {
        if (await this.describe(label)) throw new KeyError('already-exists', `key "${id}" already exists`);
        await this.checkCapacity(namespace);
        this.remember(await this.store.importSecret(label, type, Buffer.from(bytes)));
        return this.handles.issue({ t: 'key', ns: namespace, id });
      }),
    );
  }

  async loadKey(caller: Caller, ref: KeyRef): Promise<string> {
    const { namespace, id } = this.target(caller, ref, 'load');
    return this.guard(async () => {
      if (!(await this.describe(keyLabel(namespace, id)))) throw new KeyError('not-found', `no key "${id}"`);
      return this.handles.issue({ t: 'key', ns: namespace, id });
    });
  }

  async loadKeyByUri(caller: Caller, uri: string): Promise<string> {
    this.ensureOpen();
    if (typeof uri !== 'string' || uri.length > MAX_KEY_URI_LENGTH) throw new KeyError('invalid-argument', 'bad key URI');
    if (!this.authorize(caller, 'load-uri', { namespace: DAEMON_NAMESPACE })) throw accessDenied();
    return this.guard(async () => {
      this.remember(await this.store.resolveUri(uri));
      return this.handles.issue({ t: 'uri', ns: DAEMON_NAMESPACE, uri });
    });
  }

  async deriveKey(caller: Caller, baseHandle: string, data: Uint8Array): Promise<string> {
    if (data.byteLength > MAX_DERIVATION_DATA_BYTES) throw new KeyError('limit-exceeded', `derivation data over ${MAX_DERIVATION_DATA_BYTES} bytes`);
    const base = await this.resolve(caller, baseHandle, 'use');
    if (base.payload.t !== 'key' || base.key.type !== 'hmac-sha256') {
      throw new KeyError('unsupported', 'keys are derived only from a stored HMAC-SHA256 key (derived keys do not nest)');
    }
    return this.handles.issue({ t: 'derived', ns: base.payload.ns, id: base.payload.id, d: Buffer.from(data).toString('base64') });
  }

  async getPublicKey(caller: Caller, handle: string): Promise<Buffer> {
    const r = await this.resolve(caller, handle, 'use');
    if (r.derived || !isKeyPairType(r.key.type)) throw new KeyError('unsupported', 'not a key pair');
    return this.publicKeyDer(r.key.label);
  }

  async getKeyType(caller: Caller, handle: string): Promise<KeyType> {
    const r = await this.resolve(caller, handle, 'use');
    return r.derived ? 'hmac-sha256' : r.key.type;
  }

  async sign(caller: Caller, handle: string, algorithm: SignAlgorithm, message: Uint8Array): Promise<Buffer> {
    if (message.byteLength > MAX_SIGN_INPUT_BYTES) throw new KeyError('limit-exceeded', `sign input over ${MAX_SIGN_INPUT_BYTES} bytes`);
    // The hot path: a handle seen before, to a key already known, resolves without awaiting anything.
    const r = this.resolveKnown(caller, handle) ?? (await this.resolve(caller, handle, 'use'));
    const keyType = r.derived ? 'hmac-sha256' : r.key.type;
    checkFits(algorithm, keyType);
    if (r.derived) return createHmac('sha256', r.derived).update(message).digest();
    const digest = algorithm === 'hmac-sha256' ? undefined : digestFor(algorithm, message);
    try {
      return await this.store.sign(r.key, algorithm, asBuffer(message), digest);
    } catch (err) {
      throw this.coarsen(err);
    }
  }

  async verify(caller: Caller, handle: string, algorithm: SignAlgorithm, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
    if (signature.byteLength > MAX_SIGNATURE_BYTES) throw new KeyError('limit-exceeded', `signature over ${MAX_SIGNATURE_BYTES} bytes`);
    if (algorithm === 'hmac-sha256') {
      const mac = await this.sign(caller, handle, algorithm, message);
      return mac.length === signature.byteLength && timingSafeEqual(mac, signature);
    }
    if (message.byteLength > MAX_SIGN_INPUT_BYTES) throw new KeyError('limit-exceeded', `verify input over ${MAX_SIGN_INPUT_BYTES} bytes`);
    const r = await this.resolve(caller, handle, 'use');
    checkFits(algorithm, r.derived ? 'hmac-sha256' : r.key.type);
    const key = createPublicKey({ key: await this.publicKeyDer(r.key.label), format: 'der', type: 'spki' });
    const hash = algorithm === 'ecdsa-sha384' ? 'sha384' : 'sha256';
    const padding = algorithm === 'rsa-pss-sha256' ? { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } : {};
    return cryptoVerify(hash, message, { key, ...padding }, signature);
  }

  async encrypt(caller: Caller, handle: string, algorithm: EncryptAlgorithm, plaintext: Uint8Array, aad?: Uint8Array): Promise<EncryptResult> {
    if (plaintext.byteLength > MAX_ENCRYPT_INPUT_BYTES) throw new KeyError('limit-exceeded', `plaintext over ${MAX_ENCRYPT_INPUT_BYTES} bytes`);
    if (aad && aad.byteLength > MAX_AAD_BYTES) throw new KeyError('limit-exceeded', `aad over ${MAX_AAD_BYTES} bytes`);
    const r = await this.resolve(caller, handle, 'use');
    checkFits(algorithm, r.derived ? 'hmac-sha256' : r.key.type);
    if (algorithm === 'rsa-oaep-sha256' || algorithm === 'rsa-oaep-sha1') {
      if (aad && aad.byteLength > 0) throw new KeyError('invalid-argument', 'RSA-OAEP takes no aad');
      const key = createPublicKey({ key: await this.publicKeyDer(r.key.label), format: 'der', type: 'spki' });
      const ciphertext = this.guardSync(() => publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: oaepHash(algorithm) }, plaintext));
      return { algorithm, iv: Buffer.alloc(0), ciphertext };
    }
    // 96-bit random IVs (NIST SP 800-38D §8.2.2): the service picks them so callers cannot reuse one.
    const iv = randomBytes(12);
    const ciphertext = await this.guard(() => this.store.encryptAesGcm(r.key, iv, Buffer.from(aad ?? []), Buffer.from(plaintext)));
    return { algorithm, iv, ciphertext };
  }

  async decrypt(caller: Caller, handle: string, algorithm: EncryptAlgorithm, iv: Uint8Array, ciphertext: Uint8Array, aad?: Uint8Array): Promise<Buffer> {
    if (ciphertext.byteLength > MAX_ENCRYPT_INPUT_BYTES + 16) throw new KeyError('limit-exceeded', `ciphertext over ${MAX_ENCRYPT_INPUT_BYTES} bytes`);
    if (aad && aad.byteLength > MAX_AAD_BYTES) throw new KeyError('limit-exceeded', `aad over ${MAX_AAD_BYTES} bytes`);
    if (algorithm === 'aes-256-gcm' && (iv.byteLength !== 12 || ciphertext.byteLength < 16)) throw new KeyError('invalid-argument', 'AES-GCM needs a 12-byte iv and a 16-byte tag');
    const r = await this.resolve(caller, handle, 'use');
    checkFits(algorithm, r.derived ? 'hmac-sha256' : r.key.type);
    return this.guard(() => this.store.decrypt(r.key, algorithm, Buffer.from(iv), Buffer.from(aad ?? []), Buffer.from(ciphertext)));
  }

  async randomBytes(_caller: Caller, n: number): Promise<Buffer> {
    this.ensureOpen();
    if (!Number.isInteger(n) || n < 0 || n > MAX_RANDOM_BYTES) throw new KeyError('limit-exceeded', `random bytes must be 0..${MAX_RANDOM_BYTES}`);
    return this.guard(() => this.store.randomBytes(n));
  }

  async deleteKey(caller: Caller, handle: string): Promise<void> {
    this.ensureOpen();
    const p = this.handles.verify(handle);
    if (p.t !== 'key') throw new KeyError('unsupported', 'only stored keys can be deleted');
    if (!this.authorize(caller, 'delete', { namespace: p.ns, id: p.id })) throw accessDenied();
    const label = keyLabel(p.ns, p.id);
    await this.guard(() =>
      this.creating.run(label, async () => {
        this.known.delete(label);
        this.publicKeys.delete(label);
        for (const k of this.derivedSecrets.keys()) if (k.startsWith(`${label}\n`)) this.derivedSecrets.delete(k);
        await this.store.delete(label);
      }),
    );
  }

  async listKeys(caller: Caller, namespace?: Namespace): Promise<KeyInfo[]> {
    this.ensureOpen();
    const ns = namespace ?? ownNamespace(caller);
    checkNamespace(ns);
    if (!this.authorize(caller, 'list', { namespace: ns })) throw accessDenied();
    const prefix = keyLabel(ns, '');
    const keys = await this.guard(() => this.store.list(prefix));
    return keys.map((k) => ({ namespace: ns, id: k.label.slice(prefix.length), type: k.type })).sort((a, b) => codeUnitOrder(a.id, b.id));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.derivedSecrets.clear();
    await this.store.close();
  }

  /** Create-or-load, serialised per label so concurrent callers create one key. */
  private async createOrLoad(caller: Caller, ref: KeyRef, type: KeyType, create: (label: string) => Promise<StoredKey>): Promise<string> {
    const { namespace, id } = this.target(caller, ref, 'create');
    const label = keyLabel(namespace, id);
    return this.guard(() =>
      this.creating.run(label, async () => {
        const existing = await this.describe(label);
        if (existing && existing.type !== type) throw new KeyError('already-exists', `key "${id}" exists with type ${existing.type}`);
        if (!existing) {
          await this.checkCapacity(namespace);
          this.remember(await create(label));
          this.log.info({ namespace, keyId: id, type, backend: this.backend }, 'key created');
        }
        return this.handles.issue({ t: 'key', ns: namespace, id });
      }),
    );
  }

  private async checkCapacity(namespace: Namespace): Promise<void> {
    if (namespace === DAEMON_NAMESPACE) return;
    const n = (await this.store.list(keyLabel(namespace, ''))).length;
    if (n >= MAX_KEYS_PER_MODULE) throw new KeyError('limit-exceeded', `a module holds at most ${MAX_KEYS_PER_MODULE} keys`);
  }

  /** Validate a key reference and authorize the operation on it; denial happens before any lookup. */
  private target(caller: Caller, ref: KeyRef, op: KeyOperation): { namespace: Namespace; id: string } {
    this.ensureOpen();
    const id = ref?.id;
    if (typeof id !== 'string' || id.length > MAX_KEY_ID_LENGTH || !KEY_ID_PATTERN.test(id)) {
      throw new KeyError('invalid-argument', `a key id is 1..${MAX_KEY_ID_LENGTH} of [A-Za-z0-9._-], starting with a letter or digit`);
    }
    const namespace = ref.namespace ?? ownNamespace(caller);
    checkNamespace(namespace);
    if (!this.authorize(caller, op, { namespace, id })) throw accessDenied();
    return { namespace, id };
  }

  /** `resolve` for a stored key (or a key derived from one) already in the caches, synchronously; undefined when it must look. */
  private resolveKnown(caller: Caller, handle: string): Resolved | undefined {
    this.ensureOpen();
    const payload = this.handles.verify(handle);
    if (payload.t === 'uri') return undefined;
    if (!this.authorize(caller, 'use', { namespace: payload.ns, id: payload.id })) throw accessDenied();
    const label = keyLabel(payload.ns, payload.id);
    const key = this.known.get(label);
    if (!key || payload.t === 'key') return key && { payload, key };
    const derived = this.derivedSecrets.get(`${label}\n${payload.d}`);
    return derived && { payload, key, derived };
  }

  /** Remember a derived secret, unless its base key was deleted or replaced while it was being derived. */
  private rememberDerived(key: StoredKey, d: string, derived: Buffer): void {
    if (this.known.get(key.label) !== key) return;
    if (this.derivedSecrets.size >= DERIVED_SECRET_CACHE) this.derivedSecrets.delete(this.derivedSecrets.keys().next().value as string);
    this.derivedSecrets.set(`${key.label}\n${d}`, derived);
  }

  /** Verify the handle, authorize, and find the key. */
  private async resolve(caller: Caller, handle: string, op: KeyOperation): Promise<Resolved> {
    this.ensureOpen();
    const payload = this.handles.verify(handle);
    const id = payload.t === 'uri' ? undefined : payload.id;
    if (payload.t === 'uri' ? !this.authorize(caller, 'load-uri', { namespace: payload.ns }) : !this.authorize(caller, op, { namespace: payload.ns, id })) {
      throw accessDenied();
    }
    if (payload.t === 'uri') {
      const key = this.known.get(`uri:${payload.uri}`) ?? (await this.guard(() => this.store.resolveUri(payload.uri)));
      this.known.set(`uri:${payload.uri}`, key);
      return { payload, key };
    }
    const label = keyLabel(payload.ns, payload.id);
    const key = this.known.get(label) ?? (await this.guard(() => this.describe(label)));
    if (!key) throw new KeyError('not-found', 'the key of this handle no longer exists');
    if (payload.t === 'derived') {
      const data = Buffer.from(payload.d, 'base64');
      const derived = await this.guard(() => (this.store.deriveSecret ? this.store.deriveSecret(key, data) : this.store.sign(key, 'hmac-sha256', data)));
      this.rememberDerived(key, payload.d, derived);
      return { payload, key, derived };
    }
    return { payload, key };
  }

  private async describe(label: string): Promise<StoredKey | undefined> {
    const cached = this.known.get(label);
    if (cached) return cached;
    const found = await this.store.describe(label);
    if (found) this.known.set(label, found);
    return found;
  }

  private remember(key: StoredKey): void {
    this.known.set(key.label, key);
  }

  private async publicKeyDer(label: string): Promise<Buffer> {
    const cached = this.publicKeys.get(label);
    if (cached) return cached;
    const der = await this.guard(() => this.store.publicKeyDer(label));
    this.publicKeys.set(label, der);
    return der;
  }

  private ensureOpen(): void {
    if (this.closed) throw new KeyError('backend-unavailable', 'the key service is closed');
  }

  /** Pass KeyErrors through; log anything else and answer a coarse `internal`. */
  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.coarsen(err);
    }
  }

  private guardSync<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw this.coarsen(err);
    }
  }

  private coarsen(err: unknown): KeyError {
    if (err instanceof KeyError) {
      // Faults of the backend (not of the caller's request) go to the log with their cause.
      if (err.tag === 'internal' || err.tag === 'backend-unavailable') this.log.error({ err, cause: err.cause, backend: this.backend }, 'key backend error');
      return err;
    }
    this.log.error({ err, backend: this.backend }, 'key backend error');
    return new KeyError('internal', 'internal error', { cause: err });
  }
}
