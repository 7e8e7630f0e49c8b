/**
 * The TPM 2.0 commands (Part 3): each method of `Tpm` is one TPM command with typed arguments and results.
 * How a command is framed, serialised, retried and its response checked is `TpmChannel` (channel.ts).
 */
import { constants, publicEncrypt, randomBytes } from 'node:crypto';
import { ALG, CAP, CC, PT, RH, SE, ST, digestSize, hashName } from './constants.js';
import { Reader, TpmMarshalError, Writer } from './marshal.js';
import { TpmError } from './rc.js';
import { createParams, hmacParams, signParams } from './params.js';
import { AES128_CFB, Session, kdfa, passwordAuth, type Authorization } from './session.js';
import { publicKeyOf } from './pubkey.js';
import { openTransport } from './transport.js';
import { TpmChannel, type Entity, type PublicInfo } from './channel.js';
import {
  marshalPcrSelection, marshalSignature, objectName,
  readPcrSelection, readPublic, readSignature, type HashScheme, type PcrSelection, type Signature, type SymDef, type TpmtPublic,
} from './types.js';

export { TpmResetError, type Entity, type PublicInfo } from './channel.js';
export { createParams, hmacParams, signParams } from './params.js';

/** TPM2_HMAC takes one TPM2B_MAX_BUFFER; 1024 is the TPM_PT_INPUT_BUFFER of every TPM we know of. */
export const MAX_HMAC_INPUT = 1024;

export interface LoadedObject {
  handle: number;
  name: Buffer;
}

export interface CreatedObject {
  /** TPM2B_PRIVATE (wrapped by the parent). */
  privateBytes: Buffer;
  /** TPM2B_PUBLIC. */
  publicBytes: Buffer;
  public: TpmtPublic;
}

export interface NvPublic {
  nvIndex: number;
  nameAlg: number;
  attributes: number;
  authPolicy: Buffer;
  dataSize: number;
}

export interface PcrReadResult {
  updateCounter: number;
  selection: PcrSelection[];
  digests: Buffer[];
}

export class Tpm extends TpmChannel {
  /** Open the TPM a TCTI string names ("device:/dev/tpmrm0", "swtpm:host=…,port=…"). */
  static async open(tcti: string): Promise<Tpm> {
    return new Tpm(await openTransport(tcti));
  }

  /** TPM2_Startup(CLEAR); a TPM that is already started (TPM_RC_INITIALIZE) is fine. */
  async startup(): Promise<void> {
    try {
      await this.cmd(CC.Startup, { params: new Writer().u16(0).finish() });
    } catch (err) {
      if (!(err instanceof TpmError && err.code === 'TPM_RC_INITIALIZE')) throw err;
    }
  }

  async getRandom(bytes: number): Promise<Buffer> {
    const out: Buffer[] = [];
    let left = bytes;
    while (left > 0) {
      const { r } = await this.cmd(CC.GetRandom, { params: new Writer().u16(Math.min(left, 32)).finish() });
      const b = r.b2();
      if (b.length === 0) throw new TpmMarshalError('TPM2_GetRandom returned no bytes');
      out.push(b);
      left -= b.length;
    }
    return Buffer.concat(out).subarray(0, bytes);
  }

  /** TPM2_GetCapability(TPM_CAP_TPM_PROPERTIES): property → value. */
  async getProperties(first: number, count: number): Promise<Map<number, number>> {
    const { r } = await this.cmd(CC.GetCapability, { params: new Writer().u32(CAP.TPM_PROPERTIES).u32(first).u32(count).finish() });
    r.u8(); // moreData
    if (r.u32() !== CAP.TPM_PROPERTIES) throw new TpmMarshalError('TPM2_GetCapability answered another capability');
    const n = r.u32();
    const m = new Map<number, number>();
    for (let i = 0; i < n; i++) m.set(r.u32(), r.u32());
    return m;
  }

