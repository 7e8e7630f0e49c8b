/**
 * Measured launch: at daemon start the runtime PCR is extended with the daemon's code digest and its
 * effective config (code.ts), and at every module instance start the modules PCR with the module's
 * component digest, signer, kind and grants; each extend goes into the TCG event log (log.ts). Quotes are
 * signed by the attestation key (AK): a restricted ECDSA P-256 signing primary in the endorsement hierarchy,
 * persisted at AK_HANDLE (0x81010002, next to the EK at 0x81010001).
 *
 * Measurement needs `[tpm]` in the config and `[measurement] enabled` (the default); otherwise it is off
 * and `system status` says so. The TPM connection is shared with the key store (hsm/tpm/shared.ts).
 * A module start is measured after it verified and before its instance runs (runtime `onLaunch`).
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { EV_EVENT_TAG, canonicalJson, tagEvent, TAG, type LogEvent } from '../../hsm/tpm/eventlog.js';
import { ALG, RH, SE } from '../../hsm/tpm/constants.js';
import { EK_HANDLE, HierarchyAuthError, ensurePersistedPrimary, type HierarchyAuths } from '../../hsm/tpm/identity.js';
import { Reader } from '../../hsm/tpm/marshal.js';
import { TpmError } from '../../hsm/tpm/rc.js';
import { passwordAuth } from '../../hsm/tpm/session.js';
import { TpmTransportError } from '../../hsm/tpm/transport.js';
import { publicKeyOf } from '../../hsm/tpm/pubkey.js';
import { eccSigningTemplate, ekRsaTemplate } from '../../hsm/tpm/templates.js';
import { StartupError } from '../errors.js';
import { openSharedTpm } from '../../hsm/tpm/shared.js';
import type { Tpm, PublicInfo } from '../../hsm/tpm/tpm.js';
import { marshalSignature } from '../../hsm/tpm/types.js';
import type { Config } from '../config/schema.js';
import type { ServiceStatus } from '../status.js';
import type { Logger } from '../log.js';
import { RuntimeError } from '../runtime/errors.js';
import type { Registration } from '../runtime/registry.js';
import { codeDigest, measuredConfig } from './code.js';
import { MeasurementLog } from './log.js';
import { encodeToolsPcrs, type QuoteBundle } from './quote-files.js';
import { measurementEnabled } from './off.js';

export const AK_HANDLE = 0x81010002;

/** What the measurement service needs of the module runtime. */
export interface MeasuredRuntime {
  onLaunch(hook: (r: Registration) => Promise<void>): void;
}

export class MeasurementUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MeasurementUnavailable';
  }
}

/** The data measured for a module start (canonical JSON of this is the tagged event's data). */
export function moduleStartData(r: Registration): Record<string, unknown> {
  return { module: r.name, digest: r.digest, ...(r.plaintextDigest ? { plaintext: r.plaintextDigest } : {}), signer: r.signer, kind: r.kind, grants: [...r.capabilities].sort(), network: r.network ?? null };
}

export class Measurement {
  private ak: PublicInfo | undefined;
  /** Milliseconds of the last extend (TPM command + log write), for figures. */
  lastExtendMs = 0;

  private constructor(
    private readonly tpm: Tpm,
    readonly log: MeasurementLog,
    readonly pcrs: { runtime: number; modules: number },
    private readonly logger: Logger,
    private readonly hierarchyAuth: HierarchyAuths | undefined,
  ) {}

