/**
 * Device and module identities (the role of aziot-identityd for Edgeward). The device identity comes from
 * `[provisioning]`: manual (connection string or hub + device + credential), DPS (host/cloud/dps: a
 * registration, or its backup), or none. Each module's SAS key is derived in the key service from a base
 * key and the module id (HMAC-SHA256, as aziot-keyd derives keys), so no module key is ever stored; the
 * device credential (an imported key, or the TPM's DPS key) signs the device's own SAS tokens.
 */
import { fileURLToPath } from 'node:url';
import { promises as fs } from 'node:fs';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { StartupError } from '../errors.js';
import { DAEMON_CALLER, type KeyService } from '../../hsm/keys/index.js';
import type { DpsProvisioner, DpsTuning, HmacSigner, ProvisioningBackup, ProvisioningStatus } from '../cloud/dps/index.js';
import { DpsError } from '../cloud/dps/errors.js';
import { DEVICE_KEY_ID, importKeyOnce } from '../cloud/dps/device-key.js';

export { DEVICE_KEY_ID };
export const MASTER_KEY_ID = 'identity-master';
/** Longest SAS token lifetime a module may ask for (IoT Hub accepts up to a year; modules renew hourly). */
export const MAX_SAS_TTL_SECONDS = 24 * 3600;

/** A device or provisioning operation this identity cannot do (x509 device, no cloud, not DPS). */
export class IdentityError extends Error {
  constructor(readonly code: 'x509-device' | 'no-cloud' | 'not-dps', message: string) {
    super(message);
    this.name = 'IdentityError';
  }
}

/** What identityd's `GET /identities/provisioning` answers, plus Edgeward's status of the last attempt. */
export type ProvisioningInfo =
  | { source: 'none' }
  | { source: 'manual'; auth: 'sas' | 'x509' }
  | ({ source: 'dps'; auth: 'symmetric_key' | 'x509' | 'tpm'; endpoint: string; scope_id: string; registration_id: string; payload?: unknown; hub: string; deviceId: string; substatus?: string } & ProvisioningStatus);

export interface DeviceIdentity {
  hubHostname: string;
  deviceId: string;
  /** What modules connect to (IOTEDGE_GATEWAYHOSTNAME): the device's own hostname. */
  gatewayHostname: string;
  authType: 'sas' | 'x509' | 'none';
}

/** Parse `HostName=…;DeviceId=…;SharedAccessKey=…` (order-insensitive, as the SDKs do). */
export function parseConnectionString(cs: string): { hubHostname: string; deviceId: string; key: Buffer } {
  const fields = new Map(cs.split(';').filter(Boolean).map((kv) => {
    const i = kv.indexOf('=');
    return [kv.slice(0, i), kv.slice(i + 1)] as const;
  }));
  const hub = fields.get('HostName');
  const device = fields.get('DeviceId');
  const key = fields.get('SharedAccessKey');
  if (!hub || !device || !key) throw new StartupError('provisioning.connection_string: needs HostName, DeviceId and SharedAccessKey');
  return { hubHostname: hub, deviceId: device, key: Buffer.from(key, 'base64') };
}

/** How the device signs its own SAS tokens, and where its identity came from. */
interface DeviceSource {
  signer?: HmacSigner;
  info: ProvisioningInfo;
  dps?: DpsProvisioner;
}

export class IdentityService {
  private readonly moduleKeys = new Map<string, Promise<string>>();
  /** The handles of `moduleKeys` once derived (a handle names the key by label: it outlives a base key's replacement). */
  private readonly moduleKeyHandles = new Map<string, string>();
  private readonly listeners: ((change: { previous: DeviceIdentity; substatus: string; reason: string }) => void)[] = [];

  private constructor(
    readonly device: DeviceIdentity,
    private readonly keys: KeyService,
    private readonly baseKeyHandle: string,
    private readonly source: DeviceSource,
  ) {}

