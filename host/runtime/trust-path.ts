/**
 * Certificate path validation for module signers (RFC 5280 §6.1 subset), loaded by trust.ts only when a
 * signer presents a certificate: each link's signature, every certificate's validity period, `cA` on every
 * issuer, `digitalSignature` and code signing on the leaf when it has a key usage or an extended key usage;
 * the chain ends at a trusted certificate. No revocation (devices are often offline).
 */
import 'reflect-metadata'; // @peculiar/x509 (tsyringe) needs it before its first import
import { createPublicKey, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { MAX_CHAIN_CERTS, parse, SignatureError, spkiId, type VerifiedSigner } from './signature.js';

/**
 * The signer of a certificate chain (PEM blocks, leaf first): trusted when the leaf's key is a trusted key
 * (`keyTrusted`) or the chain leads to one of `anchorsDer` (trusted CA certificates, DER).
 */
export async function verifyCertificateSigner(certPems: string[], anchorsDer: readonly Buffer[], keyTrusted: (id: string) => boolean, now: Date): Promise<VerifiedSigner> {
  const chain = certPems.map((pem) => parse(() => new x509.X509Certificate(pem), 'signer certificate'));
  const leaf = chain[0]!;
  const key = keyOfCert(leaf);
  const id = spkiId(key);
  checkLeafUsage(leaf);
  await validatePath(leaf, chain.slice(1), readAnchors(anchorsDer), now, keyTrusted(id));
  return { key, id, subject: leaf.subject };
}

/** The anchors node:crypto accepted as certificates; one @peculiar/x509 cannot read cannot be an issuer. */
function readAnchors(der: readonly Buffer[]): x509.X509Certificate[] {
  const out: x509.X509Certificate[] = [];
  for (const d of der) {
    try {
      out.push(new x509.X509Certificate(d));
    } catch {
      // not usable as a trust anchor
    }
  }
  return out;
}

function keyOfCert(cert: x509.X509Certificate): KeyObject {
  return createPublicKey({ key: Buffer.from(cert.publicKey.rawData), format: 'der', type: 'spki' });
}

function isCa(cert: x509.X509Certificate): boolean {
  return cert.getExtension(x509.BasicConstraintsExtension)?.ca === true;
}

function sameCert(a: x509.X509Certificate, b: x509.X509Certificate): boolean {
  return Buffer.from(a.rawData).equals(Buffer.from(b.rawData));
}

/** Walk leaf → issuer until a trusted certificate (or a leaf whose key is itself trusted). */
async function validatePath(leaf: x509.X509Certificate, intermediates: x509.X509Certificate[], anchors: x509.X509Certificate[], now: Date, keyTrusted: boolean): Promise<void> {
  let cur = leaf;
  for (let depth = 0; depth <= MAX_CHAIN_CERTS; depth++) {
    checkValidity(cur, now);
    if ((depth === 0 && keyTrusted) || anchors.some((a) => sameCert(a, cur))) return;
    // `depth` CA certificates sit between the issuer looked for now and the leaf (RFC 5280 §4.2.1.9).
    const anchor = await findIssuer(cur, anchors);
    if (anchor) {
      checkIssuer(anchor, depth);
      checkValidity(anchor, now);
      return;
    }
    const next = await findIssuer(cur, intermediates);
    if (!next) break;
    checkIssuer(next, depth);
    cur = next;
  }
  throw new SignatureError('untrusted-signer', `signer certificate "${leaf.subject}" does not chain to a trusted signer CA on this device`);
}

/** Object identifier of anyExtendedKeyUsage (RFC 5280 §4.2.1.12). */
const ANY_EKU = '2.5.29.37.0';

/**
 * The leaf must be meant for signatures: `digitalSignature` when it has a key usage, and code signing when
 * it has an extended key usage (RFC 5280 §4.2.1.3, §4.2.1.12), so a TLS certificate from the same CA
 * cannot sign modules.
 */
function checkLeafUsage(leaf: x509.X509Certificate): void {
  const usage = leaf.getExtension(x509.KeyUsagesExtension);
  if (usage && (usage.usages & x509.KeyUsageFlags.digitalSignature) === 0) throw new SignatureError('untrusted-signer', `signer certificate "${leaf.subject}" is not for digital signatures (key usage)`);
  const eku = leaf.getExtension(x509.ExtendedKeyUsageExtension);
  if (eku && !eku.usages.some((u) => u === x509.ExtendedKeyUsage.codeSigning || u === ANY_EKU)) {
    throw new SignatureError('untrusted-signer', `signer certificate "${leaf.subject}" is not for code signing (extended key usage)`);
  }
}

function checkValidity(cert: x509.X509Certificate, now: Date): void {
  if (now < cert.notBefore) throw new SignatureError('expired-certificate', `certificate "${cert.subject}" is not valid before ${cert.notBefore.toISOString()}`);
  if (now > cert.notAfter) throw new SignatureError('expired-certificate', `certificate "${cert.subject}" expired ${cert.notAfter.toISOString()}`);
}

/** A CA among `candidates` named as `cert`'s issuer whose key verifies `cert`'s signature. */
/**
 * An issuer may sign certificates (key usage keyCertSign, when it states a key usage: RFC 5280 §4.2.1.3)
 * and allows `below` CA certificates under it (pathLenConstraint, §4.2.1.9).
 */
function checkIssuer(issuer: x509.X509Certificate, below: number): void {
  const usage = issuer.getExtension(x509.KeyUsagesExtension);
  if (usage && (usage.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
    throw new SignatureError('untrusted-signer', `CA certificate "${issuer.subject}" may not sign certificates (key usage lacks keyCertSign)`);
  }
  const pathLength = issuer.getExtension(x509.BasicConstraintsExtension)?.pathLength;
  if (pathLength !== undefined && below > pathLength) {
    throw new SignatureError('untrusted-signer', `CA certificate "${issuer.subject}" allows ${pathLength} CA certificate(s) below it, the chain has ${below}`);
  }
}

async function findIssuer(cert: x509.X509Certificate, candidates: x509.X509Certificate[]): Promise<x509.X509Certificate | undefined> {
  for (const c of candidates) {
    if (c.subject !== cert.issuer || !isCa(c)) continue;
    if (await cert.verify({ publicKey: c.publicKey, signatureOnly: true }).catch(() => false)) return c;
  }
  return undefined;
}
