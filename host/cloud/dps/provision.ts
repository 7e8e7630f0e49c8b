/**
 * When the device goes to DPS, as IoT Edge's `auto_reprovisioning_mode` says:
 * - `AlwaysOnStartup`: register at every start;
 * - `Dynamic` (default) and `OnErrorOnly`: at start, use a valid backup (same provisioning config) and
 *   register only without one; later registrations happen on `reprovision()` (the IoT Hub client calls
 *   it when the hub refuses the device; `Dynamic` also when the hub says the identity changed).
 * A registration that fails for a transient reason (network, timeout, 429, 5xx) falls back to a valid
 * backup, so a provisioned device starts offline; with no valid backup it is a StartupError with the fix.
 * A refusal (401/403, disabled, failed) is never hidden behind the backup.
 */
import { promises as fs } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Config, ReprovisioningMode } from '../../config/schema.js';
import type { Logger } from '../../log.js';
import { StartupError } from '../../errors.js';
import { registerWithDps, type DpsRegisterOptions } from './client.js';
import { DpsError } from './errors.js';
import type { DpsConfig, OpenedAttestation } from './attestation.js';
import { provisioningDigest, readBackup, writeBackup, type ProvisioningBackup } from './state.js';

/** Failures after which a valid backup is used instead. */
const TRANSIENT = new Set(['network', 'timeout', 'unavailable', 'throttled']);

export type ProvisioningState = 'unprovisioned' | 'provisioned' | 'from-backup' | 'error';

export interface ProvisioningStatus {
  state: ProvisioningState;
  lastAttempt?: string;
  lastError?: { kind: string; message: string };
}

/** Test hooks: the DPS client's poll interval, sleep, clock and extra server trust (the daemon uses NODE_EXTRA_CA_CERTS). */
export type DpsTuning = Pick<DpsRegisterOptions, 'pollMs' | 'sleep' | 'ca' | 'now'>;

export class DpsProvisioner {
  readonly status: ProvisioningStatus = { state: 'unprovisioned' };
  private constructor(
    private readonly config: Config,
    readonly dps: DpsConfig,
    readonly attestation: OpenedAttestation,
    private readonly payload: unknown,
    readonly digest: string,
    private readonly log: Logger,
    private readonly tuning: DpsTuning,
  ) {}

  static async open(config: Config, dps: DpsConfig, attestation: OpenedAttestation, log: Logger, tuning: DpsTuning = {}): Promise<DpsProvisioner> {
    let text: string | undefined;
    let payload: unknown;
    if (dps.payload) {
      const file = fileURLToPath(dps.payload.uri);
      text = await fs.readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
        throw new StartupError(`provisioning.payload ${file}: ${err.code ?? err.message}: put the JSON file there or fix the URI`);
      });
      try {
        payload = JSON.parse(text) as unknown;
      } catch (err) {
        throw new StartupError(`provisioning.payload ${file} is not JSON (${(err as Error).message}): fix the file`);
      }
    }
    return new DpsProvisioner(config, dps, attestation, payload, provisioningDigest(dps, text), log, tuning);
  }

  get mode(): ReprovisioningMode {
    return this.config.auto_reprovisioning_mode;
  }

  /** The provisioning the daemon starts with (see the module comment). */
  async atStartup(): Promise<ProvisioningBackup> {
    const backup = await this.validBackup();
    if (backup && this.mode !== 'AlwaysOnStartup') {
      this.status.state = 'from-backup';
      this.log.info({ hub: backup.hubHostname, deviceId: backup.deviceId, provisionedAt: backup.provisionedAt }, 'provisioned from the DPS backup');
      return backup;
    }
    try {
      return await this.register('startup');
    } catch (err) {
      if (err instanceof DpsError && backup && TRANSIENT.has(err.kind)) {
        this.log.warn({ err: err.message, hub: backup.hubHostname }, 'DPS unreachable; starting from the provisioning backup');
        this.status.state = 'from-backup';
        return backup;
      }
      throw err instanceof DpsError ? new StartupError(`DPS provisioning of ${this.attestation.registrationId} failed: ${err.message}`, 1) : err;
    }
  }

  async validBackup(): Promise<ProvisioningBackup | undefined> {
    const b = await readBackup(this.config.state_dir);
    if (b && b.configDigest !== this.digest) {
      this.log.info('the provisioning config changed since the DPS backup; registering again');
      return undefined;
    }
    return b;
  }

  /** One DPS registration; the backup is replaced only by a successful one. */
  async register(reason: string): Promise<ProvisioningBackup> {
    this.status.lastAttempt = new Date().toISOString();
    this.log.info({ reason, registrationId: this.attestation.registrationId, attestation: this.attestation.kind }, 'registering with DPS');
    try {
      const a = await registerWithDps({
        endpoint: this.dps.global_endpoint,
        idScope: this.dps.id_scope,
        registrationId: this.attestation.registrationId,
        attestation: this.attestation.attestation,
        payload: this.payload,
        requestTimeoutMs: this.config.cloud_timeout_sec * 1000,
        retries: this.config.cloud_retries,
        totalTimeoutMs: this.config.cloud_timeout_sec * 1000 * (this.config.cloud_retries + 1),
        ...this.tuning,
      });
      const backup: ProvisioningBackup = {
        version: 1,
        source: 'dps',
        hubHostname: a.assignedHub,
        deviceId: a.deviceId,
        registrationId: a.registrationId,
        substatus: a.substatus,
        auth: this.attestation.kind,
        provisionedAt: new Date().toISOString(),
        configDigest: this.digest,
        ...(a.payload === undefined ? {} : { payload: a.payload }),
      };
      await writeBackup(this.config.state_dir, backup);
      this.status.state = 'provisioned';
      delete this.status.lastError;
      this.log.info({ hub: a.assignedHub, deviceId: a.deviceId, substatus: a.substatus }, 'DPS assigned the device');
      return backup;
    } catch (err) {
      this.status.lastError = { kind: err instanceof DpsError ? err.kind : 'internal', message: (err as Error).message };
      if (this.status.state === 'unprovisioned') this.status.state = 'error';
      throw err;
    }
  }
}
