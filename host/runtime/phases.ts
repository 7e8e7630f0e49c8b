/**
 * Where one module start's time went: each phase's duration in ms (performance.now() clock), kept per
 * start by the supervisor (`ComponentRuntime.startPhases`) and logged at debug level. Phases can overlap
 * (the stored bytes are measured while the cache is read and the worker links), so they need not add up
 * to `total`. Cheap: a few performance.now() calls per start.
 *
 * Admission (deploy): read, measure, verify, store, prepare (transpile or verified cache), compile, types.
 * Start: halt (a restart's stop of the previous instance), read, measure, verify, prepare, compile, gate (waiting for the measurement), launch-hook (TPM
 * extend), worker (taking one), load (glue + imports linked, host's view), link (worker's own view),
 * instantiate, start (the guest's `start`).
 */
export type PhaseName =
  | 'read' | 'measure' | 'verify' | 'store' | 'prepare' | 'compile' | 'types'
  | 'halt' | 'gate' | 'launch-hook' | 'worker' | 'load' | 'link' | 'instantiate' | 'start';

export class Phases {
  private readonly t0 = performance.now();
  readonly ms: Partial<Record<PhaseName, number>> = {};
  /** From creation to `finish()`. */
  total?: number;

  add(name: PhaseName, ms: number): void {
    this.ms[name] = (this.ms[name] ?? 0) + ms;
  }

  /** Time a synchronous step. */
  sync<T>(name: PhaseName, fn: () => T): T {
    const t = performance.now();
    try {
      return fn();
    } finally {
      this.add(name, performance.now() - t);
    }
  }

  /** Time an asynchronous step (its duration until it settles). */
  async time<T>(name: PhaseName, fn: () => Promise<T>): Promise<T> {
    const t = performance.now();
    try {
      return await fn();
    } finally {
      this.add(name, performance.now() - t);
    }
  }

  finish(): void {
    this.total = performance.now() - this.t0;
  }

  /** `name=1.2` pairs, for a log line or a bench print. */
  toString(): string {
    const parts = Object.entries(this.ms).map(([k, v]) => `${k} ${v.toFixed(1)}`);
    if (this.total !== undefined) parts.push(`total ${this.total.toFixed(1)}`);
    return parts.join(', ');
  }
}
