/**
 * The daemon's last-resort policy for `uncaughtException` and `unhandledRejection`: an exception nothing
 * caught is logged (without secrets), counted (`edgeward system status`), reported as an event, and the
 * daemon keeps serving, as long as its state is intact.
 *
 * When it keeps serving: everything a guest can reach is already caught where it happens (sandbox/
 * traps the one instance, an HTTP handler answers 500), so what arrives here is a host bug in a callback
 * or timer of one operation, whose effect is that one operation. The other modules, the key service and
 * the sockets are separate objects whose invariants do not depend on that callback having finished.
 *
 * When it exits instead (exit code 70, EX_SOFTWARE; a supervisor such as systemd starts it afresh, and
 * the next start sweeps stale sockets, temp files and the pid file):
 * - the daemon was not `running`: an exception while it starts, restarts or stops means the services are
 *   half built or half torn down (a key service open without a runtime, a socket without its app, the
 *   state lock held by a half-stopped daemon) and no code path repairs that;
 * - more than MAX_FAULTS_PER_MINUTE within a minute: a fault that repeats is not one operation's bad
 *   luck but state that stays broken (a timer re-arming a throwing callback, a loop of failures), and
 *   serving on would only hide it;
 * - the handler itself fails (nothing is left to trust).
 */
import type { FaultCounts, FaultKind } from '../api/management/control.js';
import type { Logger } from '../log.js';

/** More faults than this within FAULT_WINDOW_MS: the state is not intact, exit. */
export const MAX_FAULTS_PER_MINUTE = 5;
export const FAULT_WINDOW_MS = 60_000;
/** Exit code when the policy gives up (sysexits EX_SOFTWARE). */
export const FAULT_EXIT_CODE = 70;
/** The longest an exit waits for the log to be flushed. */
const FLUSH_TIMEOUT_MS = 1_000;


/** What `edgeward system status` shows. */

export type { FaultCounts, FaultKind };

/** One fault as logged and reported: names and code frames, the message with secret-looking values cut. */
export interface FaultReport {
  kind: FaultKind;
  name: string;
  message: string;
  code?: string;
  frames: string[];
}

export interface LastResortOptions {
  /** The daemon's logger, once it exists (a fault before that goes to stderr). */
  logger(): Logger | undefined;
  /** Why the daemon's state is not intact right now (starting, stopping…), or undefined while it serves. */
  notIntact(): string | undefined;
  /** Called for each fault the daemon survives (the daemon records it as an event). */
  onFault?(report: FaultReport): void;
  /** How to end the process (tests pass their own). */
  exit?(code: number): void;
  now?(): number;
}

/** Values after these names are cut from a logged message (connection strings, URLs, key=value text). */
const SECRET_VALUE = /\b(SharedAccessKey|SharedAccessSignature|sig|se|skn|pin|so-pin|password|passwd|secret|token|key|authorization)(\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s;&,]+)/gi;
const MAX_MESSAGE_CHARS = 300;
const MAX_FRAMES = 12;

/** The part of a thrown value that may be logged. */
export function faultReport(kind: FaultKind, err: unknown): FaultReport {
  const e = err instanceof Error ? err : undefined;
  const raw = e ? e.message : typeof err === 'string' ? err : `non-Error value (${err === null ? 'null' : typeof err})`;
  const message = raw.replace(SECRET_VALUE, '$1$2<redacted>').slice(0, MAX_MESSAGE_CHARS);
  const frames = (e?.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l)).slice(0, MAX_FRAMES).map((l) => l.trim());
  const code = (e as { code?: unknown } | undefined)?.code;
  return { kind, name: e?.name ?? typeof err, message, ...(typeof code === 'string' ? { code } : {}), frames };
}

export class LastResort {
  private counts = { 'uncaught-exception': 0, 'unhandled-rejection': 0 };
  private last?: FaultCounts['last'];
  private recent: number[] = [];
  private exiting = false;
  private readonly now: () => number;

  constructor(private readonly opts: LastResortOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Install the handlers on `target` (the process); returns the function that removes them. */
  install(target: NodeJS.EventEmitter = process): () => void {
    const onException = (err: unknown) => this.handle('uncaught-exception', err);
    const onRejection = (reason: unknown) => this.handle('unhandled-rejection', reason);
    target.on('uncaughtException', onException);
    target.on('unhandledRejection', onRejection);
    return () => {
      target.off('uncaughtException', onException);
      target.off('unhandledRejection', onRejection);
    };
  }

  status(): FaultCounts {
    return {
      uncaughtExceptions: this.counts['uncaught-exception'],
      unhandledRejections: this.counts['unhandled-rejection'],
      ...(this.last ? { last: { ...this.last } } : {}),
      maxPerMinute: MAX_FAULTS_PER_MINUTE,
    };
  }

  /** One fault: count, log, then keep serving or exit (see the policy above). Never throws. */
  handle(kind: FaultKind, err: unknown): void {
    if (this.exiting) return;
    try {
      const t = this.now();
      this.counts[kind]++;
      const report = faultReport(kind, err);
      this.last = { time: new Date(t).toISOString(), kind, name: report.name };
      this.recent = this.recent.filter((at) => t - at < FAULT_WINDOW_MS);
      this.recent.push(t);
      const notIntact = this.opts.notIntact();
      const why = notIntact ?? (this.recent.length > MAX_FAULTS_PER_MINUTE ? `more than ${MAX_FAULTS_PER_MINUTE} faults within a minute` : undefined);
      const fields = { fault: report, counts: this.status() };
      if (why) return this.exit(`${kind}: ${why}; exiting with code ${FAULT_EXIT_CODE}`, fields);
      this.log('error', fields, `${kind} caught by the last-resort handler; the daemon keeps serving`);
      this.opts.onFault?.(report);
    } catch {
      this.exit(`${kind}: the last-resort handler failed; exiting with code ${FAULT_EXIT_CODE}`, {});
    }
  }

  private exit(message: string, fields: object): void {
    this.exiting = true;
    const end = () => (this.opts.exit ?? process.exit)(FAULT_EXIT_CODE);
    try {
      this.log('fatal', fields, message);
      const logger = this.opts.logger();
      if (!logger) return end();
      const timer = setTimeout(end, FLUSH_TIMEOUT_MS);
      logger.flush(() => {
        clearTimeout(timer);
        end();
      });
    } catch {
      end();
    }
  }

  private log(level: 'error' | 'fatal', fields: object, message: string): void {
    const logger = this.opts.logger();
    if (logger) logger[level](fields, message);
    else process.stderr.write(`edgeward: ${message} ${JSON.stringify(fields)}\n`);
  }
}