  static async open(opts: { config: Config; keys: KeyService; logger: Logger; dpsTuning?: DpsTuning }): Promise<IdentityService> {
    const { config, keys, logger } = opts;
    const p = config.provisioning;
    const log = logger.child({ component: 'identity' });
    const sign = (h: string): HmacSigner => (d) => keys.sign(DAEMON_CALLER, h, 'hmac-sha256', d);
    switch (p.source) {
      case 'none': {
        // No cloud: the device is its own hub for local tokens; module keys derive from a local master key.
        const base = await masterKey(keys);
        return new IdentityService({ hubHostname: config.hostname, deviceId: config.hostname, gatewayHostname: config.hostname, authType: 'none' }, keys, base, { info: { source: 'none' } });
      }
      case 'manual': {
        if ('connection_string' in p) {
          const cs = parseConnectionString(p.connection_string);
          const base = await importDeviceKey(keys, cs.key, log);
          return new IdentityService({ hubHostname: cs.hubHostname, deviceId: cs.deviceId, gatewayHostname: config.hostname, authType: 'sas' }, keys, base, { signer: sign(base), info: { source: 'manual', auth: 'sas' } });
        }
        const device = { hubHostname: p.iothub_hostname, deviceId: p.device_id, gatewayHostname: config.hostname };
        if (p.authentication.method === 'sas') {
          const pk = p.authentication.device_id_pk;
          let base: string;
          if ('value' in pk) base = await importDeviceKey(keys, Buffer.from(pk.value, 'base64'), log);
          else if (pk.uri.startsWith('pkcs11:')) base = await keys.loadKeyByUri(DAEMON_CALLER, pk.uri);
          else base = await importDeviceKey(keys, await readKeyFile(pk.uri), log);
          return new IdentityService({ ...device, authType: 'sas' }, keys, base, { signer: sign(base), info: { source: 'manual', auth: 'sas' } });
        }
        const base = await masterKey(keys);
        return new IdentityService({ ...device, authType: 'x509' }, keys, base, { info: { source: 'manual', auth: 'x509' } });
      }
      case 'dps':
        return IdentityService.openDps(config, p, keys, log, opts.dpsTuning);
      default: {
        const never: never = p;
        throw new StartupError(`unknown provisioning ${JSON.stringify(never)}`);
      }
    }
  }

  /** DPS: the attestation opened in the key service / TPM, then a registration or the backup (provision.ts). */
  private static async openDps(config: Config, p: Extract<Config['provisioning'], { source: 'dps' }>, keys: KeyService, log: Logger, tuning?: DpsTuning): Promise<IdentityService> {
    // DPS (its client, TLS and TPM attestation) is loaded only for a DPS device.
    const { openAttestation, DpsProvisioner } = await import('../cloud/dps/index.js');
    const att = await openAttestation(config, p, keys, log, tuning?.ca).catch((err: unknown) => {
      throw err instanceof DpsError ? new StartupError(`provisioning.attestation: ${err.message}`) : err;
    });
    const dps = await DpsProvisioner.open(config, p, att, log, tuning);
    const b = await dps.atStartup();
    const base = await masterKey(keys);
    const device: DeviceIdentity = { hubHostname: b.hubHostname, deviceId: b.deviceId, gatewayHostname: config.hostname, authType: att.kind === 'x509' ? 'x509' : 'sas' };
    const info = dpsInfo(dps, b);
    return new IdentityService(device, keys, base, { signer: att.deviceSigner, info, dps });
  }

  /** What identityd's `GET /identities/provisioning` answers, with the status of the last DPS attempt. */
  provisioningInfo(): ProvisioningInfo {
    const i = this.source.info;
    if (i.source !== 'dps' || !this.source.dps) return i;
    return { ...i, hub: this.device.hubHostname, deviceId: this.device.deviceId, ...this.source.dps.status };
  }

  /**
   * Register with DPS again (identityd's `POST /identities/device/reprovision`): the backup and this
   * identity's hub and device id are updated in place; listeners hear of a change (hub, device or substatus).
   */
  async reprovision(reason: string): Promise<DeviceIdentity> {
    const dps = this.source.dps;
    if (!dps) throw new IdentityError('not-dps', `provisioning source "${this.source.info.source}" cannot reprovision: only source = "dps" registers with DPS`);
    const b = await dps.register(reason);
    const previous = { ...this.device };
    Object.assign(this.device, { hubHostname: b.hubHostname, deviceId: b.deviceId });
    this.source.info = dpsInfo(dps, b);
    for (const l of this.listeners) l({ previous, substatus: b.substatus, reason });
    return this.device;
  }

  /**
   * How the identity was provisioned, in one line for a `provisioning` event: source, authentication, hub,
   * device id and, for DPS, the registration id, substatus and whether DPS or its backup answered. Never a key.
   */
  describe(): string {
    const i = this.provisioningInfo();
    const d = this.device;
    if (i.source === 'none') return `source none (no cloud): device ${d.deviceId}`;
    if (i.source === 'manual') return `source manual (${i.auth}): hub ${d.hubHostname}, device ${d.deviceId}`;
    const from = i.state === 'from-backup' ? 'from the DPS backup (DPS not reached)' : 'by DPS';
    return `source dps (${i.auth}, registration ${i.registration_id}): hub ${i.hub}, device ${i.deviceId}, substatus ${i.substatus ?? 'none'}, provisioned ${from}`;
  }

  /** Called after every reprovisioning (the IoT Hub reconciler re-creates module identities on a hub change). */
  onReprovisioned(listener: (change: { previous: DeviceIdentity; substatus: string; reason: string }) => void): void {
    this.listeners.push(listener);
  }

  /**
   * An IoT Hub SAS token for the device itself (`sr` = audience, e.g. `{hub}/devices/{id}`), signed by the
   * device credential inside the key service (or by the TPM). X.509 devices have none.
   */
  async deviceSasToken(audience: string, ttlSeconds: number, now = Date.now()): Promise<string> {
    const signer = this.source.signer;
    if (!signer) {
      throw this.device.authType === 'x509'
        ? new IdentityError('x509-device', 'this device authenticates with an X.509 certificate: it has no SAS key')
        : new IdentityError('no-cloud', 'provisioning source "none" has no device credential');
    }
    return sasToken(signer, audience, ttlSeconds, now);
  }

