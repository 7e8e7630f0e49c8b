/**
 * Data sealed to PCR values (Part 1 §19.7): a KEYEDHASH object whose authPolicy is PolicyPCR over the
 * chosen PCRs and whose userWithAuth is clear, so the TPM releases it (TPM2_Unseal) only in a policy
 * session where PolicyPCR held — i.e. only while the PCRs have the values they had at sealing time (or the
 * values given). The blobs are wrapped by the parent and can be stored anywhere.
 */
import { ALG, SE } from './constants.js';
import { PolicyDigest } from './session.js';
import { sealedTemplate } from './templates.js';
import type { Entity, Tpm } from './tpm.js';
import type { PcrSelection, TpmtPublic } from './types.js';

/** TPM2B_SENSITIVE_DATA holds at most 128 bytes (MAX_SYM_DATA). */
export const MAX_SEALED_BYTES = 128;

export interface SealedBlob {
  privateBytes: Buffer;
  publicBytes: Buffer;
  selection: PcrSelection[];
  policy: Buffer;
}

/** The PCR values of `selection`, in selection order (lowest index first). */
export async function readPcrValues(tpm: Tpm, selection: PcrSelection[]): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const s of selection) {
    for (const pcr of [...s.pcrs].sort((a, b) => a - b)) {
      const r = await tpm.pcrRead([{ hashAlg: s.hashAlg, pcrs: [pcr] }]);
      const v = r.digests[0];
      if (!v) throw new Error(`PCR ${pcr} of bank 0x${s.hashAlg.toString(16)} is not allocated`);
      out.push(v);
    }
  }
  return out;
}

/** An RSA key in the TPM (the SRK) to salt sessions with, so the secret crosses the bus encrypted. */
export type SaltKey = { handle: number; public: TpmtPublic };

/** Seal `secret` under `parent` to the PCR values given, or to the current ones. */
export async function sealToPcrs(tpm: Tpm, parent: Entity, secret: Buffer, selection: PcrSelection[], pcrValues?: Buffer[], opts: { saltKey?: SaltKey } = {}): Promise<SealedBlob> {
  if (secret.length === 0 || secret.length > MAX_SEALED_BYTES) throw new RangeError(`sealed data must be 1..${MAX_SEALED_BYTES} bytes`);
  const values = pcrValues ?? (await readPcrValues(tpm, selection));
  const policy = new PolicyDigest(ALG.SHA256).policyPcr(selection, values).digest;
  if (!opts.saltKey) {
    const obj = await tpm.create(parent, sealedTemplate(policy), { data: secret });
    return { privateBytes: obj.privateBytes, publicBytes: obj.publicBytes, selection, policy };
  }
  const s = await tpm.startAuthSession(SE.HMAC, ALG.SHA256, { saltKey: opts.saltKey });
  try {
    const obj = await tpm.create(parent, sealedTemplate(policy), { data: secret, parentAuth: s.authorize(Buffer.alloc(0), { decrypt: true }) });
    return { privateBytes: obj.privateBytes, publicBytes: obj.publicBytes, selection, policy };
  } finally {
    await tpm.flushContext(s.handle);
  }
}

/** Load and unseal; the TPM refuses (TPM_RC_POLICY_FAIL) when the PCRs no longer match. */
export async function unsealWithPcrs(tpm: Tpm, parent: Entity, blob: SealedBlob, opts: { saltKey?: SaltKey } = {}): Promise<Buffer> {
  const obj = await tpm.load(parent, blob.privateBytes, blob.publicBytes);
  try {
    const session = await tpm.startAuthSession(SE.POLICY, ALG.SHA256, { saltKey: opts.saltKey });
    try {
      await tpm.policyPcr(session, blob.selection);
      return await tpm.unseal(obj, session.authorize(Buffer.alloc(0), { encrypt: opts.saltKey !== undefined }));
    } finally {
      await tpm.flushContext(session.handle);
    }
  } finally {
    await tpm.flushContext(obj.handle);
  }
}

/** The policy digest a real (trial) session computes for PolicyPCR over the current values. */
export async function trialPcrPolicy(tpm: Tpm, selection: PcrSelection[]): Promise<Buffer> {
  const s = await tpm.startAuthSession(SE.TRIAL);
  try {
    await tpm.policyPcr(s, selection);
    return await tpm.policyGetDigest(s);
  } finally {
    await tpm.flushContext(s.handle);
  }
}
