/**
 * The key service's vocabulary: key types, algorithms, callers, the error union, the named limits, and the
 * two interfaces — `KeyStore` (one per backend: label-addressed, no authorization) and `KeyService` (handles,
 * namespaces and the authorizer on top of any store; what the daemon and capabilities use).
 */

/**
 * Every key type the service knows, with its label in the WIT `key-type` enum (wit/hsm/keys.wit: a WIT word
 * cannot start with a digit, so `rsa-2048` is `rsa2048` there). The one list: the type unions, the WIT
 * mapping (host/capabilities/hsm-keys, checked at compile time against the generated enum) and the
 * management API's names all derive from it.
 */
export const KEY_TYPE_WIT_LABELS = {
  'ec-p256': 'ec-p256',
  'ec-p384': 'ec-p384',
  'rsa-2048': 'rsa2048',
  'rsa-3072': 'rsa3072',
  'hmac-sha256': 'hmac-sha256',
  'aes-256-gcm': 'aes256-gcm',
} as const;
export type KeyType = keyof typeof KEY_TYPE_WIT_LABELS;

/** Asymmetric key pairs the service creates. */
export const KEY_PAIR_TYPES = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072'] as const satisfies readonly KeyType[];
export type KeyPairType = (typeof KEY_PAIR_TYPES)[number];
/** Symmetric keys the service creates. */
export const SECRET_KEY_TYPES = ['hmac-sha256', 'aes-256-gcm'] as const satisfies readonly KeyType[];
export type SecretKeyType = (typeof SECRET_KEY_TYPES)[number];
export const KEY_TYPES: readonly KeyType[] = [...KEY_PAIR_TYPES, ...SECRET_KEY_TYPES];
// Pairs and secrets together are every key type, and no type is both.
type Exactly<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const _everyType: Exactly<KeyPairType | SecretKeyType, KeyType> = true;
const _disjoint: Exactly<KeyPairType & SecretKeyType, never> = true;
void _everyType, void _disjoint;

export function isKeyPairType(t: string): t is KeyPairType {
  return (KEY_PAIR_TYPES as readonly string[]).includes(t);
}
export function isSecretKeyType(t: string): t is SecretKeyType {
  return (SECRET_KEY_TYPES as readonly string[]).includes(t);
}

/**
 * Signature algorithms, with the key types each fits. The input is always the message; the service hashes
 * it (SHA-256/384) on the host and hands only the digest to the backend (CKM_ECDSA / CKM_SHA256_RSA_PKCS*),
 * which every PKCS#11 token supports. ECDSA signatures are returned **DER-encoded** (`ECDSA-Sig-Value`,
 * RFC 3279 §2.2.3), the form X.509, TLS and node:crypto's default `dsaEncoding: 'der'` use; backends that
 * produce raw r||s are converted. Labels are the same in the WIT `sign-algorithm` enum.
 */
export const SIGN_ALGORITHM_KEY_TYPES = {
  'ecdsa-sha256': ['ec-p256', 'ec-p384'],
  'ecdsa-sha384': ['ec-p256', 'ec-p384'],
  'rsa-pss-sha256': ['rsa-2048', 'rsa-3072'],
  'rsa-pkcs1-sha256': ['rsa-2048', 'rsa-3072'],
  'hmac-sha256': ['hmac-sha256'],
} as const satisfies Record<string, readonly KeyType[]>;
export type SignAlgorithm = keyof typeof SIGN_ALGORITHM_KEY_TYPES;
export const SIGN_ALGORITHMS = Object.keys(SIGN_ALGORITHM_KEY_TYPES) as readonly SignAlgorithm[];

/**
 * Encryption, with the key types each fits and its WIT `encrypt-algorithm` label: AES-256-GCM (96-bit
 * random IV chosen by the service, 128-bit tag appended) or RSA-OAEP with SHA-256 (hash and MGF1).
 * `rsa-oaep-sha1` exists because many tokens implement only OAEP with SHA-1 (SoftHSM2 2.6 refuses any
 * other hash); SHA-1 collisions do not weaken OAEP (RFC 8017 §7.1, RFC 8017 B.1).
 */
export const ENCRYPT_ALGORITHM_KEY_TYPES = {
  'aes-256-gcm': { keyTypes: ['aes-256-gcm'], wit: 'aes256-gcm' },
  'rsa-oaep-sha256': { keyTypes: ['rsa-2048', 'rsa-3072'], wit: 'rsa-oaep-sha256' },
  'rsa-oaep-sha1': { keyTypes: ['rsa-2048', 'rsa-3072'], wit: 'rsa-oaep-sha1' },
} as const satisfies Record<string, { keyTypes: readonly KeyType[]; wit: string }>;
export type EncryptAlgorithm = keyof typeof ENCRYPT_ALGORITHM_KEY_TYPES;
export const ENCRYPT_ALGORITHMS = Object.keys(ENCRYPT_ALGORITHM_KEY_TYPES) as readonly EncryptAlgorithm[];

