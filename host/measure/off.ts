/** The measurement service's status when it is off (no TPM, or disabled): no TPM code needed to say so. */
import type { Config } from '../config/schema.js';
import type { ServiceStatus } from '../status.js';

/** Whether measured launch runs: a [tpm] and `[measurement] enabled` (the daemon imports its TPM code only then). */
export function measurementEnabled(config: Config): boolean {
  return Boolean(config.tpm) && config.measurement.enabled;
}

/** `system status` when measurement is off. */
export function measurementOffStatus(config: Config): ServiceStatus {
  const why = !config.tpm ? 'no [tpm] configured' : '[measurement] enabled = false';
  return { name: 'measurement', status: 'ready', detail: `off: ${why}; PCRs are not extended and "edgeward attest quote" is unavailable` };
}
