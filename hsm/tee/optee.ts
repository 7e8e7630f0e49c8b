/**
 * OP-TEE TEE backend: the workload-decryption key lives in a trusted application (hsm/tee/ta/, protocol in
 * edgeward_ta.h) and is reached through the GlobalPlatform TEE Client API (TEEC_InitializeContext,
 * TEEC_OpenSession, TEEC_InvokeCommand). BUILT, NOT RUN HERE: OP-TEE cannot run on these machines; this
 * backend is tested against emulator.ts, an in-process implementation of the TA protocol, and the real
 * libteec binding (libteec.ts) is loaded only when /dev/tee0 exists.
 *
 * Binding: the key is bound to this device (OP-TEE secure storage under the hardware unique key) and to the
 * TA; it is NOT bound to a measurement of the normal-world runtime — any process that can open /dev/tee0
 * can ask for an unwrap. The policy description says so. The same holds for the seal master secret: kept
 * in the TA's secure storage (SEAL_MASTER / UNSEAL_MASTER), the normal world holds only its id.
 */
import { createPublicKey } from 'node:crypto';
import { MASTER_SECRET_BYTES, TeeError, checkExpectedPolicy, checkMasterSecret, keyIdOf, type DeviceKeyInfo, type KeyPolicyDescription, type TeeBackend } from './port.js';

/** Mirrors hsm/tee/ta/edgeward_ta.h. */
export const TA_UUID = '5f0c8a4e-2b7d-4c19-9e63-a1d4b8f27c05';
export const CMD_GET_PUBKEY = 0;
export const CMD_UNWRAP = 1;
export const CMD_SEAL_MASTER = 2;
export const CMD_UNSEAL_MASTER = 3;
export const MASTER_ID_BYTES = 16;
export const KEY_BYTES = 256;
export const CONTENT_KEY_BYTES = 32;

/** TEEC/TEE result codes used here (GlobalPlatform TEE Client API §4.4.2). */
export const TEEC = {
  SUCCESS: 0, ERROR_GENERIC: 0xffff0000, ERROR_ACCESS_DENIED: 0xffff0001, ERROR_BAD_FORMAT: 0xffff0005,
  ERROR_BAD_PARAMETERS: 0xffff0006, ERROR_ITEM_NOT_FOUND: 0xffff0008, ERROR_NOT_SUPPORTED: 0xffff000a,
  ERROR_COMMUNICATION: 0xffff000e, ERROR_SECURITY: 0xffff000f, ERROR_SHORT_BUFFER: 0xffff0010,
  ERROR_TARGET_DEAD: 0xffff3024, ERROR_CIPHERTEXT_INVALID: 0xffff3072,
} as const;
/** Where a result came from (TEEC_ORIGIN_*). */
export const ORIGIN = { API: 1, COMMS: 2, TEE: 3, TRUSTED_APP: 4 } as const;

/** One TEEC_Parameter as the backend sees it (temporary memory references and values only). */
export type TeecParam =
  | { type: 'none' }
  | { type: 'memref-input'; buffer: Buffer }
  | { type: 'memref-output'; size: number }
  | { type: 'value-output' };

/** What came back: output buffers trimmed to the size the TA set, output values. */
export type TeecOut = { buffer?: Buffer; a?: number; b?: number };

export interface TeecResult {
  returnCode: number;
  origin: number;
  params: TeecOut[];
}

/**
 * The small slice of the TEE Client API this backend needs, synchronous as libteec is. Implemented by the
 * real libteec binding (libteec.ts) and by the emulator (emulator.ts).
 */
export interface TeecBinding {
  initializeContext(name: string | null): { returnCode: number; context: number };
  openSession(context: number, uuid: string): TeecResult & { session: number };
  invokeCommand(session: number, commandId: number, params: TeecParam[]): TeecResult;
  closeSession(session: number): void;
  finalizeContext(context: number): void;
}

const hex = (n: number): string => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;

function refusal(what: string, r: { returnCode: number; origin: number }): TeeError {
  const code = r.returnCode >>> 0;
  const at = `${what}: ${hex(code)} (origin ${r.origin})`;
  if (code === TEEC.ERROR_ITEM_NOT_FOUND && what === 'TEEC_OpenSession') return new TeeError('unavailable', `${at}: the Edgeward TA ${TA_UUID} is not installed (copy ${TA_UUID}.ta to /lib/optee_armtz/)`);
  if (code === TEEC.ERROR_COMMUNICATION || code === TEEC.ERROR_TARGET_DEAD || r.origin === ORIGIN.COMMS) return new TeeError('unavailable', `${at}: the TEE is not answering`);
  if (code === TEEC.ERROR_ACCESS_DENIED || code === TEEC.ERROR_SECURITY) return new TeeError('policy-mismatch', `${at}: the trusted application refused`);
  if (code === TEEC.ERROR_BAD_PARAMETERS || code === TEEC.ERROR_SHORT_BUFFER || code === TEEC.ERROR_NOT_SUPPORTED) return new TeeError('protocol', `${at}: the TA does not speak this protocol version`);
  return new TeeError('unwrap-failed', `${at}: the TA could not unwrap the content key (not sealed to this device's key, or damaged)`);
}

export class OpteeTeeBackend implements TeeBackend {
  readonly name = 'optee';
  private cached?: DeviceKeyInfo;
  private constructor(private readonly teec: TeecBinding, private readonly context: number, private readonly session: number) {}