/** The daemon's own namespace (device identity, Edge CA, master keys). */
export const DAEMON_NAMESPACE = 'edgeward';
/** `edgeward` or `module.<name>`. */
export type Namespace = string;

export function moduleNamespace(module: string): Namespace {
  return `module.${module}`;
}

/** Who is calling. Identity comes from the socket or instance binding, never from the request. */
export type Caller =
  | { readonly kind: 'daemon' }
  | { readonly kind: 'module'; readonly module: string }
  | { readonly kind: 'user'; readonly uid: number };

export const DAEMON_CALLER: Caller = Object.freeze({ kind: 'daemon' });

/** The closed set of operations the authorizer decides on. */
export type KeyOperation = 'create' | 'load' | 'import' | 'use' | 'delete' | 'list' | 'load-uri';

/** The `[keys] backend` a store implements. */
export type KeyBackendKind = 'file' | 'pkcs11' | 'tpm';

/** A key as a store knows it. */
export interface StoredKey {
  readonly label: string;
  readonly type: KeyType;
}

/** Error tags; mirrors the WIT `key-error` variant in wit/hsm/keys.wit. */
export type KeyErrorTag =
  | 'invalid-handle'
  | 'access-denied'
  | 'not-found'
  | 'already-exists'
  | 'unsupported'
  | 'invalid-argument'
  | 'limit-exceeded'
  | 'decrypt-failed'
  | 'backend-unavailable'
  | 'internal';

/**
 * The one error type the service raises. `message` is safe to show a caller (coarse: it never says whether
 * a key of another namespace exists); details for the log go in `cause`.
 */
export class KeyError extends Error {
  constructor(
    readonly tag: KeyErrorTag,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'KeyError';
  }
}

export const invalidHandle = (): KeyError => new KeyError('invalid-handle', 'invalid handle');
export const accessDenied = (): KeyError => new KeyError('access-denied', 'access denied (the key may or may not exist)');

/** Limits on everything that crosses the service boundary. Exceeding one is `limit-exceeded`. */
export const MAX_KEY_ID_LENGTH = 128;
export const MAX_HANDLE_LENGTH = 2048;
export const MAX_KEY_URI_LENGTH = 1024;
export const MAX_SIGN_INPUT_BYTES = 1024 * 1024;
export const MAX_ENCRYPT_INPUT_BYTES = 1024 * 1024;
export const MAX_AAD_BYTES = 64 * 1024;
export const MAX_DERIVATION_DATA_BYTES = 1024;
export const MAX_RANDOM_BYTES = 64 * 1024;
export const MAX_IMPORT_KEY_BYTES = 64;
export const MAX_SIGNATURE_BYTES = 1024;
/** Keys one module namespace may hold (Spin: every table has a capacity). */
export const MAX_KEYS_PER_MODULE = 256;

/** Key ids: as aziot uses them (`aziot-edged-ca`, `aziot_identityd_master_id`); no `/`, so labels stay unambiguous. */
export const KEY_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** Module names as the runtime registers them. */
export const MODULE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Parameters of an encryption; `iv` is produced by the service for AES-GCM. */
export interface EncryptResult {
  readonly algorithm: EncryptAlgorithm;
  /** 12 bytes for AES-GCM, empty for RSA-OAEP. */
  readonly iv: Buffer;
  /** AES-GCM: ciphertext || 16-byte tag. RSA-OAEP: the ciphertext. */
  readonly ciphertext: Buffer;
}

/**
 * One backend's key storage: addressed by label (`edgeward/<namespace>/<id>`, or a foreign object named by
 * an RFC 7512 / file URI), with no notion of callers. Only `KeyService` calls it.
 */
