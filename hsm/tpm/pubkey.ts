/**
 * TPM public areas and signatures in node:crypto terms, so results of the TPM can be checked (and used)
 * without the TPM: RSA/ECC TPMT_PUBLIC → KeyObject (via JWK), TPMT_SIGNATURE → bytes node:crypto verifies.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { ALG, ECC_CURVE, hashName } from './constants.js';
import type { Signature, TpmtPublic } from './types.js';

const CURVES: Record<number, { crv: string; len: number }> = {
  [ECC_CURVE.NIST_P256]: { crv: 'P-256', len: 32 },
  [ECC_CURVE.NIST_P384]: { crv: 'P-384', len: 48 },
};

function pad(b: Buffer, len: number): Buffer {
  if (b.length >= len) return b.subarray(b.length - len);
  return Buffer.concat([Buffer.alloc(len - b.length), b]);
}

/** A node:crypto public key for an RSA or ECC public area. */
export function publicKeyOf(p: TpmtPublic): KeyObject {
  if (p.type === ALG.RSA) {
    const e = Buffer.alloc(4);
    e.writeUInt32BE(p.exponent === 0 ? 65537 : p.exponent);
    let i = 0;
    while (i < 3 && e[i] === 0) i++;
    return createPublicKey({ key: { kty: 'RSA', n: p.unique.toString('base64url'), e: e.subarray(i).toString('base64url') }, format: 'jwk' });
  }
  if (p.type === ALG.ECC) {
    const c = CURVES[p.curveId];
    if (!c) throw new RangeError(`unsupported ECC curve 0x${p.curveId.toString(16)}`);
    return createPublicKey({
      key: { kty: 'EC', crv: c.crv, x: pad(p.unique.x, c.len).toString('base64url'), y: pad(p.unique.y, c.len).toString('base64url') },
      format: 'jwk',
    });
  }
  throw new TypeError('only RSA and ECC public areas have a public key');
}

/** ECDSA signature as IEEE P1363 r||s (what `dsaEncoding: 'ieee-p1363'` expects). */
export function ecdsaP1363(sig: Signature, len = 32): Buffer {
  if (sig.sigAlg !== ALG.ECDSA) throw new TypeError('not an ECDSA signature');
  return Buffer.concat([pad(sig.r, len), pad(sig.s, len)]);
}

/** Verify a TPM signature over `message` (hashed with the signature's hash) with node:crypto. */
export function verifyWithPublic(pub: TpmtPublic, message: Buffer, sig: Signature): boolean {
  const key = publicKeyOf(pub);
  const h = hashName(sig.hashAlg);
  switch (sig.sigAlg) {
    case ALG.ECDSA: {
      const len = pub.type === ALG.ECC ? (CURVES[pub.curveId]?.len ?? 32) : 32;
      return verify(h, message, { key, dsaEncoding: 'ieee-p1363' }, ecdsaP1363(sig, len));
    }
    case ALG.RSASSA:
      return verify(h, message, key, sig.sig);
    case ALG.RSAPSS:
      return verify(h, message, { key, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: -2 }, sig.sig);
    case ALG.HMAC:
      throw new TypeError('HMAC signatures need the key, not a public area');
    default: {
      const never: never = sig;
      return never;
    }
  }
}