  /** TPM2_GetCapability(TPM_CAP_HANDLES) for a handle range (e.g. 0x81000000 persistent). */
  async getHandles(first: number, max = 256): Promise<number[]> {
    const { r } = await this.cmd(CC.GetCapability, { params: new Writer().u32(CAP.HANDLES).u32(first).u32(max).finish() });
    r.u8();
    r.u32();
    const n = r.u32();
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(r.u32());
    return out.filter((h) => h >>> 24 === first >>> 24);
  }

  /** TPMA_PERMANENT (which hierarchy auths are set, lockout state). */
  async permanentFlags(): Promise<number> {
    return (await this.getProperties(PT.PERMANENT, 1)).get(PT.PERMANENT) ?? 0;
  }

  /** TPM2_ReadPublic; `publicBytes` is the TPM2B_PUBLIC (what `tpm2_readpublic -o` writes). */
  readPublic(handle: number): Promise<PublicInfo> {
    return this.exclusive(() => this.readPublicRaw(handle));
  }

  /** TPM2_CreatePrimary. `sensitive` is the new object's auth value and data. */
  async createPrimary(hierarchy: number, template: TpmtPublic, opts: { hierarchyAuth?: Authorization; userAuth?: Uint8Array; data?: Uint8Array } = {}): Promise<LoadedObject & PublicInfo> {
    const params = createParams(template, opts);
    const { handles, r } = await this.cmd(CC.CreatePrimary, { handles: [hierarchy], auths: [opts.hierarchyAuth ?? passwordAuth()], params, rspHandles: 1 });
    const pubInner = r.b2();
    const publicBytes = new Writer().b2(pubInner).finish();
    return { handle: handles[0]!, public: readPublic(Reader.of(pubInner)), publicBytes, name: objectName(pubInner) };
  }

  /** TPM2_Create: a new object under `parent`, returned wrapped (not loaded). */
  async create(parent: Entity, template: TpmtPublic, opts: { parentAuth?: Authorization; userAuth?: Uint8Array; data?: Uint8Array } = {}): Promise<CreatedObject> {
    const params = createParams(template, opts);
    const { r } = await this.cmd(CC.Create, { handles: [parent], auths: [opts.parentAuth ?? passwordAuth()], params });
    const privateBytes = new Writer().b2(r.b2()).finish();
    const pubInner = r.b2();
    return { privateBytes, publicBytes: new Writer().b2(pubInner).finish(), public: readPublic(Reader.of(pubInner)) };
  }

  /** TPM2_Load of a wrapped object (TPM2B_PRIVATE + TPM2B_PUBLIC bytes) under `parent`. */
  async load(parent: Entity, privateBytes: Buffer, publicBytes: Buffer, parentAuth: Authorization = passwordAuth()): Promise<LoadedObject> {
    const params = Buffer.concat([privateBytes, publicBytes]);
    const { handles, r } = await this.cmd(CC.Load, { handles: [parent], auths: [parentAuth], params, rspHandles: 1 });
    return { handle: handles[0]!, name: r.b2() };
  }

  /** TPM2_EvictControl: persist `object` at `persistentHandle`, or (object = persistent handle) evict it. */
  async evictControl(object: number, persistentHandle: number, auth: Authorization = passwordAuth(), hierarchy: number = RH.OWNER): Promise<void> {
    await this.cmd(CC.EvictControl, { handles: [hierarchy, object], auths: [auth], params: new Writer().u32(persistentHandle).finish() });
  }

  async flushContext(handle: number): Promise<void> {
    await this.cmd(CC.FlushContext, { params: new Writer().u32(handle).finish() });
  }

  /** TPM2_Sign of a digest with a non-restricted key (NULL hash-check ticket). */
  async sign(key: Entity, digest: Buffer, scheme: HashScheme, auth: Authorization = passwordAuth()): Promise<Signature> {
    const { r } = await this.cmd(CC.Sign, { handles: [key], auths: [auth], params: signParams(digest, scheme) });
    return readSignature(r, digestSize);
  }