export interface KeyStore {
  readonly kind: KeyBackendKind;
  /** The complete key under `label`, or undefined (an incomplete or half-created key counts as absent). */
  describe(label: string): Promise<StoredKey | undefined>;
  /** Create a new key; `already-exists` if present. Leaves the key fully usable or fully absent. */
  generate(label: string, type: KeyType): Promise<StoredKey>;
  /** Import secret key bytes (HMAC, AES); the bytes are not extractable afterwards. */
  importSecret(label: string, type: SecretKeyType, bytes: Buffer): Promise<StoredKey>;
  /** Resolve a key named by URI in the config to a label this store can use, or `not-found`. */
  resolveUri(uri: string): Promise<StoredKey>;
  /** SPKI public key of a key pair. */
  publicKeyDer(label: string): Promise<Buffer>;
  /**
   * Sign `message`. For ECDSA and RSA the service also passes the digest it computed (SHA-256/384), so a
   * token need only support the plain mechanisms (CKM_ECDSA, CKM_RSA_PKCS, CKM_RSA_PKCS_PSS); HMAC has none.
   * ECDSA results are DER.
   */
  sign(key: StoredKey, algorithm: SignAlgorithm, message: Buffer, digest?: Buffer): Promise<Buffer>;
  /**
   * HMAC-SHA256(key, data) when the result is a derived key, not a MAC. Optional: a backend that can keep
   * the result secret on its way out (the TPM: response parameter encryption) implements it; the service
   * uses `sign` otherwise.
   */
  deriveSecret?(key: StoredKey, data: Buffer): Promise<Buffer>;
  /** AES-GCM encrypt with the given IV (tag appended). */
  encryptAesGcm(key: StoredKey, iv: Buffer, aad: Buffer, plaintext: Buffer): Promise<Buffer>;
  /** AES-GCM decrypt (input has tag appended) or RSA-OAEP decrypt; `decrypt-failed` on a bad tag or padding. */
  decrypt(key: StoredKey, algorithm: EncryptAlgorithm, iv: Buffer, aad: Buffer, ciphertext: Buffer): Promise<Buffer>;
  randomBytes(n: number): Promise<Buffer>;
  /** True when something was deleted. */
  delete(label: string): Promise<boolean>;
  /** Complete keys whose label starts with `prefix`. */
  list(prefix: string): Promise<StoredKey[]>;
  close(): Promise<void>;
}

/** A key as listed to a caller. */
export interface KeyInfo {
  readonly namespace: Namespace;
  readonly id: string;
  readonly type: KeyType;
}

/** Names a key: an id in the caller's own namespace unless `namespace` is given. */
export interface KeyRef {
  readonly id: string;
  readonly namespace?: Namespace;
}

/**
 * The key service (the role of aziot-keyd). Every method takes the caller, and the service — not the caller —
 * decides what it may touch: a module only its own namespace plus ids a `[[principal]]` grants it; the
 * daemon everything. Handles are opaque, HMAC-authenticated strings; any bad one gets `invalid-handle`.
 */
export interface KeyService {
  readonly backend: KeyBackendKind;
  /** Create the key pair if absent, else load it (an existing key of another type is `already-exists`). */
  createKeyPair(caller: Caller, ref: KeyRef, type: KeyPairType): Promise<string>;
  /** Create the symmetric key if absent, else load it. */
  createSecretKey(caller: Caller, ref: KeyRef, type: SecretKeyType): Promise<string>;
  /** Handle of an existing key; `not-found` (or `access-denied`) otherwise. */
  loadKey(caller: Caller, ref: KeyRef): Promise<string>;
  /** Handle of a key named in the config by `pkcs11:` (RFC 7512) or `file:///` URI. Daemon only. */
  loadKeyByUri(caller: Caller, uri: string): Promise<string>;
  /** Import HMAC or AES key bytes (where the backend allows it). */
  importSecretKey(caller: Caller, ref: KeyRef, type: SecretKeyType, bytes: Uint8Array): Promise<string>;
  /** HMAC-SHA256(base, data) as a new key, as aziot-keyd derives per-module SAS keys. Not nestable. */
  deriveKey(caller: Caller, baseHandle: string, data: Uint8Array): Promise<string>;
  /** Public key of a key pair: SPKI DER. */
  getPublicKey(caller: Caller, handle: string): Promise<Buffer>;
  /** Type of the key behind a handle. */
  getKeyType(caller: Caller, handle: string): Promise<KeyType>;
  sign(caller: Caller, handle: string, algorithm: SignAlgorithm, message: Uint8Array): Promise<Buffer>;
  verify(caller: Caller, handle: string, algorithm: SignAlgorithm, message: Uint8Array, signature: Uint8Array): Promise<boolean>;
  encrypt(caller: Caller, handle: string, algorithm: EncryptAlgorithm, plaintext: Uint8Array, aad?: Uint8Array): Promise<EncryptResult>;
  decrypt(caller: Caller, handle: string, algorithm: EncryptAlgorithm, iv: Uint8Array, ciphertext: Uint8Array, aad?: Uint8Array): Promise<Buffer>;
  randomBytes(caller: Caller, n: number): Promise<Buffer>;
  /** Delete the key behind the handle. Idempotent. */
  deleteKey(caller: Caller, handle: string): Promise<void>;
  /** Keys of a namespace (default: the caller's own). */
  listKeys(caller: Caller, namespace?: Namespace): Promise<KeyInfo[]>;
  close(): Promise<void>;
}
