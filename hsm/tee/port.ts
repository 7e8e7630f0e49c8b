/**
 * The TEE backend port: where a device's workload-decryption key lives and what releases it. A confidential
 * package's content key is wrapped (RSA-OAEP-SHA256) to that key; `unwrap` returns the content key only when
 * the backend's policy holds now. Implementations: tpm.ts (key under the SRK, usable only under PolicyPCR
 * over the runtime PCR), optee.ts (key inside an OP-TEE trusted application; built, not run here) and
 * pkcs11.ts (a non-extractable key in a PKCS#11 token: bound to the token, not to a measurement).
 *
 * The same backends keep the **seal master secret** of `edgeward:attest/seal` (host/capabilities/attest):
 * `sealMaster` wraps a 32-byte secret so that only this device, while the backend's policy holds, unwraps it
 * (TPM: a sealed keyedHash object under the SRK with PolicyPCR over the runtime PCR; OP-TEE: an object in
 * the TA's secure storage; software: AES-GCM under a key derived from its key file).
 *
 * hsm/ never imports host/: the package format lives in host/runtime/confidential and uses this port.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';

/** The policy a device key is bound to, as exported to publishers (the same shape the package header records). */
export interface KeyPolicyDescription {
  kind: 'tpm-pcr' | 'optee-ta' | 'software' | 'pkcs11-token';
  description: string;
  /** For `tpm-pcr`: the PCRs and the values the key's PolicyPCR was computed over. */
  pcrs?: { index: number; bank: 'sha256'; value: string }[];
  /** For `tpm-pcr`: the key's authPolicy (hex). */
  policyDigest?: string;
}

export interface DeviceKeyInfo {
  /** `sha256:<hex>` of the DER SubjectPublicKeyInfo (as module signer ids are computed). */
  keyId: string;
  publicPem: string;
  policy: KeyPolicyDescription;
}

export interface TeeBackend {
  readonly name: string;
  deviceKey(): Promise<DeviceKeyInfo>;
  /**
   * Unwrap a content key. `expected` is the policy the publisher sealed to (from the package header): a key
   * bound to another policy is refused before the TPM/TA is asked. Throws TeeError.
   */
  unwrap(wrappedKey: Buffer, expected?: KeyPolicyDescription): Promise<Buffer>;
  /** Wrap a MASTER_SECRET_BYTES secret for this device under the backend's policy: an opaque blob to store. */
  sealMaster(secret: Buffer): Promise<Buffer>;
  /**
   * Unwrap a blob of `sealMaster`: TeeError `policy-mismatch` (with the PCR) when the policy does not hold now,
   * `unwrap-failed` when the blob is not this device's, `protocol` when it is not a blob of this backend.
   */
  unsealMaster(blob: Buffer): Promise<Buffer>;
  /**
   * Whether the policy the blob is bound to holds now, without releasing anything (cheap): for a master kept
   * in memory after `unsealMaster`. Throws TeeError `policy-mismatch` (with the PCR) when it does not.
   */
  checkMaster(blob: Buffer): Promise<void>;
  close(): Promise<void>;
}

/** Size of the seal master secret. */
export const MASTER_SECRET_BYTES = 32;

/** Refuse a master secret of the wrong size before any backend wraps it. */
export function checkMasterSecret(secret: Buffer): void {
  if (secret.length !== MASTER_SECRET_BYTES) throw new RangeError(`a seal master secret is ${MASTER_SECRET_BYTES} bytes, got ${secret.length}`);
}

export type TeeRefusal = 'policy-mismatch' | 'unavailable' | 'unwrap-failed' | 'protocol';

/** A TEE refusal. `pcr` names the PCR whose value differs for a `policy-mismatch` on a TPM. */
export class TeeError extends Error {
  constructor(readonly reason: TeeRefusal, message: string, readonly pcr?: number) {
    super(message);
    this.name = 'TeeError';
  }
}

/** `sha256:<hex>` of a public key's DER SPKI. */
export function keyIdOf(key: KeyObject | string): string {
  const k = typeof key === 'string' ? createPublicKey(key) : key;
  return 'sha256:' + createHash('sha256').update(k.export({ type: 'spki', format: 'der' })).digest('hex');
}

/** Refuse early when the publisher sealed to a different policy than the key is bound to. */
export function checkExpectedPolicy(actual: KeyPolicyDescription, expected: KeyPolicyDescription | undefined): void {
  if (!expected) return;
  if (expected.kind !== actual.kind) throw new TeeError('policy-mismatch', `the package was sealed to a ${expected.kind} key, this device's key is ${actual.kind}`);
  if (expected.policyDigest !== undefined && actual.policyDigest !== undefined && expected.policyDigest !== actual.policyDigest) {
    const differing = (expected.pcrs ?? []).find((e) => actual.pcrs?.find((a) => a.index === e.index)?.value !== e.value);
    throw new TeeError('policy-mismatch', `the package was sealed to policy ${expected.policyDigest}, the device key is bound to ${actual.policyDigest}${differing ? ` (PCR ${differing.index} differs)` : ''}`, differing?.index);
  }
}
