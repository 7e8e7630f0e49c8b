/**
 * The TPM 2.0 structures Edgeward marshals (Part 2 §10–§12): TPMT_PUBLIC with its RSA / ECC / KEYEDHASH /
 * SYMCIPHER parameters, TPML_PCR_SELECTION, TPMT_SIGNATURE, TPMS_SENSITIVE_CREATE; plus object names
 * (Part 1 §16: nameAlg || H_nameAlg(TPMT_PUBLIC)).
 */
import { createHash } from 'node:crypto';
import { ALG, hashName } from './constants.js';
import { Reader, TpmMarshalError, Writer } from './marshal.js';

/** TPMT_SYM_DEF_OBJECT; `null` is TPM_ALG_NULL. */
export type SymDef = { algorithm: number; keyBits: number; mode: number } | null;
/** A scheme with a hash (TPMT_RSA_SCHEME, TPMT_ECC_SCHEME, TPMT_KEYEDHASH_SCHEME (HMAC), TPMT_KDF_SCHEME); `null` is TPM_ALG_NULL. */
export type HashScheme = { scheme: number; hashAlg: number } | null;

export type PublicParams =
  | { type: typeof ALG.RSA; symmetric: SymDef; scheme: HashScheme; keyBits: number; exponent: number; unique: Buffer }
  | { type: typeof ALG.ECC; symmetric: SymDef; scheme: HashScheme; curveId: number; kdf: HashScheme; unique: { x: Buffer; y: Buffer } }
  | { type: typeof ALG.KEYEDHASH; scheme: HashScheme; unique: Buffer }
  | { type: typeof ALG.SYMCIPHER; symmetric: SymDef; unique: Buffer };

export type TpmtPublic = { nameAlg: number; objectAttributes: number; authPolicy: Buffer } & PublicParams;

function writeSym(w: Writer, s: SymDef): void {
  if (s === null) w.u16(ALG.NULL);
  else w.u16(s.algorithm).u16(s.keyBits).u16(s.mode);
}

function readSym(r: Reader): SymDef {
  const algorithm = r.u16();
  if (algorithm === ALG.NULL) return null;
  if (algorithm === ALG.XOR) return { algorithm, keyBits: r.u16(), mode: ALG.NULL };
  return { algorithm, keyBits: r.u16(), mode: r.u16() };
}

function writeScheme(w: Writer, s: HashScheme): void {
  if (s === null) w.u16(ALG.NULL);
  else w.u16(s.scheme).u16(s.hashAlg);
}

function readScheme(r: Reader): HashScheme {
  const scheme = r.u16();
  if (scheme === ALG.NULL) return null;
  return { scheme, hashAlg: r.u16() };
}

/** Marshal TPMT_PUBLIC. */
export function marshalPublic(p: TpmtPublic, w = new Writer()): Writer {
  w.u16(p.type).u16(p.nameAlg).u32(p.objectAttributes).b2(p.authPolicy);
  switch (p.type) {
    case ALG.RSA:
      writeSym(w, p.symmetric);
      writeScheme(w, p.scheme);
      w.u16(p.keyBits).u32(p.exponent).b2(p.unique);
      break;
    case ALG.ECC:
      writeSym(w, p.symmetric);
      writeScheme(w, p.scheme);
      w.u16(p.curveId);
      writeScheme(w, p.kdf);
      w.b2(p.unique.x).b2(p.unique.y);
      break;
    case ALG.KEYEDHASH:
      // TPMT_KEYEDHASH_SCHEME: HMAC carries a hash; XOR would carry hash + kdf (not used here).
      writeScheme(w, p.scheme);
      w.b2(p.unique);
      break;
    case ALG.SYMCIPHER:
      writeSym(w, p.symmetric);
      w.b2(p.unique);
      break;
    default: {
      const never: never = p;
      throw new TpmMarshalError(`unsupported public type ${String((never as { type: number }).type)}`);
    }
  }
  return w;
}

/** Unmarshal TPMT_PUBLIC. */
export function readPublic(r: Reader): TpmtPublic {
  const type = r.u16();
  const nameAlg = r.u16();
  const objectAttributes = r.u32();
  const authPolicy = r.b2();
  const base = { nameAlg, objectAttributes, authPolicy };
  switch (type) {
    case ALG.RSA: {
      const symmetric = readSym(r);
      const scheme = readScheme(r);
      return { ...base, type, symmetric, scheme, keyBits: r.u16(), exponent: r.u32(), unique: r.b2() };
    }
    case ALG.ECC: {
      const symmetric = readSym(r);
      const scheme = readScheme(r);
      const curveId = r.u16();
      const kdf = readScheme(r);
      return { ...base, type, symmetric, scheme, curveId, kdf, unique: { x: r.b2(), y: r.b2() } };
    }
    case ALG.KEYEDHASH: {
      const scheme = r.u16();
      let s: HashScheme = null;
      if (scheme === ALG.HMAC) s = { scheme, hashAlg: r.u16() };
      else if (scheme === ALG.XOR) {
        s = { scheme, hashAlg: r.u16() };
        r.u16(); // kdf
      } else if (scheme !== ALG.NULL) throw new TpmMarshalError(`unsupported keyedhash scheme 0x${scheme.toString(16)}`);
      return { ...base, type, scheme: s, unique: r.b2() };
    }
    case ALG.SYMCIPHER:
      return { ...base, type, symmetric: readSym(r), unique: r.b2() };
    default:
      throw new TpmMarshalError(`unsupported public area type 0x${type.toString(16)}`);
  }
}