  /** TPM2_HMAC over at most MAX_HMAC_INPUT bytes. */
  async hmac(key: Entity, data: Uint8Array, hashAlg: number = ALG.SHA256, auth: Authorization = passwordAuth()): Promise<Buffer> {
    if (data.length > MAX_HMAC_INPUT) throw new RangeError(`TPM2_HMAC input is limited to ${MAX_HMAC_INPUT} bytes (got ${data.length})`);
    const { r } = await this.cmd(CC.HMAC, { handles: [key], auths: [auth], params: hmacParams(data, hashAlg) });
    return r.b2();
  }

  /**
   * HMAC of input longer than one TPM2B_MAX_BUFFER: TPM2_HMAC_Start, a TPM2_SequenceUpdate per chunk, and
   * TPM2_SequenceComplete with the last chunk (Part 3, "Hash/HMAC/Event Sequences"). The sequence object
   * holds a transient slot until it completes; it is flushed if a step fails.
   */
  async hmacSequence(key: Entity, data: Uint8Array, hashAlg: number = ALG.SHA256, auth: Authorization = passwordAuth()): Promise<Buffer> {
    const start = new Writer().b2(Buffer.alloc(0)).u16(hashAlg).finish(); // the sequence's own auth: empty
    const { handles } = await this.cmd(CC.HMAC_Start, { handles: [key], auths: [auth], params: start, rspHandles: 1 });
    const seq = handles[0]!;
    try {
      let off = 0;
      for (; data.length - off > MAX_HMAC_INPUT; off += MAX_HMAC_INPUT) {
        await this.cmd(CC.SequenceUpdate, { handles: [seq], auths: [passwordAuth()], params: new Writer().b2(data.subarray(off, off + MAX_HMAC_INPUT)).finish() });
      }
      const { r } = await this.cmd(CC.SequenceComplete, { handles: [seq], auths: [passwordAuth()], params: new Writer().b2(data.subarray(off)).u32(RH.NULL).finish() });
      return r.b2();
    } catch (err) {
      await this.flushContext(seq).catch(() => undefined); // already gone if SequenceComplete ran
      throw err;
    }
  }

  /** TPM2_VerifySignature; resolves with the ticket's hierarchy on success, throws TPM_RC_SIGNATURE otherwise. */
  async verifySignature(key: Entity, digest: Buffer, signature: Signature): Promise<number> {
    const params = marshalSignature(signature, new Writer().b2(digest)).finish();
    const { r } = await this.cmd(CC.VerifySignature, { handles: [key], params });
    if (r.u16() !== ST.VERIFIED) throw new TpmMarshalError('TPM2_VerifySignature returned a ticket that is not TPM_ST_VERIFIED');
    return r.u32();
  }

  /** TPM2_RSA_Decrypt with OAEP (hashAlg) and an optional label. */
  async rsaDecrypt(key: Entity, ciphertext: Buffer, hashAlg: number = ALG.SHA256, label: Buffer = Buffer.alloc(0), auth: Authorization = passwordAuth()): Promise<Buffer> {
    const lbl = label.length > 0 && label[label.length - 1] !== 0 ? Buffer.concat([label, Buffer.from([0])]) : label;
    const params = new Writer().b2(ciphertext).u16(ALG.OAEP).u16(hashAlg).b2(lbl).finish();
    const { r } = await this.cmd(CC.RSA_Decrypt, { handles: [key], auths: [auth], params });
    return r.b2();
  }

