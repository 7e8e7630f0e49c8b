/**
 * Edgeward's TPM 2.0 layer: what the daemon, the key service and the CLI use. Nothing else in Edgeward talks
 * to a TPM.
 *
 * - `Tpm.open(tcti)` — a connection (device:/dev/tpmrm0, swtpm:host=…,port=…, mssim:…), one command at a time.
 * - `ensureIdentity(tpm)` — EK 0x81010001 / SRK 0x81000001 read-or-create, registration id, DPS EK/SRK base64.
 * - `importDpsAuthKey(tpm, authenticationKey, { handle: authKeyHandle(config.tpm.auth_key_index) })` and
 *   `signWithAuthKey(tpm, data, handle)` — DPS TPM attestation and SAS signing.
 * - `TpmKeyBackend.open(tpm, dir)` — keys under the SRK as wrapped blobs (sign/hmac/decrypt, PCR sealing).
 * - `openTpmKeyStore({ tcti, dir })` — that backend as the key service's `KeyStore` (`[keys] backend = "tpm"`).
 * - `sealToPcrs` / `unsealWithPcrs`, `verifyQuote` / `replayPcr`, `NvCounter` — attestation building blocks.
 * - `openSharedTpm(tcti)` — the daemon's one connection per TPM (key store, measured launch; swtpm takes one).
 * - eventlog.ts — the TCG crypto-agile event log (measured launch, host/measure).
 */
export { Tpm, MAX_HMAC_INPUT, type Entity, type LoadedObject, type PublicInfo, type CreatedObject } from './tpm.js';
export { openTransport, parseTcti, TpmTransportError, UDEV_RULE, type TpmTransport, type Tcti } from './transport.js';
export { TpmError, decodeRc, type DecodedRc } from './rc.js';
export { Session, passwordAuth, PolicyDigest, TpmSessionError, type Authorization } from './session.js';
export { EK_HANDLE, SRK_HANDLE, ensureIdentity, ensurePersistedPrimary, registrationIdOf, tpmStatus, HierarchyAuthError, type TpmIdentity } from './identity.js';
export { DEFAULT_AUTH_KEY_HANDLE, authKeyHandle, importDpsAuthKey, signWithAuthKey, parseAuthKeyBlob, DpsImportError } from './dps.js';
export { TpmKeyBackend, TpmKeyError, type TpmKeyType, type TpmSignScheme } from './backend.js';
export { openTpmKeyStore, tpmKeyStoreOver, tpmStartupError, TPM_KEY_TYPES, type TpmKeyStoreOptions } from './keystore.js';
export { sealToPcrs, unsealWithPcrs, readPcrValues, type SealedBlob } from './seal.js';
export { verifyQuote, replayPcr, parseQuoteAttest, type QuoteVerdict } from './attest.js';
export { NvCounter, NV_COUNTER_BASE } from './nv.js';
export { openSharedTpm } from './shared.js';
export { parseEventLog, encodeEventLog, tagEvent, replayEventLog, eventsWithWrongData, EventLogError, type LogEvent } from './eventlog.js';
export { publicKeyOf, verifyWithPublic } from './pubkey.js';
export * as templates from './templates.js';
export { ALG, RH, SE } from './constants.js';
export type { PcrSelection, Signature, TpmtPublic } from './types.js';
