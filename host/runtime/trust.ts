/**
 * The device's trusted module signers (`[modules] trusted_signers`): public keys, trusted as they are, and
 * CA certificates, to which a signer's certificate must chain. Trust comes only from here, never from a
 * manifest: a manifest names its signer, and this store decides whether that signer counts.
 *
 * Path validation is deliberately small (RFC 5280 §6.1 subset): each link's signature, every
 * certificate's validity period, `cA` on every issuer, `digitalSignature` and code signing on the leaf when
 * it has a key usage or an extended key usage; the chain ends at a trusted certificate. No revocation (devices are often offline).
 */
import 'reflect-metadata'; // @peculiar/x509 (tsyringe) needs it before its first import
import { createPublicKey, type KeyObject } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as x509 from '@peculiar/x509';
import { MAX_TRUSTED_SIGNERS, SignatureError, spkiId, UNSIGNED, verifyDetached, type SignatureMaterial, type SignaturePolicy } from './signature.js';

/** Most certificates a signer chain may carry (leaf + intermediates), and most links walked. */
export const MAX_CHAIN_CERTS = 5;

const PEM_RE = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/g;

/** A verified signer: its key, `sha256:<hex of SPKI>`, and the certificate subject when one was used. */
export interface VerifiedSigner {
  key: KeyObject;
  id: string;
  subject?: string;
}

/** A trusted-signer file that cannot be used; the daemon reports it as a config error. */
export class TrustConfigError extends Error {
  constructor(readonly index: number, message: string) {
    super(message);
    this.name = 'TrustConfigError';
  }
}

function pemBlocks(text: string): { label: string; pem: string }[] {
  return [...text.matchAll(PEM_RE)].map((m) => ({ label: m[1]!, pem: m[0] }));
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

/** What the runtime enforces: the policy and the signers this device trusts (from its config). */
export interface ModuleTrust {
  policy: SignaturePolicy;
  store: TrustStore;
  /**
   * The signers a `security-extension` must be signed by (`[security_extensions] trusted_signers`), always
   * under the "required" policy; none when absent.
   */
  extensions?: TrustStore;
}

/** The registration's view of a verified module: `signer` is `sha256:<SPKI hex>` or "unsigned". */
export interface SignerIdentity {
  signer: string;
  signerSubject?: string;
}

/**
 * Check `material` over `bytes` (the buffer the loader measured) under `trust`. Unsigned passes only under
 * "optional"; a module that carries a signature must verify whatever the policy.
 */
export async function verifyModule(module: string, bytes: Uint8Array, material: SignatureMaterial | undefined, trust: ModuleTrust, now = new Date()): Promise<SignerIdentity> {
  if (!material) {
    if (trust.policy === 'required') throw new SignatureError('missing-signature', `module "${module}" is not signed and this device requires signed modules (signature_policy = "required")`);
    return { signer: UNSIGNED };
  }
  try {
    const who = await trust.store.verifySigner(material.signer, now);
    if (!verifyDetached(who.key, bytes, Buffer.from(material.value, 'base64'))) {
      throw new SignatureError('bad-signature', `the signature by ${who.id} does not verify over the component bytes`);
    }
    return { signer: who.id, ...(who.subject ? { signerSubject: who.subject } : {}) };
  } catch (err) {
    if (err instanceof SignatureError) err.message = `module "${module}": ${err.message}`;
    throw err;
  }
}

export class TrustStore {
  private constructor(private readonly keys: Map<string, KeyObject>, private readonly anchors: x509.X509Certificate[]) {}

  /** Trusts nothing: every signed module is refused as untrusted. */
  static empty(): TrustStore {
    return new TrustStore(new Map(), []);
  }

  /** Parse PEM texts (public keys and/or certificates); `index` in errors is the text's position. */
  static fromPem(texts: string[]): TrustStore {
    const keys = new Map<string, KeyObject>();
    const anchors: x509.X509Certificate[] = [];
    texts.forEach((text, index) => {
      const blocks = pemBlocks(text);
      if (blocks.length === 0) throw new TrustConfigError(index, 'no PEM public key or certificate found');
      for (const b of blocks) {
        try {
          if (b.label === 'CERTIFICATE') anchors.push(new x509.X509Certificate(b.pem));
          else if (b.label === 'PUBLIC KEY' || b.label === 'RSA PUBLIC KEY') {
            const key = createPublicKey(b.pem);
            keys.set(spkiId(key), key);
          } else throw new Error(`a "${b.label}" block is not a public key or certificate`);
        } catch (err) {
          throw new TrustConfigError(index, (err as Error).message.split('\n')[0] ?? 'unreadable');
        }
      }
    });
    return new TrustStore(keys, anchors);
  }

  /** Read `[modules] trusted_signers` files. */
  static async load(files: readonly string[]): Promise<TrustStore> {
    if (files.length > MAX_TRUSTED_SIGNERS) throw new TrustConfigError(MAX_TRUSTED_SIGNERS, `at most ${MAX_TRUSTED_SIGNERS} trusted signers`);
    const texts = await Promise.all(files.map((f, i) => fs.readFile(f, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new TrustConfigError(i, `${f}: cannot read (${e.code ?? e.message})`);
    })));
    return TrustStore.fromPem(texts);
  }

  get size(): number {
    return this.keys.size + this.anchors.length;
  }

  /** Decide whether the signer a module names (PEM key, or certificate chain leaf first) is trusted now. */
  async verifySigner(signerPem: string, now: Date): Promise<VerifiedSigner> {
    const blocks = pemBlocks(signerPem);
    const certs = blocks.filter((b) => b.label === 'CERTIFICATE');
    if (certs.length === 0) {
      const keyBlock = blocks.find((b) => b.label === 'PUBLIC KEY' || b.label === 'RSA PUBLIC KEY');
      if (!keyBlock) throw new SignatureError('malformed-signature', 'signer: expected a PEM public key or certificate');
      const key = parse(() => createPublicKey(keyBlock.pem), 'signer public key');
      const id = spkiId(key);
      if (!this.keys.has(id)) throw new SignatureError('untrusted-signer', `signer ${id} is not a trusted signer on this device`);
      return { key, id };
    }
    if (certs.length > MAX_CHAIN_CERTS) throw new SignatureError('malformed-signature', `signer: more than ${MAX_CHAIN_CERTS} certificates`);
    const chain = certs.map((c) => parse(() => new x509.X509Certificate(c.pem), 'signer certificate'));
    const leaf = chain[0]!;
    const key = keyOfCert(leaf);
    const id = spkiId(key);
    checkLeafUsage(leaf);
    await this.validatePath(leaf, chain.slice(1), now, this.keys.has(id));
    return { key, id, subject: leaf.subject };
  }

  /** Walk leaf → issuer until a trusted certificate (or a leaf whose key is itself trusted). */
  private async validatePath(leaf: x509.X509Certificate, intermediates: x509.X509Certificate[], now: Date, keyTrusted: boolean): Promise<void> {
    let cur = leaf;
    for (let depth = 0; depth <= MAX_CHAIN_CERTS; depth++) {
      checkValidity(cur, now);
      if ((depth === 0 && keyTrusted) || this.anchors.some((a) => sameCert(a, cur))) return;
      // `depth` CA certificates sit between the issuer looked for now and the leaf (RFC 5280 §4.2.1.9).
      const anchor = await findIssuer(cur, this.anchors);
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
}

function parse<T>(fn: () => T, what: string): T {
  try {
    return fn();
  } catch (err) {
    throw new SignatureError('malformed-signature', `${what}: ${(err as Error).message.split('\n')[0]}`);
  }
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
