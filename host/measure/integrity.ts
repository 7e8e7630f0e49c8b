/**
 * Integrity monitoring: every `[measurement] integrity_interval_s` seconds, each running module's stored
 * component bytes are measured again against the digest it was registered (and measured into the TPM)
 * with, and its sealed transpile cache (glue and core modules: the code that actually runs) is checked
 * again against its sealed index. A mismatch stops the module and records an `integrity-violation` event;
 * it is not restarted, and its next start refuses the changed bytes, until it is redeployed.
 * Independent of the TPM: it runs with or without one.
 */
import type { Logger } from '../log.js';
import type { Registration } from '../runtime/registry.js';
import { IntegrityError } from '../runtime/errors.js';
import type { Digest } from '../runtime/loader.js';

export interface MonitoredRuntime {
  registrations(): Registration[];
  isActive(name: string): boolean;
  loader: { loadStored(module: string, expected: Digest): Promise<Uint8Array>; verifyCached(digest: Digest): Promise<void> };
  integrityViolation(name: string, message: string, extra?: { measured?: string; expected?: string }): Promise<void>;
}

export class IntegrityMonitor {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<string[]> | undefined;
  /** Milliseconds the last sweep took, for figures. */
  lastSweepMs = 0;

  constructor(private readonly runtime: MonitoredRuntime, private readonly intervalMs: number, private readonly logger: Logger) {}

  start(): void {
    if (this.intervalMs <= 0) return;
    this.timer = setInterval(() => void this.sweep(), this.intervalMs);
    this.timer.unref();
  }

  /** Re-measure every running module now; the names of those stopped. One sweep at a time. */
  sweep(): Promise<string[]> {
    this.running ??= this.sweepOnce().finally(() => (this.running = undefined));
    return this.running;
  }

  private async sweepOnce(): Promise<string[]> {
    const t0 = Date.now();
    const stopped: string[] = [];
    for (const r of this.runtime.registrations()) {
      if (!this.runtime.isActive(r.name)) continue;
      const problem = await this.check(r);
      if (!problem) continue;
      stopped.push(r.name);
      await this.runtime
        .integrityViolation(r.name, `re-measurement while running: ${problem.message}; module stopped, it runs again only once redeployed`, { ...(problem.measured ? { measured: problem.measured } : {}), expected: r.digest })
        .catch((err: unknown) => this.logger.error({ err, module: r.name }, 'could not stop a module that failed its integrity check'));
    }
    this.lastSweepMs = Date.now() - t0;
    return stopped;
  }

  private async check(r: Registration): Promise<{ message: string; measured?: string } | undefined> {
    try {
      await this.runtime.loader.loadStored(r.name, r.digest as Digest);
      await this.runtime.loader.verifyCached(r.digest as Digest);
      return undefined;
    } catch (err) {
      return { message: (err as Error).message, ...(err instanceof IntegrityError && err.measured ? { measured: err.measured } : {}) };
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
