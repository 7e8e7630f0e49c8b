/**
 * The device's DPS attestation, opened from `[provisioning.attestation]`, with every secret behind the key
 * service or the TPM:
 * - symmetric key: imported into the key service as `device-id` (individual key, or a group's key already
 *   derived), or the group key imported as `dps-group-key` and the device key derived from it in the key
 *   service (HMAC-SHA256(group key, registration id)); a `pkcs11:` key is used where it is. The key bytes
 *   are dropped after import; every SAS is signed by the key service.
 * - TPM: EK/SRK read (or created) on the TPM `[tpm] tcti` names, whatever `[keys] backend` is; the DPS
 *   authenticationKey imported with hsm/tpm's DPS import at `[tpm] auth_key_index`; SAS by TPM2_HMAC.
 * - X.509: `identity_cert` + `identity_pk` as the TLS client certificate: a `file:///` key, or a `pkcs11:`
 *   key that signs the handshake in the token (host/cloud/tls); never a software copy of an HSM key.
 */
import { promises as fs } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Config, TpmConfig } from '../../config/schema.js';
import type { Logger } from '../../log.js';
import { DAEMON_CALLER, type KeyService } from '../../../hsm/keys/index.js';
import { openSharedTpm, type Tpm, authKeyHandle, ensureIdentity, importDpsAuthKey, passwordAuth, signWithAuthKey } from '../../../hsm/tpm/index.js';
import type { DpsAttestation } from './client.js';
import { clientIdentity, TlsIdentityError } from '../tls/index.js';
import { DpsError } from './errors.js';
import type { HmacSigner } from './sas.js';
import { DEVICE_KEY_ID, GROUP_KEY_ID, importKeyOnce } from './device-key.js';

export type DpsConfig = Extract<Config['provisioning'], { source: 'dps' }>;
export type AttestationKind = DpsConfig['attestation']['method'];

export { DEVICE_KEY_ID, GROUP_KEY_ID, importKeyOnce } from './device-key.js';

export interface OpenedAttestation {
  kind: AttestationKind;
  registrationId: string;
  attestation: DpsAttestation;
  /** The device's SAS signer for IoT Hub (the same key DPS verified); undefined for X.509 devices. */
  deviceSigner?: HmacSigner;
}

/** `ca`: the DPS server's trust when not the system's (tests); symmetric-key and TPM requests take it per request. */
export async function openAttestation(config: Config, p: DpsConfig, keys: KeyService, log: Logger, ca?: string): Promise<OpenedAttestation> {
  const a = p.attestation;
  switch (a.method) {
    case 'symmetric_key': {
      const sign = await symmetricSigner(keys, a, log);
      return { kind: a.method, registrationId: a.registration_id, attestation: { kind: 'symmetric_key', sign }, deviceSigner: sign };
    }
    case 'tpm': {
      const tpm = new TpmDevice(config.tpm);
      const id = await tpm.identity();
      const attestation: DpsAttestation = { kind: 'tpm', ...id, sign: (d) => tpm.sign(d), importKey: (k) => tpm.importKey(k) };
      return { kind: a.method, registrationId: a.registration_id, attestation, deviceSigner: (d) => tpm.sign(d) };
    }
    case 'x509': {
      // A file key is a software key the config chose; a pkcs11: key signs the handshake in the token
      // (host/cloud/tls: OpenSSL's PKCS#11 engine in Node's OpenSSL). Never a software copy of an HSM key.
      const id = await clientIdentity({ certUri: a.identity_cert, keyUri: a.identity_pk, keys, config, ...(ca ? { ca } : {}) }).catch((err: unknown) => {
        if (err instanceof TlsIdentityError) throw new DpsError('config', `provisioning.attestation: ${err.message}`, 'fix identity_cert / identity_pk as the message says');
        throw err;
      });
      const registrationId = registrationIdOf(a.registration_id, id.commonName);
      return { kind: a.method, registrationId, attestation: { kind: 'x509', secureContext: id.secureContext } };
    }
  }
}

