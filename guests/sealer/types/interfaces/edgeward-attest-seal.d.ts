declare module 'edgeward:attest/seal@0.1.0' {
  /**
   * Seal `data` (1 byte..1 MiB); the blob can be stored anywhere (the module's /data).
   */
  export function seal(data: Uint8Array): Uint8Array;
  /**
   * Unseal a blob sealed by a component with the same measurement, on this device, under the same runtime.
   */
  export function unseal(blob: Uint8Array): Uint8Array;
  export type SealError = SealErrorPolicyMismatch | SealErrorUnavailable | SealErrorInvalidBlob | SealErrorWrongMeasurement | SealErrorLimitExceeded | SealErrorInvalidArgument;
  /**
   * The device's measured runtime is not the one the seal secret is bound to (the runtime PCR changed):
   * nothing sealed before the change unseals until the runtime it was sealed under runs again.
   */
  export interface SealErrorPolicyMismatch {
    tag: 'policy-mismatch',
    val: string,
  }
  /**
   * No TPM / TEE backend, or it failed: the message says which.
   */
  export interface SealErrorUnavailable {
    tag: 'unavailable',
    val: string,
  }
  /**
   * Not a sealed blob of a known version, damaged, or sealed on another device.
   */
  export interface SealErrorInvalidBlob {
    tag: 'invalid-blob',
    val: string,
  }
  /**
   * Sealed by a component with another measurement: a new version of a module cannot unseal the old one's data.
   */
  export interface SealErrorWrongMeasurement {
    tag: 'wrong-measurement',
  }
  /**
   * Data over 1 MiB (or a blob over 1 MiB and its header).
   */
  export interface SealErrorLimitExceeded {
    tag: 'limit-exceeded',
    val: string,
  }
  /**
   * Empty data.
   */
  export interface SealErrorInvalidArgument {
    tag: 'invalid-argument',
    val: string,
  }
}