/** TPM2B_PUBLIC bytes (the format `tpm2_readpublic -o` and `tpm2_createek -u` write). */
export function tpm2bPublic(p: TpmtPublic): Buffer {
  return new Writer().sized((w) => marshalPublic(p, w)).finish();
}

/** Parse TPM2B_PUBLIC bytes. */
export function parseTpm2bPublic(b: Uint8Array): TpmtPublic {
  const r = Reader.of(b);
  const p = r.sized(readPublic);
  r.end();
  return p;
}

/** The Name of an object: nameAlg || H(TPMT_PUBLIC) (Part 1 §16). */
export function objectName(publicArea: TpmtPublic | Buffer): Buffer {
  const bytes = Buffer.isBuffer(publicArea) ? publicArea : marshalPublic(publicArea).finish();
  const nameAlg = bytes.readUInt16BE(2);
  const alg = Buffer.alloc(2);
  alg.writeUInt16BE(nameAlg);
  return Buffer.concat([alg, createHash(hashName(nameAlg)).update(bytes).digest()]);
}

/** Name of a handle that is not an object or NV index: the handle itself (Part 1 §16). */
export function handleName(handle: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(handle >>> 0);
  return b;
}

/** A PCR selection for one bank. */
export interface PcrSelection {
  hashAlg: number;
  pcrs: number[];
}

/** Marshal TPML_PCR_SELECTION (sizeofSelect 3: PCRs 0–23). */
export function marshalPcrSelection(sel: PcrSelection[], w = new Writer()): Writer {
  w.u32(sel.length);
  for (const s of sel) {
    const bits = Buffer.alloc(3);
    for (const p of s.pcrs) {
      if (!Number.isInteger(p) || p < 0 || p > 23) throw new RangeError(`PCR index ${p} out of range 0..23`);
      bits[p >> 3]! |= 1 << (p & 7);
    }
    w.u16(s.hashAlg).u8(3).bytes(bits);
  }
  return w;
}

export function readPcrSelection(r: Reader): PcrSelection[] {
  const n = r.u32();
  if (n > 16) throw new TpmMarshalError(`too many PCR banks (${n})`);
  const out: PcrSelection[] = [];
  for (let i = 0; i < n; i++) {
    const hashAlg = r.u16();
    const bits = r.bytes(r.u8());
    const pcrs: number[] = [];
    bits.forEach((byte, i) => {
      for (let b = 0; b < 8; b++) if (byte & (1 << b)) pcrs.push(i * 8 + b);
    });
    out.push({ hashAlg, pcrs });
  }
  return out;
}

/** TPMT_SIGNATURE, for the schemes we produce and verify. */
export type Signature =
  | { sigAlg: typeof ALG.ECDSA; hashAlg: number; r: Buffer; s: Buffer }
  | { sigAlg: typeof ALG.RSASSA | typeof ALG.RSAPSS; hashAlg: number; sig: Buffer }
  | { sigAlg: typeof ALG.HMAC; hashAlg: number; digest: Buffer };

export function marshalSignature(s: Signature, w = new Writer()): Writer {
  w.u16(s.sigAlg).u16(s.hashAlg);
  if (s.sigAlg === ALG.ECDSA) w.b2(s.r).b2(s.s);
  else if (s.sigAlg === ALG.HMAC) w.bytes(s.digest);
  else w.b2(s.sig);
  return w;
}

export function readSignature(r: Reader, digestLen: (hashAlg: number) => number): Signature {
  const sigAlg = r.u16();
  if (sigAlg === ALG.NULL) throw new TpmMarshalError('TPM returned a NULL signature');
  const hashAlg = r.u16();
  switch (sigAlg) {
    case ALG.ECDSA:
      return { sigAlg, hashAlg, r: r.b2(), s: r.b2() };
    case ALG.RSASSA:
    case ALG.RSAPSS:
      return { sigAlg, hashAlg, sig: r.b2() };
    case ALG.HMAC: {
      let n: number;
      try {
        n = digestLen(hashAlg);
      } catch {
        throw new TpmMarshalError(`HMAC signature with an unsupported hash algorithm 0x${hashAlg.toString(16)}`);
      }
      return { sigAlg, hashAlg, digest: r.bytes(n) };
    }
    default:
      throw new TpmMarshalError(`unsupported signature algorithm 0x${sigAlg.toString(16)}`);
  }
}

/** TPM2B_SENSITIVE_CREATE: userAuth and data (data is the HMAC key or the sealed secret). */
export function marshalSensitiveCreate(userAuth: Uint8Array, data: Uint8Array = Buffer.alloc(0)): Buffer {
  return new Writer().sized((w) => w.b2(userAuth).b2(data)).finish();
}
