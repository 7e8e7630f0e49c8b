/**
 * TPM 2.0 constants used by Edgeward's command layer (TPM 2.0 Library, Part 2: Structures, §6 and §7).
 * Only the values this layer sends or decodes are listed; names follow the spec with the `TPM_` prefix
 * dropped.
 */

/** TPM_ST (Part 2 §6.9). */
export const ST = {
  RSP_COMMAND: 0x00c4,
  NULL: 0x8000,
  NO_SESSIONS: 0x8001,
  SESSIONS: 0x8002,
  ATTEST_QUOTE: 0x8018,
  CREATION: 0x8021,
  VERIFIED: 0x8022,
  HASHCHECK: 0x8024,
} as const;

/** TPM_CC (Part 2 §6.5.2). */
export const CC = {
  NV_UndefineSpace: 0x00000122,
  EvictControl: 0x00000120,
  HierarchyChangeAuth: 0x00000129,
  NV_DefineSpace: 0x0000012a,
  CreatePrimary: 0x00000131,
  NV_Increment: 0x00000134,
  PCR_Reset: 0x0000013d,
  Startup: 0x00000144,
  Shutdown: 0x00000145,
  ActivateCredential: 0x00000147,
  NV_Read: 0x0000014e,
  PolicySecret: 0x00000151,
  Create: 0x00000153,
  HMAC: 0x00000155,
  HMAC_Start: 0x0000015b,
  SequenceUpdate: 0x0000015c,
  SequenceComplete: 0x0000013e,
  Import: 0x00000156,
  Load: 0x00000157,
  Quote: 0x00000158,
  Unseal: 0x0000015e,
  ContextLoad: 0x00000161,
  ContextSave: 0x00000162,
  FlushContext: 0x00000165,
  PolicyAuthValue: 0x0000016b,
  PolicyCommandCode: 0x0000016c,
  ReadPublic: 0x00000173,
  RSA_Decrypt: 0x00000159,
  StartAuthSession: 0x00000176,
  VerifySignature: 0x00000177,
  GetCapability: 0x0000017a,
  GetRandom: 0x0000017b,
  PCR_Read: 0x0000017e,
  PolicyPCR: 0x0000017f,
  PolicyRestart: 0x00000180,
  PCR_Extend: 0x00000182,
  PolicyGetDigest: 0x00000189,
  PolicyPassword: 0x0000018c,
  Sign: 0x0000015d,
} as const;
export type CommandCode = (typeof CC)[keyof typeof CC];

/** Name of a command code, for error messages. */
export function commandName(cc: number): string {
  for (const [name, value] of Object.entries(CC)) if (value === cc) return `TPM2_${name}`;
  return `TPM2_CC_0x${cc.toString(16).padStart(8, '0')}`;
}

/** TPM_ALG_ID (Part 2 §6.3; TCG Algorithm Registry). */
export const ALG = {
  RSA: 0x0001,
  SHA1: 0x0004,
  HMAC: 0x0005,
  AES: 0x0006,
  KEYEDHASH: 0x0008,
  XOR: 0x000a,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  RSASSA: 0x0014,
  RSAES: 0x0015,
  RSAPSS: 0x0016,
  OAEP: 0x0017,
  ECDSA: 0x0018,
  ECDH: 0x0019,
  KDF1_SP800_108: 0x0022,
  ECC: 0x0023,
  SYMCIPHER: 0x0025,
  CFB: 0x0043,
} as const;

/** TPM_ECC_CURVE (Part 2 §6.4). */
export const ECC_CURVE = { NIST_P256: 0x0003, NIST_P384: 0x0004 } as const;

/** TPM_RH / TPM_RS permanent handles (Part 2 §7.4). */
export const RH = {
  OWNER: 0x40000001,
  NULL: 0x40000007,
  PW: 0x40000009,
  LOCKOUT: 0x4000000a,
  ENDORSEMENT: 0x4000000b,
  PLATFORM: 0x4000000c,
} as const;

/** Handle ranges (Part 2 §7.2, TPM_HT). */
export const HT = { PCR: 0x00, NV_INDEX: 0x01, HMAC_SESSION: 0x02, POLICY_SESSION: 0x03, PERMANENT: 0x40, TRANSIENT: 0x80, PERSISTENT: 0x81 } as const;

/** TPM_SE session types (Part 2 §6.11). */
export const SE = { HMAC: 0x00, POLICY: 0x01, TRIAL: 0x03 } as const;

/** TPMA_SESSION bits (Part 2 §8.4). */
export const SESSION_ATTR = { continueSession: 0x01, auditExclusive: 0x02, auditReset: 0x04, decrypt: 0x20, encrypt: 0x40, audit: 0x80 } as const;

/** TPMA_OBJECT bits (Part 2 §8.3). */
export const OBJ = {
  fixedTPM: 1 << 1,
  stClear: 1 << 2,
  fixedParent: 1 << 4,
  sensitiveDataOrigin: 1 << 5,
  userWithAuth: 1 << 6,
  adminWithPolicy: 1 << 7,
  noDA: 1 << 10,
  encryptedDuplication: 1 << 11,
  restricted: 1 << 16,
  decrypt: 1 << 17,
  sign: 1 << 18,
} as const;

/** TPMA_NV bits and TPM_NT (Part 2 §13.4). */
export const NV = {
  PPWRITE: 1 << 0,
  OWNERWRITE: 1 << 1,
  AUTHWRITE: 1 << 2,
  POLICYWRITE: 1 << 3,
  NT_COUNTER: 1 << 4,
  PPREAD: 1 << 16,
  OWNERREAD: 1 << 17,
  AUTHREAD: 1 << 18,
  POLICYREAD: 1 << 19,
  NO_DA: 1 << 25,
  WRITTEN: 1 << 29,
} as const;

/** TPM_CAP (Part 2 §6.12) and the TPM_PT values we read. */
export const CAP = { HANDLES: 0x00000001, PCRS: 0x00000005, TPM_PROPERTIES: 0x00000006 } as const;
export const PT = {
  MANUFACTURER: 0x100 + 5,
  FIRMWARE_VERSION_1: 0x100 + 11,
  HR_TRANSIENT_MIN: 0x100 + 14,
  INPUT_BUFFER: 0x100 + 13,
  LOCKOUT_COUNTER: 0x200 + 14,
  MAX_AUTH_FAIL: 0x200 + 15,
  PERMANENT: 0x200,
} as const;

/** TPMA_PERMANENT bits (Part 2 §8.6): which hierarchy auth values are set, and lockout. */
export const PERMANENT = { ownerAuthSet: 1 << 0, endorsementAuthSet: 1 << 1, lockoutAuthSet: 1 << 2, inLockout: 1 << 9 } as const;

/** Digest size in bytes per hash algorithm. */
export function digestSize(hashAlg: number): number {
  switch (hashAlg) {
    case ALG.SHA1:
      return 20;
    case ALG.SHA256:
      return 32;
    case ALG.SHA384:
      return 48;
    case ALG.SHA512:
      return 64;
    default:
      throw new RangeError(`unsupported hash algorithm 0x${hashAlg.toString(16)}`);
  }
}

/** node:crypto name of a TPM hash algorithm. */
export function hashName(hashAlg: number): 'sha1' | 'sha256' | 'sha384' | 'sha512' {
  switch (hashAlg) {
    case ALG.SHA1:
      return 'sha1';
    case ALG.SHA256:
      return 'sha256';
    case ALG.SHA384:
      return 'sha384';
    case ALG.SHA512:
      return 'sha512';
    default:
      throw new RangeError(`unsupported hash algorithm 0x${hashAlg.toString(16)}`);
  }
}
