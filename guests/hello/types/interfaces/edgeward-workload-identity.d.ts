declare module 'edgeward:workload/identity@0.1.0' {
  /**
   * HMAC-SHA256 of `data` with the module's SAS key (derived in the key service from the device key and
   * the module id). At most 16 KiB of data.
   */
  export function sign(data: Uint8Array): Uint8Array;
  /**
   * A ready IoT Hub SAS token for `audience` (e.g. `{hub}/devices/{device}/modules/{module}`), valid
   * `ttl-seconds` (1..86400).
   */
  export function sasToken(audience: string, ttlSeconds: number): string;
  /**
   * The module's identity certificate (client auth), issued by the Edge CA.
   */
  export function identityCertificate(): Certificate;
  /**
   * A server certificate for `common-name` plus `sans` (DNS names or IP addresses), issued by the Edge
   * CA; renewed by the host before it expires.
   */
  export function serverCertificate(commonName: string, sans: Array<string>): Certificate;
  /**
   * PEM trust bundle: the Edge CA chain and the configured extra roots.
   */
  export function trustBundle(): string;
  /**
   * PEM manifest trust bundle (empty when none is configured).
   */
  export function manifestTrustBundle(): string;
  /**
   * Why a call failed.
   */
  export type IdentityError = IdentityErrorMeasurementMismatch | IdentityErrorInvalidArgument | IdentityErrorLimitExceeded | IdentityErrorUnavailable | IdentityErrorInternal;
  /**
   * The instance's measurement no longer matches its registration (the module was updated or its
   * bytes changed): no identity is served, never a fallback.
   */
  export interface IdentityErrorMeasurementMismatch {
    tag: 'measurement-mismatch',
  }
  /**
   * A malformed argument: an empty or over-long common name, a bad host name, a ttl out of range.
   */
  export interface IdentityErrorInvalidArgument {
    tag: 'invalid-argument',
    val: string,
  }
  /**
   * An input over its limit.
   */
  export interface IdentityErrorLimitExceeded {
    tag: 'limit-exceeded',
    val: string,
  }
  /**
   * The key service or the Edge CA is unavailable; retrying later may work.
   */
  export interface IdentityErrorUnavailable {
    tag: 'unavailable',
  }
  /**
   * A host fault; the cause is in the daemon's log.
   */
  export interface IdentityErrorInternal {
    tag: 'internal',
  }
  /**
   * A certificate whose private key stays in the device's key service.
   */
  export interface Certificate {
    /**
     * PEM: the leaf first, then the Edge CA chain.
     */
    chain: string,
    /**
     * Handle of the private key in `edgeward:hsm/keys`, usable by this module only.
     */
    keyHandle: string,
    /**
     * Expiry, seconds since the Unix epoch.
     */
    notAfter: bigint,
  }
}
