/**
 * Pure helpers of the key service: namespaces of callers, which algorithm fits which key, and digests.
 */
import { createHash } from 'node:crypto';
import {
  DAEMON_NAMESPACE, ENCRYPT_ALGORITHM_KEY_TYPES, KeyError, MODULE_NAME_PATTERN, moduleNamespace, type Caller, type EncryptAlgorithm, type KeyType, type Namespace,
  SIGN_ALGORITHM_KEY_TYPES, type SignAlgorithm,
} from './types.js';

export function ownNamespace(caller: Caller): Namespace {
  return caller.kind === 'module' ? moduleNamespace(caller.module) : DAEMON_NAMESPACE;
}

export function checkNamespace(ns: Namespace): void {
  if (ns === DAEMON_NAMESPACE) return;
  if (ns.startsWith('module.') && MODULE_NAME_PATTERN.test(ns.slice('module.'.length))) return;
  throw new KeyError('invalid-argument', 'a namespace is "edgeward" or "module.<name>"');
}

/** Which algorithm fits which key type (the tables in types.ts); anything else is `invalid-argument`. */
export function checkFits(algorithm: SignAlgorithm | EncryptAlgorithm, type: KeyType): void {
  const fits: readonly KeyType[] | undefined = Object.hasOwn(SIGN_ALGORITHM_KEY_TYPES, algorithm) ? SIGN_ALGORITHM_KEY_TYPES[algorithm as SignAlgorithm]
    : Object.hasOwn(ENCRYPT_ALGORITHM_KEY_TYPES, algorithm) ? ENCRYPT_ALGORITHM_KEY_TYPES[algorithm as EncryptAlgorithm].keyTypes
    : undefined;
  if (!fits?.includes(type)) throw new KeyError('invalid-argument', `algorithm ${String(algorithm)} does not fit a ${type} key`);
}

/** A Buffer view of the caller's bytes, without a copy. */
export function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** The OAEP hash (and MGF1 hash) of an RSA-OAEP algorithm. */
export function oaepHash(algorithm: 'rsa-oaep-sha256' | 'rsa-oaep-sha1'): 'sha256' | 'sha1' {
  return algorithm === 'rsa-oaep-sha1' ? 'sha1' : 'sha256';
}

export function digestFor(algorithm: SignAlgorithm, message: Uint8Array): Buffer {
  return createHash(algorithm === 'ecdsa-sha384' ? 'sha384' : 'sha256').update(message).digest();
}
