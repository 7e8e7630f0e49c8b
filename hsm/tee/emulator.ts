/**
 * An in-process emulator of the Edgeward trusted application's protocol (hsm/tee/ta/edgeward_ta.c) behind
 * the TeecBinding interface, so the OP-TEE backend is tested against the protocol without OP-TEE. It checks
 * parameter types and sizes as the TA does and answers with the same result codes. It protects nothing: the
 * "secure storage" is this process's memory. For tests only.
 */
import { constants, generateKeyPairSync, privateDecrypt, randomBytes, type KeyObject } from 'node:crypto';
import { CMD_GET_PUBKEY, CMD_SEAL_MASTER, CMD_UNSEAL_MASTER, CMD_UNWRAP, MASTER_ID_BYTES, CONTENT_KEY_BYTES, KEY_BYTES, ORIGIN, TA_UUID, TEEC, type TeecBinding, type TeecParam, type TeecResult } from './optee.js';

export interface EmulatorOptions {
  /** false: OpenSession answers TEEC_ERROR_ITEM_NOT_FOUND as tee-supplicant does for a missing TA. */
  taInstalled?: boolean;
}

const ok = (params: TeecResult['params']): TeecResult => ({ returnCode: TEEC.SUCCESS, origin: ORIGIN.TRUSTED_APP, params });
const fail = (code: number, origin: number = ORIGIN.TRUSTED_APP): TeecResult => ({ returnCode: code, origin, params: [] });
const types = (p: TeecParam[]): string => p.map((x) => x.type).join(',');

export class TaEmulator implements TeecBinding {
  private key?: { priv: KeyObject; pub: KeyObject };
  /** Master secrets by id (hex), as SEAL_MASTER keeps them in secure storage. */
  private readonly masters = new Map<string, Buffer>();
  private nextHandle = 1;
  private readonly contexts = new Set<number>();
  private readonly sessions = new Set<number>();
  /** Commands invoked, for tests (command id and parameter types). */
  readonly calls: { commandId: number; types: string }[] = [];

  constructor(private readonly opts: EmulatorOptions = {}) {}

  initializeContext(): { returnCode: number; context: number } {
    const c = this.nextHandle++;
    this.contexts.add(c);
    return { returnCode: TEEC.SUCCESS, context: c };
  }

  openSession(context: number, uuid: string): TeecResult & { session: number } {
    if (!this.contexts.has(context)) return { ...fail(TEEC.ERROR_BAD_PARAMETERS, ORIGIN.API), session: 0 };
    if (uuid !== TA_UUID || this.opts.taInstalled === false) return { ...fail(TEEC.ERROR_ITEM_NOT_FOUND, ORIGIN.TEE), session: 0 };
    const s = this.nextHandle++;
    this.sessions.add(s);
    return { ...ok([]), session: s };
  }

  invokeCommand(session: number, commandId: number, params: TeecParam[]): TeecResult {
    if (!this.sessions.has(session)) return fail(TEEC.ERROR_BAD_PARAMETERS, ORIGIN.API);
    this.calls.push({ commandId, types: types(params) });
    if (params.length !== 4) return fail(TEEC.ERROR_BAD_PARAMETERS, ORIGIN.API);
    if (commandId === CMD_GET_PUBKEY) return this.getPubkey(params);
    if (commandId === CMD_UNWRAP) return this.unwrap(params);
    if (commandId === CMD_SEAL_MASTER) return this.sealMaster(params);
    if (commandId === CMD_UNSEAL_MASTER) return this.unsealMaster(params);
    return fail(TEEC.ERROR_NOT_SUPPORTED);
  }

  closeSession(session: number): void {
    this.sessions.delete(session);
  }

  finalizeContext(context: number): void {
    this.contexts.delete(context);
  }

  /** The key, created on first use as load_or_create_key does. */
  private loadOrCreate(): { priv: KeyObject; pub: KeyObject } {
    if (!this.key) {
      const k = generateKeyPairSync('rsa', { modulusLength: KEY_BYTES * 8 });
      this.key = { priv: k.privateKey, pub: k.publicKey };
    }
    return this.key;
  }

  private getPubkey(p: TeecParam[]): TeecResult {
    if (types(p) !== 'memref-output,value-output,none,none') return fail(TEEC.ERROR_BAD_PARAMETERS);
    const created = this.key ? 0 : 1;
    const jwk = this.loadOrCreate().pub.export({ format: 'jwk' });
    const n = Buffer.from(jwk.n!, 'base64url');
    if ((p[0] as { size: number }).size < n.length) return { returnCode: TEEC.ERROR_SHORT_BUFFER, origin: ORIGIN.TRUSTED_APP, params: [{ buffer: Buffer.alloc(0) }] };
    return ok([{ buffer: n }, { a: Buffer.from(jwk.e!, 'base64url').readUIntBE(0, Buffer.from(jwk.e!, 'base64url').length), b: created }, {}, {}]);
  }

  private unwrap(p: TeecParam[]): TeecResult {
    if (types(p) !== 'memref-input,memref-output,none,none') return fail(TEEC.ERROR_BAD_PARAMETERS);
    const input = (p[0] as { buffer: Buffer }).buffer;
    if (input.length !== KEY_BYTES || (p[1] as { size: number }).size < CONTENT_KEY_BYTES) return fail(TEEC.ERROR_BAD_PARAMETERS);
    let out: Buffer;
    try {
      out = privateDecrypt({ key: this.loadOrCreate().priv, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, input);
    } catch {
      return fail(TEEC.ERROR_CIPHERTEXT_INVALID);
    }
    if (out.length !== CONTENT_KEY_BYTES) return fail(TEEC.ERROR_BAD_FORMAT);
    return ok([{}, { buffer: out }, {}, {}]);
  }

  private sealMaster(p: TeecParam[]): TeecResult {
    if (types(p) !== 'memref-input,memref-output,none,none') return fail(TEEC.ERROR_BAD_PARAMETERS);
    const secret = (p[0] as { buffer: Buffer }).buffer;
    if (secret.length !== 32 || (p[1] as { size: number }).size < MASTER_ID_BYTES) return fail(TEEC.ERROR_BAD_PARAMETERS);
    const id = randomBytes(MASTER_ID_BYTES);
    this.masters.set(id.toString('hex'), Buffer.from(secret));
    return ok([{}, { buffer: id }, {}, {}]);
  }

  private unsealMaster(p: TeecParam[]): TeecResult {
    if (types(p) !== 'memref-input,memref-output,none,none') return fail(TEEC.ERROR_BAD_PARAMETERS);
    const id = (p[0] as { buffer: Buffer }).buffer;
    if (id.length !== MASTER_ID_BYTES || (p[1] as { size: number }).size < 32) return fail(TEEC.ERROR_BAD_PARAMETERS);
    const secret = this.masters.get(id.toString('hex'));
    if (!secret) return fail(TEEC.ERROR_ITEM_NOT_FOUND);
    return ok([{}, { buffer: Buffer.from(secret) }, {}, {}]);
  }
}
