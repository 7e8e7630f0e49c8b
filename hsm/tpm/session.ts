/**
 * Authorization of TPM commands (Part 1 §19, Part 3 §5–§6): the password session TPM_RS_PW, and HMAC and
 * policy sessions started with TPM2_StartAuthSession, unbound, either unsalted (session key empty, so the
 * HMAC key is the entity's authValue alone) or salted with a secret encrypted to a TPM key (the SRK), which
 * gives a session key no bus observer knows and enables parameter encryption (AES-128-CFB, Part 1 §21) —
 * the protection against sniffing secrets such as unsealed data off the TPM bus. Response HMACs are
 * checked, so a forged "success" from a man in the middle is rejected.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ALG, CC, SE, SESSION_ATTR, digestSize, hashName } from './constants.js';
import { Writer } from './marshal.js';
import { handleName, marshalPcrSelection, type PcrSelection } from './types.js';

/** A TPM response whose session HMAC did not verify. */
export class TpmSessionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TpmSessionError';
  }
}

/** Per-command authorization, as the command layer uses it. */
export interface Authorization {
  readonly sessionHandle: number;
  /** Hash algorithm for cpHash/rpHash, or undefined when no HMAC is computed (password, plain policy). */
  readonly hashAlg: number | undefined;
  /** TPMS_AUTH_COMMAND bytes, given the cpHash (computed with `hashAlg`, empty buffer if none). */
  commandAuth(cpHash: Buffer): Buffer;
  /** Check TPMS_AUTH_RESPONSE given the rpHash; update session nonces. */
  checkResponse(rpHash: Buffer, nonceTpm: Buffer, attrs: number, hmac: Buffer): void;
  /** When set, the content of the command's first TPM2B parameter goes through this (encrypted) before cpHash. */
  encryptCommand?: ((first: Buffer) => Buffer) | undefined;
  /** When set, the content of the response's first TPM2B parameter is decrypted with this after the HMAC check. */
  decryptResponse?: ((first: Buffer) => Buffer) | undefined;
}

export const RS_PW = 0x40000009;

/** Password authorization (TPM_RS_PW): the auth value travels in clear; for empty auths and local use. */
export function passwordAuth(authValue: Uint8Array = Buffer.alloc(0)): Authorization {
  return {
    sessionHandle: RS_PW,
    hashAlg: undefined,
    commandAuth: () => new Writer().u32(RS_PW).b2(Buffer.alloc(0)).u8(SESSION_ATTR.continueSession).b2(authValue).finish(),
    checkResponse: (_rp, nonce, _attrs, hmac) => {
      if (nonce.length !== 0 || hmac.length !== 0) throw new TpmSessionError('password session response carries a nonce or HMAC');
    },
  };
}

/** Strip trailing zero octets (Part 1 §19.6.5: authValue is used without trailing zeros in HMACs). */
function trimAuth(a: Uint8Array): Buffer {
  let n = a.length;
  while (n > 0 && a[n - 1] === 0) n--;
  return Buffer.from(a.subarray(0, n));
}

/**
 * KDFa (Part 1 §11.4.10.2): SP 800-108 counter-mode KDF with HMAC;
 * K(i) = HMAC(key, i || label || 0x00 || contextU || contextV || bits), concatenated and truncated.
 */
export function kdfa(hashAlg: number, key: Buffer, label: string, contextU: Buffer, contextV: Buffer, bits: number): Buffer {
  const h = hashName(hashAlg);
  const out: Buffer[] = [];
  const bitsBuf = handleName(bits);
  const lbl = Buffer.from(label + '\0', 'latin1');
  for (let i = 1, got = 0; got < bits / 8; i++) {
    const k = createHmac(h, key).update(handleName(i)).update(lbl).update(contextU).update(contextV).update(bitsBuf).digest();
    out.push(k);
    got += k.length;
  }
  return Buffer.concat(out).subarray(0, Math.ceil(bits / 8));
}

/** Parameter encryption a session may apply (Part 1 §21): AES-128-CFB with keys from KDFa("CFB"). */
export const AES128_CFB = { algorithm: ALG.AES, keyBits: 128, mode: ALG.CFB } as const;

/** A session started with TPM2_StartAuthSession. */
export class Session {
  /** The TPM's most recent nonce. */
  nonceTpm: Buffer;
  /** False once the TPM has dropped the session (a command sent with continueSession clear). */
  open = true;

  constructor(
    readonly handle: number,
    readonly type: number,
    readonly hashAlg: number,
    nonceTpm: Buffer,
    /** Empty for unsalted, unbound sessions; KDFa(salt, "ATH", …) for salted ones (Part 1 §19.6.8). */
    readonly sessionKey: Buffer = Buffer.alloc(0),
    /** The session's parameter-encryption algorithm, if any. */
    readonly symmetric: typeof AES128_CFB | null = null,
  ) {
    this.nonceTpm = nonceTpm;
  }

  get isPolicy(): boolean {
    return this.type === SE.POLICY || this.type === SE.TRIAL;
  }

