/**
 * TPM_RC decoding (TPM 2.0 Library Part 2 §6.6). A response code is either format 0 (bit 7 clear: an
 * error or warning about the command as a whole, bit 8 = TPM 2.0, bit 11 = warning) or format 1 (bit 7
 * set: an error about one handle, parameter or session, whose index is in bits 8..11 with bit 6 telling
 * parameter from handle/session). `TpmError` carries the decoded name and index so callers can branch on
 * `code` (for example `TPM_RC_LOCKOUT`) instead of on numbers.
 */
import { commandName } from './constants.js';

const RC_VER1 = 0x100;
const RC_FMT1 = 0x080;
const RC_WARN = 0x900;

const FMT1: Record<number, string> = {
  0x01: 'ASYMMETRIC', 0x02: 'ATTRIBUTES', 0x03: 'HASH', 0x04: 'VALUE', 0x05: 'HIERARCHY', 0x07: 'KEY_SIZE',
  0x08: 'MGF', 0x09: 'MODE', 0x0a: 'TYPE', 0x0b: 'HANDLE', 0x0c: 'KDF', 0x0d: 'RANGE', 0x0e: 'AUTH_FAIL',
  0x0f: 'NONCE', 0x10: 'PP', 0x12: 'SCHEME', 0x15: 'SIZE', 0x16: 'SYMMETRIC', 0x17: 'TAG', 0x18: 'SELECTOR',
  0x1a: 'INSUFFICIENT', 0x1b: 'SIGNATURE', 0x1c: 'KEY', 0x1d: 'POLICY_FAIL', 0x1f: 'INTEGRITY', 0x20: 'TICKET',
  0x21: 'RESERVED_BITS', 0x22: 'BAD_AUTH', 0x23: 'EXPIRED', 0x24: 'POLICY_CC', 0x25: 'BINDING', 0x26: 'CURVE',
  0x27: 'ECC_POINT',
};

const VER1: Record<number, string> = {
  0x00: 'INITIALIZE', 0x01: 'FAILURE', 0x03: 'SEQUENCE', 0x0b: 'PRIVATE', 0x19: 'HMAC', 0x20: 'DISABLED',
  0x21: 'EXCLUSIVE', 0x24: 'AUTH_TYPE', 0x25: 'AUTH_MISSING', 0x26: 'POLICY', 0x27: 'PCR', 0x28: 'PCR_CHANGED',
  0x2d: 'UPGRADE', 0x2e: 'TOO_MANY_CONTEXTS', 0x2f: 'AUTH_UNAVAILABLE', 0x30: 'REBOOT', 0x31: 'UNBALANCED',
  0x42: 'COMMAND_SIZE', 0x43: 'COMMAND_CODE', 0x44: 'AUTHSIZE', 0x45: 'AUTH_CONTEXT', 0x46: 'NV_RANGE',
  0x47: 'NV_SIZE', 0x48: 'NV_LOCKED', 0x49: 'NV_AUTHORIZATION', 0x4a: 'NV_UNINITIALIZED', 0x4b: 'NV_SPACE',
  0x4c: 'NV_DEFINED', 0x50: 'BAD_CONTEXT', 0x51: 'CPHASH', 0x52: 'PARENT', 0x53: 'NEEDS_TEST', 0x54: 'NO_RESULT',
  0x55: 'SENSITIVE',
};

const WARN: Record<number, string> = {
  0x01: 'CONTEXT_GAP', 0x02: 'OBJECT_MEMORY', 0x03: 'SESSION_MEMORY', 0x04: 'MEMORY', 0x05: 'SESSION_HANDLES',
  0x06: 'OBJECT_HANDLES', 0x07: 'LOCALITY', 0x08: 'YIELDED', 0x09: 'CANCELED', 0x0a: 'TESTING',
  0x10: 'REFERENCE_H0', 0x11: 'REFERENCE_H1', 0x12: 'REFERENCE_H2', 0x13: 'REFERENCE_H3', 0x14: 'REFERENCE_H4',
  0x15: 'REFERENCE_H5', 0x16: 'REFERENCE_H6', 0x18: 'REFERENCE_S0', 0x19: 'REFERENCE_S1', 0x1a: 'REFERENCE_S2',
  0x1b: 'REFERENCE_S3', 0x1c: 'REFERENCE_S4', 0x1d: 'REFERENCE_S5', 0x1e: 'REFERENCE_S6', 0x20: 'NV_RATE',
  0x21: 'LOCKOUT', 0x22: 'RETRY', 0x23: 'NV_UNAVAILABLE',
};

