/**
 * `[confidential]`: where the daemon's workload-decryption key lives (hsm/tee), for `kind: "confidential"`
 * modules. Without the table, a device with `[tpm]` uses the TPM backend; a device without one runs no
 * confidential module.
 *
 * - `backend = "tpm"` (default): RSA-2048 key under the SRK, usable only under PolicyPCR over
 *   `[measurement] runtime_pcr` (created on first use, bound to that PCR's value then).
 * - `backend = "optee"`: the key inside the OP-TEE trusted application (needs /dev/tee0 and libteec).
 * - `backend = "pkcs11"`: a non-extractable RSA-2048 key generated in the PKCS#11 token of `[keys.pkcs11]`
 *   (the same library, token and PIN as the key service; `[keys] backend` need not be "pkcs11"). Bound to
 *   the token, NOT to a measurement: any runtime holding the token and PIN can unwrap. `key_file` is unused.
 * - `backend = "software"`: a PEM file; refused unless `insecure_development = true` (protects nothing).
 * `key_file`: the TPM key blob or the software key (default `<state_dir>/confidential/workload-key.json`
 * or `…/software-key.pem`).
 */
import { z } from 'zod';

export const CONFIDENTIAL_BACKENDS = ['tpm', 'optee', 'pkcs11', 'software'] as const;

export const confidentialSchema = z
  .object({
    backend: z.enum(CONFIDENTIAL_BACKENDS).default('tpm'),
    insecure_development: z.boolean().default(false),
    key_file: z.string().regex(/^\//, 'an absolute path').optional(),
  })
  .strict();

export type ConfidentialConfig = z.infer<typeof confidentialSchema>;
