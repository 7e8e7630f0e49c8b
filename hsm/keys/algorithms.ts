/**
 * Pure helpers of the key service: namespaces of callers, which algorithm fits which key, and digests.
 */
import { createHash } from 'node:crypto';
import {
  DAEMON_NAMESPACE, KeyError, MODULE_NAME_PATTERN, moduleNamespace, type Caller, type EncryptAlgorithm, type KeyType, type Namespace,
  type SignAlgorithm,
} from './types.js';

export function ownNamespace(caller: Caller): Namespace {
  return caller.kind === 'module' ? moduleNamespace(caller.module) : DAEMON_NAMESPACE;
}

export function checkNamespace(ns: Namespace): void {
  if (ns === DAEMON_NAMESPACE) return;
  if (ns.startsWith('module.') && MODULE_NAME_PATTERN.test(ns.slice('module.'.length))) return;
  throw new KeyError('invalid-argument', 'a namespace is "edgeward" or "module.<name>"');
}

/** Which algorithm fits which key type; anything else is `invalid-argument`. */
export function checkFits(algorithm: SignAlgorithm | EncryptAlgorithm, type: KeyType): void {
  const ok =
    algorithm === 'ecdsa-sha256' || algorithm === 'ecdsa-sha384' ? type === 'ec-p256' || type === 'ec-p384'
    : algorithm === 'rsa-pss-sha256' || algorithm === 'rsa-pkcs1-sha256' || algorithm === 'rsa-oaep-sha256' || algorithm === 'rsa-oaep-sha1'
      ? type === 'rsa-2048' || type === 'rsa-3072'
    : algorithm === 'hmac-sha256' ? type === 'hmac-sha256'
    : algorithm === 'aes-256-gcm' ? type === 'aes-256-gcm'
    : false;
  if (!ok) throw new KeyError('invalid-argument', `algorithm ${String(algorithm)} does not fit a ${type} key`);
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