  /**
   * TPM2_StartAuthSession, unbound. With `saltKey` (an RSA key loaded in the TPM, normally the SRK) the
   * session is salted: a random salt goes to the TPM OAEP-encrypted to that key (label "SECRET", Part 1
   * §B.10.3), and both sides derive sessionKey = KDFa(salt, "ATH", nonceTPM, nonceCaller); such a session can
   * encrypt parameters with AES-128-CFB.
   */
  async startAuthSession(type: number = SE.HMAC, hashAlg: number = ALG.SHA256, opts: { saltKey?: { handle: number; public: TpmtPublic } } = {}): Promise<Session> {
    const nonceCaller = randomBytes(digestSize(hashAlg));
    let salt = Buffer.alloc(0);
    let encryptedSalt = Buffer.alloc(0);
    const w = new Writer();
    if (opts.saltKey) {
      const pub = opts.saltKey.public;
      if (pub.type !== ALG.RSA) throw new RangeError('only RSA salt keys are supported');
      salt = randomBytes(digestSize(hashAlg));
      encryptedSalt = publicEncrypt(
        { key: publicKeyOf(pub), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hashName(pub.nameAlg), oaepLabel: Buffer.from('SECRET\0', 'latin1') },
        salt,
      );
    }
    w.b2(nonceCaller).b2(encryptedSalt).u8(type);
    if (opts.saltKey) w.u16(AES128_CFB.algorithm).u16(AES128_CFB.keyBits).u16(AES128_CFB.mode);
    else w.u16(ALG.NULL);
    w.u16(hashAlg);
    const { handles, r } = await this.cmd(CC.StartAuthSession, { handles: [opts.saltKey?.handle ?? RH.NULL, RH.NULL], params: w.finish(), rspHandles: 1 });
    const nonceTpm = r.b2();
    if (!opts.saltKey) return new Session(handles[0]!, type, hashAlg, nonceTpm);
    const sessionKey = kdfa(hashAlg, salt, 'ATH', nonceTpm, nonceCaller, digestSize(hashAlg) * 8);
    return new Session(handles[0]!, type, hashAlg, nonceTpm, sessionKey, AES128_CFB);
  }

  /** TPM2_PolicySecret: `authEntity` (e.g. TPM_RH_ENDORSEMENT) authorizes the policy session. */
  async policySecret(authEntity: Entity, session: Session, auth: Authorization = passwordAuth(), policyRef: Buffer = Buffer.alloc(0)): Promise<void> {
    const params = new Writer().b2(session.nonceTpm).b2(Buffer.alloc(0)).b2(policyRef).u32(0).finish();
    const { r } = await this.cmd(CC.PolicySecret, { handles: [authEntity, session.handle], auths: [auth], params });
    r.b2(); // timeout
    r.u16();
    r.u32();
    r.b2(); // policyTicket
  }

  /** TPM2_PolicyPCR; an empty `pcrDigest` makes the TPM use the current values. */
  async policyPcr(session: Session, selection: PcrSelection[], pcrDigest: Buffer = Buffer.alloc(0)): Promise<void> {
    const params = marshalPcrSelection(selection, new Writer().b2(pcrDigest)).finish();
    await this.cmd(CC.PolicyPCR, { handles: [session.handle], params });
  }

  async policyGetDigest(session: Session): Promise<Buffer> {
    const { r } = await this.cmd(CC.PolicyGetDigest, { handles: [session.handle] });
    return r.b2();
  }

  /** TPM2_ActivateCredential: `key` (EK) decrypts the seed, `activate` (the object the credential names) must match. */
  async activateCredential(activate: Entity, key: Entity, credentialBlob: Buffer, secret: Buffer, auths: [Authorization, Authorization]): Promise<Buffer> {
    const params = new Writer().b2(credentialBlob).b2(secret).finish();
    const { r } = await this.cmd(CC.ActivateCredential, { handles: [activate, key], auths, params });
    return r.b2();
  }

  /** TPM2_Import of a duplicated object under `parent`; returns the new TPM2B_PRIVATE. */
  async import(parent: Entity, args: { encryptionKey: Buffer; publicBytes: Buffer; duplicate: Buffer; inSymSeed: Buffer; symmetricAlg: SymDef }, parentAuth: Authorization = passwordAuth()): Promise<Buffer> {
    const w = new Writer().b2(args.encryptionKey).bytes(args.publicBytes).b2(args.duplicate).b2(args.inSymSeed);
    if (args.symmetricAlg === null) w.u16(ALG.NULL);
    else w.u16(args.symmetricAlg.algorithm).u16(args.symmetricAlg.keyBits).u16(args.symmetricAlg.mode);
    const { r } = await this.cmd(CC.Import, { handles: [parent], auths: [parentAuth], params: w.finish() });
    return new Writer().b2(r.b2()).finish();
  }

