/**
 * Sealing and opening confidential packages (format.ts describes the bytes).
 *
 * Many devices: one wrapped content key per device key ("recipients"), so a package names exactly the
 * devices that can open it and a device is dropped by re-sealing without it. (The alternative, a fleet
 * group key provisioned into every device's TEE, makes packages small but needs a key-distribution
 * protocol and loses per-device revocation; documented, not built.)
 *
 * The publisher's signature covers the header and ciphertext and is checked with the device's module signer
 * trust (host/runtime/trust.ts); it verifies with `openssl dgst -sha256 -verify signer.pem -signature sig`.
 */
import { constants, createCipheriv, createDecipheriv, createHash, publicEncrypt, randomBytes, sign, type KeyObject } from 'node:crypto';
import { keyIdOf, type KeyPolicyDescription } from '../../../hsm/tee/port.js';
import { verifyModule, type ModuleTrust, type SignerIdentity } from '../trust.js';
import {
  CONTENT_ALG, KEY_WRAP_ALG, MAX_PLAINTEXT_BYTES, PackageError, appendSignature, contentAad, encodeSignedRegion,
  type PackageHeader, type ParsedPackage, type Recipient,
} from './format.js';

export interface SealRecipient {
  publicKey: KeyObject;
  policy?: KeyPolicyDescription;
}

export interface SealOptions {
  plaintext: Buffer;
  recipients: SealRecipient[];
  /** The publisher's private key (ECDSA P-256 or RSA ≥ 2048) and its public key or certificate chain PEM. */
  signer?: { key: KeyObject; signerPem: string };
  now?: Date;
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function wrapTo(r: SealRecipient, contentKey: Buffer): Recipient {
  const k = r.publicKey;
  if (k.asymmetricKeyType !== 'rsa' || (k.asymmetricKeyDetails?.modulusLength ?? 0) !== 2048) {
    throw new PackageError('malformed', `device key ${keyIdOf(k)} is not RSA-2048 (workload-decryption keys are RSA-2048 OAEP-SHA256)`);
  }
  const wrapped = publicEncrypt({ key: k, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, contentKey);
  return { keyId: keyIdOf(k), wrappedKey: wrapped.toString('base64'), ...(r.policy ? { policy: r.policy } : {}) };
}

/** Encrypt `plaintext` to every recipient and (optionally) sign. Returns the package bytes. */
export function sealPackage(opts: SealOptions): Buffer {
  const { plaintext } = opts;
  if (plaintext.length === 0 || plaintext.length > MAX_PLAINTEXT_BYTES) throw new PackageError('too-large', `component of ${plaintext.length} bytes (1..${MAX_PLAINTEXT_BYTES})`);
  if (opts.recipients.length === 0) throw new PackageError('malformed', 'no recipient device key: give at least one --device-key');
  const contentKey = randomBytes(32);
  const iv = randomBytes(12);
  const digest = sha256(plaintext);
  try {
    const recipients = opts.recipients.map((r) => wrapTo(r, contentKey));
    const cipher = createCipheriv('aes-256-gcm', contentKey, iv);
    cipher.setAAD(contentAad(digest, plaintext.length));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const header: PackageHeader = {
      format: 'edgeward-confidential', version: 1,
      content: { alg: CONTENT_ALG, iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64') },
      keyWrap: KEY_WRAP_ALG, recipients,
      plaintext: { digest: `sha256:${digest}`, size: plaintext.length },
      ciphertextSize: ciphertext.length,
      createdAt: (opts.now ?? new Date()).toISOString(),
    };
    const region = encodeSignedRegion(header, ciphertext);
    const sig = opts.signer ? { value: sign('sha256', region, opts.signer.key).toString('base64'), signer: opts.signer.signerPem } : undefined;
    return appendSignature(region, sig);
  } finally {
    contentKey.fill(0);
  }
}

/**
 * Check the publisher's signature under the device's module trust. An unsigned package passes only under
 * signature_policy "optional" (as unsigned modules do).
 */
export async function verifyPackage(pkg: ParsedPackage, trust: ModuleTrust, name = 'confidential package', now = new Date()): Promise<SignerIdentity> {
  return verifyModule(name, pkg.signedRegion, pkg.signature, trust, now);
}

/** The recipient entry for a device key id, or a typed refusal naming the ids the package holds. */
export function recipientFor(pkg: ParsedPackage, keyId: string): Recipient {
  const r = pkg.header.recipients.find((x) => x.keyId === keyId);
  if (!r) throw new PackageError('not-a-recipient', `this package is not sealed to this device's key ${keyId} (it is sealed to ${pkg.header.recipients.length} other device key(s)); re-seal with this device's key`);
  return r;
}

/** Unwraps a recipient's content key (a TeeBackend, or a software key in tests/development). */
export type Unwrapper = (wrappedKey: Buffer, policy: KeyPolicyDescription | undefined) => Promise<Buffer>;

/**
 * Decrypt a parsed (and already verified) package for `keyId` in memory and check the plaintext digest and
 * size against the header. The plaintext is returned, never written.
 */
export async function openPackage(pkg: ParsedPackage, keyId: string, unwrap: Unwrapper): Promise<Buffer> {
  const r = recipientFor(pkg, keyId);
  const contentKey = await unwrap(Buffer.from(r.wrappedKey, 'base64'), r.policy);
  if (contentKey.length !== 32) throw new PackageError('unwrap-failed', `the unwrapped content key is ${contentKey.length} bytes (expected 32)`);
  const { header } = pkg;
  const digestHex = header.plaintext.digest.slice('sha256:'.length);
  let plaintext: Buffer;
  try {
    const d = createDecipheriv('aes-256-gcm', contentKey, Buffer.from(header.content.iv, 'base64'));
    d.setAAD(contentAad(digestHex, header.plaintext.size));
    d.setAuthTag(Buffer.from(header.content.tag, 'base64'));
    plaintext = Buffer.concat([d.update(pkg.ciphertext), d.final()]);
  } catch {
    throw new PackageError('decrypt-failed', 'the ciphertext does not authenticate under the unwrapped key (tampered package or wrong key)');
  } finally {
    contentKey.fill(0);
  }
  if (plaintext.length !== header.plaintext.size || sha256(plaintext) !== digestHex) {
    plaintext.fill(0);
    throw new PackageError('digest-mismatch', `the decrypted component does not match the header's digest ${header.plaintext.digest}`);
  }
  return plaintext;
}
