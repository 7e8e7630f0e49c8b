/**
 * The component runtime behind the `ModuleRuntime` interface the management API uses. It composes the
 * registry (registry.ts), admission (admission.ts: measure, verify, configure, plan, type-check), the
 * supervisor (supervisor.ts: instances, restart policy, counters) and the deployer (deployer.ts).
 * Operations on one module are serialised (locks.ts), so a start racing a stop or a scheduled restart
 * cannot leave two instances.
 */
import path from 'node:path';
import type { Logger } from '../log.js';
import type { LimitsConfig } from '../config/schema.js';
import { Admission } from './admission.js';
import { assetUrl } from './assets.js';
import type { TeeResolver } from './confidential/open.js';
import type { Capability } from './capabilities.js';
import { CounterStore, type LoadedCounters } from './counters.js';
import { reconcile } from './deployer.js';
import { renderDetails } from './details.js';
import { RuntimeError } from './errors.js';
import { DAEMON_EVENTS, RuntimeEvents, type DaemonEventKind, type RuntimeEvent } from './events.js';
import { Loader, type CacheSeal, type Digest } from './loader.js';
import { collectMemoryBudget } from './memory-budget.js';
import type { MemoryBudget } from '../status.js';
import { Phases } from './phases.js';
import { CONFIDENTIAL_KIND } from './confidential/open.js';
import { API_SOURCE, DeploymentRecords, deploymentDigest } from './deployments.js';
import { ModuleLocks } from './locks.js';
import { LogStore, type LogStoreOptions } from './log-store.js';
import type { ModuleSpec } from './manifest.js';
import { IOT_EDGE_BACKOFF, type BackoffSettings } from './policy.js';
import { Registry, type Registration } from './registry.js';
import { FileVersionFloors, RollbackGuard, type VersionFloors } from './rollback.js';
import { drainWorkerPool, keepSpare, preloadWorkerModules, workersExited, type Instance, type InvokeOutcome } from './sandbox/index.js';
import { Supervisor } from './supervisor.js';
import { TrustStore, type ModuleTrust } from './trust.js';
import { GUEST_ERROR_STATUS, type DeployResult, type InvokeResult, type LogQuery, type ModuleDetails, type ModuleRuntime } from './types.js';

export interface RuntimeOptions {
  stateDir: string;
  logger: Logger;
  limits: LimitsConfig;
  /** Every capability a module can be granted: host/capabilities/index.ts `edgewardCapabilities` (+ a test's own). */
  capabilities: readonly Capability[];
  backoff?: Partial<BackoffSettings>;
  logs?: LogStoreOptions;
  /** Signature policy and trusted signers (`[modules]`). Default: "optional", trusting no signer. */
  trust?: ModuleTrust;
  /** Seals the transpile cache to this device (loader.ts CacheSeal); the daemon's HMAC key. */
  cacheSeal?: CacheSeal;
  /** The daemon's TEE backend for confidential modules, resolved lazily (host/runtime/confidential/backend.ts). */
  tee?: TeeResolver;
  /**
   * Where security version floors live (rollback.ts): the daemon passes TPM NV counters when it has a
   * TPM (rollback-tpm.ts); default a state file under the state directory.
   */
  versionFloors?: VersionFloors;
}

export class ComponentRuntime implements ModuleRuntime {
  readonly loader: Loader;
  /** Why the saved supervisor counters could not be used at open (they started from zero), if so. */
  readonly countersProblem?: string;
  private readonly eventLog: RuntimeEvents;
  private readonly admission: Admission;
  private readonly supervisor: Supervisor;
  private readonly locks = new ModuleLocks();
  private readonly capabilities: readonly Capability[];

  private constructor(opts: RuntimeOptions & { versionFloors: VersionFloors }, private readonly registry: Registry, private readonly logStore: LogStore, counters: CounterStore, saved: LoadedCounters, readonly deployments: DeploymentRecords) {
    if (saved.problem) this.countersProblem = saved.problem;
    this.loader = new Loader(opts.stateDir, opts.cacheSeal);
    this.capabilities = opts.capabilities;
    this.eventLog = new RuntimeEvents({ logger: opts.logger, logs: logStore, registered: (m) => registry.get(m) !== undefined });
    this.admission = new Admission({
      loader: this.loader,
      capabilities: opts.capabilities,
      trust: opts.trust ?? { policy: 'optional', store: TrustStore.empty() },
      limits: opts.limits,
      events: this.eventLog,
      rollback: new RollbackGuard(opts.versionFloors, this.eventLog),
      ...(opts.tee ? { tee: opts.tee } : {}),
    });
    const backoff = { ...IOT_EDGE_BACKOFF, ...opts.backoff };
    this.supervisor = new Supervisor(
      { stateDir: opts.stateDir, logger: opts.logger, backoff, registry, admission: this.admission, events: this.eventLog, logs: logStore, counters, locks: this.locks },
      saved.counters,
    );
  }

