declare module 'edgeward:hsm/keys@0.1.0' {
  /**
   * Create the key pair `id` if absent, else return a handle to it.
   */
  export function createKeyPair(id: string, kind: KeyPairType): KeyHandle;
  /**
   * Create the symmetric key `id` if absent, else return a handle to it.
   */
  export function createSecretKey(id: string, kind: SecretKeyType): KeyHandle;
  /**
   * Handle of the existing key `id`.
   */
  export function loadKey(id: string): KeyHandle;
  /**
   * Import HMAC or AES key bytes under `id` (refused if `id` exists).
   */
  export function importSecretKey(id: string, kind: SecretKeyType, key: Uint8Array): KeyHandle;
  /**
   * A key derived as HMAC-SHA256(base, data); usable for hmac-sha256 signing. Derived keys do not derive.
   */
  export function deriveKey(base: KeyHandle, data: Uint8Array): KeyHandle;
  /**
   * The public key of a key pair, as DER SubjectPublicKeyInfo.
   */
  export function getPublicKey(key: KeyHandle): Uint8Array;
  export function sign(key: KeyHandle, algorithm: SignAlgorithm, message: Uint8Array): Uint8Array;
  export function verify(key: KeyHandle, algorithm: SignAlgorithm, message: Uint8Array, signature: Uint8Array): boolean;
  export function encrypt(key: KeyHandle, algorithm: EncryptAlgorithm, plaintext: Uint8Array, aad: Uint8Array): Ciphertext;
  export function decrypt(key: KeyHandle, algorithm: EncryptAlgorithm, iv: Uint8Array, data: Uint8Array, aad: Uint8Array): Uint8Array;
  /**
   * Bytes from the key service's generator (the HSM's, on PKCS#11).
   */
  export function randomBytes(len: number): Uint8Array;
  export function deleteKey(key: KeyHandle): void;
  /**
   * The keys of the caller's namespace.
   */
  export function listKeys(): Array<KeyInfo>;
  /**
   * An opaque, host-authenticated key handle. Forged, tampered or foreign handles fail with
   * `invalid-handle` or `access-denied`; they never reach another module's key.
   */
  export type KeyHandle = string;
  /**
   * Why a call failed.
   */
  export type KeyError = KeyErrorInvalidHandle | KeyErrorAccessDenied | KeyErrorNotFound | KeyErrorAlreadyExists | KeyErrorUnsupported | KeyErrorInvalidArgument | KeyErrorLimitExceeded | KeyErrorDecryptFailed | KeyErrorBackendUnavailable | KeyErrorInternal;
  /**
   * The handle is not one the host issued, or was altered.
   */
  export interface KeyErrorInvalidHandle {
    tag: 'invalid-handle',
  }
  /**
   * The caller may not use this key (which may or may not exist).
   */
  export interface KeyErrorAccessDenied {
    tag: 'access-denied',
  }
  /**
   * No key with this id in the caller's namespace, or its key was deleted.
   */
  export interface KeyErrorNotFound {
    tag: 'not-found',
  }
  /**
   * A key with this id exists with another type, or an import would overwrite it.
   */
  export interface KeyErrorAlreadyExists {
    tag: 'already-exists',
  }
  /**
   * The backend cannot do this (mechanism missing on the token, or a derived key asked to derive).
   */
  export interface KeyErrorUnsupported {
    tag: 'unsupported',
    val: string,
  }
  /**
   * A malformed id, or an algorithm that does not fit the key.
   */
  export interface KeyErrorInvalidArgument {
    tag: 'invalid-argument',
    val: string,
  }
  /**
   * An input over its limit (sign input, plaintext, random length) or a full key table.
   */
  export interface KeyErrorLimitExceeded {
    tag: 'limit-exceeded',
    val: string,
  }
  /**
   * AES-GCM tag or RSA-OAEP padding check failed.
   */
  export interface KeyErrorDecryptFailed {
    tag: 'decrypt-failed',
  }
  /**
   * The HSM is gone or not logged in; retrying later may work.
   */
  export interface KeyErrorBackendUnavailable {
    tag: 'backend-unavailable',
  }
  /**
   * A host fault; the cause is in the daemon's log.
   */
  export interface KeyErrorInternal {
    tag: 'internal',
  }
  /**
   * # Variants
   * 
   * ## `"ec-p256"`
   * 
   * ## `"ec-p384"`
   * 
   * ## `"rsa2048"`
   * 
   * ## `"rsa3072"`
   */
  export type KeyPairType = 'ec-p256' | 'ec-p384' | 'rsa2048' | 'rsa3072';
  /**
   * # Variants
   * 
   * ## `"hmac-sha256"`
   * 
   * ## `"aes256-gcm"`
   */
  export type SecretKeyType = 'hmac-sha256' | 'aes256-gcm';
  /**
   * # Variants
   * 
   * ## `"ec-p256"`
   * 
   * ## `"ec-p384"`
   * 
   * ## `"rsa2048"`
   * 
   * ## `"rsa3072"`
   * 
   * ## `"hmac-sha256"`
   * 
   * ## `"aes256-gcm"`
   */
  export type KeyType = 'ec-p256' | 'ec-p384' | 'rsa2048' | 'rsa3072' | 'hmac-sha256' | 'aes256-gcm';
  /**
   * Signatures over the message (the host hashes it). ECDSA signatures are DER (RFC 3279 §2.2.3).
   * # Variants
   * 
   * ## `"ecdsa-sha256"`
   * 
   * ## `"ecdsa-sha384"`
   * 
   * ## `"rsa-pss-sha256"`
   * 
   * ## `"rsa-pkcs1-sha256"`
   * 
   * ## `"hmac-sha256"`
   */
  export type SignAlgorithm = 'ecdsa-sha256' | 'ecdsa-sha384' | 'rsa-pss-sha256' | 'rsa-pkcs1-sha256' | 'hmac-sha256';
  /**
   * AES-256-GCM with a host-chosen 96-bit IV and the 16-byte tag appended; RSA-OAEP (hash = MGF1 hash).
   * # Variants
   * 
   * ## `"aes256-gcm"`
   * 
   * ## `"rsa-oaep-sha256"`
   * 
   * ## `"rsa-oaep-sha1"`
   */
  export type EncryptAlgorithm = 'aes256-gcm' | 'rsa-oaep-sha256' | 'rsa-oaep-sha1';
  export interface Ciphertext {
    /**
     * 12 bytes for AES-GCM, empty for RSA-OAEP.
     */
    iv: Uint8Array,
    data: Uint8Array,
  }
  export interface KeyInfo {
    id: string,
    kind: KeyType,
  }
}
