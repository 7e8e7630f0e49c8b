/**
 * The confidential package (`.cwasm`), format version 1: a component encrypted with AES-256-GCM under a
 * random content key, that key wrapped (RSA-OAEP-SHA256) to each recipient device's workload-decryption
 * key, the plaintext digest and size, and the publisher's signature over everything before it.
 *
 *   offset  size  field
 *   0       8     magic "EWCWASM\0"
 *   8       2     format version (u16 BE) = 1
 *   10      4     header length H (u32 BE), 2 ≤ H ≤ MAX_HEADER_BYTES
 *   14      H     header: UTF-8 JSON (headerSchema, strict)
 *   14+H    C     ciphertext, C = header.ciphertextSize exactly (= plaintext size; GCM adds no padding)
 *   ---- end of the signed region: a detached signature covers bytes [0, 14+H+C) ----
 *   …       4     signature block length S (u32 BE); 0 = unsigned
 *   …       S     signature block: UTF-8 JSON { value: base64 raw signature, signer: PEM key or chain }
 *   EOF must follow immediately. Nothing is trusted from the sizes: each is bounded and must match exactly.
 *
 * GCM additional data: "edgeward-cwasm/1\0" ‖ SHA-256(plaintext) ‖ u64 BE plaintext size, so the tag binds
 * the digest and size the header states even for an unsigned package.
 *
 * Parsing only: this module never decrypts (package.ts does).
 */
import { z } from 'zod';

export const MAGIC = Buffer.from('EWCWASM\0', 'latin1');
export const FORMAT_VERSION = 1;
export const PREAMBLE_BYTES = 14;
export const MAX_HEADER_BYTES = 256 * 1024;
export const MAX_RECIPIENTS = 256;
export const MAX_PLAINTEXT_BYTES = 256 * 1024 * 1024;
export const MAX_SIGNATURE_BLOCK_BYTES = 40 * 1024;
export const CONTENT_ALG = 'A256GCM';
export const KEY_WRAP_ALG = 'RSA-OAEP-256';
export const AAD_PREFIX = Buffer.from('edgeward-cwasm/1\0', 'latin1');

const b64 = (bytes: number) => z.string().regex(/^[A-Za-z0-9+/]+={0,2}$/).refine((s) => Buffer.from(s, 'base64').length === bytes, `${bytes} bytes (base64)`);
const digestRe = /^sha256:[0-9a-f]{64}$/;

/** What the device key export said the key is bound to (informational for the publisher; the device enforces). */
export const policySchema = z
  .object({
    kind: z.enum(['tpm-pcr', 'optee-ta', 'software', 'pkcs11-token']),
    description: z.string().max(512),
    pcrs: z.array(z.object({ index: z.number().int().min(0).max(23), bank: z.literal('sha256'), value: z.string().regex(/^[0-9a-f]{64}$/) }).strict()).max(24).optional(),
    policyDigest: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  })
  .strict();
export type KeyPolicy = z.infer<typeof policySchema>;

export const recipientSchema = z
  .object({
    keyId: z.string().regex(digestRe, 'sha256:<64 hex> of the device key SubjectPublicKeyInfo'),
    wrappedKey: b64(256),
    policy: policySchema.optional(),
  })
  .strict();
export type Recipient = z.infer<typeof recipientSchema>;

export const headerSchema = z
  .object({
    format: z.literal('edgeward-confidential'),
    version: z.literal(FORMAT_VERSION),
    content: z.object({ alg: z.literal(CONTENT_ALG), iv: b64(12), tag: b64(16) }).strict(),
    keyWrap: z.literal(KEY_WRAP_ALG),
    recipients: z.array(recipientSchema).min(1).max(MAX_RECIPIENTS),
    plaintext: z.object({ digest: z.string().regex(digestRe), size: z.number().int().min(1).max(MAX_PLAINTEXT_BYTES) }).strict(),
    ciphertextSize: z.number().int().min(1).max(MAX_PLAINTEXT_BYTES),
    createdAt: z.string().max(40).optional(),
  })
  .strict()
  .refine((h) => h.ciphertextSize === h.plaintext.size, { message: 'ciphertextSize must equal plaintext.size' })
  .refine((h) => new Set(h.recipients.map((r) => r.keyId)).size === h.recipients.length, { message: 'a device key is listed twice' });
export type PackageHeader = z.infer<typeof headerSchema>;

export const signatureBlockSchema = z.object({ value: z.string().max(2048).regex(/^[A-Za-z0-9+/]+={0,2}$/), signer: z.string().max(32 * 1024) }).strict();
export type SignatureBlock = z.infer<typeof signatureBlockSchema>;