  static async open(opts: RuntimeOptions): Promise<ComponentRuntime> {
    const registry = await Registry.open(opts.stateDir);
    const logs = new LogStore(path.join(opts.stateDir, 'logs', 'modules'), opts.logs);
    const counters = new CounterStore(opts.stateDir);
    const saved = await counters.load();
    if (saved.problem) opts.logger.warn({ file: counters.file, problem: saved.problem }, 'supervisor counters could not be read; restart and crash counts start from zero');
    const deployments = await DeploymentRecords.open(opts.stateDir);
    const versionFloors = opts.versionFloors ?? (await FileVersionFloors.open(opts.stateDir));
    const rt = new ComponentRuntime({ ...opts, versionFloors }, registry, logs, counters, saved, deployments);
    rt.fitPool();
    return rt;
  }

  /** Start every registered module whose desired status is running, in startupOrder groups. */
  async startAll(): Promise<void> {
    await this.startInOrder(this.registry.all().filter((r) => r.desiredStatus === 'running').map((r) => r.name));
  }

  /**
   * Start a module without clearing its back-off: the daemon's own (re)start and an unchanged module in a
   * deployment, as opposed to an operator's `start`. Restart counts carry on from before.
   */
  resume(name: string, measured?: { digest: string; bytes: Uint8Array }): Promise<void> {
    return this.startWith(name, false, measured);
  }

  events(module?: string): RuntimeEvent[] {
    return this.eventLog.ring.list(module);
  }

  onEvent(listener: (e: RuntimeEvent) => void): () => void {
    return this.eventLog.ring.subscribe(listener);
  }

  /**
   * An integrity violation a monitor found in a running module (host/measure/integrity.ts): recorded, and
   * the module stopped (desired status stopped); its next start measures again and refuses the changed
   * bytes, so it runs again only once redeployed.
   */
  async integrityViolation(name: string, message: string, extra: { measured?: string; expected?: string } = {}): Promise<void> {
    this.eventLog.record(name, 'integrity-violation', message, extra);
    await this.stop(name);
  }

  /** Measured launch (host/measure): `hook` runs for each verified module start, before the instance runs. */
  onLaunch(hook: (r: Registration) => Promise<void>): void {
    this.supervisor.beforeLaunch = hook;
  }

  /** An event about the daemon itself, into the same ring (the daemon logged it already). */
  recordDaemonEvent(kind: DaemonEventKind, message: string): void {
    this.eventLog.ring.push({ module: DAEMON_EVENTS, kind, message });
  }

  /** What the daemon and each running module cost in memory, for `system status` (memory-budget.ts). */
  memoryBudget(probeTimeoutMs?: number): Promise<MemoryBudget> {
    const sources = { instances: this.instances, digestOf: (n: string) => this.registry.get(n)?.digest, componentPath: (d: string) => this.loader.componentPath(d as Digest) };
    return collectMemoryBudget(sources, probeTimeoutMs);
  }

  // ---- ModuleRuntime -------------------------------------------------------------------------------

  async list(): Promise<ModuleDetails[]> {
    return this.registry.all().map((r) => this.details(r));
  }

  async get(name: string): Promise<ModuleDetails> {
    return this.details(this.registry.require(name));
  }

  /** An operator's start: clears the back-off, like removing the agent's stats. */
  start(name: string): Promise<void> {
    return this.startWith(name, true);
  }

  async stop(name: string): Promise<void> {
    await this.locks.run(name, async () => {
      await this.desire(name, 'stopped');
      await this.supervisor.halt(name, 'stopped by request');
    });
  }

  async restart(name: string): Promise<void> {
    await this.locks.run(name, async () => {
      await this.desire(name, 'running');
      const phases = new Phases();
      // The new instance gets a new worker (the spare); the old one's teardown goes on beside its start.
      await phases.time('halt', () => this.supervisor.halt(name, 'restarting', false));
      this.supervisor.resetRestarts(name);
      await this.supervisor.launch(name, undefined, phases);
    });
  }