  /**
   * The module's SAS keys as IoT Hub must store them: `primary` = HMAC-SHA256(base key, module id), exactly
   * the key `moduleKeyHandle` derives and the workload API signs with; `secondary` = HMAC-SHA256(base key,
   * "{module}:secondary"). Computed by the key service (the base key never leaves it).
   */
  async moduleSasKeys(module: string): Promise<{ primary: Buffer; secondary: Buffer }> {
    const [primary, secondary] = await Promise.all([
      this.keys.sign(DAEMON_CALLER, this.baseKeyHandle, 'hmac-sha256', Buffer.from(module, 'utf8')),
      this.keys.sign(DAEMON_CALLER, this.baseKeyHandle, 'hmac-sha256', Buffer.from(`${module}:secondary`, 'utf8')),
    ]);
    return { primary, secondary };
  }

  /** Handle of the module's SAS key: HMAC-SHA256(base key, module id), derived in the key service. */
  moduleKeyHandle(module: string): Promise<string> {
    let h = this.moduleKeys.get(module);
    if (!h) {
      const derived = this.keys.deriveKey(DAEMON_CALLER, this.baseKeyHandle, Buffer.from(module, 'utf8'));
      derived.then((handle) => this.moduleKeyHandles.set(module, handle), () => this.moduleKeys.delete(module));
      this.moduleKeys.set(module, (h = derived));
    }
    return h;
  }

  /**
   * HMAC-SHA256 of `data` with the module's key (the workload API's `sign`). Once the module's handle is
   * known, straight to the key service: no promise of its own on the hot path.
   */
  signForModule(module: string, data: Uint8Array): Promise<Buffer> {
    const handle = this.moduleKeyHandles.get(module);
    if (handle !== undefined) return this.keys.sign(DAEMON_CALLER, handle, 'hmac-sha256', data);
    return this.moduleKeyHandle(module).then((h) => this.keys.sign(DAEMON_CALLER, h, 'hmac-sha256', data));
  }

  /** The resource URI of a module's identity, as IoT Hub and the SDKs write it. */
  moduleAudience(module: string): string {
    return `${this.device.hubHostname}/devices/${this.device.deviceId}/modules/${module}`;
  }

  /**
   * An IoT Hub SAS token for the module: `SharedAccessSignature sr=…&sig=…&se=…`, signed over
   * `urlencode(audience) + "\n" + expiry` exactly as azure-iot-device does.
   */
  async sasToken(module: string, audience: string, ttlSeconds: number, now = Date.now()): Promise<string> {
    return sasToken((d) => this.signForModule(module, d), audience, ttlSeconds, now);
  }
}

/**
 * `SharedAccessSignature sr=…&sig=…&se=…`, signed over `urlencode(audience) + "\n" + expiry` exactly as
 * azure-iot-device does.
 */
async function sasToken(sign: HmacSigner, audience: string, ttlSeconds: number, now: number): Promise<string> {
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_SAS_TTL_SECONDS) throw new RangeError(`ttl must be 1..${MAX_SAS_TTL_SECONDS} seconds`);
  const se = Math.floor(now / 1000) + ttlSeconds;
  const sr = encodeURIComponentStrict(audience);
  const sig = await sign(Buffer.from(`${sr}\n${se}`, 'utf8'));
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponentStrict(sig.toString('base64'))}&se=${se}`;
}

function dpsInfo(dps: DpsProvisioner, b: ProvisioningBackup): ProvisioningInfo {
  return {
    source: 'dps',
    auth: dps.attestation.kind,
    endpoint: dps.dps.global_endpoint,
    scope_id: dps.dps.id_scope,
    registration_id: dps.attestation.registrationId,
    ...(b.payload === undefined ? {} : { payload: b.payload }),
    hub: b.hubHostname,
    deviceId: b.deviceId,
    substatus: b.substatus,
    state: dps.status.state,
  };
}

function masterKey(keys: KeyService): Promise<string> {
  return keys.createSecretKey(DAEMON_CALLER, { id: MASTER_KEY_ID }, 'hmac-sha256');
}

/** RFC 3986 strict encoding, as azure-iot-common's `encodeUriComponentStrict`. */
export function encodeURIComponentStrict(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

async function readKeyFile(uri: string): Promise<Buffer> {
  const file = fileURLToPath(uri);
  try {
    return await fs.readFile(file);
  } catch (err) {
    throw new StartupError(`provisioning.authentication.device_id_pk ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Import the device's SAS key as `device-id` (kept if unchanged, replaced if the config changed). */
function importDeviceKey(keys: KeyService, key: Buffer, log: Logger): Promise<string> {
  return importKeyOnce(keys, DEVICE_KEY_ID, key, log).catch((err: unknown) => {
    throw err instanceof DpsError ? new StartupError('the device SAS key is empty') : err;
  });
}
