/**
 * `edgeward:monitor/measurements`: PCR values and the TCG event log of the measured launch. Until the
 * daemon measures its launch (a MeasurementSource handed to the hub), every call is `unavailable`.
 */
import type * as Wit from './generated/interfaces/edgeward-monitor-measurements.js';
import { MonitorErrorPayload } from './errors.js';
import type { MonitorHub } from './hub.js';

export const NO_MEASUREMENT = 'this daemon does not measure its launch on this device (no TPM measured launch configured)';

export function measurementsFunctions(hub: MonitorHub) {
  const source = () => {
    if (!hub.measurements) throw new MonitorErrorPayload<Wit.MeasurementsError>({ tag: 'unavailable', val: NO_MEASUREMENT });
    return hub.measurements;
  };
  return {
    async pcrs(): Promise<Wit.Pcr[]> {
      return (await source().pcrs()).map((p) => ({ index: p.index, sha256: p.sha256 }));
    },
    eventLog: async (): Promise<Uint8Array> => source().eventLog(),
  };
}