  async pcrRead(selection: PcrSelection[]): Promise<PcrReadResult> {
    const { r } = await this.cmd(CC.PCR_Read, { params: marshalPcrSelection(selection).finish() });
    const updateCounter = r.u32();
    const sel = readPcrSelection(r);
    const n = r.u32();
    const digests: Buffer[] = [];
    for (let i = 0; i < n; i++) digests.push(r.b2());
    return { updateCounter, selection: sel, digests };
  }

  /** TPM2_PCR_Extend of one PCR with one digest per bank. */
  async pcrExtend(pcr: number, digests: { hashAlg: number; digest: Buffer }[], auth: Authorization = passwordAuth()): Promise<void> {
    const w = new Writer().u32(digests.length);
    for (const d of digests) w.u16(d.hashAlg).bytes(d.digest);
    await this.cmd(CC.PCR_Extend, { handles: [pcr], auths: [auth], params: w.finish() });
  }

  /** TPM2_Quote: returns the TPM2B_ATTEST content (TPMS_ATTEST bytes) and the signature over it. */
  async quote(signKey: Entity, qualifyingData: Buffer, scheme: HashScheme, selection: PcrSelection[], auth: Authorization = passwordAuth()): Promise<{ attest: Buffer; signature: Signature }> {
    const w = new Writer().b2(qualifyingData);
    if (scheme === null) w.u16(ALG.NULL);
    else w.u16(scheme.scheme).u16(scheme.hashAlg);
    marshalPcrSelection(selection, w);
    const { r } = await this.cmd(CC.Quote, { handles: [signKey], auths: [auth], params: w.finish() });
    const attest = r.b2();
    return { attest, signature: readSignature(r, digestSize) };
  }

  async nvDefineSpace(pub: NvPublic, authValue: Buffer = Buffer.alloc(0), ownerAuth: Authorization = passwordAuth(), hierarchy: number = RH.OWNER): Promise<void> {
    const params = new Writer()
      .b2(authValue)
      .sized((w) => w.u32(pub.nvIndex).u16(pub.nameAlg).u32(pub.attributes).b2(pub.authPolicy).u16(pub.dataSize))
      .finish();
    await this.cmd(CC.NV_DefineSpace, { handles: [hierarchy], auths: [ownerAuth], params });
  }

  async nvUndefineSpace(nvIndex: number, ownerAuth: Authorization = passwordAuth(), hierarchy: number = RH.OWNER): Promise<void> {
    await this.cmd(CC.NV_UndefineSpace, { handles: [hierarchy, nvIndex], auths: [ownerAuth] });
  }

  /** TPM2_NV_Increment of a counter index, authorized by the index itself. */
  async nvIncrement(nvIndex: number, auth: Authorization = passwordAuth()): Promise<void> {
    await this.cmd(CC.NV_Increment, { handles: [nvIndex, nvIndex], auths: [auth] });
  }

  async nvRead(nvIndex: number, size: number, offset = 0, auth: Authorization = passwordAuth()): Promise<Buffer> {
    const { r } = await this.cmd(CC.NV_Read, { handles: [nvIndex, nvIndex], auths: [auth], params: new Writer().u16(size).u16(offset).finish() });
    return r.b2();
  }

  /** TPM2_Unseal of a loaded sealed-data object. */
  async unseal(item: Entity, auth: Authorization = passwordAuth()): Promise<Buffer> {
    const { r } = await this.cmd(CC.Unseal, { handles: [item], auths: [auth] });
    return r.b2();
  }
}
