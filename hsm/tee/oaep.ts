/**
 * RSAES-OAEP decoding (RFC 8017 §7.1.2) with SHA-256, MGF1-SHA-256 and an empty label, over the raw RSA
 * result a token computed (CKM_RSA_X_509). Used by the PKCS#11 TEE backend when the token's
 * CKM_RSA_PKCS_OAEP supports only SHA-1 (SoftHSM2 2.6): the private-key operation still happens in the
 * token, only the padding is checked here. Every failure is the same `undefined` (no padding oracle detail).
 */
import { createHash, timingSafeEqual } from 'node:crypto';

const H_LEN = 32;

function sha256(...parts: Buffer[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

/** MGF1 with SHA-256 (RFC 8017 §B.2.1). */
export function mgf1Sha256(seed: Buffer, length: number): Buffer {
  const out: Buffer[] = [];
  const counter = Buffer.alloc(4);
  for (let i = 0, have = 0; have < length; i++, have += H_LEN) {
    counter.writeUInt32BE(i);
    out.push(sha256(seed, counter));
  }
  return Buffer.concat(out).subarray(0, length);
}

function xor(a: Buffer, b: Buffer): Buffer {
  const r = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) r[i] = a[i]! ^ b[i]!;
  return r;
}

/** The message inside the encoded block `em` (k bytes, k = modulus length), or undefined when it is not valid OAEP. */
export function oaepSha256Decode(em: Buffer, k: number): Buffer | undefined {
  if (em.length > k || k < 2 * H_LEN + 2) return undefined;
  const block = em.length === k ? em : Buffer.concat([Buffer.alloc(k - em.length), em]);
  const maskedSeed = block.subarray(1, 1 + H_LEN);
  const maskedDb = block.subarray(1 + H_LEN);
  const seed = xor(maskedSeed, mgf1Sha256(maskedDb, H_LEN));
  const db = xor(maskedDb, mgf1Sha256(seed, k - H_LEN - 1));
  const lHashOk = timingSafeEqual(db.subarray(0, H_LEN), sha256(Buffer.alloc(0)));
  let one = -1;
  let badPs = false;
  for (let i = H_LEN; i < db.length; i++) {
    if (one < 0 && db[i] === 0x01) one = i;
    else if (one < 0 && db[i] !== 0x00) badPs = true;
  }
  if (block[0] !== 0 || !lHashOk || badPs || one < 0) return undefined;
  return Buffer.from(db.subarray(one + 1));
}
