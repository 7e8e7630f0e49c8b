/**
 * PKCS#11 TEE backend: the workload-decryption key is an RSA-2048 pair generated IN the token (label
 * `edgeward-workload-key`; private half CKA_SENSITIVE, not CKA_EXTRACTABLE, CKA_PRIVATE, CKA_DECRYPT /
 * CKA_UNWRAP), created on first open and found by label afterwards. Its policy kind is `pkcs11-token`: the key
 * is bound to the token (whoever holds the token and its user PIN can unwrap), NOT to a measurement of the
 * runtime — a changed runtime on the same device still unwraps. Say so to publishers.
 *
 * Unwrap: CKM_RSA_PKCS_OAEP (SHA-256, MGF1-SHA-256) in the token when the token accepts those parameters;
 * SoftHSM2 2.6 implements OAEP with SHA-1 only, so then the token does the raw RSA private operation
 * (CKM_RSA_X_509) and the OAEP-SHA256 padding is checked here (oaep.ts). The private key never leaves the
 * token either way; `unwrapPath` tells which path ran.
 *
 * Seal master: AES-256-GCM in the token under a non-extractable secret key (`edgeward-seal-master`, made on
 * first seal). Blob: "EWPM" ‖ IV (12) ‖ ciphertext (32) ‖ tag (16), AAD "EWPM". Bound to the token only, so
 * `checkMaster` has nothing to check.
 *
 * Labels are outside the key store's `edgeward/` prefix so the key service's reconcile never touches them.
 * Both keys are generated under `<label>.pending` and then relabelled (`nameGenerated`, reliability H1): a
 * kill inside SoftHSM2's generation leaves only pending objects, which the next open destroys.
 * One session of its own, operations serialised.
 */
import { createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import type * as P from 'pkcs11js';
import type { Pkcs11Options } from '../support/options.js';
import { StartupError } from '../support/errors.js';
import { acquireLibrary, codeOf, findTokenSlot, login, readPin, releaseLibrary, type Handle } from '../pkcs11/library.js';
import { findByLabel, findObjects, nameGenerated } from '../pkcs11/objects.js';
import { gcm, oaep } from '../pkcs11/mechanisms.js';
import { publicKeySpki, secretKeyTemplate } from '../pkcs11/templates.js';
import { oaepSha256Decode } from './oaep.js';
import { TeeError, checkExpectedPolicy, checkMasterSecret, keyIdOf, type DeviceKeyInfo, type KeyPolicyDescription, type TeeBackend } from './port.js';

const p = pkcs11js;

export const WORKLOAD_KEY_LABEL = 'edgeward-workload-key';
export const SEAL_MASTER_LABEL = 'edgeward-seal-master';
const MODULUS_BYTES = 256;
const MAGIC = Buffer.from('EWPM');

export type UnwrapPath = 'token-oaep-sha256' | 'token-raw-rsa+host-oaep-sha256';

/**
 * The label a key is generated under before it gets its final one (`nameGenerated`): what a kill inside
 * SoftHSM2's generation leaves carries it, and every open destroys it.
 */
const pendingOf = (label: string): string => `${label}.pending`;

/** Destroy what a kill during generation left under `label`'s pending label. */
function sweepPending(m: P.PKCS11, s: Handle, label: string): void {
  for (const o of findObjects(m, s, [{ type: p.CKA_LABEL, value: pendingOf(label) }])) m.C_DestroyObject(s, o.handle);
}

/** The pair's templates: RSA-2048, private half sensitive and never extractable. */
function workloadPairTemplates(id: Buffer): { pub: P.Template; priv: P.Template } {
  const common: P.Template = [{ type: p.CKA_TOKEN, value: true }, { type: p.CKA_LABEL, value: pendingOf(WORKLOAD_KEY_LABEL) }, { type: p.CKA_ID, value: id }];
  return {
    pub: [
      { type: p.CKA_CLASS, value: p.CKO_PUBLIC_KEY }, ...common, { type: p.CKA_PRIVATE, value: false },
      { type: p.CKA_MODULUS_BITS, value: 2048 }, { type: p.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
      { type: p.CKA_ENCRYPT, value: true }, { type: p.CKA_WRAP, value: true },
    ],
    priv: [
      { type: p.CKA_CLASS, value: p.CKO_PRIVATE_KEY }, ...common, { type: p.CKA_PRIVATE, value: true },
      { type: p.CKA_SENSITIVE, value: true }, { type: p.CKA_EXTRACTABLE, value: false },
      { type: p.CKA_DECRYPT, value: true }, { type: p.CKA_UNWRAP, value: true }, { type: p.CKA_SIGN, value: false },
    ],
  };
}

/**
 * The pair under WORKLOAD_KEY_LABEL. What a crash inside its generation left (pending objects, a lone half
 * after the first relabel) is destroyed and the pair made again.
 */
function findOrCreatePair(m: P.PKCS11, s: Handle): { priv: Handle; pub: Handle; created: boolean } {
  const objs = findByLabel(m, s, WORKLOAD_KEY_LABEL);
  const priv = objs.find((o) => o.cls === p.CKO_PRIVATE_KEY)?.handle;
  const pub = objs.find((o) => o.cls === p.CKO_PUBLIC_KEY)?.handle;
  if (priv && pub) return { priv, pub, created: false };
  for (const o of objs) m.C_DestroyObject(s, o.handle);
  const t = workloadPairTemplates(randomBytes(16));
  const kp = m.C_GenerateKeyPair(s, { mechanism: p.CKM_RSA_PKCS_KEY_PAIR_GEN }, t.pub, t.priv);
  nameGenerated(m, s, WORKLOAD_KEY_LABEL, [kp.publicKey, kp.privateKey]);
  return { priv: kp.privateKey, pub: kp.publicKey, created: true };
}

/** A StartupError (library, token, PIN) or a pkcs11js error as a TeeError that never carries the PIN. */
function toTeeError(err: unknown, what: string): TeeError {
  if (err instanceof TeeError) return err;
  if (err instanceof StartupError) return new TeeError('unavailable', `${err.message}${err.hint ? ` (${err.hint})` : ''}`);
  return new TeeError('unavailable', `PKCS#11 token unavailable during ${what}: ${(err as Error).message.split(':')[0]}`);
}

export class Pkcs11TeeBackend implements TeeBackend {
  readonly name = 'pkcs11';
  private queue: Promise<unknown> = Promise.resolve();
  private path: UnwrapPath | undefined;
  private closed = false;
  /** The workload key's modulus, big-endian (rawUnwrap's range check). */
  private readonly modulus: Buffer;

  private constructor(
    private readonly m: P.PKCS11,
    private readonly library: string,
    private readonly session: Handle,
    private readonly token: { label: string; serial: string },
    private readonly priv: Handle,
    private readonly publicKey: KeyObject,
    /** Whether the pair was generated by this open. */
    readonly created: boolean,
  ) {
    this.modulus = Buffer.from((publicKey.export({ format: 'jwk' }) as { n: string }).n, 'base64url');
  }

  /** Load the library, find the token, log in, and find (or generate) the workload key pair. Throws TeeError. */
  static async open(cfg: Pkcs11Options): Promise<Pkcs11TeeBackend> {
    let m: P.PKCS11;
    try {
      m = acquireLibrary(cfg.library);
    } catch (err) {
      throw toTeeError(err, 'open');
    }
    let session: Handle | undefined;
    try {
      const token = findTokenSlot(m, cfg);
      session = m.C_OpenSession(token.slot, p.CKF_SERIAL_SESSION | p.CKF_RW_SESSION);
      login(m, session, readPin(cfg), token.label);
      for (const label of [WORKLOAD_KEY_LABEL, SEAL_MASTER_LABEL]) sweepPending(m, session, label);
      const pair = findOrCreatePair(m, session);
      const pub = createPublicKey({ key: publicKeySpki(m, session, pair.pub, 'rsa-2048'), format: 'der', type: 'spki' });
      return new Pkcs11TeeBackend(m, cfg.library, session, { label: token.label, serial: token.serial }, pair.priv, pub, pair.created);
    } catch (err) {
      if (session) closeQuietly(m, session);
      releaseLibrary(cfg.library);
      throw toTeeError(err, 'open');
    }
  }

  /** Which unwrap path the token needed (known after the first unwrap). */
  get unwrapPath(): UnwrapPath | undefined {
    return this.path;
  }

  policy(): KeyPolicyDescription {
    return {
      kind: 'pkcs11-token',
      description: `bound to the token (non-extractable RSA-2048 key on PKCS#11 token "${this.token.label}", serial ${this.token.serial}), not to a measurement: any runtime holding the token and its PIN can unwrap`,
    };
  }

  async deviceKey(): Promise<DeviceKeyInfo> {
    return { keyId: keyIdOf(this.publicKey), publicPem: this.publicKey.export({ type: 'spki', format: 'pem' }).toString(), policy: this.policy() };
  }

  /** Serialise the calls on the one session. */
  private run<T>(fn: () => T): Promise<T> {
    const next = this.queue.then(() => {
      if (this.closed) throw new TeeError('unavailable', 'the PKCS#11 TEE backend is closed');
      return fn();
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  async unwrap(wrappedKey: Buffer, expected?: KeyPolicyDescription): Promise<Buffer> {
    checkExpectedPolicy(this.policy(), expected);
    if (wrappedKey.length !== MODULUS_BYTES) throw new TeeError('unwrap-failed', 'the content key is not wrapped to this device key (wrong length)');
    return this.run(() => {
      if (this.path !== 'token-raw-rsa+host-oaep-sha256') {
        const inToken = this.tryTokenOaep(wrappedKey);
        if (inToken) return inToken;
      }
      return this.rawUnwrap(wrappedKey);
    });
  }

  /** OAEP-SHA256 in the token; undefined when the token refuses the parameters (then the raw path is remembered). */
  private tryTokenOaep(wrappedKey: Buffer): Buffer | undefined {
    try {
      this.m.C_DecryptInit(this.session, oaep('rsa-oaep-sha256'), this.priv);
    } catch (err) {
      const c = codeOf(err);
      if (c === p.CKR_MECHANISM_PARAM_INVALID || c === p.CKR_ARGUMENTS_BAD || c === p.CKR_MECHANISM_INVALID) {
        this.path = 'token-raw-rsa+host-oaep-sha256';
        return undefined;
      }
      throw toTeeError(err, 'unwrap');
    }
    try {
      const out = this.m.C_Decrypt(this.session, wrappedKey, Buffer.alloc(MODULUS_BYTES));
      this.path = 'token-oaep-sha256';
      return Buffer.from(out);
    } catch {
      throw new TeeError('unwrap-failed', 'the content key is not wrapped to this device key (the token refused it)');
    }
  }

  /** Raw RSA (CKM_RSA_X_509) in the token, OAEP-SHA256 decoding here. */
  private rawUnwrap(wrappedKey: Buffer): Buffer {
    // An RSA ciphertext of this key is below its modulus (RFC 8017 §5.1.2); one that is not was wrapped to
    // another key. SoftHSM2 answers it CKR_GENERAL_ERROR, which would read as the token being unavailable.
    if (this.modulus.length === wrappedKey.length && Buffer.compare(wrappedKey, this.modulus) >= 0) throw new TeeError('unwrap-failed', 'the content key is not wrapped to this device key');
    let em: Buffer;
    try {
      this.m.C_DecryptInit(this.session, { mechanism: p.CKM_RSA_X_509 }, this.priv);
      em = Buffer.from(this.m.C_Decrypt(this.session, wrappedKey, Buffer.alloc(MODULUS_BYTES)));
    } catch (err) {
      const c = codeOf(err);
      if (c === p.CKR_ENCRYPTED_DATA_INVALID || c === p.CKR_ENCRYPTED_DATA_LEN_RANGE) throw new TeeError('unwrap-failed', 'the content key is not wrapped to this device key');
      throw toTeeError(err, 'unwrap');
    }
    const key = oaepSha256Decode(em, MODULUS_BYTES);
    if (!key) throw new TeeError('unwrap-failed', 'the content key is not wrapped to this device key');
    return key;
  }

  /** The seal key, made on first use when `create`; undefined when absent and not to be made. */
  private sealKey(create: boolean): Handle | undefined {
    const found = findByLabel(this.m, this.session, SEAL_MASTER_LABEL).find((o) => o.cls === p.CKO_SECRET_KEY)?.handle;
    if (found || !create) return found;
    const t = secretKeyTemplate('aes-256-gcm', pendingOf(SEAL_MASTER_LABEL), randomBytes(16));
    const key = this.m.C_GenerateKey(this.session, t.mechanism, t.template);
    nameGenerated(this.m, this.session, SEAL_MASTER_LABEL, [key]);
    return key;
  }

  async sealMaster(secret: Buffer): Promise<Buffer> {
    checkMasterSecret(secret);
    return this.run(() => {
      try {
        const key = this.sealKey(true)!;
        const iv = randomBytes(12);
        this.m.C_EncryptInit(this.session, gcm(iv, MAGIC), key);
        const body = Buffer.from(this.m.C_Encrypt(this.session, secret, Buffer.alloc(secret.length + 16)));
        return Buffer.concat([MAGIC, iv, body]);
      } catch (err) {
        throw toTeeError(err, 'seal');
      }
    });
  }

  async unsealMaster(blob: Buffer): Promise<Buffer> {
    if (blob.length !== 4 + 12 + 32 + 16 || !blob.subarray(0, 4).equals(MAGIC)) throw new TeeError('protocol', 'the sealed master secret is not a PKCS#11-backend blob');
    return this.run(() => {
      let key: Handle | undefined;
      try {
        key = this.sealKey(false);
        if (key) this.m.C_DecryptInit(this.session, gcm(blob.subarray(4, 16), MAGIC), key);
      } catch (err) {
        throw toTeeError(err, 'unseal');
      }
      if (!key) throw new TeeError('unwrap-failed', `the sealed master secret is not this token's: token "${this.token.label}" has no ${SEAL_MASTER_LABEL} key`);
      try {
        return Buffer.from(this.m.C_Decrypt(this.session, blob.subarray(16), Buffer.alloc(48)));
      } catch {
        throw new TeeError('unwrap-failed', `the sealed master secret was not sealed by token "${this.token.label}" (or is damaged)`);
      }
    });
  }

  /** Bound to the token, not to a measurement: nothing can change that would make the blob fail. Always holds. */
  async checkMaster(): Promise<void> {}

  async close(): Promise<void> {
    await this.queue;
    if (this.closed) return;
    this.closed = true;
    closeQuietly(this.m, this.session);
    releaseLibrary(this.library);
  }
}

function closeQuietly(m: P.PKCS11, s: Handle): void {
  try {
    m.C_CloseSession(s);
  } catch {
    // token gone: nothing to release
  }
}