  async *logs(name: string, query: LogQuery): AsyncIterable<string> {
    this.registry.require(name);
    yield* this.logStore.for(name).read(query);
  }

  async close(): Promise<void> {
    this.supervisor.shutdown();
    // Every module, not only the running ones: a start in progress holds the lock and is halted after it.
    const names = new Set([...this.instances.keys(), ...this.registry.all().map((r) => r.name)]);
    await Promise.all([...names].map((n) => this.locks.run(n, () => this.supervisor.halt(n, 'daemon shutting down'))));
    await workersExited(); // a restart's old worker may still be being torn down
    await this.supervisor.flush();
  }

  // ---- create / update / remove / invoke / deploy --------------------------------------------------

  /** Register a new module (measured, transpiled, linked and memory-checked first) and start it if desired. */
  async create(spec: ModuleSpec): Promise<ModuleDetails> {
    return this.changing(spec.name, async () => {
      if (this.registry.get(spec.name)) throw new RuntimeError('conflict', `module "${spec.name}" already exists`);
      keepSpare(); // it boots while the component is measured and transpiled (pool.ts)
      const phases = new Phases();
      const [reg, bytes] = await this.admission.admit(spec, undefined, phases);
      const persisted = this.registry.put(reg);
      this.supervisor.registered(reg.name, false);
      this.eventLog.record(reg.name, 'created', `registered ${reg.digest} from ${reg.source}`);
      await this.firstLaunch(reg, bytes, phases, persisted);
      return this.details(reg);
    });
  }

  /** Replace a module (IoT Edge PUT: stop → remove → create → optional start). Creates it if missing. */
  async update(spec: ModuleSpec, startNow?: boolean): Promise<ModuleDetails> {
    return this.changing(spec.name, async () => {
      const old = this.registry.get(spec.name);
      keepSpare(); // it boots while the component is measured and transpiled (pool.ts)
      const phases = new Phases();
      const [reg, bytes] = await this.admission.admit(spec, old, phases);
      if (startNow !== undefined) reg.desiredStatus = startNow ? 'running' : 'stopped';
      if (old) await this.supervisor.halt(spec.name, 'updating');
      const persisted = this.registry.put(reg);
      if (old) this.admission.forget(spec.name);
      this.supervisor.registered(reg.name, Boolean(old));
      this.eventLog.record(reg.name, old ? 'updated' : 'created', `registered ${reg.digest} from ${reg.source}`);
      await this.firstLaunch(reg, bytes, phases, persisted);
      return this.details(reg);
    });
  }

  /**
   * The first start of a registration just put (`persisted`: its write to disk), if it should run. The
   * bytes were measured moments ago by admit(), so the launch does not read them back; and it does not
   * wait for the write (~2 ms of fsync here): the caller gets its answer only once both are done, so a
   * crash in between leaves no module or a registered one, which the daemon starts at its next open.
   */
  private async firstLaunch(reg: Registration, bytes: Uint8Array, phases: Phases, persisted: Promise<void>): Promise<void> {
    persisted.catch(() => undefined); // awaited below, whatever the launch does
    try {
      if (reg.desiredStatus === 'running') await this.supervisor.launch(reg.name, bytes, phases);
    } finally {
      await persisted;
    }
  }

  async remove(name: string): Promise<void> {
    await this.changing(name, async () => {
      this.registry.require(name);
      await this.supervisor.halt(name, 'removed');
      await this.registry.delete(name);
      this.admission.forget(name);
      this.supervisor.removed(name);
      this.eventLog.record(name, 'removed', 'module removed');
      await this.logStore.remove(name);
    });
  }

  /** A direct method. The payload is JSON; the guest's answer is parsed as JSON when it is. */
  async invoke(name: string, method: string, payload: unknown): Promise<InvokeResult> {
    this.registry.require(name);
    const inst = this.instances.get(name);
    if (!inst?.alive) throw new RuntimeError('conflict', `module "${name}" is not running`);
    const out: InvokeOutcome = await inst.invoke(method, JSON.stringify(payload ?? null));
    if (!out.ok) return { status: GUEST_ERROR_STATUS, payload: { code: 'guest-error', message: out.message } };
    let value: unknown = out.value;
    try { value = out.value === '' ? null : JSON.parse(out.value); } catch { /* plain text answer */ }
    return { status: 200, payload: value };
  }

