/**
 * DPS TPM attestation: import the `authenticationKey` DPS returns to a TPM device (first with the 401 of the
 * unauthenticated register call, then in `registrationState.tpm`).
 *
 * The blob is five marshalled structures in a row: TPM2B_ID_OBJECT credentialBlob, TPM2B_ENCRYPTED_SECRET
 * secret (both from TPM2_MakeCredential against our EK, naming our SRK), TPM2B_PRIVATE duplicate,
 * TPM2B_ENCRYPTED_SECRET inSymSeed (a duplication of the HMAC key to our SRK, inner-wrapped with AES-128-CFB
 * under the credential), TPM2B_PUBLIC of the key. As aziot-tpmd does: ActivateCredential(activate = SRK,
 * key = EK, EK authorized by a policy session with PolicySecret(TPM_RH_ENDORSEMENT), since the EK's policy is
 * "policy A") yields the inner wrapping key; Import under the SRK; Load; persist at the auth-key handle
 * (replacing the previous one). SAS tokens are then TPM2_HMAC with that key; the key never exists in clear
 * on the device.
 */
import { ALG, RH, SE } from './constants.js';
import { Reader, Writer } from './marshal.js';
import { TpmError } from './rc.js';
import { passwordAuth, type Authorization, type Session } from './session.js';
import { EK_HANDLE, SRK_HANDLE } from './identity.js';
import type { Tpm } from './tpm.js';
import { parseTpm2bPublic } from './types.js';

/** aziot's default `auth_key_index` 0x00_01_00 → persistent handle 0x81000100. */
export const DEFAULT_AUTH_KEY_HANDLE = 0x81000100;
/**
 * Persistent handle for `[tpm] auth_key_index` as aziot-tpmd spells it ("0x00_01_00", "0x100", "256"):
 * 0x81000000 + index, within the owner persistent range.
 */
export function authKeyHandle(index?: string): number {
  if (index === undefined) return DEFAULT_AUTH_KEY_HANDLE;
  const clean = index.replace(/_/g, '');
  const n = /^0x[0-9a-f]+$/i.test(clean) ? Number.parseInt(clean.slice(2), 16) : /^\d+$/.test(clean) ? Number(clean) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 0x7fffff) throw new DpsImportError(`bad [tpm] auth_key_index "${index}" (expected e.g. "0x00_01_00")`);
  return 0x81000000 + n;
}

/** The largest authenticationKey we accept (the five structures are < 1.5 KiB for RSA 2048). */
export const MAX_AUTH_KEY_BLOB_BYTES = 4096;

export interface DpsAuthKeyBlob {
  credentialBlob: Buffer;
  secret: Buffer;
  /** TPM2B_PRIVATE content. */
  duplicate: Buffer;
  /** TPM2B_ENCRYPTED_SECRET content. */
  inSymSeed: Buffer;
  /** TPM2B_PUBLIC bytes (with size). */
  publicBytes: Buffer;
}

/** A malformed authenticationKey, or one this TPM cannot activate (made for another EK or SRK). */
export class DpsImportError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'DpsImportError';
  }
}

/** Parse the authenticationKey (base64 or bytes). Bytes after the five structures (encrypted URI data in older services) are ignored. */
export function parseAuthKeyBlob(blob: Buffer | string): DpsAuthKeyBlob {
  const bytes = typeof blob === 'string' ? Buffer.from(blob, 'base64') : blob;
  if (bytes.length > MAX_AUTH_KEY_BLOB_BYTES) throw new DpsImportError(`authenticationKey is too large (${bytes.length} bytes, limit ${MAX_AUTH_KEY_BLOB_BYTES})`);
  try {
    const r = new Reader(bytes);
    const credentialBlob = r.b2();
    const secret = r.b2();
    const duplicate = r.b2();
    const inSymSeed = r.b2();
    const start = r.offset;
    const pubInner = r.b2();
    const publicBytes = bytes.subarray(start, start + 2 + pubInner.length);
    const pub = parseTpm2bPublic(publicBytes);
    if (pub.type !== ALG.KEYEDHASH) throw new DpsImportError('authenticationKey does not carry an HMAC key');
    return { credentialBlob, secret, duplicate, inSymSeed, publicBytes: Buffer.from(publicBytes) };
  } catch (err) {
    if (err instanceof DpsImportError) throw err;
    throw new DpsImportError(`malformed authenticationKey: ${(err as Error).message}`, err);
  }
}

/** Marshal the five structures (the inverse of parseAuthKeyBlob; used to build test vectors). */
export function marshalAuthKeyBlob(b: DpsAuthKeyBlob): Buffer {
  return new Writer().b2(b.credentialBlob).b2(b.secret).b2(b.duplicate).b2(b.inSymSeed).bytes(b.publicBytes).finish();
}

