/**
 * The attest service behind `edgeward:attest/*`: evidence from measured launch (host/measure quotes) and
 * the custody of the seal master secret.
 *
 * The master secret (32 random bytes) is created on first use and wrapped by the TEE backend
 * (`TeeBackend.sealMaster`: on a TPM a keyedHash object under the SRK with PolicyPCR over the runtime PCR);
 * the wrapped blob is kept in `<state_dir>/attest/seal-master.blob` (written atomically, 0600). It is
 * unwrapped into memory when first needed, and before every later use the backend re-checks its policy
 * (`checkMaster`: on a TPM a PCR read): once the runtime PCR changed, the secret is dropped and every call
 * is `policy-mismatch`. Per guest, the sealing key is derived from it and the guest's measurement (sealed.ts).
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../../../hsm/support/atomic.js';
import { TeeError, type TeeBackend } from '../../../hsm/tee/port.js';
import type { Logger } from '../../log.js';
import type { QuoteBundle } from '../../measure/quote-files.js';
import { AttestError, fromTee } from './errors.js';
import { checkHeader, openData, sealData } from './sealed.js';

/** What evidence needs of measured launch (host/measure/service.ts `Measurement` is one). */
export interface EvidenceSource {
  readonly pcrs: { readonly runtime: number; readonly modules: number };
  quote(nonce: Buffer): Promise<QuoteBundle>;
}

export interface AttestServiceOptions {
  stateDir: string;
  /** The daemon's TEE backend (opened on first use), or undefined when confidential workloads are not configured. */
  tee: () => Promise<TeeBackend | undefined>;
  /** Measured launch; absent when it is off (evidence is then `unavailable`). */
  evidence?: EvidenceSource;
  logger: Logger;
}

/** The evidence of one call, as `edgeward:attest/evidence` returns it (Report in the WIT). */
export interface EvidenceReport {
  quote: Uint8Array;
  signature: Uint8Array;
  pcrs: Uint8Array;
  eventLog: Uint8Array;
  akPublicPem: string;
  measurement: string;
  runtimePcr: number;
  modulesPcr: number;
}

interface Master {
  secret: Buffer;
  blob: Buffer;
  tee: TeeBackend;
}

export const MASTER_FILE = path.join('attest', 'seal-master.blob');

export class AttestService {
  private master: Promise<Master> | undefined;

  constructor(private readonly opts: AttestServiceOptions) {}

  /** A quote over the measured-launch PCRs with `nonce`, the event log and the AK, and the caller's measurement. */
  async evidence(nonce: Buffer, measurement: string): Promise<EvidenceReport> {
    const source = this.opts.evidence;
    if (!source) throw new AttestError('unavailable', 'measured launch is off on this device (no [tpm], or [measurement] enabled = false): there is nothing to quote');
    let q: QuoteBundle;
    try {
      q = await source.quote(nonce);
    } catch (err) {
      this.opts.logger.warn({ err }, 'edgeward:attest/evidence: the quote failed');
      throw new AttestError('unavailable', `the TPM could not quote: ${(err as Error).message}`);
    }
    return {
      quote: q['quote.msg'], signature: q['quote.sig'], pcrs: q['quote.pcrs'], eventLog: q['eventlog.bin'],
      akPublicPem: q['ak.pub.pem'].toString('utf8'), measurement, runtimePcr: source.pcrs.runtime, modulesPcr: source.pcrs.modules,
    };
  }

  async seal(measurement: string, data: Buffer): Promise<Buffer> {
    const m = await this.currentMaster();
    return sealData(m.secret, measurement, data);
  }

  async unseal(measurement: string, blob: Buffer): Promise<Buffer> {
    // Format and measurement first: a wrong caller learns nothing from the TEE and costs it nothing.
    checkHeader(blob, measurement);
    const m = await this.currentMaster();
    return openData(m.secret, measurement, blob);
  }

  /** The master secret, unwrapped once; its policy re-checked on every use, and dropped once it fails. */
  private async currentMaster(): Promise<Master> {
    const pending = (this.master ??= this.loadMaster());
    let m: Master;
    try {
      m = await pending;
    } catch (err) {
      if (this.master === pending) this.master = undefined;
      throw err instanceof TeeError ? fromTee(err) : err;
    }
    try {
      await m.tee.checkMaster(m.blob);
    } catch (err) {
      // Dropped, not zeroed: a call that passed its check a moment ago may still be deriving from it.
      if (this.master === pending) this.master = undefined;
      throw err instanceof TeeError ? fromTee(err) : err;
    }
    return m;
  }

  private async loadMaster(): Promise<Master> {
    let tee: TeeBackend | undefined;
    try {
      tee = await this.opts.tee();
    } catch (err) {
      if (err instanceof TeeError) throw new AttestError('unavailable', `no TEE backend: ${err.message}`);
      throw err;
    }
    if (!tee) throw new AttestError('unavailable', 'confidential workloads are not configured on this device (no TEE backend)');
    const file = path.join(this.opts.stateDir, MASTER_FILE);
    const stored: Buffer | undefined = await fs.readFile(file).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw new AttestError('unavailable', `the sealed seal secret ${file} cannot be read: ${e.code ?? e.message}`);
    });
    const blob = stored ?? (await this.createMaster(tee, file));
    return { secret: await tee.unsealMaster(blob), blob, tee };
  }

  private async createMaster(tee: TeeBackend, file: string): Promise<Buffer> {
    const secret = randomBytes(32);
    const blob = await tee.sealMaster(secret);
    secret.fill(0);
    await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    await writeFileAtomic(file, blob);
    this.opts.logger.info({ backend: tee.name, file }, 'created the seal secret of edgeward:attest/seal (wrapped by the TEE backend)');
    return blob;
  }
}
