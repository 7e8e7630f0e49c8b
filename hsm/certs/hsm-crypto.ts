/**
 * Signing X.509 structures with a key that never leaves the key service. @peculiar/x509 signs through a
 * WebCrypto-shaped `crypto` object (`crypto.subtle.sign(alg, key, tbs)`); this module gives it one whose
 * `sign` calls `KeyService.sign` with an opaque handle, and whose other members are node's WebCrypto.
 */
import { webcrypto } from 'node:crypto';
import { DAEMON_CALLER, type Caller, type KeyService, type KeyType, type SignAlgorithm } from '../keys/index.js';

/** A stand-in for a WebCrypto private key: the algorithm x509 needs, and the handle the service needs. */
export interface HsmSigningKey {
  readonly algorithm: { name: 'ECDSA'; namedCurve: 'P-256' | 'P-384'; hash: 'SHA-256' | 'SHA-384' } | { name: 'RSASSA-PKCS1-v1_5'; hash: 'SHA-256' };
  readonly handle: string;
  readonly type: 'private';
}

export function signingKeyFor(handle: string, keyType: KeyType): HsmSigningKey {
  switch (keyType) {
    case 'ec-p256':
      return { algorithm: { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }, handle, type: 'private' };
    case 'ec-p384':
      return { algorithm: { name: 'ECDSA', namedCurve: 'P-384', hash: 'SHA-384' }, handle, type: 'private' };
    case 'rsa-2048':
    case 'rsa-3072':
      return { algorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, handle, type: 'private' };
    default:
      throw new Error(`a ${keyType} key cannot sign certificates`);
  }
}

/** A `crypto` for @peculiar/x509 that signs with the key service as `caller`. */
export function hsmCrypto(keys: KeyService, caller: Caller = DAEMON_CALLER): webcrypto.Crypto {
  const subtle = webcrypto.subtle;
  const hsmSubtle = Object.create(subtle) as webcrypto.SubtleCrypto;
  hsmSubtle.sign = async (algorithm: unknown, key: unknown, data: ArrayBuffer | ArrayBufferView): Promise<ArrayBuffer> => {
    const k = key as Partial<HsmSigningKey>;
    if (typeof k.handle !== 'string' || !k.algorithm) return subtle.sign(algorithm as webcrypto.AlgorithmIdentifier, key as webcrypto.CryptoKey, data as Parameters<typeof subtle.sign>[2]);
    const bytes = toBytes(data);
    const sig = await keys.sign(caller, k.handle, serviceAlgorithm(k.algorithm), bytes);
    // WebCrypto ECDSA signatures are raw r||s; the key service returns DER (RFC 3279).
    const out = k.algorithm.name === 'ECDSA' ? derEcdsaToRaw(sig, k.algorithm.namedCurve === 'P-384' ? 48 : 32) : sig;
    return out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength) as ArrayBuffer;
  };
  for (const m of ['digest', 'exportKey', 'importKey', 'verify', 'generateKey'] as const) {
    (hsmSubtle as unknown as Record<string, unknown>)[m] = (subtle[m] as (...a: unknown[]) => unknown).bind(subtle);
  }
  return { subtle: hsmSubtle, getRandomValues: webcrypto.getRandomValues.bind(webcrypto), randomUUID: webcrypto.randomUUID.bind(webcrypto) } as unknown as webcrypto.Crypto;
}

function serviceAlgorithm(alg: HsmSigningKey['algorithm']): SignAlgorithm {
  if (alg.name === 'ECDSA') return alg.hash === 'SHA-384' ? 'ecdsa-sha384' : 'ecdsa-sha256';
  return 'rsa-pkcs1-sha256';
}

function toBytes(data: ArrayBuffer | ArrayBufferView): Uint8Array {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** DER `SEQUENCE { r INTEGER, s INTEGER }` → fixed-width r||s. */
export function derEcdsaToRaw(der: Uint8Array, size: number): Buffer {
  let i = 0;
  const expect = (tag: number) => {
    if (der[i++] !== tag) throw new Error('malformed DER ECDSA signature');
  };
  const length = (): number => {
    const first = der[i++] ?? 0;
    if (first < 0x80) return first;
    let n = 0;
    for (let k = 0; k < (first & 0x7f); k++) n = (n << 8) | (der[i++] ?? 0);
    return n;
  };
  expect(0x30);
  length();
  const ints: Buffer[] = [];
  for (let k = 0; k < 2; k++) {
    expect(0x02);
    const len = length();
    let v = Buffer.from(der.subarray(i, i + len));
    i += len;
    while (v.length > size && v[0] === 0) v = v.subarray(1);
    if (v.length > size) throw new Error('malformed DER ECDSA signature');
    ints.push(Buffer.concat([Buffer.alloc(size - v.length), v]));
  }
  return Buffer.concat(ints);
}
