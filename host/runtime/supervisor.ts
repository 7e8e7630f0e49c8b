/**
 * Supervisor: each registered module's live state (status, restart and crash counts, last exit), its
 * running instance, and the restart policy. When an instance ends or a start fails, it decides (policy.ts)
 * whether and when to start the module again, with IoT Edge's back-off, and saves the counters
 * (counters.ts) whenever they change. Instances whose component exports `edgeward:module/health` are
 * probed (health.ts); an unhealthy one is restarted under `on-unhealthy`, only reported otherwise. The caller holds the module's lock (locks.ts) for every method that
 * starts or stops an instance; a back-off timer takes the lock itself.
 */
import path from 'node:path';
import type { Logger } from '../log.js';
import type { Admission, StartPlan } from './admission.js';
import { fromPersisted, type CounterStore, type PersistedCounters } from './counters.js';
import type { ModuleState } from './details.js';
import type { RuntimeError } from './errors.js';
import type { RuntimeEvents } from './events.js';
import type { ModuleLocks } from './locks.js';
import type { Digest } from './loader.js';
import type { LogStore } from './log-store.js';
import { HealthProbes } from './health.js';
import { Phases } from './phases.js';
import { decideRestart, formatDelay, restartsWhenUnhealthy, type BackoffSettings } from './policy.js';
import type { Registration, Registry } from './registry.js';
import { Instance, keepSpare, type ExitReason, type SandboxOptions } from './sandbox/index.js';

export interface SupervisorOptions {
  stateDir: string;
  logger: Logger;
  backoff: BackoffSettings;
  registry: Registry;
  admission: Admission;
  events: RuntimeEvents;
  logs: LogStore;
  counters: CounterStore;
  locks: ModuleLocks;
}

/** Start failures that another attempt cannot cure: the module is `dead`, not restarted. */
const TERMINAL: ReadonlySet<RuntimeError['code']> = new Set<RuntimeError['code']>(['integrity-mismatch', 'type-mismatch', 'denied', 'invalid']);

export class Supervisor {
  /** Called with each verified registration just before its instance starts; a rejection fails the start. */
  beforeLaunch?: (r: Registration) => Promise<void>;
  /** The instance of each module that has one (it may have ended moments ago: check `alive`). */
  readonly instances = new Map<string, Instance>();
  private readonly states = new Map<string, ModuleState>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private nextInstanceId = 1;
  private closed = false;
  private countersSaved: Promise<void> = Promise.resolve();
  /** Where each module's last start's time went (phases.ts). */
  readonly startPhases = new Map<string, Phases>();
  private readonly probes = new HealthProbes((name, inst, why) => this.onUnhealthy(name, inst, why));

  /** `saved`: the counters persisted by an earlier daemon (counters.ts `load`). */
  constructor(private readonly opts: SupervisorOptions, saved: ReadonlyMap<string, PersistedCounters>) {
    for (const r of opts.registry.all()) this.states.set(r.name, fromPersisted(saved.get(r.name)));
  }

  /** The live state of `name` (a fresh stopped one if it had none). */
  state(name: string): ModuleState {
    let s = this.states.get(name);
    if (!s) {
      s = { status: 'stopped', restartCount: 0, crashCount: 0 };
      this.states.set(name, s);
    }
    return s;
  }

  /** Running, or waiting out a back-off before its next start. */
  isActive(name: string): boolean {
    return Boolean(this.instances.get(name)?.alive) || this.timers.has(name);
  }

  /** A (new or replaced) registration starts stopped with no restarts; a replaced one keeps its crash count. */
  registered(name: string, keepCrashes: boolean): void {
    this.states.set(name, { status: 'stopped', restartCount: 0, crashCount: keepCrashes ? this.state(name).crashCount : 0 });
    this.saveCounters();
  }

  /** The module was removed: its state and counters go. */
  removed(name: string): void {
    this.states.delete(name);
    this.startPhases.delete(name);
    this.saveCounters();
  }

  /** Clear the back-off (an operator's start or restart, like removing the agent's stats). */
  resetRestarts(name: string): void {
    this.state(name).restartCount = 0;
    this.saveCounters();
  }

