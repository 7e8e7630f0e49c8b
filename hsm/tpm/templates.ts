/**
 * Standard key templates.
 *
 * EK: TCG EK Credential Profile for TPM Family 2.0 (v2.3) §B.3.3 "Template L-1" (RSA 2048) and §B.3.4
 * "Template L-2" (ECC NIST P-256): fixedTPM, fixedParent, sensitiveDataOrigin, adminWithPolicy, restricted,
 * decrypt; authPolicy = PolicySecret(TPM_RH_ENDORSEMENT) ("policy A"); AES-128-CFB; unique zero-filled
 * (256 bytes for RSA, 32+32 for ECC). These are the templates `tpm2_createek` uses, so the same TPM yields
 * the same EK either way.
 *
 * SRK: the RSA 2048 storage key `tpm2_createprimary -C o` makes by default (restricted, decrypt, fixedTPM,
 * fixedParent, sensitiveDataOrigin, userWithAuth; AES-128-CFB; empty unique), which is what the guide's
 * script persists at 0x81000001 — so a device provisioned either way ends up with the same SRK.
 */
import { ALG, ECC_CURVE, OBJ, RH } from './constants.js';
import { PolicyDigest } from './session.js';
import { handleName, type TpmtPublic } from './types.js';

/** PolicySecret(TPM_RH_ENDORSEMENT) with SHA-256: 837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa. */
export const EK_POLICY_A_SHA256 = new PolicyDigest(ALG.SHA256).policySecret(handleName(RH.ENDORSEMENT)).digest;

const AES128_CFB = { algorithm: ALG.AES, keyBits: 128, mode: ALG.CFB };
const EK_ATTRS = OBJ.fixedTPM | OBJ.fixedParent | OBJ.sensitiveDataOrigin | OBJ.adminWithPolicy | OBJ.restricted | OBJ.decrypt;
const STORAGE_ATTRS = OBJ.fixedTPM | OBJ.fixedParent | OBJ.sensitiveDataOrigin | OBJ.userWithAuth | OBJ.restricted | OBJ.decrypt;

export function ekRsaTemplate(): TpmtPublic {
  return {
    type: ALG.RSA, nameAlg: ALG.SHA256, objectAttributes: EK_ATTRS, authPolicy: EK_POLICY_A_SHA256,
    symmetric: AES128_CFB, scheme: null, keyBits: 2048, exponent: 0, unique: Buffer.alloc(256),
  };
}

export function ekEccTemplate(): TpmtPublic {
  return {
    type: ALG.ECC, nameAlg: ALG.SHA256, objectAttributes: EK_ATTRS, authPolicy: EK_POLICY_A_SHA256,
    symmetric: AES128_CFB, scheme: null, curveId: ECC_CURVE.NIST_P256, kdf: null, unique: { x: Buffer.alloc(32), y: Buffer.alloc(32) },
  };
}

export function srkRsaTemplate(): TpmtPublic {
  return {
    type: ALG.RSA, nameAlg: ALG.SHA256, objectAttributes: STORAGE_ATTRS, authPolicy: Buffer.alloc(0),
    symmetric: AES128_CFB, scheme: null, keyBits: 2048, exponent: 0, unique: Buffer.alloc(0),
  };
}

/** Attributes of ordinary keys Edgeward creates under the SRK (never leave the TPM in clear). */
const KEY_ATTRS = OBJ.fixedTPM | OBJ.fixedParent | OBJ.sensitiveDataOrigin | OBJ.userWithAuth;

/** ECDSA P-256 / SHA-256 signing key (unrestricted: signs any digest). */
export function eccSigningTemplate(opts: { restricted?: boolean; noDA?: boolean } = {}): TpmtPublic {
  return {
    type: ALG.ECC, nameAlg: ALG.SHA256,
    objectAttributes: KEY_ATTRS | OBJ.sign | (opts.restricted ? OBJ.restricted : 0) | (opts.noDA ? OBJ.noDA : 0),
    authPolicy: Buffer.alloc(0), symmetric: null, scheme: { scheme: ALG.ECDSA, hashAlg: ALG.SHA256 },
    curveId: ECC_CURVE.NIST_P256, kdf: null, unique: { x: Buffer.alloc(0), y: Buffer.alloc(0) },
  };
}

/** RSA 2048 signing (RSASSA-PKCS1-v1_5 / SHA-256) key. */
export function rsaSigningTemplate(): TpmtPublic {
  return {
    type: ALG.RSA, nameAlg: ALG.SHA256, objectAttributes: KEY_ATTRS | OBJ.sign, authPolicy: Buffer.alloc(0),
    symmetric: null, scheme: { scheme: ALG.RSASSA, hashAlg: ALG.SHA256 }, keyBits: 2048, exponent: 0, unique: Buffer.alloc(0),
  };
}

/** RSA 2048 decryption (OAEP, scheme chosen per call) key. */
export function rsaDecryptTemplate(): TpmtPublic {
  return {
    type: ALG.RSA, nameAlg: ALG.SHA256, objectAttributes: KEY_ATTRS | OBJ.decrypt, authPolicy: Buffer.alloc(0),
    symmetric: null, scheme: null, keyBits: 2048, exponent: 0, unique: Buffer.alloc(0),
  };
}

/**
 * HMAC-SHA256 key: generated in the TPM, or (`external`) made from key bytes the caller passes as the
 * sensitive data, in which case sensitiveDataOrigin must be clear (Part 1 §27.2.3).
 */
export function hmacTemplate(opts: { external?: boolean } = {}): TpmtPublic {
  const attrs = opts.external ? KEY_ATTRS & ~OBJ.sensitiveDataOrigin : KEY_ATTRS;
  return {
    type: ALG.KEYEDHASH, nameAlg: ALG.SHA256, objectAttributes: attrs | OBJ.sign, authPolicy: Buffer.alloc(0),
    scheme: { scheme: ALG.HMAC, hashAlg: ALG.SHA256 }, unique: Buffer.alloc(0),
  };
}

/** Sealed data object released only by `authPolicy` (no userWithAuth, so a password cannot unseal it). */
export function sealedTemplate(authPolicy: Buffer): TpmtPublic {
  return {
    type: ALG.KEYEDHASH, nameAlg: ALG.SHA256, objectAttributes: OBJ.fixedTPM | OBJ.fixedParent | OBJ.noDA, authPolicy,
    scheme: null, unique: Buffer.alloc(0),
  };
}
