/**
 * The device's TPM identity: EK at 0x81010001 and SRK at 0x81000001, read if persisted, else created from
 * the standard templates and persisted — the behaviour of the tpm2-tools script in Microsoft's "provision
 * devices at scale with TPM" guide. The registration id is the lower-case hex SHA-256 of the EK's
 * TPM2B_PUBLIC as `tpm2_readpublic -o` writes it (`sha256sum ek.pub`), the endorsement key the base64 of
 * the same bytes.
 */
import { createHash } from 'node:crypto';
import { PERMANENT, PT, RH } from './constants.js';
import { TpmError } from './rc.js';
import { passwordAuth } from './session.js';
import { ekEccTemplate, ekRsaTemplate, srkRsaTemplate } from './templates.js';
import type { PublicInfo, Tpm } from './tpm.js';
import type { TpmtPublic } from './types.js';

export const EK_HANDLE = 0x81010001;
export const SRK_HANDLE = 0x81000001;

export interface TpmIdentity {
  ek: PublicInfo;
  srk: PublicInfo;
  /** lower-case hex SHA-256 of the EK TPM2B_PUBLIC. */
  registrationId: string;
  /** base64 of the EK TPM2B_PUBLIC (DPS `tpm.endorsementKey`). */
  endorsementKey: string;
  /** base64 of the SRK TPM2B_PUBLIC (DPS `tpm.storageRootKey`). */
  storageRootKey: string;
  /** Which keys this call created and persisted. */
  created: { ek: boolean; srk: boolean };
}

/** A hierarchy has an auth value set, so Edgeward cannot create the EK/SRK with an empty one. */
export class HierarchyAuthError extends Error {
  constructor(hierarchy: 'owner' | 'endorsement', cause: TpmError) {
    super(
      `the TPM ${hierarchy} hierarchy has an authorization value set (${cause.code}); Edgeward needs it empty to create and persist the ${hierarchy === 'owner' ? 'SRK' : 'EK'}\n` +
        `  hint: provision the key once with tpm2-tools using the ${hierarchy} password (tpm2_createek/tpm2_createprimary + tpm2_evictcontrol -P), or clear the hierarchy auth (tpm2_changeauth -c ${hierarchy === 'owner' ? 'o' : 'e'} -p OLD)`,
    );
    this.name = 'HierarchyAuthError';
  }
}

export function registrationIdOf(ekPublicBytes: Buffer): string {
  return createHash('sha256').update(ekPublicBytes).digest('hex');
}

async function readIfPersisted(tpm: Tpm, handle: number): Promise<PublicInfo | undefined> {
  try {
    return await tpm.readPublic(handle);
  } catch (err) {
    if (err instanceof TpmError && err.code === 'TPM_RC_HANDLE') return undefined;
    throw err;
  }
}

/** Read the persisted key at `handle`, or create it from `template` in `hierarchy` and persist it. */
export async function ensurePersistedPrimary(
  tpm: Tpm,
  handle: number,
  hierarchy: number,
  template: TpmtPublic,
  auths: HierarchyAuths = {},
): Promise<{ info: PublicInfo; created: boolean }> {
  const existing = await readIfPersisted(tpm, handle);
  if (existing) return { info: existing, created: false };
  const which = hierarchy === RH.ENDORSEMENT ? 'endorsement' : 'owner';
  let obj;
  try {
    obj = await tpm.createPrimary(hierarchy, template, { hierarchyAuth: passwordAuth(Buffer.from((which === 'owner' ? auths.owner : auths.endorsement) ?? '')) });
  } catch (err) {
    if (err instanceof TpmError && err.isAuthFailure) throw new HierarchyAuthError(which, err);
    throw err;
  }
  try {
    await tpm.evictControl(obj.handle, handle, passwordAuth(Buffer.from(auths.owner ?? '')));
  } catch (err) {
    if (err instanceof TpmError && err.isAuthFailure) throw new HierarchyAuthError('owner', err);
    throw err;
  } finally {
    await tpm.flushContext(obj.handle);
  }
  return { info: await tpm.readPublic(handle), created: true };
}

/** Hierarchy auth values (aziot's `[tpm.hierarchy_authorization]`), only needed to create the EK/SRK. */
export interface HierarchyAuths {
  owner?: string;
  endorsement?: string;
}

/** Read or create-and-persist the EK and SRK; compute the registration id. */
export async function ensureIdentity(tpm: Tpm, opts: { ekType?: 'rsa' | 'ecc'; hierarchyAuth?: HierarchyAuths } = {}): Promise<TpmIdentity> {
  const auths = opts.hierarchyAuth ?? {};
  const ek = await ensurePersistedPrimary(tpm, EK_HANDLE, RH.ENDORSEMENT, opts.ekType === 'ecc' ? ekEccTemplate() : ekRsaTemplate(), auths);
  const srk = await ensurePersistedPrimary(tpm, SRK_HANDLE, RH.OWNER, srkRsaTemplate(), auths);
  return {
    ek: ek.info,
    srk: srk.info,
    registrationId: registrationIdOf(ek.info.publicBytes),
    endorsementKey: ek.info.publicBytes.toString('base64'),
    storageRootKey: srk.info.publicBytes.toString('base64'),
    created: { ek: ek.created, srk: srk.created },
  };
}

export interface TpmStatus {
  /** Vendor id, e.g. "IBM", "IFX", "STM", "MSFT". */
  manufacturer: string;
  /** TPM_PT_FIRMWARE_VERSION_1/2 as hex. */
  firmwareVersion: string;
  inLockout: boolean;
  lockoutCounter: number;
  maxAuthFail: number;
  ownerAuthSet: boolean;
  endorsementAuthSet: boolean;
  lockoutAuthSet: boolean;
  /** Persistent handles present (0x81xxxxxx). */
  persistent: number[];
}

/** Vendor, lockout and hierarchy-auth state, and persistent handles: for `edgeward tpm status` and error hints. */
export async function tpmStatus(tpm: Tpm): Promise<TpmStatus> {
  const fixed = await tpm.getProperties(PT.MANUFACTURER, 8);
  const vars = await tpm.getProperties(PT.PERMANENT, 16);
  const p = vars.get(PT.PERMANENT) ?? 0;
  const m = Buffer.alloc(4);
  m.writeUInt32BE(fixed.get(PT.MANUFACTURER) ?? 0);
  const fw = [PT.FIRMWARE_VERSION_1, PT.FIRMWARE_VERSION_1 + 1].map((k) => (fixed.get(k) ?? 0).toString(16).padStart(8, '0')).join('.');
  return {
    manufacturer: m.toString('latin1').replace(/[^\x20-\x7e]/g, '').trim(),
    firmwareVersion: fw,
    inLockout: (p & PERMANENT.inLockout) !== 0,
    lockoutCounter: vars.get(PT.LOCKOUT_COUNTER) ?? 0,
    maxAuthFail: vars.get(PT.MAX_AUTH_FAIL) ?? 0,
    ownerAuthSet: (p & PERMANENT.ownerAuthSet) !== 0,
    endorsementAuthSet: (p & PERMANENT.endorsementAuthSet) !== 0,
    lockoutAuthSet: (p & PERMANENT.lockoutAuthSet) !== 0,
    persistent: await tpm.getHandles(0x81000000),
  };
}

export { passwordAuth };