  /** Open the TPM and the log, and measure the daemon; undefined when measurement is off. */
  static async start(config: Config, logger: Logger): Promise<Measurement | undefined> {
    if (!config.tpm || !measurementEnabled(config)) return undefined;
    const { runtime_pcr: runtime, modules_pcr: modules } = config.measurement;
    const tcti = config.tpm.tcti;
    const startupError = (err: unknown): unknown =>
      err instanceof TpmTransportError || err instanceof HierarchyAuthError
        ? new StartupError(`[measurement]: cannot use the TPM at "${tcti}": ${(err as Error).message}\n  hint: fix [tpm] tcti, or set [measurement] enabled = false to run without measured launch`, 2)
        : err;
    const tpm = await openSharedTpm(tcti).catch((err: unknown) => Promise.reject(startupError(err)));
    try {
      const log = await MeasurementLog.open(path.join(config.state_dir, 'measurement'), tpm, [runtime, modules]);
      if (log.opening.kind === 'section') {
        logger.warn({ reason: log.opening.reason, kept: log.opening.kept }, 'measurement log does not match the TPM PCRs: started a new log section (the old log is kept); a verifier cannot vouch for what ran before it');
      }
      const m = new Measurement(tpm, log, { runtime, modules }, logger, config.tpm.hierarchy_authorization);
      await m.measureDaemon(config);
      return m;
    } catch (err) {
      await tpm.close().catch(() => undefined);
      throw startupError(err);
    }
  }

  private extend(pcr: number, tag: number, data: unknown): Promise<void> {
    return this.append(tagEvent(pcr, tag, Buffer.from(canonicalJson(data))));
  }

  private async append(e: LogEvent): Promise<void> {
    const t0 = performance.now();
    await this.log.append(e);
    this.lastExtendMs = performance.now() - t0;
  }

  /**
   * Measure the daemon's code and config into the runtime PCR — unless this boot's log already ends with
   * exactly these two measurements (a daemon restart with nothing changed), so the runtime PCR stays the
   * same value for an unchanged device however often the daemon restarts; any change extends it again.
   */
  private async measureDaemon(config: Config): Promise<void> {
    const code = await codeDigest();
    const cfg = measuredConfig(config);
    const events = [
      tagEvent(this.pcrs.runtime, TAG.daemonCode, Buffer.from(canonicalJson({ version: code.version, digest: code.digest }))),
      tagEvent(this.pcrs.runtime, TAG.daemonConfig, Buffer.from(canonicalJson({ digest: cfg.digest, config: JSON.parse(cfg.canonical) }))),
    ];
    const last = this.log.list().filter((e) => e.pcr === this.pcrs.runtime && e.type === EV_EVENT_TAG).slice(-2);
    const unchanged = last.length === 2 && last.every((e, i) => e.data.equals(events[i]!.data));
    if (!unchanged) for (const e of events) await this.append(e);
    this.logger.info({ pcr: this.pcrs.runtime, code: code.digest, files: code.files, config: cfg.digest, log: this.log.opening.kind, extended: !unchanged }, unchanged ? 'daemon code and config unchanged since their measurement this boot' : 'measured the daemon');
  }

  /**
   * Measure each module start into the modules PCR: called by the runtime after the start verified the
   * component (digest, signature, types) and before the instance runs; if the TPM cannot take the
   * measurement, the module does not start (a start-failed event says why; it is retried with back-off).
   */
  watch(runtime: MeasuredRuntime): void {
    runtime.onLaunch(async (r) => {
      try {
        await this.extend(this.pcrs.modules, TAG.moduleStart, moduleStartData(r));
      } catch (err) {
        this.logger.error({ err, module: r.name }, 'could not measure a module start into the TPM');
        throw new RuntimeError('failed', `module "${r.name}" not started: its start could not be measured into TPM PCR ${this.pcrs.modules} (${(err as Error).message})`);
      }
    });
  }

  /** The runtime and modules PCRs' current SHA-256 values (what `edgeward:monitor/measurements` shows). */
  async pcrValues(): Promise<{ index: number; sha256: Uint8Array }[]> {
    const pcrs = [this.pcrs.runtime, this.pcrs.modules].sort((a, b) => a - b);
    const { digests } = await this.tpm.pcrRead([{ hashAlg: ALG.SHA256, pcrs }]);
    return pcrs.map((index, i) => ({ index, sha256: new Uint8Array(digests[i]!) }));
  }

  private async attestationKey(): Promise<PublicInfo> {
    this.ak ??= (await ensurePersistedPrimary(this.tpm, AK_HANDLE, RH.ENDORSEMENT, eccSigningTemplate({ restricted: true }), this.hierarchyAuth ?? {})).info;
    return this.ak;
  }