  /** Open a session to the Edgeward TA through `teec`. */
  static open(teec: TeecBinding): OpteeTeeBackend {
    const ctx = teec.initializeContext(null);
    if (ctx.returnCode !== TEEC.SUCCESS) throw refusal('TEEC_InitializeContext', { returnCode: ctx.returnCode, origin: ORIGIN.API });
    const s = teec.openSession(ctx.context, TA_UUID);
    if (s.returnCode !== TEEC.SUCCESS) {
      teec.finalizeContext(ctx.context);
      throw refusal('TEEC_OpenSession', s);
    }
    return new OpteeTeeBackend(teec, ctx.context, s.session);
  }

  policy(): KeyPolicyDescription {
    return {
      kind: 'optee-ta',
      description: `RSA-2048 key generated and kept in OP-TEE secure storage by TA ${TA_UUID}: bound to this device and the TA, not to a measurement of the normal-world runtime`,
    };
  }

  async deviceKey(): Promise<DeviceKeyInfo> {
    if (this.cached) return this.cached;
    const r = this.teec.invokeCommand(this.session, CMD_GET_PUBKEY, [{ type: 'memref-output', size: KEY_BYTES }, { type: 'value-output' }, { type: 'none' }, { type: 'none' }]);
    if (r.returnCode !== TEEC.SUCCESS) throw refusal('GET_PUBKEY', r);
    const n = r.params[0]?.buffer;
    const e = r.params[1]?.a;
    if (!n || n.length !== KEY_BYTES || n[0]! < 0x80 || e === undefined || e < 3 || e % 2 === 0) throw new TeeError('protocol', `GET_PUBKEY: the TA returned a ${n?.length ?? 0}-byte modulus and exponent ${String(e)} (expected an RSA-2048 key)`);
    const eb = Buffer.alloc(4);
    eb.writeUInt32BE(e);
    const key = createPublicKey({ key: { kty: 'RSA', n: n.toString('base64url'), e: eb.subarray(eb.findIndex((b) => b !== 0)).toString('base64url') }, format: 'jwk' });
    this.cached = { keyId: keyIdOf(key), publicPem: key.export({ type: 'spki', format: 'pem' }).toString(), policy: this.policy() };
    return this.cached;
  }

  async unwrap(wrappedKey: Buffer, expected?: KeyPolicyDescription): Promise<Buffer> {
    checkExpectedPolicy(this.policy(), expected);
    if (wrappedKey.length !== KEY_BYTES) throw new TeeError('unwrap-failed', `a wrapped key is ${KEY_BYTES} bytes, got ${wrappedKey.length}`);
    const r = this.teec.invokeCommand(this.session, CMD_UNWRAP, [{ type: 'memref-input', buffer: wrappedKey }, { type: 'memref-output', size: CONTENT_KEY_BYTES }, { type: 'none' }, { type: 'none' }]);
    if (r.returnCode !== TEEC.SUCCESS) throw refusal('UNWRAP', r);
    const key = r.params[1]?.buffer;
    if (!key || key.length !== CONTENT_KEY_BYTES) throw new TeeError('protocol', `UNWRAP: the TA returned ${key?.length ?? 0} bytes (expected ${CONTENT_KEY_BYTES})`);
    return key;
  }

  /** The TA stores the secret; the blob is "EWOM" ‖ the 16-byte id it chose. */
  async sealMaster(secret: Buffer): Promise<Buffer> {
    checkMasterSecret(secret);
    const r = this.teec.invokeCommand(this.session, CMD_SEAL_MASTER, [{ type: 'memref-input', buffer: secret }, { type: 'memref-output', size: MASTER_ID_BYTES }, { type: 'none' }, { type: 'none' }]);
    if (r.returnCode !== TEEC.SUCCESS) throw refusal('SEAL_MASTER', r);
    const id = r.params[1]?.buffer;
    if (!id || id.length !== MASTER_ID_BYTES) throw new TeeError('protocol', `SEAL_MASTER: the TA returned a ${id?.length ?? 0}-byte id (expected ${MASTER_ID_BYTES})`);
    return Buffer.concat([OPTEE_MASTER_MAGIC, id]);
  }

  async unsealMaster(blob: Buffer): Promise<Buffer> {
    if (blob.length !== 4 + MASTER_ID_BYTES || !blob.subarray(0, 4).equals(OPTEE_MASTER_MAGIC)) throw new TeeError('protocol', 'the sealed master secret is not an OP-TEE backend blob');
    const r = this.teec.invokeCommand(this.session, CMD_UNSEAL_MASTER, [{ type: 'memref-input', buffer: blob.subarray(4) }, { type: 'memref-output', size: MASTER_SECRET_BYTES }, { type: 'none' }, { type: 'none' }]);
    if (r.returnCode >>> 0 === TEEC.ERROR_ITEM_NOT_FOUND) throw new TeeError('unwrap-failed', 'UNSEAL_MASTER: the TA keeps no master secret with this id (another device, or its secure storage was wiped)');
    if (r.returnCode !== TEEC.SUCCESS) throw refusal('UNSEAL_MASTER', r);
    const secret = r.params[1]?.buffer;
    if (!secret || secret.length !== MASTER_SECRET_BYTES) throw new TeeError('protocol', `UNSEAL_MASTER: the TA returned ${secret?.length ?? 0} bytes (expected ${MASTER_SECRET_BYTES})`);
    return secret;
  }

  /** Bound to the device and the TA, not to a measurement: nothing to re-check. */
  async checkMaster(): Promise<void> {}

  async close(): Promise<void> {
    this.teec.closeSession(this.session);
    this.teec.finalizeContext(this.context);
  }
}

const OPTEE_MASTER_MAGIC = Buffer.from('EWOM');