/** What a format-1 response code points at. */
export type RcSubject = { kind: 'handle' | 'parameter' | 'session'; index: number } | undefined;

export interface DecodedRc {
  /** The raw response code. */
  rc: number;
  /** `TPM_RC_<NAME>` (format-1 codes are reported without their index bits). */
  code: string;
  /** The base code with index bits cleared (e.g. 0x08e for any TPM_RC_AUTH_FAIL). */
  base: number;
  subject: RcSubject;
  warning: boolean;
}

/** Decode a TPM 2.0 response code. */
export function decodeRc(rc: number): DecodedRc {
  if (rc === 0) return { rc, code: 'TPM_RC_SUCCESS', base: 0, subject: undefined, warning: false };
  if (rc & RC_FMT1) {
    const e = rc & 0x3f;
    const n = (rc >> 8) & 0xf;
    let subject: RcSubject;
    if (rc & 0x40) subject = { kind: 'parameter', index: n };
    else if (n & 0x8) subject = { kind: 'session', index: n & 0x7 };
    else if (n !== 0) subject = { kind: 'handle', index: n };
    const name = FMT1[e];
    return { rc, code: name ? `TPM_RC_${name}` : `TPM_RC_FMT1_0x${e.toString(16)}`, base: RC_FMT1 + e, subject, warning: false };
  }
  if ((rc & RC_VER1) === 0) return { rc, code: `TPM1.2_RC_0x${rc.toString(16)}`, base: rc, subject: undefined, warning: false };
  if (rc & 0x400) return { rc, code: `TPM_RC_VENDOR_0x${rc.toString(16)}`, base: rc, subject: undefined, warning: false };
  const warning = (rc & 0x800) !== 0;
  const e = rc & 0x7f;
  const name = (warning ? WARN : VER1)[e];
  return {
    rc,
    code: name ? `TPM_RC_${name}` : `TPM_RC_0x${rc.toString(16)}`,
    base: (warning ? RC_WARN : RC_VER1) + e,
    subject: undefined,
    warning,
  };
}

const HINTS: Record<string, string> = {
  TPM_RC_LOCKOUT:
    'the TPM is in dictionary-attack lockout after too many wrong authorization values; wait for the lockout recovery time, or clear it with the lockout hierarchy auth (tpm2_dictionarylockout --clear-lockout)',
  TPM_RC_INITIALIZE: 'the TPM has not been started (TPM2_Startup); on a simulator start it with --flags startup-clear',
  TPM_RC_FAILURE: 'the TPM is in failure mode; it needs a reset (reboot, or restart the simulator)',
  TPM_RC_OBJECT_MEMORY: 'the TPM has no free transient object slots; flush unused objects (tpm2_flushcontext -t) or use the resource manager /dev/tpmrm0',
  TPM_RC_SESSION_MEMORY: 'the TPM has no free session slots; flush sessions (tpm2_flushcontext -s) or use the resource manager /dev/tpmrm0',
};

/** A command the TPM answered with a non-zero response code. */
export class TpmError extends Error {
  readonly rc: number;
  readonly code: string;
  readonly base: number;
  readonly subject: RcSubject;
  readonly command: number;
  readonly hint: string | undefined;

  constructor(command: number, rc: number, hint?: string) {
    const d = decodeRc(rc);
    const at = d.subject ? ` (${d.subject.kind} ${d.subject.index})` : '';
    const h = hint ?? HINTS[d.code];
    super(`${commandName(command)} failed: ${d.code}${at} [rc 0x${rc.toString(16).padStart(3, '0')}]${h ? `: ${h}` : ''}`);
    this.name = 'TpmError';
    this.rc = rc;
    this.code = d.code;
    this.base = d.base;
    this.subject = d.subject;
    this.command = command;
    this.hint = h;
  }

  /** True for codes that mean "authorization value wrong" (counts toward dictionary-attack lockout). */
  get isAuthFailure(): boolean {
    return this.code === 'TPM_RC_AUTH_FAIL' || this.code === 'TPM_RC_BAD_AUTH';
  }
}

/** Warnings after which the same command may simply be sent again (Part 1 §12: TPM_RC_RETRY/YIELDED/TESTING). */
export function isRetryable(rc: number): boolean {
  return rc === RC_WARN + 0x22 || rc === RC_WARN + 0x08 || rc === RC_WARN + 0x0a;
}
