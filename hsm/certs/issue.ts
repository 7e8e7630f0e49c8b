/**
 * Building certificates whose issuer key stays in the key service: the Edge CA (self-signed root and Edge CA
 * for quickstart) and module server and identity certificates, with the extensions IoT Edge sets.
 */
import 'reflect-metadata'; // @peculiar/x509 (tsyringe) needs it before its first import
import * as x509 from '@peculiar/x509';
import type { KeyService } from '../keys/index.js';
import { hsmCrypto, type HsmSigningKey } from './hsm-crypto.js';
import { randomSerial, type CertRequest } from './der.js';
import { pemCertBlocks } from './pem.js';

export type { CertRequest } from './der.js';

/** An issuer: its certificate and a signing key that lives in the key service. */
export interface Issuer {
  cert: x509.X509Certificate;
  key: HsmSigningKey;
}

/** Issue `req`, signed by `issuer` (or self-signed by `selfKey` for a root). */
export async function issueCertificate(keys: KeyService, req: CertRequest, issuer: Issuer | { selfKey: HsmSigningKey }): Promise<x509.X509Certificate> {
  const crypto = hsmCrypto(keys);
  const publicKey = new x509.PublicKey(toArrayBuffer(req.publicKey));
  const extensions: x509.Extension[] = [await x509.SubjectKeyIdentifierExtension.create(publicKey, false, crypto)];
  const isCa = req.kind === 'root-ca' || req.kind === 'intermediate-ca';
  if (isCa) {
    // Edge CA as IoT Edge makes it: basicConstraints critical CA:TRUE pathlen:0, keyUsage keyCertSign.
    extensions.push(new x509.BasicConstraintsExtension(true, req.kind === 'intermediate-ca' ? 0 : undefined, true));
    extensions.push(new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true));
  } else {
    extensions.push(new x509.BasicConstraintsExtension(false, undefined, true));
    extensions.push(new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true));
    extensions.push(new x509.ExtendedKeyUsageExtension([req.kind === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth], false));
  }
  const names: x509.JsonGeneralName[] = [
    ...(req.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(req.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
    ...(req.uris ?? []).map((value) => ({ type: 'url' as const, value })),
  ];
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
  if ('cert' in issuer) extensions.push(await x509.AuthorityKeyIdentifierExtension.create(issuer.cert.publicKey, false, crypto));
  const signingKey = 'cert' in issuer ? issuer.key : issuer.selfKey;
  return x509.X509CertificateGenerator.create(
    {
      serialNumber: req.serialNumber ?? randomSerial(),
      subject: req.subject,
      issuer: 'cert' in issuer ? issuer.cert.subject : req.subject,
      notBefore: req.notBefore,
      notAfter: req.notAfter,
      publicKey,
      signingKey: signingKey as unknown as x509.X509CertificateCreateWithKeyParams['signingKey'],
      signingAlgorithm: signingKey.algorithm,
      extensions,
    },
    crypto,
  );
}

export function toArrayBuffer(b: Uint8Array): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

/** Every certificate in a PEM text, in order, as @peculiar/x509 reads it. Throws if one does not parse. */
export function parsePemCerts(text: string): x509.X509Certificate[] {
  return pemCertBlocks(text).map((pem) => new x509.X509Certificate(pem));
}
