/**
 * Real identity services for tests and benchmarks: a file-backend key service, the identity service with
 * manual provisioning from a known device key (so tests can recompute SAS signatures with node:crypto), and
 * the certificate service with a quickstart Edge CA, all under `stateDir`.
 */
import { randomBytes } from 'node:crypto';
import { parseConfigText } from '../../host/config/load.js';
import { silentLogger, type Logger } from '../../host/log.js';
import { IdentityService } from '../../host/identity/identity.js';
import { CertService } from '../../hsm/certs/service.js';
import { openKeyService, type KeyService } from '../../hsm/keys/index.js';

export interface IdentityServices {
  keys: KeyService;
  identity: IdentityService;
  certs: CertService;
  /** The device SAS key in the connection string. */
  deviceKey: Buffer;
  close(): Promise<void>;
}

export async function openIdentityServices(
  stateDir: string,
  opts: { hub?: string; deviceId?: string; hostname?: string; deviceKey?: Buffer; logger?: Logger; now?: () => Date } = {},
): Promise<IdentityServices> {
  const deviceKey = opts.deviceKey ?? randomBytes(32);
  const hub = opts.hub ?? 'hub.example';
  const deviceId = opts.deviceId ?? 'dev1';
  const text = `${opts.hostname ? `hostname = "${opts.hostname}"\n` : ''}[provisioning]\nsource = "manual"\nconnection_string = "HostName=${hub};DeviceId=${deviceId};SharedAccessKey=${deviceKey.toString('base64')}"\n`;
  const { config } = parseConfigText(text, 'test', { EDGEWARD_HOME: stateDir } as NodeJS.ProcessEnv);
  const logger = opts.logger ?? silentLogger();
  const keys = await openKeyService({ config, stateDir, logger });
  try {
    const identity = await IdentityService.open({ config, keys, logger });
    const certs = await CertService.open({ config, stateDir, keys, logger, deviceId, hubHostname: hub, ...(opts.now ? { now: opts.now } : {}) });
    return {
      keys,
      identity,
      certs,
      deviceKey,
      async close() {
        certs.close();
        await keys.close();
      },
    };
  } catch (err) {
    await keys.close();
    throw err;
  }
}
