/**
 * Health probes: a running instance whose component exports `edgeward:module/health` (wit/module) is
 * asked `check()` every `interval_ms`, through the instance's call queue with a deadline of `timeout_ms`
 * (at most the module's `call_timeout_ms`). An `err` answer is a failed probe; `failure_threshold`
 * failures in a row make the module unhealthy, reported once per episode through `onUnhealthy` (the
 * supervisor restarts it under `on-unhealthy`, reports only otherwise). A probe that traps or runs past
 * its deadline ends the instance like any call; the instance's end is then the supervisor's business.
 */
import type { Instance } from './sandbox/index.js';
import { DEFAULT_HEALTH, type HealthSettings } from './registry.js';

export { DEFAULT_HEALTH, type HealthSettings };

/** What status shows of a probed module. */
export interface HealthState {
  status: 'starting' | 'healthy' | 'unhealthy';
  /** Failed probes in a row. */
  failures: number;
  lastError?: string;
  lastProbe?: Date;
}

interface Probe {
  inst: Instance;
  timer: NodeJS.Timeout;
  inFlight: boolean;
  state: HealthState;
}

export class HealthProbes {
  private readonly probes = new Map<string, Probe>();

  /** `onUnhealthy(name, inst, why)`: called once when the failures reach the threshold. */
  constructor(private readonly onUnhealthy: (name: string, inst: Instance, why: string) => void) {}

  /** Probe `inst` (which exports health) from now until `stop` or its end. */
  start(name: string, inst: Instance, settings: HealthSettings | undefined): void {
    this.stop(name);
    const s = { ...DEFAULT_HEALTH, ...settings };
    const probe: Probe = { inst, inFlight: false, state: { status: 'starting', failures: 0 }, timer: setInterval(() => void this.tick(name, probe, s), s.interval_ms) };
    probe.timer.unref();
    this.probes.set(name, probe);
  }

  stop(name: string): void {
    const p = this.probes.get(name);
    if (p) clearInterval(p.timer);
    this.probes.delete(name);
  }

  /** The health of `name`'s instance, when it is probed. */
  state(name: string): HealthState | undefined {
    return this.probes.get(name)?.state;
  }

  stopAll(): void {
    for (const name of [...this.probes.keys()]) this.stop(name);
  }

  private async tick(name: string, p: Probe, s: Required<HealthSettings>): Promise<void> {
    if (p.inFlight) return; // the previous probe still waits behind a call
    if (!p.inst.alive) return this.stop(name);
    p.inFlight = true;
    let failure: string | undefined;
    try {
      const out = await p.inst.health(s.timeout_ms);
      if (!out.ok) failure = out.message || 'check answered an error';
    } catch (err) {
      failure = (err as Error).message;
    } finally {
      p.inFlight = false;
    }
    if (this.probes.get(name) !== p) return; // stopped meanwhile
    p.state.lastProbe = new Date();
    if (failure === undefined) {
      p.state = { status: 'healthy', failures: 0, lastProbe: p.state.lastProbe };
      return;
    }
    p.state.failures++;
    p.state.lastError = failure;
    if (p.state.failures === s.failure_threshold && p.inst.alive) {
      p.state.status = 'unhealthy';
      this.onUnhealthy(name, p.inst, `${p.state.failures} health probes failed in a row (last: ${failure})`);
    }
  }
}
