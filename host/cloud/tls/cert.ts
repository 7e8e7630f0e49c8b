/**
 * Reading the identity certificate (a PEM file, leaf first, optionally followed by its chain) and
 * comparing its public key with the key that is to sign the TLS handshake.
 */
import { X509Certificate, createPublicKey, type KeyObject } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TlsIdentityError } from './errors.js';

export interface IdentityCert {
  /** The PEM as read: leaf then chain, handed to TLS unchanged. */
  readonly pem: Buffer;
  readonly leaf: X509Certificate;
}

/** `file:///abs/path` → `/abs/path`; anything else is a `bad-uri` error naming `what`. */
export function filePath(uri: string, what: string): string {
  if (!uri.startsWith('file:///')) throw new TlsIdentityError('bad-uri', `${what} must be a file:/// URI (got "${schemeOf(uri)}…")`);
  try {
    return fileURLToPath(uri);
  } catch (err) {
    throw new TlsIdentityError('bad-uri', `${what} is not a valid file:/// URI: ${(err as Error).message}`);
  }
}

/** The scheme part of a URI only, so an error never echoes a whole (possibly secret-bearing) string. */
export function schemeOf(uri: string): string {
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:/.exec(uri);
  return m ? m[0] : uri.slice(0, 8);
}

export async function readIdentityCert(certUri: string): Promise<IdentityCert> {
  const file = filePath(certUri, 'the identity certificate');
  let pem: Buffer;
  try {
    pem = await fs.readFile(file);
  } catch (err) {
    throw new TlsIdentityError('cert-unreadable', `cannot read the identity certificate ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  try {
    return { pem, leaf: new X509Certificate(pem) };
  } catch (err) {
    throw new TlsIdentityError('cert-unreadable', `the identity certificate ${file} is not a PEM certificate (${(err as Error).message})`);
  }
}

/** SubjectPublicKeyInfo DER of a key, for an exact comparison. */
export function spkiOf(key: KeyObject): Buffer {
  return (key.type === 'public' ? key : createPublicKey(key)).export({ type: 'spki', format: 'der' });
}

/** Throw `key-mismatch` unless `spki` is the certificate's public key. */
export function assertSameKey(cert: IdentityCert, spki: Buffer, keyWhat: string): void {
  if (!spkiOf(cert.leaf.publicKey).equals(spki)) {
    throw new TlsIdentityError('key-mismatch', `the identity certificate (${cert.leaf.subject.replace(/\n/g, ', ')}) was not issued for ${keyWhat}: give the certificate of that key, or the key of that certificate`);
  }
}

/** A short, secret-free description of the certificate for logs and `describe`. */
export function describeCert(cert: IdentityCert): string {
  return `${cert.leaf.subject.replace(/\n/g, ', ')} (issuer ${cert.leaf.issuer.replace(/\n/g, ', ')}, valid to ${cert.leaf.validTo})`;
}

/** The subject's CN (the last one if several), or undefined. */
export function commonNameOf(cert: IdentityCert): string | undefined {
  const cns = cert.leaf.subject.split('\n').filter((l) => l.startsWith('CN=')).map((l) => l.slice(3));
  return cns.at(-1);
}
