/**
 * `[measurement]`: measured launch (host/measure). Which PCRs the daemon extends and whether it does.
 *
 * Defaults: PCR 12 for the runtime (daemon code + effective config: the same value at every boot of an
 * unchanged device, so a key policy can bind to it) and PCR 13 for module starts (depends on what ran, in
 * which order). Both are in 8–15, the non-resettable range the PC Client Platform Firmware Profile leaves
 * to the OS; of those, 8–9 are taken by GRUB, 10 by IMA, 11 by systemd-pcrphase, 14 by shim (MokList) and
 * 15 by systemd (machine-id, file systems, cryptsetup). 12 and 13 are used only by systemd-stub when the
 * device boots a unified kernel image (kernel command line / credentials, system extensions): free on
 * GRUB/shim, U-Boot and Yocto boots. On a UKI device, move them here. A PCR someone else also extends
 * does not verify from Edgeward's log alone (the daemon then starts a log section; see host/measure).
 */
import { z } from 'zod';

const osPcr = z.number().int().min(8, 'a PCR the OS owns: 8–15').max(15, 'a PCR the OS owns: 8–15 (16 and above are resettable)');

export const measurementSchema = z
  .object({
    /** Off by default only when no [tpm] is configured (measurement needs a TPM; see host/measure). */
    enabled: z.boolean().default(true),
    runtime_pcr: osPcr.default(12),
    modules_pcr: osPcr.default(13),
    /** Seconds between re-measurements of running modules (integrity monitoring); 0 disables it. */
    integrity_interval_s: z.number().int().min(0).max(86_400).default(300),
  })
  .strict()
  .refine((m) => m.runtime_pcr !== m.modules_pcr, { message: 'runtime_pcr and modules_pcr must differ', path: ['modules_pcr'] });

export type MeasurementConfig = z.infer<typeof measurementSchema>;
export const DEFAULT_MEASUREMENT: MeasurementConfig = measurementSchema.parse({});
