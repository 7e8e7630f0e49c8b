/**
 * The device's trusted module signers (`[modules] trusted_signers`): public keys, trusted as they are, and
 * CA certificates, to which a signer's certificate must chain. Trust comes only from here, never from a
 * manifest: a manifest names its signer, and this store decides whether that signer counts.
 *
 * Certificate path validation lives in trust-path.ts, loaded (with @peculiar/x509, ~13 MiB resident) only
 * when a signer presents a certificate: a store of raw keys, or an empty one, never loads it. Anchors are
 * checked to be certificates here with node:crypto.
 */
import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { promises as fs } from 'node:fs';
import {
  MAX_CHAIN_CERTS, MAX_TRUSTED_SIGNERS, parse, SignatureError, spkiId, UNSIGNED, verifyDetached, type SignatureMaterial, type SignaturePolicy, type VerifiedSigner,
} from './signature.js';

export { MAX_CHAIN_CERTS, type VerifiedSigner } from './signature.js';

const PEM_RE = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/g;

/** A trusted-signer file that cannot be used; the daemon reports it as a config error. */
export class TrustConfigError extends Error {
  constructor(readonly index: number, message: string) {
    super(message);
    this.name = 'TrustConfigError';
  }
}

export function pemBlocks(text: string): { label: string; pem: string }[] {
  return [...text.matchAll(PEM_RE)].map((m) => ({ label: m[1]!, pem: m[0] }));
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
  private constructor(private readonly keys: Map<string, KeyObject>, private readonly anchors: Buffer[]) {}

  /** Trusts nothing: every signed module is refused as untrusted. */
  static empty(): TrustStore {
    return new TrustStore(new Map(), []);
  }

  /** Parse PEM texts (public keys and/or certificates); `index` in errors is the text's position. */
  static fromPem(texts: string[]): TrustStore {
    const keys = new Map<string, KeyObject>();
    const anchors: Buffer[] = [];
    texts.forEach((text, index) => {
      const blocks = pemBlocks(text);
      if (blocks.length === 0) throw new TrustConfigError(index, 'no PEM public key or certificate found');
      for (const b of blocks) {
        try {
          if (b.label === 'CERTIFICATE') anchors.push(new X509Certificate(b.pem).raw);
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
    const { verifyCertificateSigner } = await import('./trust-path.js');
    return verifyCertificateSigner(certs.map((c) => c.pem), this.anchors, (id) => this.keys.has(id), now);
  }
}
