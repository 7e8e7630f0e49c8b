/** The measurement service's status when it is off (no TPM, or disabled): no TPM code needed to say so. */
import type { Config } from '../config/schema.js';
import type { ServiceStatus } from '../status.js';

/** `system status` when measurement is off. */
export function measurementOffStatus(config: Config): ServiceStatus {
  const why = !config.tpm ? 'no [tpm] configured' : '[measurement] enabled = false';
  return { name: 'measurement', status: 'ready', detail: `off: ${why}; PCRs are not extended and "edgeward attest quote" is unavailable` };
}