  /**
   * Reconcile to a manifest (deployer.ts): create what is new, update what changed, remove what is gone.
   * Recorded as applied from `source` (deployments.ts), so a daemon restart restores it.
   */
  async deploy(specs: ModuleSpec[], source: string = API_SOURCE): Promise<DeployResult> {
    // A manifest with a module no capability agrees to is refused whole, before anything changes.
    for (const s of specs) this.admission.configure(s);
    const result = await reconcile(this, specs);
    await this.deployments.applied(source, deploymentDigest(specs), specs.map((s) => s.name));
    return result;
  }

  /** The registration of `name`, if any (deployer, workload API). */
  registration(name: string): Registration | undefined {
    return this.registry.get(name);
  }

  registrations(): Registration[] {
    return this.registry.all();
  }

  /**
   * Where the last start of `name` spent its time, in ms per phase (phases.ts): admission's phases too
   * when the start followed a create or update. Undefined before its first start.
   */
  startPhases(name: string): { phases: Phases['ms']; total: number } | undefined {
    const p = this.supervisor.startPhases.get(name);
    return p && { phases: { ...p.ms }, total: p.total ?? 0 };
  }

  /** Running, or waiting out a back-off before its next start. */
  isActive(name: string): boolean {
    return this.supervisor.isActive(name);
  }

  // ---- internals -----------------------------------------------------------------------------------

  /** The supervisor's instances by module (a test reaches a worker through this name). */
  private get instances(): ReadonlyMap<string, Instance> {
    return this.supervisor.instances;
  }

  /**
   * Change registrations under the module's lock; afterwards, whether it succeeded or not, admission
   * forgets the declared types of digests no registration uses any more.
   */
  private changing<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const inUse = () => new Set(this.registry.all().flatMap((r) => (r.plaintextDigest ? [r.digest, r.plaintextDigest] : [r.digest])));
    return this.locks.run(name, () => fn().finally(() => {
      this.admission.prune(inUse());
      this.fitPool();
    }));
  }

  /**
   * One spare sandbox worker while any module is registered, none otherwise (pool.ts): at open and when
   * the set of modules may have changed. (The supervisor spawns the next spare after each start.)
   */
  private fitPool(): void {
    const regs = this.registry.all();
    // What the spare imports while it waits: the worker-side modules a registered module may link (its
    // grants and the implicit capabilities), not every one the daemon knows (each costs the spare's boot).
    const granted = new Set(regs.flatMap((r) => r.capabilities));
    preloadWorkerModules(this.capabilities.flatMap((c) => (c.workerModule && (c.implicit || granted.has(c.name)) ? [assetUrl(c.workerModule)] : [])));
    if (regs.length > 0) keepSpare();
    else void drainWorkerPool();
  }

  /** Record the desired status (persisted) if it differs. */
  private async desire(name: string, status: Registration['desiredStatus']): Promise<void> {
    const r = this.registry.require(name);
    if (r.desiredStatus !== status) await this.registry.put({ ...r, desiredStatus: status });
  }

  /** `measured`: bytes a deployment just read and measured; used only if they are still the registration's. */
  private async startWith(name: string, clearBackoff: boolean, measured?: { digest: string; bytes: Uint8Array }): Promise<void> {
    await this.locks.run(name, async () => {
      await this.desire(name, 'running');
      if (this.instances.get(name)?.alive) return;
      this.supervisor.cancelRestart(name);
      if (clearBackoff) this.supervisor.resetRestarts(name);
      const r = this.registry.require(name);
      const justMeasured = measured && r.kind !== CONFIDENTIAL_KIND && measured.digest === r.digest ? measured.bytes : undefined;
      await this.supervisor.launch(name, justMeasured);
    });
  }

  private details(r: Registration): ModuleDetails {
    return renderDetails(r, this.supervisor.state(r.name), this.admission.limitsOf(r), this.supervisor.health(r.name));
  }

  private async startInOrder(names: string[]): Promise<void> {
    const regs = names.map((n) => this.registry.require(n));
    const orders = [...new Set(regs.map((r) => r.startupOrder))].sort((a, b) => a - b);
    for (const o of orders) {
      await Promise.all(regs.filter((r) => r.startupOrder === o).map((r) => this.resume(r.name).catch(() => undefined)));
    }
  }
}
