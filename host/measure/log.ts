/**
 * The measurement log file `<state>/measurement/eventlog.bin` (a TCG crypto-agile log, hsm/tpm/eventlog.ts)
 * kept in step with the TPM's PCRs, and how it continues across daemon restarts:
 *
 * - PCRs at zero, no log or a log of an earlier boot: a new log (an earlier boot's is kept as
 *   eventlog.previous.bin). PCRs reset only at TPM reset (reboot), so zero means nothing was measured.
 * - The log replays to the current PCR values: the same boot, the daemon restarted — append to it.
 * - It does not (someone else extended the PCRs, the file was lost, edited, or a write was cut between the
 *   extend and the log write): the old file is kept as eventlog.unmatched-<time>.bin, and a new log starts
 *   with a `section-start` EV_NO_ACTION event recording the reason, the PCR values read then (unproven: a
 *   verifier can only trust what follows relative to them; `tpm2_checkquote` replays from zero and refuses
 *   such a log, which is right) and the SHA-256 of the kept file. The daemon logs a warning.
 *
 * Each append extends the PCR first, then rewrites the file atomically (the log is small).
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ALG } from '../../hsm/tpm/constants.js';
import {
  EV_NO_ACTION, TAG, encodeEventLog, parseEventLog, parseTaggedEvent, replayEventLog, sectionStartEvent, type LogEvent,
} from '../../hsm/tpm/eventlog.js';
import { writeFileAtomic } from '../../hsm/support/atomic.js';
import type { Tpm } from '../../hsm/tpm/tpm.js';

export const LOG_FILE = 'eventlog.bin';

export type LogOpening = 'new' | 'continued' | 'section';

export interface SectionStart {
  reason: string;
  pcrs: Record<string, string>;
  previousLog?: string;
}

/** The section-start event of a log (its first event), if any. */
export function sectionStartOf(events: LogEvent[]): SectionStart | undefined {
  const first = events[0];
  if (!first || first.type !== EV_NO_ACTION) return undefined;
  const t = parseTaggedEvent(first.data);
  if (t.id !== TAG.sectionStart) return undefined;
  return JSON.parse(t.data.toString('utf8')) as SectionStart;
}

/** Replay a log, from the values its section-start asserts (if it has one) or from zero. */
export function replayLog(events: LogEvent[]): Map<number, Buffer> {
  const s = sectionStartOf(events);
  const start = new Map(Object.entries(s?.pcrs ?? {}).map(([k, v]) => [Number(k), Buffer.from(v, 'hex')]));
  return replayEventLog(events, start);
}

async function readPcrs(tpm: Tpm, pcrs: number[]): Promise<Map<number, Buffer>> {
  const sorted = [...pcrs].sort((a, b) => a - b);
  const r = await tpm.pcrRead([{ hashAlg: ALG.SHA256, pcrs: sorted }]);
  return new Map(sorted.map((p, i) => [p, r.digests[i]!]));
}

export class MeasurementLog {
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly file: string,
    private readonly tpm: Tpm,
    private events: LogEvent[],
    readonly opening: { kind: LogOpening; reason?: string; kept?: string },
  ) {}

  /** Open (or start) the log in `dir` for `pcrs`, checked against the TPM's values. */
  static async open(dir: string, tpm: Tpm, pcrs: number[]): Promise<MeasurementLog> {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, LOG_FILE);
    const current = await readPcrs(tpm, pcrs);
    const zero = [...current.values()].every((v) => v.equals(Buffer.alloc(32)));
    const bytes = await fs.readFile(file).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : Promise.reject(e)));
    let events: LogEvent[] | undefined;
    let problem: string | undefined;
    if (bytes) {
      try {
        events = parseEventLog(bytes);
      } catch (err) {
        problem = `the log is unreadable (${(err as Error).message})`;
      }
    }
    if (events && !problem) {
      const replayed = replayLog(events);
      const mismatch = pcrs.filter((p) => !(replayed.get(p) ?? Buffer.alloc(32)).equals(current.get(p)!));
      if (mismatch.length === 0) return new MeasurementLog(file, tpm, events, { kind: 'continued' });
      problem = `the log does not replay to the value of PCR ${mismatch.join(', ')}`;
    }
    if (zero) {
      if (bytes) await fs.rename(file, path.join(dir, 'eventlog.previous.bin'));
      const log = new MeasurementLog(file, tpm, [], { kind: 'new' });
      await log.write();
      return log;
    }
    const reason = problem ?? 'no log, and the PCRs were already extended';
    let kept: string | undefined;
    if (bytes) {
      kept = path.join(dir, `eventlog.unmatched-${new Date().toISOString().replace(/[:.]/g, '-')}.bin`);
      await fs.rename(file, kept);
    }
    const pcrHex = Object.fromEntries([...current].map(([p, v]) => [String(p), v.toString('hex')]));
    const start = sectionStartEvent({ reason, pcrs: pcrHex, ...(bytes ? { previousLog: `sha256:${createHash('sha256').update(bytes).digest('hex')}` } : {}) });
    const log = new MeasurementLog(file, tpm, [start], { kind: 'section', reason, ...(kept ? { kept } : {}) });
    await log.write();
    return log;
  }

  list(): LogEvent[] {
    return [...this.events];
  }

  bytes(): Buffer {
    return encodeEventLog(this.events);
  }

  /** Extend the event's PCR with its digest, then write the log with it (one append at a time). */
  append(e: LogEvent): Promise<void> {
    const run = this.chain.then(async () => {
      await this.tpm.pcrExtend(e.pcr, [{ hashAlg: ALG.SHA256, digest: e.digest }]);
      this.events.push(e);
      await this.write();
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Run `fn` with the log bytes while no append runs (a quote and the log it comes with agree). */
  exclusive<T>(fn: (bytes: Buffer) => Promise<T>): Promise<T> {
    const run = this.chain.then(() => fn(this.bytes()));
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Wait for appends in progress. */
  async settled(): Promise<void> {
    await this.chain;
  }

  private write(): Promise<void> {
    return writeFileAtomic(this.file, this.bytes());
  }
}