  /** No restart is scheduled from now on; pending ones are cancelled. The caller then halts every module. */
  shutdown(): void {
    this.closed = true;
    this.probes.stopAll();
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  /** Save the counters once more and wait for every write. */
  async flush(): Promise<void> {
    this.saveCounters();
    await this.countersSaved;
  }

  /**
   * Start one instance of a registered module (`justMeasured`: the bytes admit() just read; `phases`:
   * admit()'s timings, which this start's add to).
   */
  async launch(name: string, justMeasured?: Uint8Array, phases = new Phases()): Promise<void> {
    const r = this.opts.registry.require(name);
    const s = this.state(name);
    let inst: Instance;
    let probed = false;
    try {
      const plan = await this.opts.admission.atStart(r, justMeasured, phases);
      probed = plan.health;
      // Measured launch (host/measure): what runs is measured into the TPM after it verified, before it runs.
      if (this.beforeLaunch) await plan.gate.then(() => phases.time('launch-hook', () => this.beforeLaunch!(r)));
      const instanceId = this.nextInstanceId++;
      inst = await Instance.start({ ...this.sandboxOptions(r, plan, instanceId), phases });
      s.instanceId = instanceId;
    } catch (err) {
      this.startFailed(name, s, err as RuntimeError);
      throw err;
    }
    this.instances.set(name, inst);
    keepSpare(); // normally spawned when this start took its worker; again if that one died (pool.ts)
    phases.finish();
    this.startPhases.set(name, phases);
    this.opts.logger.debug({ module: name, phases: phases.ms, total: phases.total }, 'module start timings (ms)');
    Object.assign(s, { status: 'running', description: undefined, startTime: inst.startedAt, nextRestartAt: undefined });
    this.opts.events.record(name, 'started', `instance ${s.instanceId} of ${r.digest} running`);
    if (probed) this.probes.start(name, inst, r.health);
  }

  /** The health of `name`'s running instance, when its component exports health probes. */
  health(name: string): ReturnType<HealthProbes['state']> {
    return this.probes.state(name);
  }

  /**
   * Health probes failed `failure_threshold` times in a row: an `unhealthy` event; under `on-unhealthy`
   * the instance is stopped and restarted with the policy's back-off (the restart is counted).
   */
  private onUnhealthy(name: string, inst: Instance, why: string): void {
    const r = this.opts.registry.get(name);
    const restart = r !== undefined && restartsWhenUnhealthy(r.restartPolicy);
    this.opts.events.record(name, 'unhealthy', `${why}${restart ? '; restarting' : ` (restart policy ${r?.restartPolicy}: reported only)`}`);
    if (!restart) return;
    void this.opts.locks.run(name, async () => {
      if (this.instances.get(name) !== inst || !inst.alive || this.closed) return;
      this.probes.stop(name);
      this.instances.delete(name);
      const s = this.state(name);
      await inst.stop();
      Object.assign(s, { status: 'failed', description: `unhealthy: ${why}`, lastError: `unhealthy: ${why}`, exit: { time: new Date(), code: 1 } });
      this.opts.events.record(name, 'stopped', `unhealthy: ${why}`);
      this.saveCounters();
      this.scheduleRestart(name, 'failed');
    }).catch((err: unknown) => this.opts.logger.warn({ module: name, err: (err as Error).message }, 'could not restart an unhealthy module'));
  }

  /**
   * Stop the instance if any and cancel a pending restart. `awaitExit: false` (a restart): resolve once
   * the instance is stopped and its host side released, without waiting for its thread's teardown.
   */
  async halt(name: string, why: string, awaitExit = true): Promise<void> {
    this.cancelRestart(name);
    this.probes.stop(name);
    const inst = this.instances.get(name);
    this.instances.delete(name);
    const s = this.states.get(name);
    if (inst) {
      await inst.stop(awaitExit);
      this.opts.events.record(name, 'stopped', why);
    }
    if (s && (inst || s.status !== 'dead')) Object.assign(s, { status: 'stopped', description: undefined, exit: inst ? { time: new Date(), code: 0 } : s.exit });
    if (inst) this.saveCounters();
  }

  cancelRestart(name: string): void {
    const t = this.timers.get(name);
    if (t) clearTimeout(t);
    this.timers.delete(name);
    const s = this.states.get(name);
    if (s) s.nextRestartAt = undefined;
  }

  private sandboxOptions(r: Registration, plan: StartPlan, instanceId: number): SandboxOptions {
    const { name } = r;
    const log = this.opts.logs.for(name);
    return {
      module: name,
      generationId: r.generationId,
      digest: r.digest as Digest,
      ...(r.plaintextDigest ? { plaintextDigest: r.plaintextDigest } : {}),
      signer: r.signer,
      instanceId,
      glueSource: plan.glueSource,
      ...(plan.codeCache ? { glueCodeCache: plan.codeCache } : {}),
      coreModules: plan.coreModules,
      capabilities: plan.capabilities,
      interfaceTypes: plan.interfaceTypes,
      config: JSON.stringify({ name, generationId: r.generationId, env: r.env, settings: r.settings }),
      limits: plan.limits,
      ...(r.network ? { network: r.network } : {}),
      dataDir: path.join(this.opts.stateDir, 'modules', name, 'data'),
      onLog: (level, message) => log.append(level, message),
      onEvent: (kind, message) => this.opts.events.record(name, kind, message),
      current: () => {
        const now = this.opts.registry.get(name);
        return now !== undefined && now.generationId === r.generationId && now.digest === r.digest && now.signer === r.signer;
      },
      onExit: (reason) => this.onInstanceEnded(name, instanceId, reason),
      onInternalError: (where, cause) => this.onInternalError(name, instanceId, where, cause),
      gate: plan.gate,
    };
  }

  /** A start failed: `dead` when another attempt cannot cure it, else `failed` with a restart scheduled. */
  private startFailed(name: string, s: ModuleState, e: RuntimeError): void {
    const terminal = TERMINAL.has(e.code);
    s.status = terminal ? 'dead' : 'failed';
    s.description = e.message;
    s.lastError = e.message;
    s.exit = { time: new Date(), code: 1 };
    this.saveCounters();
    this.opts.events.record(name, 'start-failed', e.message);
    if (!terminal) this.scheduleRestart(name, 'failed');
  }

  private onInstanceEnded(name: string, instanceId: number, reason: ExitReason): void {
    const s = this.states.get(name);
    if (!s || s.instanceId !== instanceId) return;
    this.instances.delete(name);
    this.probes.stop(name);
    const failed = reason.kind !== 'exited' || reason.code !== 0;
    const message = reason.kind === 'exited' ? `exited with code ${reason.code}` : reason.message;
    s.exit = { time: new Date(), code: reason.kind === 'exited' ? reason.code : reason.kind === 'timeout' ? 124 : 134 };
    s.status = failed ? 'failed' : 'stopped';
    s.description = message;
    if (failed) {
      s.crashCount++;
      s.lastError = message;
    }
    // A run longer than the intensive-care time clears the restart count (agent's IntensiveCareTime).
    if (s.startTime && Date.now() - s.startTime.getTime() >= this.opts.backoff.intensiveCareMs) s.restartCount = 0;
    this.saveCounters();
    this.opts.events.record(name, reason.kind === 'timeout' ? 'timeout' : failed ? 'crashed' : 'exited', message);
    this.scheduleRestart(name, failed ? 'failed' : 'exited-ok');
  }

  /**
   * A host-side bug while serving an instance (sandbox/): the cause, stack included, goes to the daemon
   * log only; the event (and so the module log) names the place, never the cause.
   */
  private onInternalError(name: string, instanceId: number, where: string, cause: unknown): void {
    const err = cause instanceof Error ? { name: cause.name, message: cause.message, stack: cause.stack } : { value: String(cause) };
    this.opts.logger.error({ module: name, instanceId, where, err }, `internal error in ${where}; instance trapped`);
    this.opts.events.record(name, 'internal-error', `internal error in ${where}; instance ${instanceId} trapped (cause in the daemon log)`, {}, false);
  }

  private scheduleRestart(name: string, ended: 'failed' | 'exited-ok'): void {
    const r = this.opts.registry.get(name);
    const s = this.states.get(name);
    if (!r || !s || this.closed) return;
    const d = decideRestart(r.restartPolicy, r.desiredStatus, ended, s.restartCount, this.opts.backoff);
    if (!d.restart) {
      if (d.reason === 'max-restarts') {
        s.description = `${s.description ?? 'failed'}; not restarted after ${s.restartCount} restarts`;
        this.opts.events.record(name, 'restart-abandoned', s.description);
      }
      return;
    }
    s.nextRestartAt = new Date(Date.now() + d.delayMs);
    s.description = `backoff: ${s.description ?? 'ended'}; restarting after ${formatDelay(d.delayMs)}`;
    this.opts.events.record(name, 'restart-scheduled', `Module '${name}' scheduled to restart after ${formatDelay(d.delayMs)} (restart ${s.restartCount + 1}, cool-off ${d.delayMs} ms)`);
    this.cancelRestart(name);
    const timer = setTimeout(() => {
      this.timers.delete(name);
      void this.opts.locks.run(name, () => this.restartNow(name, s)).catch(() => undefined); // launch recorded the failure and scheduled the next attempt
    }, d.delayMs);
    timer.unref();
    this.timers.set(name, timer);
  }

  /** A back-off ended: start again, unless the module was started, stopped or removed meanwhile. */
  private async restartNow(name: string, s: ModuleState): Promise<void> {
    if (this.closed || this.instances.get(name)?.alive || this.opts.registry.get(name)?.desiredStatus !== 'running') return;
    s.restartCount++;
    s.nextRestartAt = undefined;
    this.saveCounters();
    await this.launch(name);
  }

  /** Persist every module's counters (counters.ts); a failed write is logged, never fatal. */
  private saveCounters(): void {
    this.countersSaved = this.opts.counters.save(this.states).catch((err: Error) => {
      this.opts.logger.warn({ err: err.message, file: this.opts.counters.file }, 'could not save supervisor counters');
    });
  }
}
