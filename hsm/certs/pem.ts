/**
 * Reading certificates with node:crypto alone. The certificate service reads its Edge CA chain at every
 * start (validity, public key, PEM) and issues with der.ts; neither loads @peculiar/x509 and its ASN.1
 * schemas (~6-7 MiB resident for the daemon's lifetime).
 */
import { X509Certificate, type KeyObject } from 'node:crypto';

/** A parsed certificate: what the certificate service reads of it. */
export class Certificate {
  private readonly x: X509Certificate;
  /** PEM, without a trailing newline (as @peculiar/x509 writes it). */
  readonly pem: string;
  readonly notBefore: Date;
  readonly notAfter: Date;

  constructor(pem: string) {
    this.x = new X509Certificate(pem);
    this.pem = this.x.toString().trimEnd();
    this.notBefore = new Date(this.x.validFrom);
    this.notAfter = new Date(this.x.validTo);
  }

  /** RFC 4514-style subject, e.g. "CN=aziot-edge CA dev1". */
  get subject(): string {
    return this.x.subject.split('\n').join(', ');
  }

  /** Lower-case hex. */
  get serialNumber(): string {
    return this.x.serialNumber.toLowerCase();
  }

  get publicKey(): KeyObject {
    return this.x.publicKey;
  }

  /** The certificate, DER. */
  get der(): Buffer {
    return this.x.raw;
  }

  /** The public key, SPKI DER. */
  get spki(): Buffer {
    return this.x.publicKey.export({ type: 'spki', format: 'der' });
  }

  toString(_format: 'pem' = 'pem'): string {
    return this.pem;
  }
}

const PEM_CERT_RE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The CERTIFICATE blocks of a PEM text, in order, unparsed. */
export function pemCertBlocks(text: string): string[] {
  return text.match(PEM_CERT_RE) ?? [];
}

/** Every certificate in a PEM text, in order. Throws if one does not parse. */
export function readPemCerts(text: string): Certificate[] {
  return pemCertBlocks(text).map((pem) => new Certificate(pem));
}

/** Certificates (parsed, or just issued: der.ts) as one PEM text, one per block, newline-terminated. */
export function pemChain(certs: readonly { pem: string }[]): string {
  return certs.map((c) => c.pem).join('\n') + '\n';
}
