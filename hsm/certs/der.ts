/**
 * Issuing the certificates the certificate service makes (CertRequest, below: quickstart root and Edge
 * CA, module server and identity certificates) with a small DER encoder and node:crypto, so issuing one
 * does not load @peculiar/x509 and its ASN.1 schemas (~6 MiB resident for the daemon's lifetime; a module
 * asking for its server certificate at start is the common case). The encoding is the one @peculiar/x509
 * produces for the same request, byte for byte (test/certs.der.test.ts compares the to-be-signed parts);
 * the issuer's name is copied from its certificate's DER, as RFC 5280 §4.1.2.4 name chaining wants.
 */
import { createHash, createPublicKey, randomBytes, X509Certificate } from 'node:crypto';
import { ipBytes } from '../support/ip.js';
import { DAEMON_CALLER, type KeyService, type SignAlgorithm } from '../keys/index.js';
import type { HsmSigningKey } from './hsm-crypto.js';

/** An issuer for `issueCertificateDer`: its certificate (DER) and its signing key in the key service. */
export interface DerIssuer {
  certDer: Uint8Array;
  key: HsmSigningKey;
}

/** The issued certificate: DER, PEM (no trailing newline) and its end of validity. */
export interface IssuedDer {
  der: Buffer;
  pem: string;
  notAfter: Date;
}

// --- DER encoding -----------------------------------------------------------------------------------

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Uint8Array[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
}

const seq = (...c: Uint8Array[]) => tlv(0x30, ...c);
const set = (...c: Uint8Array[]) => tlv(0x31, ...c);
const octets = (b: Uint8Array) => tlv(0x04, b);
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0x00]));
const bitString = (b: Uint8Array, unused = 0) => tlv(0x03, Buffer.from([unused]), b);
const explicit = (n: number, ...c: Uint8Array[]) => tlv(0xa0 | n, ...c);

/** A non-negative INTEGER from big-endian magnitude bytes (minimal, with a 0x00 when the top bit is set). */
function uint(bytes: Uint8Array): Buffer {
  let b = Buffer.from(bytes);
  while (b.length > 1 && b[0] === 0 && b[1]! < 0x80) b = b.subarray(1);
  if (b[0]! >= 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out: number[] = [40 * parts[0]! + parts[1]!];
  for (const p of parts.slice(2)) {
    const b: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) b.unshift(0x80 | (v & 0x7f));
    out.push(...b);
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5). */
function time(d: Date): Buffer {
  const p = (n: number) => String(n).padStart(2, '0');
  const y = d.getUTCFullYear();
  const rest = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  return y < 2050 ? tlv(0x17, Buffer.from(`${p(y % 100)}${rest}`, 'latin1')) : tlv(0x18, Buffer.from(`${y}${rest}`, 'latin1'));
}

// --- Reading the little needed from DER --------------------------------------------------------------

/** The TLV at `at`: where its content starts and where it ends. */
function read(der: Uint8Array, at: number): { tag: number; start: number; end: number } {
  const tag = der[at]!;
  let i = at + 1;
  let n = der[i++]!;
  if (n >= 0x80) {
    const k = n & 0x7f;
    n = 0;
    for (let j = 0; j < k; j++) n = n * 256 + der[i++]!;
  }
  if (i + n > der.length) throw new Error('truncated DER');
  return { tag, start: i, end: i + n };
}

/** The subject Name of a certificate, as DER (tbsCertificate's sixth field, after the optional version). */
export function subjectDerOf(certDer: Uint8Array): Buffer {
  const cert = read(certDer, 0);
  const tbs = read(certDer, cert.start);
  let at = tbs.start;
  const fields: { start: number; end: number; at: number; tag: number }[] = [];
  while (at < tbs.end && fields.length < 6) {
    const f = read(certDer, at);
    fields.push({ ...f, at });
    at = f.end;
  }
  const body = fields[0]?.tag === 0xa0 ? fields.slice(1) : fields;
  const subject = body[4];
  if (!subject || subject.tag !== 0x30) throw new Error('certificate without a subject');
  return Buffer.from(certDer.subarray(subject.at, subject.end));
}

/** The subjectPublicKey bits of an SPKI (DER): what key identifiers are the SHA-1 of (RFC 5280 §4.2.1.2 (1)). */
function publicKeyBits(spki: Uint8Array): Buffer {
  const outer = read(spki, 0);
  const alg = read(spki, outer.start);
  const bits = read(spki, alg.end);
  if (bits.tag !== 0x03) throw new Error('not a SubjectPublicKeyInfo');
  return Buffer.from(spki.subarray(bits.start + 1, bits.end));
}

const keyIdentifier = (spki: Uint8Array) => createHash('sha1').update(publicKeyBits(spki)).digest();

// --- The certificate ---------------------------------------------------------------------------------

const OID = {
  cn: '2.5.4.3',
  ski: '2.5.29.14',
  keyUsage: '2.5.29.15',
  san: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  aki: '2.5.29.35',
  eku: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
};

/**
 * A Name of one CN (the subjects the service makes: `CN=<dnValue(...)>`), as @peculiar/x509 writes it:
 * PrintableString when every character allows it, else UTF8String.
 */
function cnName(subject: string): Buffer {
  const m = /^CN=((?:\\.|[^\\,+;])*)$/s.exec(subject);
  if (!m) throw new Error(`subject "${subject}" is not a single CN`);
  const value = m[1]!.replace(/\\(.)/gs, '$1');
  const printable = /^[A-Za-z0-9 '()+,\-./:=?]*$/.test(value);
  return seq(set(seq(oid(OID.cn), tlv(printable ? 0x13 : 0x0c, Buffer.from(value, 'utf8')))));
}

function extension(id: string, critical: boolean, value: Uint8Array): Buffer {
  return seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
}

/** KeyUsage bits (RFC 5280 §4.2.1.3, bit 0 first) as a minimal BIT STRING. */
function keyUsage(bits: number[]): Buffer {
  let v = 0;
  for (const b of bits) v |= 0x8000 >> b;
  const bytes = v & 0xff ? [v >> 8, v & 0xff] : [v >> 8];
  const last = bytes[bytes.length - 1]!;
  let unused = 0;
  while (unused < 8 && (last & (1 << unused)) === 0) unused++;
  return bitString(Buffer.from(bytes), unused);
}

const KU = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6 };

/** An iPAddress SAN's octets (hsm/support/ip.ts); the names come from splitSans, which keeps only IP literals here. */
function ipAddress(v: string): Buffer {
  const b = ipBytes(v);
  if (!b) throw new Error(`not an IP address: ${v}`);
  return b;
}

function signatureAlgorithm(key: HsmSigningKey): { der: Buffer; service: SignAlgorithm } {
  const a = key.algorithm;
  if (a.name === 'ECDSA') return a.hash === 'SHA-384' ? { der: seq(oid('1.2.840.10045.4.3.3')), service: 'ecdsa-sha384' } : { der: seq(oid('1.2.840.10045.4.3.2')), service: 'ecdsa-sha256' };
  return { der: seq(oid('1.2.840.113549.1.1.11'), tlv(0x05)), service: 'rsa-pkcs1-sha256' };
}

/** What to issue: the subject, its public key, validity and kind, and its subject alternative names. */
export interface CertRequest {
  subject: string;
  /** Subject public key, SPKI DER. */
  publicKey: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  kind: 'root-ca' | 'intermediate-ca' | 'server' | 'client';
  dnsNames?: string[];
  ipAddresses?: string[];
  uris?: string[];
  /** Hex; a random positive 127-bit serial when absent. */
  serialNumber?: string;
}

/** Positive 127-bit serial (RFC 5280 §4.1.2.2: at most 20 octets, non-negative), hex. */
export function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b.toString('hex');
}

