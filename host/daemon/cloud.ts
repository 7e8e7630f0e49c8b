/**
 * The daemon's cloud side, composed: IoT Hub module identities kept equal to the local modules (component
 * and native), authenticated as the device — a SAS signed in the key service or the TPM, or the X.509 TLS
 * client identity (host/cloud/tls) — and, for a DPS device in `Dynamic` mode, a 401 from the hub sends the
 * device back to DPS (it may have been moved or disabled). A device with no cloud has none of this.
 */
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { KeyService } from '../../hsm/keys/index.js';
import type { IdentityService } from '../identity/identity.js';
import type { ModuleIdentityReconciler } from '../cloud/hub/index.js';

export async function openHubIdentities(opts: { config: Config; keys: KeyService; identity: IdentityService; logger: Logger }): Promise<ModuleIdentityReconciler | undefined> {
  const { config, keys, identity } = opts;
  const device = identity.device;
  if (device.authType === 'none') return undefined;
  // The hub client and TLS identity are loaded only for a device with a cloud.
  const [{ ModuleIdentityReconciler }, { x509IdentityFromConfig }] = await Promise.all([import('../cloud/hub/index.js'), import('../cloud/tls/config.js')]);
  const log = opts.logger.child({ component: 'hub-identities' });
  const x509 = device.authType === 'x509' ? await x509IdentityFromConfig(config, keys) : undefined;
  const dynamic = config.provisioning.source === 'dps' && config.auto_reprovisioning_mode === 'Dynamic';
  const hub = new ModuleIdentityReconciler({
    hubHostname: device.hubHostname,
    deviceId: device.deviceId,
    ...(x509 ? { agent: x509.agent } : { deviceSasToken: (audience: string, ttl: number) => identity.deviceSasToken(audience, ttl) }),
    moduleSasKeys: (m) => identity.moduleSasKeys(m),
    onDeviceUnauthorized: () => {
      if (!dynamic) return;
      log.warn('IoT Hub refused the device (401): provisioning again with DPS (auto_reprovisioning_mode = "Dynamic")');
      return identity.reprovision('IoT Hub answered 401').then(
        () => undefined,
        (err: unknown) => log.error({ err }, 'reprovisioning after a 401 from IoT Hub failed'),
      );
    },
    logger: log,
  });
  identity.onReprovisioned(() => void hub.setDevice(identity.device.hubHostname, identity.device.deviceId));
  return hub;
}