export interface ImportOptions {
  /** Persistent handle for the key (default 0x81000100). */
  handle?: number;
  ekHandle?: number;
  srkHandle?: number;
  /** Endorsement hierarchy auth, if set ([tpm.hierarchy_authorization] endorsement). */
  endorsementAuth?: Authorization;
  ownerAuth?: Authorization;
}

/** Activate, import, load and persist the DPS authentication key. Resolves with its persistent handle. */
export async function importDpsAuthKey(tpm: Tpm, blob: Buffer | string, opts: ImportOptions = {}): Promise<number> {
  const b = parseAuthKeyBlob(blob);
  const ek = opts.ekHandle ?? EK_HANDLE;
  const srk = opts.srkHandle ?? SRK_HANDLE;
  const handle = opts.handle ?? DEFAULT_AUTH_KEY_HANDLE;

  // The inner wrapping key leaves ActivateCredential and enters Import encrypted, in an SRK-salted session.
  const salted = await tpm.startAuthSession(SE.HMAC, ALG.SHA256, { saltKey: { handle: srk, public: (await tpm.readPublic(srk)).public } });
  try {
    return await activateAndImport(tpm, b, { ...opts, ek, srk, handle, salted });
  } finally {
    await tpm.flushContext(salted.handle).catch(() => undefined);
  }
}

type ImportSteps = ImportOptions & { ek: number; srk: number; handle: number; salted: Session };

async function activateAndImport(tpm: Tpm, b: DpsAuthKeyBlob, o: ImportSteps): Promise<number> {
  const innerKey = await activateInnerKey(tpm, b, o);
  const privateBytes = await tpm.import(
    o.srk,
    {
      encryptionKey: innerKey,
      publicBytes: b.publicBytes,
      duplicate: b.duplicate,
      inSymSeed: b.inSymSeed,
      symmetricAlg: { algorithm: ALG.AES, keyBits: 128, mode: ALG.CFB },
    },
    o.salted.authorize(Buffer.alloc(0), { decrypt: true }),
  );
  await persistAuthKey(tpm, privateBytes, b.publicBytes, o);
  return o.handle;
}

/** TPM2_ActivateCredential under a PolicySecret(endorsement) session: the inner wrapping key, response-encrypted. */
async function activateInnerKey(tpm: Tpm, b: DpsAuthKeyBlob, o: ImportSteps): Promise<Buffer> {
  const session = await tpm.startAuthSession(SE.POLICY);
  try {
    await tpm.policySecret(RH.ENDORSEMENT, session, o.endorsementAuth ?? passwordAuth());
    const auths: [Authorization, Authorization] = [o.salted.authorize(Buffer.alloc(0), { encrypt: true }), session.authorize()];
    return await tpm.activateCredential(o.srk, o.ek, b.credentialBlob, b.secret, auths).catch((err: unknown) => {
      // Wrong EK: the seed does not decrypt (TPM_RC_VALUE/…); wrong SRK name: TPM_RC_INTEGRITY.
      if (err instanceof TpmError && !err.isAuthFailure) {
        throw new DpsImportError(`the TPM refused the DPS credential (${err.code}): it was not made for this device's EK and SRK`, err);
      }
      throw err;
    });
  } finally {
    await tpm.flushContext(session.handle).catch(() => undefined);
  }
}

/** Load the imported key and persist it at `o.handle`, replacing the previous auth key there. */
async function persistAuthKey(tpm: Tpm, privateBytes: Buffer, publicBytes: Buffer, o: ImportSteps): Promise<void> {
  const loaded = await tpm.load(o.srk, privateBytes, publicBytes);
  try {
    const ownerAuth = o.ownerAuth ?? passwordAuth();
    // Replace the previous auth key, as aziot-tpmd does on re-provisioning.
    await tpm.evictControl(o.handle, o.handle, ownerAuth).catch((err: unknown) => {
      if (!(err instanceof TpmError && err.code === 'TPM_RC_HANDLE')) throw err;
    });
    await tpm.evictControl(loaded.handle, o.handle, ownerAuth);
  } finally {
    await tpm.flushContext(loaded.handle);
  }
}

/** HMAC-SHA256 with the imported DPS/IoT Hub key: the `sig` of a SAS token. */
export function signWithAuthKey(tpm: Tpm, data: Buffer, handle: number = DEFAULT_AUTH_KEY_HANDLE): Promise<Buffer> {
  return tpm.hmac(handle, data, ALG.SHA256);
}