  /** A quote of both PCRs over `nonce`, with the log as it was when quoted. */
  async quote(nonce: Buffer): Promise<QuoteBundle & { ms: number; extra: Record<string, Buffer> }> {
    const ak = await this.attestationKey();
    const ek = await this.endorsementKey();
    const selection = [{ hashAlg: ALG.SHA256, pcrs: [this.pcrs.runtime, this.pcrs.modules].sort((a, b) => a - b) }];
    return this.log.exclusive(async (eventlog) => {
      const t0 = performance.now();
      const q = await this.tpm.quote(AK_HANDLE, nonce, null, selection);
      const ms = performance.now() - t0;
      const values = (await this.tpm.pcrRead(selection)).digests;
      return {
        'quote.msg': q.attest,
        'quote.sig': marshalSignature(q.signature).finish(),
        'quote.pcrs': encodeToolsPcrs(selection, values),
        'ak.pub.pem': Buffer.from(publicKeyOf(ak.public).export({ type: 'spki', format: 'pem' }) as string),
        'ak.pub': ak.publicBytes,
        'eventlog.bin': eventlog,
        ms,
        extra: { 'ek.pub': ek.publicBytes, 'ak.name': Buffer.from(ak.name.toString('hex')) },
      };
    });
  }

  /**
   * TPM2_ActivateCredential with the EK (0x81010001, created from the standard RSA template if absent, as
   * for DPS) for the AK: a verifier that made a credential for this EK and the AK's name (tpm2_makecredential
   * -u ek.pub -n <ak.name>) gets its secret back only if the AK lives in the same TPM as that EK.
   * `credential` is tpm2_makecredential's output file (0xBADCC0DE, version 1, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET).
   */
  async activateCredential(credential: Buffer): Promise<Buffer> {
    const r = new Reader(credential);
    if (r.u32() !== 0xbadcc0de || r.u32() !== 1) throw new RuntimeError('invalid', 'not a tpm2_makecredential credential file (magic 0xBADCC0DE, version 1)');
    const blob = r.b2();
    const secret = r.b2();
    const ak = await this.attestationKey();
    await this.endorsementKey();
    return this.log.exclusive(async () => {
      const session = await this.tpm.startAuthSession(SE.POLICY);
      try {
        await this.tpm.policySecret(RH.ENDORSEMENT, session, passwordAuth(Buffer.from(this.hierarchyAuth?.endorsement ?? '')));
        return await this.tpm.activateCredential({ handle: AK_HANDLE, name: ak.name }, EK_HANDLE, blob, secret, [passwordAuth(), session.authorize()]).catch((err: unknown) => {
          if (err instanceof TpmError && !err.isAuthFailure) throw new RuntimeError('invalid', `the TPM refused the credential (${err.code}): it was not made for this device's EK and AK (use ek.pub and ak.name from "edgeward attest quote")`);
          throw err;
        });
      } finally {
        await this.tpm.flushContext(session.handle).catch(() => undefined);
      }
    });
  }

  /** The EK public (TPM2B_PUBLIC), created and persisted at 0x81010001 if absent. */
  async endorsementKey(): Promise<PublicInfo> {
    return (await ensurePersistedPrimary(this.tpm, EK_HANDLE, RH.ENDORSEMENT, ekRsaTemplate(), this.hierarchyAuth ?? {})).info;
  }

  status(): ServiceStatus {
    const n = this.log.list().length;
    return { name: 'measurement', status: this.log.opening.kind === 'section' ? 'degraded' : 'running', detail: `PCR ${this.pcrs.runtime} (runtime), PCR ${this.pcrs.modules} (modules); ${n} event(s) in the log (${this.log.opening.kind}${this.log.opening.reason ? `: ${this.log.opening.reason}` : ''})` };
  }

  async close(): Promise<void> {
    await this.log.settled().catch(() => undefined);
    await this.tpm.close();
  }
}
