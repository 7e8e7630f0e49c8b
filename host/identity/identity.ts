/**
 * Device and module identities (the role of aziot-identityd for Edgeward). The device identity comes from
 * `[provisioning]`; each module's SAS key is derived in the key service from a base key and the module id
 * (HMAC-SHA256, as aziot-keyd derives keys), so no module key is ever stored or exported.
 */
import { createHmac } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promises as fs } from 'node:fs';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { StartupError } from '../errors.js';
import { DAEMON_CALLER, KeyError, type KeyService } from '../../hsm/keys/index.js';

/** Key ids in the daemon namespace (aziot's names where they exist). */
export const DEVICE_KEY_ID = 'device-id';
export const MASTER_KEY_ID = 'identity-master';
/** Longest SAS token lifetime a module may ask for (IoT Hub accepts up to a year; modules renew hourly). */
export const MAX_SAS_TTL_SECONDS = 24 * 3600;

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

export class IdentityService {
  private readonly moduleKeys = new Map<string, Promise<string>>();

  private constructor(
    readonly device: DeviceIdentity,
    private readonly keys: KeyService,
    private readonly baseKeyHandle: string,
  ) {}

  static async open(opts: { config: Config; keys: KeyService; logger: Logger }): Promise<IdentityService> {
    const { config, keys, logger } = opts;
    const p = config.provisioning;
    const log = logger.child({ component: 'identity' });
    switch (p.source) {
      case 'none': {
        // No cloud: the device is its own hub for local tokens; module keys derive from a local master key.
        const base = await keys.createSecretKey(DAEMON_CALLER, { id: MASTER_KEY_ID }, 'hmac-sha256');
        return new IdentityService({ hubHostname: config.hostname, deviceId: config.hostname, gatewayHostname: config.hostname, authType: 'none' }, keys, base);
      }
      case 'manual': {
        if ('connection_string' in p) {
          const cs = parseConnectionString(p.connection_string);
          const base = await importDeviceKey(keys, cs.key, log);
          return new IdentityService({ hubHostname: cs.hubHostname, deviceId: cs.deviceId, gatewayHostname: config.hostname, authType: 'sas' }, keys, base);
        }
        const device = { hubHostname: p.iothub_hostname, deviceId: p.device_id, gatewayHostname: config.hostname };
        if (p.authentication.method === 'sas') {
          const pk = p.authentication.device_id_pk;
          let base: string;
          if ('value' in pk) base = await importDeviceKey(keys, Buffer.from(pk.value, 'base64'), log);
          else if (pk.uri.startsWith('pkcs11:')) base = await keys.loadKeyByUri(DAEMON_CALLER, pk.uri);
          else base = await importDeviceKey(keys, await readKeyFile(pk.uri), log);
          return new IdentityService({ ...device, authType: 'sas' }, keys, base);
        }
        const base = await keys.createSecretKey(DAEMON_CALLER, { id: MASTER_KEY_ID }, 'hmac-sha256');
        return new IdentityService({ ...device, authType: 'x509' }, keys, base);
      }
      case 'dps':
        throw new StartupError('provisioning source "dps" is not implemented in this build yet; use "manual" or "none"');
      default: {
        const never: never = p;
        throw new StartupError(`unknown provisioning ${JSON.stringify(never)}`);
      }
    }
  }

  /** Handle of the module's SAS key: HMAC-SHA256(base key, module id), derived in the key service. */
  moduleKeyHandle(module: string): Promise<string> {
    let h = this.moduleKeys.get(module);
    if (!h) {
      h = this.keys.deriveKey(DAEMON_CALLER, this.baseKeyHandle, Buffer.from(module, 'utf8'));
      h.catch(() => this.moduleKeys.delete(module));
      this.moduleKeys.set(module, h);
    }
    return h;
  }

  /** HMAC-SHA256 of `data` with the module's key (the workload API's `sign`). */
  async signForModule(module: string, data: Uint8Array): Promise<Buffer> {
    return this.keys.sign(DAEMON_CALLER, await this.moduleKeyHandle(module), 'hmac-sha256', data);
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
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_SAS_TTL_SECONDS) throw new RangeError(`ttl must be 1..${MAX_SAS_TTL_SECONDS} seconds`);
    const se = Math.floor(now / 1000) + ttlSeconds;
    const sr = encodeURIComponentStrict(audience);
    const sig = await this.signForModule(module, Buffer.from(`${sr}\n${se}`, 'utf8'));
    return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponentStrict(sig.toString('base64'))}&se=${se}`;
  }
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

/**
 * Import the device's SAS key as `device-id`. If a key with that id exists, keep it when it is the same key
 * (compared by HMAC over a fixed probe, so the key is never read back) and replace it when the config changed.
 */
async function importDeviceKey(keys: KeyService, key: Buffer, log: Logger): Promise<string> {
  if (key.length === 0) throw new StartupError('the device SAS key is empty');
  try {
    return await keys.importSecretKey(DAEMON_CALLER, { id: DEVICE_KEY_ID }, 'hmac-sha256', key);
  } catch (err) {
    if (!(err instanceof KeyError) || err.tag !== 'already-exists') throw err;
  }
  const existing = await keys.loadKey(DAEMON_CALLER, { id: DEVICE_KEY_ID });
  const probe = Buffer.from('edgeward device key probe');
  const same = (await keys.sign(DAEMON_CALLER, existing, 'hmac-sha256', probe)).equals(createHmac('sha256', key).update(probe).digest());
  if (same) return existing;
  log.warn('device SAS key changed in the config; replacing the stored key');
  await keys.deleteKey(DAEMON_CALLER, existing);
  return keys.importSecretKey(DAEMON_CALLER, { id: DEVICE_KEY_ID }, 'hmac-sha256', key);
}