/** The to-be-signed certificate of `req`, issued by `issuer` (or self-issued). */
export function tbsCertificate(req: CertRequest & { serialNumber: string }, signing: HsmSigningKey, issuer?: { certDer: Uint8Array }): Buffer {
  createPublicKey({ key: Buffer.from(req.publicKey), format: 'der', type: 'spki' }); // throws if it is not an SPKI
  const spki = Buffer.from(req.publicKey);
  const subject = cnName(req.subject);
  const issuerName = issuer ? subjectDerOf(issuer.certDer) : subject;
  const exts: Buffer[] = [extension(OID.ski, false, octets(keyIdentifier(spki)))];
  if (req.kind === 'root-ca' || req.kind === 'intermediate-ca') {
    exts.push(extension(OID.basicConstraints, true, seq(bool(true), ...(req.kind === 'intermediate-ca' ? [uint(Buffer.from([0]))] : []))));
    exts.push(extension(OID.keyUsage, true, keyUsage([KU.digitalSignature, KU.keyCertSign, KU.cRLSign])));
  } else {
    exts.push(extension(OID.basicConstraints, true, seq()));
    exts.push(extension(OID.keyUsage, true, keyUsage([KU.digitalSignature, KU.keyEncipherment])));
    exts.push(extension(OID.eku, false, seq(oid(req.kind === 'server' ? OID.serverAuth : OID.clientAuth))));
  }
  const names = [
    ...(req.dnsNames ?? []).map((v) => tlv(0x82, Buffer.from(v, 'latin1'))),
    ...(req.ipAddresses ?? []).map((v) => tlv(0x87, ipAddress(v))),
    ...(req.uris ?? []).map((v) => tlv(0x86, Buffer.from(v, 'latin1'))),
  ];
  if (names.length > 0) exts.push(extension(OID.san, false, seq(...names)));
  if (issuer) {
    const issuerSpki = new X509Certificate(Buffer.from(issuer.certDer)).publicKey.export({ type: 'spki', format: 'der' });
    exts.push(extension(OID.aki, false, seq(tlv(0x80, keyIdentifier(issuerSpki)))));
  }
  return seq(
    explicit(0, uint(Buffer.from([2]))),
    uint(Buffer.from(req.serialNumber, 'hex')),
    signatureAlgorithm(signing).der,
    issuerName,
    seq(time(req.notBefore), time(req.notAfter)),
    subject,
    spki,
    explicit(3, seq(...exts)),
  );
}

/** Issue `req`, signed in the key service by `issuer` (or self-signed by `selfKey` for a root). */
export async function issueCertificateDer(keys: KeyService, req: CertRequest & { serialNumber?: string }, issuer: DerIssuer | { selfKey: HsmSigningKey }): Promise<IssuedDer> {
  const signing = 'selfKey' in issuer ? issuer.selfKey : issuer.key;
  const tbs = tbsCertificate({ ...req, serialNumber: req.serialNumber ?? randomSerial() }, signing, 'certDer' in issuer ? issuer : undefined);
  const alg = signatureAlgorithm(signing);
  // The key service returns ECDSA signatures as DER (RFC 3279), the form a certificate carries.
  const sig = await keys.sign(DAEMON_CALLER, signing.handle, alg.service, tbs);
  const der = seq(tbs, alg.der, bitString(sig));
  const pem = new X509Certificate(der).toString().trimEnd();
  return { der, pem, notAfter: new Date(Math.floor(req.notAfter.getTime() / 1000) * 1000) };
}
