/**
 * Typed DPS failures. Each carries `kind` (what went wrong, for status and `check`) and a one-line `fix`;
 * messages never carry keys, signatures or tokens.
 */
export type DpsFailure =
  | 'unauthorized' // 401/403: the credential was refused
  | 'disabled' // the enrollment is disabled
  | 'failed' // DPS answered status "failed" (errorCode/errorMessage)
  | 'not-found' // 404: wrong id_scope or endpoint
  | 'throttled' // 429 beyond the retries
  | 'unavailable' // 5xx beyond the retries
  | 'network' // DNS, refused, TLS, timeouts beyond the retries
  | 'timeout' // the total time bound ran out
  | 'protocol' // an answer that does not follow the DPS API
  | 'config'; // an attestation this build cannot use (e.g. a pkcs11: X.509 key for now)

export class DpsError extends Error {
  constructor(readonly kind: DpsFailure, message: string, readonly fix: string, opts: { cause?: unknown; errorCode?: number } = {}) {
    super(`${message}: ${fix}`, { cause: opts.cause });
    this.name = 'DpsError';
    this.errorCode = opts.errorCode;
  }
  readonly errorCode?: number;
}

/** The one-line fix for each failure, used unless the caller knows better. */
export const DPS_FIX: Record<DpsFailure, string> = {
  unauthorized: 'check the registration id and the attestation (key, certificate or TPM) against the DPS enrollment',
  disabled: 'enable the enrollment (or its group) in the Device Provisioning Service',
  failed: 'see the DPS error code; check the enrollment\'s allocation policy and linked IoT hubs',
  'not-found': 'check [provisioning] id_scope and global_endpoint',
  throttled: 'DPS is throttling this device; wait and restart, or raise cloud_retries',
  unavailable: 'DPS is unavailable; the daemon retries at the next start, or raise cloud_retries',
  network: 'check the network, DNS and trust of global_endpoint (system CAs / NODE_EXTRA_CA_CERTS)',
  timeout: 'DPS did not assign the device in time; raise cloud_timeout_sec or cloud_retries, or check the network',
  protocol: 'the endpoint does not speak the DPS API; check [provisioning] global_endpoint',
  config: 'fix [provisioning.attestation]',
};