  /**
   * Authorize one command with this session. For HMAC sessions the HMAC is keyed with sessionKey ||
   * authValue; for policy sessions `mode` says whether the policy included PolicyAuthValue ('hmac'),
   * PolicyPassword ('password') or neither ('none'). `decrypt` encrypts the command's first parameter
   * (the TPM decrypts it), `encrypt` has the TPM encrypt the response's first parameter; both need a salted
   * session, since an unsalted one's key is known to anyone who knows the (often empty) authValue.
   */
  authorize(
    authValue: Uint8Array = Buffer.alloc(0),
    opts: { mode?: 'hmac' | 'password' | 'none'; continueSession?: boolean; encrypt?: boolean; decrypt?: boolean } = {},
  ): Authorization {
    const mode = opts.mode ?? (this.isPolicy ? 'none' : 'hmac');
    if ((opts.encrypt || opts.decrypt) && (this.symmetric === null || this.sessionKey.length === 0)) {
      throw new TpmSessionError('parameter encryption needs a salted session with a symmetric algorithm');
    }
    const attrs =
      (opts.continueSession === false ? 0 : SESSION_ATTR.continueSession) | (opts.encrypt ? SESSION_ATTR.encrypt : 0) | (opts.decrypt ? SESSION_ATTR.decrypt : 0);
    const auth = mode === 'none' ? Buffer.alloc(0) : trimAuth(authValue);
    const key = Buffer.concat([this.sessionKey, auth]);
    const h = hashName(this.hashAlg);
    const nonceCaller = randomBytes(digestSize(this.hashAlg));
    const attrByte = Buffer.from([attrs]);
    // A policy session with neither PolicyAuthValue nor PolicyPassword still carries an HMAC keyed with the
    // sessionKey alone when it is salted (Part 1 §19.6, session HMAC); unsalted, the key and the HMAC are empty.
    const withHmac = mode === 'hmac' || (mode === 'none' && this.sessionKey.length > 0);
    const cfb = (newer: Buffer, older: Buffer, data: Buffer, dir: 'enc' | 'dec'): Buffer => {
      const k = kdfa(this.hashAlg, key, 'CFB', newer, older, 256);
      const c = dir === 'enc' ? createCipheriv('aes-128-cfb', k.subarray(0, 16), k.subarray(16)) : createDecipheriv('aes-128-cfb', k.subarray(0, 16), k.subarray(16));
      return Buffer.concat([c.update(data), c.final()]);
    };
    return {
      sessionHandle: this.handle,
      hashAlg: withHmac ? this.hashAlg : undefined,
      encryptCommand: opts.decrypt ? (first) => cfb(nonceCaller, this.nonceTpm, first, 'enc') : undefined,
      decryptResponse: opts.encrypt ? (first) => cfb(this.nonceTpm, nonceCaller, first, 'dec') : undefined,
      commandAuth: (cpHash) => {
        let hmac: Buffer = Buffer.alloc(0);
        if (withHmac) hmac = createHmac(h, key).update(cpHash).update(nonceCaller).update(this.nonceTpm).update(attrByte).digest();
        else if (mode === 'password') hmac = Buffer.from(authValue);
        return new Writer().u32(this.handle).b2(nonceCaller).u8(attrs).b2(hmac).finish();
      },
      checkResponse: (rpHash, nonceTpm, rspAttrs, hmac) => {
        this.nonceTpm = nonceTpm;
        if ((rspAttrs & SESSION_ATTR.continueSession) === 0) this.open = false;
        if (!withHmac) return;
        const expect = createHmac(h, key).update(rpHash).update(nonceTpm).update(nonceCaller).update(Buffer.from([rspAttrs])).digest();
        if (hmac.length !== expect.length || !timingSafeEqual(hmac, expect)) throw new TpmSessionError(`response HMAC mismatch on session 0x${this.handle.toString(16)}`);
      },
    };
  }
}

/** cpHash = H(commandCode || names || parameters) (Part 1 §18.7). */
export function cpHash(hashAlg: number, cc: number, names: Buffer[], params: Buffer): Buffer {
  const h = createHash(hashName(hashAlg)).update(handleName(cc));
  for (const n of names) h.update(n);
  return h.update(params).digest();
}

/** rpHash = H(responseCode (0) || commandCode || parameters) (Part 1 §18.8). */
export function rpHash(hashAlg: number, cc: number, params: Buffer): Buffer {
  return createHash(hashName(hashAlg)).update(handleName(0)).update(handleName(cc)).update(params).digest();
}

/**
 * Software policy digests, to compute an object's authPolicy without a trial session (Part 3 §23).
 * Each step is policyDigest' = H(policyDigest || TPM_CC || args).
 */
export class PolicyDigest {
  digest: Buffer;
  constructor(readonly hashAlg: number = ALG.SHA256) {
    this.digest = Buffer.alloc(digestSize(hashAlg));
  }

  private update(...parts: Buffer[]): this {
    const h = createHash(hashName(this.hashAlg)).update(this.digest);
    for (const p of parts) h.update(p);
    this.digest = h.digest();
    return this;
  }

  /** TPM2_PolicySecret / PolicySigned update: H(H(old || cc || name) || policyRef) (Part 3 §23.4). */
  policySecret(authObjectName: Buffer, policyRef: Buffer = Buffer.alloc(0)): this {
    this.update(handleName(CC.PolicySecret), authObjectName);
    return this.update(policyRef);
  }

  /** TPM2_PolicyPCR: H(old || cc || TPML_PCR_SELECTION || H(concatenated PCR values)) (Part 3 §23.7). */
  policyPcr(selection: PcrSelection[], pcrValues: Buffer[]): this {
    const pcrDigest = createHash(hashName(this.hashAlg));
    for (const v of pcrValues) pcrDigest.update(v);
    return this.update(handleName(CC.PolicyPCR), marshalPcrSelection(selection).finish(), pcrDigest.digest());
  }

  policyCommandCode(cc: number): this {
    return this.update(handleName(CC.PolicyCommandCode), handleName(cc));
  }

  policyAuthValue(): this {
    return this.update(handleName(CC.PolicyAuthValue));
  }
}