type SymmetricAttestation = Extract<DpsConfig['attestation'], { method: 'symmetric_key' }>;

async function symmetricSigner(keys: KeyService, a: SymmetricAttestation, log: Logger): Promise<HmacSigner> {
  const ref = a.symmetric_key ?? a.enrollment_group_key!;
  const isGroup = a.symmetric_key === undefined;
  let handle: string;
  if ('uri' in ref && ref.uri.startsWith('pkcs11:')) {
    if (isGroup) throw new DpsError('config', 'enrollment_group_key as a pkcs11: key cannot derive the device key', 'give the derived device key as symmetric_key = { uri = "pkcs11:…" }, or the group key as a file');
    handle = await keys.loadKeyByUri(DAEMON_CALLER, ref.uri);
  } else {
    const bytes = 'value' in ref ? Buffer.from(ref.value, 'base64') : await readKeyUri(ref.uri);
    handle = await importKeyOnce(keys, isGroup ? GROUP_KEY_ID : DEVICE_KEY_ID, bytes, log);
    bytes.fill(0);
    if (isGroup) handle = await keys.deriveKey(DAEMON_CALLER, handle, Buffer.from(a.registration_id, 'utf8'));
  }
  return (data) => keys.sign(DAEMON_CALLER, handle, 'hmac-sha256', data);
}

async function readKeyUri(uri: string): Promise<Buffer> {
  const text = (await readFileUri(uri, 'symmetric key')).trim();
  // aziot key files hold the raw key; a base64 text file is accepted too.
  return /^[A-Za-z0-9+/]+=*$/.test(text) && text.length % 4 === 0 ? Buffer.from(text, 'base64') : Buffer.from(text, 'utf8');
}

async function readFileUri(uri: string, what: string): Promise<string> {
  const file = fileURLToPath(uri);
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new DpsError('config', `provisioning.attestation ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 'put the file there or fix the URI');
  }
}

function registrationIdOf(given: string | undefined, cn: string | undefined): string {
  const id = given ?? cn;
  if (!id) throw new DpsError('config', 'identity_cert has no CN and no registration_id is given', 'set provisioning.attestation.registration_id');
  return id;
}

/**
 * The TPM for DPS: opened from `[tpm] tcti` for each operation and closed after (a simulator serves one
 * connection at a time; /dev/tpmrm0 does not mind), one operation at a time.
 */
export class TpmDevice {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly handle: number;

  constructor(private readonly cfg: TpmConfig | undefined) {
    this.handle = authKeyHandle(cfg?.auth_key_index);
  }

  private run<T>(fn: (tpm: Tpm) => Promise<T>): Promise<T> {
    const next = this.queue.then(async () => {
      // The daemon's one connection per TCTI (a simulator serves one at a time; measured launch and a TPM
      // key store use it too); close() releases this use.
      const tpm = await openSharedTpm(this.cfg?.tcti ?? 'device:/dev/tpmrm0');
      try {
        return await fn(tpm);
      } finally {
        await tpm.close().catch(() => undefined);
      }
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  identity(): Promise<{ endorsementKey: string; storageRootKey: string }> {
    return this.run(async (tpm) => {
      const id = await ensureIdentity(tpm, { hierarchyAuth: this.cfg?.hierarchy_authorization });
      return { endorsementKey: id.endorsementKey, storageRootKey: id.storageRootKey };
    });
  }

  importKey(blob: string): Promise<void> {
    const auth = this.cfg?.hierarchy_authorization;
    const pw = (s?: string) => (s === undefined ? undefined : passwordAuth(Buffer.from(s, 'utf8')));
    return this.run(async (tpm) => {
      await importDpsAuthKey(tpm, blob, { handle: this.handle, endorsementAuth: pw(auth?.endorsement), ownerAuth: pw(auth?.owner) });
    });
  }

  sign(data: Buffer): Promise<Buffer> {
    return this.run((tpm) => signWithAuthKey(tpm, data, this.handle));
  }
}
