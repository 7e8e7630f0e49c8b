/**
 * The daemon's TEE backend (hsm/tee) for confidential modules, opened lazily: only when a confidential
 * module is deployed or started, or `GET /confidential/device-key` asks. Which backend: `[confidential]`
 * (host/config/confidential.ts); without that table, the TPM when `[tpm]` is configured, else none.
 *
 * The TPM backend shares the daemon's TPM connection (hsm/tpm/shared.ts): a simulator serves one
 * connection at a time. Its key blob is created on first use, bound by PolicyPCR to the value the runtime
 * PCR (`[measurement] runtime_pcr`) holds then — after the daemon measured itself, so it is the value of
 * this runtime; `edgeward confidential device-key` creates the same file when the daemon is not running.
 * A failed open is not remembered: the next use tries again (a TPM briefly unreachable). Each backend's
 * code (PKCS#11 binding, TPM stack, libteec) is imported when that backend opens, not at daemon start.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Config } from '../../config/schema.js';
import type { Logger } from '../../log.js';
import { TeeError, type TeeBackend } from '../../../hsm/tee/port.js';

/** The default key blob of the TPM backend (also `edgeward confidential device-key`'s default). */
export function defaultTpmKeyFile(stateDir: string): string {
  return path.join(stateDir, 'confidential', 'workload-key.json');
}

export class DaemonTee {
  private opening?: Promise<TeeBackend | undefined>;
  private closers: (() => Promise<void>)[] = [];

  constructor(private readonly config: Config, private readonly logger: Logger) {}

  /** The configured backend's name, or undefined when confidential workloads are not configured. */
  get configured(): string | undefined {
    return this.config.confidential?.backend ?? (this.config.tpm ? 'tpm' : undefined);
  }

  /** The backend, opened on first use; undefined when none is configured. Throws TeeError when it cannot open. */
  get(): Promise<TeeBackend | undefined> {
    this.opening ??= this.open().catch((err: unknown) => {
      this.opening = undefined;
      throw err;
    });
    return this.opening;
  }

  private async open(): Promise<TeeBackend | undefined> {
    const which = this.configured;
    const c = this.config.confidential;
    if (which === undefined) return undefined;
    if (which === 'software') {
      const file = c?.key_file ?? path.join(this.config.state_dir, 'confidential', 'software-key.pem');
      await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      const { SoftwareTeeBackend } = await import('../../../hsm/tee/software.js');
      return SoftwareTeeBackend.open(file, { insecureDevelopment: c?.insecure_development === true, warn: (m) => this.logger.warn(m) });
    }
    if (which === 'optee') {
      const [{ OpteeTeeBackend }, { loadLibteec }] = await Promise.all([import('../../../hsm/tee/optee.js'), import('../../../hsm/tee/libteec.js')]);
      const b = OpteeTeeBackend.open(await loadLibteec());
      this.closers.push(() => b.close());
      return b;
    }
    if (which === 'pkcs11') return this.openPkcs11();
    return this.openTpm(c?.key_file ?? defaultTpmKeyFile(this.config.state_dir));
  }

  /** The key pair in the `[keys.pkcs11]` token (found by label, generated on first use). */
  private async openPkcs11(): Promise<TeeBackend> {
    const cfg = this.config.keys.pkcs11;
    if (!cfg) throw new TeeError('unavailable', '[confidential] backend = "pkcs11" needs a [keys.pkcs11] table (the token that holds the workload-decryption key)');
    const { Pkcs11TeeBackend } = await import('../../../hsm/tee/pkcs11.js');
    const b = await Pkcs11TeeBackend.open(cfg);
    this.logger.info({ token: cfg.token_label, keyId: (await b.deviceKey()).keyId, created: b.created }, 'PKCS#11 workload-decryption key open: bound to the token, not to a measurement');
    return b;
  }

  private async openTpm(file: string): Promise<TeeBackend> {
    if (!this.config.tpm) throw new TeeError('unavailable', '[confidential] backend = "tpm" needs a [tpm] table (the TPM that holds the workload-decryption key)');
    if (!this.config.measurement.enabled) this.logger.warn('confidential workloads on the TPM with [measurement] enabled = false: the workload key is bound to a runtime PCR nothing measures');
    const [{ TpmTeeBackend }, { openSharedTpm }, { ensurePersistedPrimary, SRK_HANDLE }, { RH }, { srkRsaTemplate }] = await Promise.all([
      import('../../../hsm/tee/tpm.js'),
      import('../../../hsm/tpm/shared.js'),
      import('../../../hsm/tpm/identity.js'),
      import('../../../hsm/tpm/constants.js'),
      import('../../../hsm/tpm/templates.js'),
    ]);
    const tpm = await openSharedTpm(this.config.tpm.tcti).catch((err: unknown) => {
      throw new TeeError('unavailable', `cannot open the TPM at "${this.config.tpm!.tcti}": ${(err as Error).message}`);
    });
    this.closers.push(() => tpm.close());
    const exists = await fs.stat(file).then(() => true, () => false);
    if (exists) return TpmTeeBackend.open(tpm, file);
    await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    // The key is wrapped by the SRK (the standard persistent one, created as aziot/DPS would if absent).
    await ensurePersistedPrimary(tpm, SRK_HANDLE, RH.OWNER, srkRsaTemplate(), this.config.tpm.hierarchy_authorization ?? {});
    const pcr = this.config.measurement.runtime_pcr;
    const b = await TpmTeeBackend.create(tpm, file, { pcr });
    this.logger.info({ file, pcr, keyId: (await b.deviceKey()).keyId }, 'created the workload-decryption key, bound to the runtime PCR as it is now');
    return b;
  }

  async close(): Promise<void> {
    const b = await this.opening?.catch(() => undefined);
    this.opening = undefined;
    await b?.close();
    for (const c of this.closers.splice(0)) await c().catch(() => undefined);
  }
}
