/**
 * Module signatures: a detached signature over the component bytes, as `openssl dgst -sha256 -sign`
 * (raw DER) or `cosign sign-blob` (base64) produce it, checked against signers the device trusts
 * (trust.ts; never the manifest). Verified at create/update and again at every start over the very
 * buffer the loader measured, so nothing can swap the bytes between the check and the run.
 *
 * Algorithms (closed set): ECDSA P-256 with SHA-256 (DER, or IEEE P1363 r‖s), RSA ≥ 2048 bits with
 * SHA-256 under PKCS#1 v1.5 or PSS (RFC 8017 §8.2, §8.1; any PSS salt length), Ed25519 (RFC 8032, over
 * the bytes themselves: `openssl pkeyutl -sign -rawin`).
 */
import { verify, constants, type KeyObject } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { z } from 'zod';
import { measure } from './loader.js';
import { RuntimeError } from './errors.js';

export { SIGNATURE_POLICIES, MAX_TRUSTED_SIGNERS, type SignaturePolicy } from '../config/schema.js';

/** What a registration records for a module that carried no signature (policy "optional" only). */
export const UNSIGNED = 'unsigned';
/** Largest raw signature accepted (RSA-8192 is 1024 bytes). */
export const MAX_SIGNATURE_BYTES = 1024;
/** Largest signer PEM (a leaf and a few intermediates). */
export const MAX_SIGNER_PEM_BYTES = 32 * 1024;
/** Smallest RSA modulus accepted (NIST SP 800-131A). */
export const MIN_RSA_BITS = 2048;
/** Most certificates a signer chain may carry (leaf + intermediates), and most links walked. */
export const MAX_CHAIN_CERTS = 5;

const BASE64_RE = /^[A-Za-z0-9+/]+={0,2}$/;

/** The signature as a registration stores it: raw signature bytes (base64) and the signer's PEM. */
export const signatureMaterialSchema = z
  .object({
    value: z.string().max(Math.ceil(MAX_SIGNATURE_BYTES / 3) * 4).regex(BASE64_RE, 'base64'),
    signer: z.string().max(MAX_SIGNER_PEM_BYTES),
  })
  .strict();
export type SignatureMaterial = z.infer<typeof signatureMaterialSchema>;

/**
 * The signature as a manifest names it: `file` (raw or base64) or `value` (base64), and `signer`, a
 * public key or certificate chain (leaf first) as a PEM file path or inline PEM.
 */
export const signatureSourceSchema = z
  .object({
    file: z.string().min(1).max(2048).optional(),
    value: z.string().min(1).max(Math.ceil(MAX_SIGNATURE_BYTES / 3) * 4 + 64).optional(),
    signer: z.string().min(1).max(MAX_SIGNER_PEM_BYTES),
  })
  .strict()
  .refine((s) => (s.file === undefined) !== (s.value === undefined), { message: 'give exactly one of "file" or "value"' });
export type SignatureSource = z.infer<typeof signatureSourceSchema>;

export function isInlinePem(s: string): boolean {
  return s.trimStart().startsWith('-----BEGIN ');
}

/** Why a module's signature was refused. Each maps onto one runtime error code and one event. */
export type SignatureRefusal = 'missing-signature' | 'bad-signature' | 'untrusted-signer' | 'expired-certificate' | 'malformed-signature';

export class SignatureError extends RuntimeError {
  constructor(readonly reason: SignatureRefusal, message: string) {
    super(reason === 'bad-signature' ? 'integrity-mismatch' : reason === 'malformed-signature' ? 'invalid' : 'denied', message);
    this.name = 'SignatureError';
  }
}

/** Decode a signature given as raw bytes or as base64 text (cosign sign-blob writes base64). */
export function decodeSignature(data: Uint8Array): Buffer {
  const text = Buffer.from(data).toString('latin1').replace(/\s+/g, '');
  const raw = BASE64_RE.test(text) && text.length % 4 === 0 ? Buffer.from(text, 'base64') : Buffer.from(data);
  if (raw.length === 0 || raw.length > MAX_SIGNATURE_BYTES) throw new SignatureError('malformed-signature', `signature is ${raw.length} bytes (expected 1..${MAX_SIGNATURE_BYTES})`);
  return raw;
}

async function readCapped(file: string, max: number, what: string): Promise<Buffer> {
  const st = await fs.stat(file).catch(() => {
    throw new SignatureError('malformed-signature', `${what} ${file}: no such file`);
  });
  if (!st.isFile() || st.size > max) throw new SignatureError('malformed-signature', `${what} ${file}: not a regular file of at most ${max} bytes`);
  return fs.readFile(file);
}

/** Read what a manifest names (files resolved by the caller) into the form a registration stores. */
export async function loadSignature(src: SignatureSource): Promise<SignatureMaterial> {
  if (src.value !== undefined && !BASE64_RE.test(src.value.replace(/\s+/g, ''))) throw new SignatureError('malformed-signature', 'signature value: expected base64');
  const sig = decodeSignature(src.file !== undefined ? await readCapped(src.file, 4 * MAX_SIGNATURE_BYTES, 'signature') : Buffer.from(src.value!, 'latin1'));
  const signer = isInlinePem(src.signer) ? src.signer : (await readCapped(src.signer, MAX_SIGNER_PEM_BYTES, 'signer')).toString('utf8');
  if (!isInlinePem(signer)) throw new SignatureError('malformed-signature', 'signer: expected a PEM public key or certificate');
  return { value: sig.toString('base64'), signer };
}

/** The signer identity recorded in registrations: sha256 of the DER SubjectPublicKeyInfo. */
export function spkiId(key: KeyObject): string {
  return measure(key.export({ type: 'spki', format: 'der' }));
}

/** Verify `sig` over `data` with `key`; false for a wrong signature, a typed error for an unusable key. */
export function verifyDetached(key: KeyObject, data: Uint8Array, sig: Buffer): boolean {
  const type = key.asymmetricKeyType;
  switch (type) {
    case 'ec': {
      if (key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw new SignatureError('untrusted-signer', `signer key: EC curve ${key.asymmetricKeyDetails?.namedCurve} is not supported (use P-256)`);
      if (verify('sha256', data, { key, dsaEncoding: 'der' }, sig)) return true;
      return sig.length === 64 && verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig);
    }
    case 'rsa':
    case 'rsa-pss': {
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
      if (bits < MIN_RSA_BITS) throw new SignatureError('untrusted-signer', `signer key: RSA-${bits} is too small (at least ${MIN_RSA_BITS} bits)`);
      if (type === 'rsa' && verify('sha256', data, { key, padding: constants.RSA_PKCS1_PADDING }, sig)) return true;
      return verify('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, sig);
    }
    case 'ed25519':
      return verify(null, data, key, sig);
    default:
      throw new SignatureError('untrusted-signer', `signer key: ${type} keys are not supported (ECDSA P-256, RSA, Ed25519)`);
  }
}

/** A verified signer: its key, `sha256:<hex of SPKI>`, and the certificate subject when one was used. */
export interface VerifiedSigner {
  key: KeyObject;
  id: string;
  subject?: string;
}

/** `fn`'s result; whatever it throws is the signer's material being malformed (a SignatureError). */
export function parse<T>(fn: () => T, what: string): T {
  try {
    return fn();
  } catch (err) {
    throw new SignatureError('malformed-signature', `${what}: ${(err as Error).message.split('\n')[0]}`);
  }
}