export type PackageRefusal = 'malformed' | 'unsupported-version' | 'too-large' | 'not-a-recipient' | 'unwrap-failed' | 'decrypt-failed' | 'digest-mismatch' | 'unsigned';

/** A package refused: `reason` says which check, the message what to do. Never carries key material. */
export class PackageError extends Error {
  constructor(readonly reason: PackageRefusal, message: string) {
    super(message);
    this.name = 'PackageError';
  }
}

export interface ParsedPackage {
  header: PackageHeader;
  /** Bytes [0, 14+H+C): what the signature covers. */
  signedRegion: Buffer;
  ciphertext: Buffer;
  signature?: SignatureBlock;
}

function take(buf: Buffer, at: number, n: number, what: string): Buffer {
  if (at + n > buf.length) throw new PackageError('malformed', `truncated package: ${what} needs ${n} bytes at offset ${at}, the file has ${buf.length}`);
  return buf.subarray(at, at + n);
}

function json<T>(bytes: Buffer, schema: z.ZodType<T>, what: string): T {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new PackageError('malformed', `${what} is not UTF-8 JSON`);
  }
  const r = schema.safeParse(value);
  if (!r.success) throw new PackageError('malformed', `${what}: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  return r.data;
}

/** Parse and bound-check a package. Does not verify the signature or decrypt. */
export function parsePackage(buf: Buffer): ParsedPackage {
  if (!take(buf, 0, 8, 'magic').equals(MAGIC)) throw new PackageError('malformed', 'not an Edgeward confidential package (bad magic)');
  const version = take(buf, 8, 2, 'version').readUInt16BE(0);
  if (version !== FORMAT_VERSION) throw new PackageError('unsupported-version', `package format version ${version}; this Edgeward reads version ${FORMAT_VERSION}`);
  const hLen = take(buf, 10, 4, 'header length').readUInt32BE(0);
  if (hLen < 2 || hLen > MAX_HEADER_BYTES) throw new PackageError('too-large', `header length ${hLen} is outside 2..${MAX_HEADER_BYTES}`);
  const header = json(take(buf, PREAMBLE_BYTES, hLen, 'header'), headerSchema, 'header');
  const ctAt = PREAMBLE_BYTES + hLen;
  const ciphertext = take(buf, ctAt, header.ciphertextSize, 'ciphertext');
  const sigAt = ctAt + header.ciphertextSize;
  const signedRegion = buf.subarray(0, sigAt);
  const sLen = take(buf, sigAt, 4, 'signature length').readUInt32BE(0);
  if (sLen > MAX_SIGNATURE_BLOCK_BYTES) throw new PackageError('too-large', `signature block of ${sLen} bytes (at most ${MAX_SIGNATURE_BLOCK_BYTES})`);
  const end = sigAt + 4 + sLen;
  const signature = sLen === 0 ? undefined : json(take(buf, sigAt + 4, sLen, 'signature block'), signatureBlockSchema, 'signature block');
  if (end !== buf.length) throw new PackageError('malformed', `${buf.length - end} unexpected bytes after the signature block`);
  return { header, signedRegion, ciphertext, ...(signature ? { signature } : {}) };
}

/** Assemble the signed region (preamble, header, ciphertext). */
export function encodeSignedRegion(header: PackageHeader, ciphertext: Buffer): Buffer {
  const h = Buffer.from(JSON.stringify(header), 'utf8');
  if (h.length > MAX_HEADER_BYTES) throw new PackageError('too-large', `header of ${h.length} bytes (at most ${MAX_HEADER_BYTES}): too many recipients`);
  const pre = Buffer.alloc(PREAMBLE_BYTES);
  MAGIC.copy(pre, 0);
  pre.writeUInt16BE(FORMAT_VERSION, 8);
  pre.writeUInt32BE(h.length, 10);
  return Buffer.concat([pre, h, ciphertext]);
}

/** Append the signature block (or an empty one) to a signed region. */
export function appendSignature(signedRegion: Buffer, sig: SignatureBlock | undefined): Buffer {
  const s = sig ? Buffer.from(JSON.stringify(sig), 'utf8') : Buffer.alloc(0);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(s.length);
  return Buffer.concat([signedRegion, len, s]);
}

/** GCM additional data binding the stated plaintext digest and size. */
export function contentAad(digestHex: string, size: number): Buffer {
  const n = Buffer.alloc(8);
  n.writeBigUInt64BE(BigInt(size));
  return Buffer.concat([AAD_PREFIX, Buffer.from(digestHex, 'hex'), n]);
}
