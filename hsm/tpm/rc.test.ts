import { describe, expect, it } from 'vitest';
import { TpmError, decodeRc, isRetryable } from './rc.js';
import { CC } from './constants.js';

describe('decodeRc', () => {
  it('decodes format-1 codes with their session, handle or parameter index', () => {
    expect(decodeRc(0x98e)).toMatchObject({ code: 'TPM_RC_AUTH_FAIL', subject: { kind: 'session', index: 1 }, base: 0x08e });
    expect(decodeRc(0x18b)).toMatchObject({ code: 'TPM_RC_HANDLE', subject: { kind: 'handle', index: 1 } });
    expect(decodeRc(0x2c4)).toMatchObject({ code: 'TPM_RC_VALUE', subject: { kind: 'parameter', index: 2 } });
    expect(decodeRc(0x9a2)).toMatchObject({ code: 'TPM_RC_BAD_AUTH', subject: { kind: 'session', index: 1 } });
    expect(decodeRc(0x99d)).toMatchObject({ code: 'TPM_RC_POLICY_FAIL', subject: { kind: 'session', index: 1 } });
  });

  it('decodes format-0 errors and warnings', () => {
    expect(decodeRc(0x100)).toMatchObject({ code: 'TPM_RC_INITIALIZE', warning: false, subject: undefined });
    expect(decodeRc(0x921)).toMatchObject({ code: 'TPM_RC_LOCKOUT', warning: true });
    expect(decodeRc(0x902)).toMatchObject({ code: 'TPM_RC_OBJECT_MEMORY', warning: true });
    expect(decodeRc(0x14c)).toMatchObject({ code: 'TPM_RC_NV_DEFINED' });
    expect(decodeRc(0x000)).toMatchObject({ code: 'TPM_RC_SUCCESS' });
  });

  it('marks only RETRY, YIELDED and TESTING as retryable', () => {
    expect([0x922, 0x908, 0x90a].map(isRetryable)).toEqual([true, true, true]);
    expect([0x921, 0x98e, 0x100].map(isRetryable)).toEqual([false, false, false]);
  });

  it('names the command, the code, the index and a hint in the message', () => {
    const e = new TpmError(CC.Sign, 0x921);
    expect(e.message).toMatch(/^TPM2_Sign failed: TPM_RC_LOCKOUT \[rc 0x921\]: the TPM is in dictionary-attack lockout/);
    const a = new TpmError(CC.HMAC, 0x98e);
    expect(a.message).toBe('TPM2_HMAC failed: TPM_RC_AUTH_FAIL (session 1) [rc 0x98e]');
    expect(a.isAuthFailure).toBe(true);
  });
});
