/**
 * DPS provisioning for the identity service: the REST client (client.ts), the attestation behind the key
 * service or TPM (attestation.ts), the backup (state.ts) and the `auto_reprovisioning_mode` policy
 * (provision.ts).
 */
export { registerWithDps, DPS_API_VERSION, type DpsAttestation, type DpsAssignment, type DpsRegisterOptions } from './client.js';
export { DpsError, DPS_FIX, type DpsFailure } from './errors.js';
export { dpsSasToken, DPS_SAS_TTL_SECONDS, type HmacSigner } from './sas.js';
export { openAttestation, importKeyOnce, TpmDevice, DEVICE_KEY_ID, GROUP_KEY_ID, type OpenedAttestation, type DpsConfig, type AttestationKind } from './attestation.js';
export { readBackup, writeBackup, provisioningDigest, BACKUP_FILE, type ProvisioningBackup } from './state.js';
export { DpsProvisioner, type ProvisioningStatus, type ProvisioningState, type DpsTuning } from './provision.js';
