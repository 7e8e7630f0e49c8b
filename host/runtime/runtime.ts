/**
 * The component runtime: registry + loader + sandbox + supervisor behind the `ModuleRuntime` interface
 * the management API uses. Operations on one module are serialised (a per-module lock), so a start
 * racing a stop or a scheduled restart cannot leave two instances.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Logger } from '../log.js';
import type { LimitsConfig } from '../config/schema.js';
import { LogStore, type LogStoreOptions } from './log-store.js';
import { configureGrants, planLinks, type Capability } from './capabilities.js';
import { renderDetails, type ModuleState } from './details.js';
import { CounterStore, fromPersisted } from './counters.js';
import { DAEMON_EVENTS, EventRing, type RuntimeEvent, type RuntimeEventKind } from './events.js';
import { Loader, measure, readSource, type CacheSeal, type Digest } from './loader.js';
import { reconcile } from './deployer.js';
import type { ModuleSpec } from './manifest.js';
import { decideRestart, formatDelay, IOT_EDGE_BACKOFF, type BackoffSettings } from './policy.js';
import { Registry, type Registration } from './registry.js';
import { loadSignature, SignatureError, type SignatureMaterial } from './signature.js';
import { TrustStore, verifyModule, type ModuleTrust, type SignerIdentity } from './trust.js';
import { BoundaryTypeError, checkBoundary, componentTypes, hostInterface, type ExtraInterfaces } from '../boundary/check.js';
import type { ComponentType, InstanceType } from '../boundary/types.js';
import { Instance, warmWorkerPool, type ExitReason, type InvokeOutcome } from './sandbox.js';
import { IntegrityError, RuntimeError } from './errors.js';
import type { DeployResult, InvokeResult, LogQuery, ModuleDetails, ModuleRuntime } from './types.js';

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
}



export class ComponentRuntime implements ModuleRuntime {
  readonly loader: Loader;
  private readonly states = new Map<string, ModuleState>();
  private readonly instances = new Map<string, Instance>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly capabilities: readonly Capability[];
  /** WIT types that capabilities bring besides the host's generated table (host/boundary). */
  private readonly extraInterfaces: ExtraInterfaces;
  /** Declared component types by digest (read once; a component's bytes never change under its digest). */
  private readonly declared = new Map<string, ComponentType>();
  private readonly backoff: BackoffSettings;
  private readonly trust: ModuleTrust;
  private readonly eventRing = new EventRing();
  private nextInstanceId = 1;
  private closed = false;
  private countersSaved: Promise<void> = Promise.resolve();
  /** Why the saved supervisor counters could not be used at open (they started from zero), if so. */
  readonly countersProblem?: string;

  private constructor(private readonly opts: RuntimeOptions, private readonly registry: Registry, private readonly logStore: LogStore, private readonly counters: CounterStore, countersProblem?: string) {
    if (countersProblem) this.countersProblem = countersProblem;
    this.loader = new Loader(opts.stateDir, opts.cacheSeal);
    this.capabilities = opts.capabilities;
    this.extraInterfaces = Object.assign({}, ...this.capabilities.map((c) => c.types ?? {}));
    this.backoff = { ...IOT_EDGE_BACKOFF, ...opts.backoff };
    this.trust = opts.trust ?? { policy: 'optional', store: TrustStore.empty() };
  }

  static async open(opts: RuntimeOptions): Promise<ComponentRuntime> {
    const registry = await Registry.open(opts.stateDir);
    const logs = new LogStore(path.join(opts.stateDir, 'logs', 'modules'), opts.logs);
    const counters = new CounterStore(opts.stateDir);
    const saved = await counters.load();
    if (saved.problem) opts.logger.warn({ file: counters.file, problem: saved.problem }, 'supervisor counters could not be read; restart and crash counts start from zero');
    const rt = new ComponentRuntime(opts, registry, logs, counters, saved.problem);
    void warmWorkerPool();
    for (const r of registry.all()) rt.states.set(r.name, fromPersisted(saved.counters.get(r.name)));
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
  resume(name: string): Promise<void> {
    return this.startWith(name, false);
  }

  events(module?: string): RuntimeEvent[] {
    return this.eventRing.list(module);
  }

  onEvent(listener: (e: RuntimeEvent) => void): () => void {
    return this.eventRing.subscribe(listener);
  }

  /** An event about the daemon itself, into the same ring (the daemon logged it already). */
  recordDaemonEvent(kind: 'daemon-fault', message: string): void {
    this.eventRing.push({ module: DAEMON_EVENTS, kind, message });
  }

  // ---- ModuleRuntime -------------------------------------------------------------------------------

  async list(): Promise<ModuleDetails[]> {
    return this.registry.all().map((r) => this.details(r));
  }

  async get(name: string): Promise<ModuleDetails> {
    return this.details(this.reg(name));
  }

  /** An operator's start: clears the back-off, like removing the agent's stats. */
  start(name: string): Promise<void> {
    return this.startWith(name, true);
  }

  async stop(name: string): Promise<void> {
    await this.locked(name, async () => {
      const r = this.reg(name);
      if (r.desiredStatus !== 'stopped') await this.registry.put({ ...r, desiredStatus: 'stopped' });
      await this.halt(name, 'stopped by request');
    });
  }

  async restart(name: string): Promise<void> {
    await this.locked(name, async () => {
      const r = this.reg(name);
      if (r.desiredStatus !== 'running') await this.registry.put({ ...r, desiredStatus: 'running' });
      await this.halt(name, 'restarting');
      this.state(name).restartCount = 0;
      this.saveCounters();
      await this.launch(name);
    });
  }

  async *logs(name: string, query: LogQuery): AsyncIterable<string> {
    this.reg(name);
    yield* this.logStore.for(name).read(query);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    // Every module, not only the running ones: a start in progress holds the lock and is halted after it.
    const names = new Set([...this.instances.keys(), ...this.registry.all().map((r) => r.name)]);
    await Promise.all([...names].map((n) => this.locked(n, () => this.halt(n, 'daemon shutting down'))));
    this.saveCounters();
    await this.countersSaved;
  }

  // ---- create / update / remove / invoke / deploy --------------------------------------------------

  /** Register a new module (measured, transpiled, linked and memory-checked first) and start it if desired. */
  async create(spec: ModuleSpec): Promise<ModuleDetails> {
    return this.locked(spec.name, async () => {
      if (this.registry.get(spec.name)) throw new RuntimeError('conflict', `module "${spec.name}" already exists`);
      const [reg, bytes] = await this.admit(spec);
      await this.registry.put(reg);
      this.states.set(reg.name, { status: 'stopped', restartCount: 0, crashCount: 0 });
      this.saveCounters();
      this.event(reg.name, 'created', `registered ${reg.digest} from ${reg.source}`);
      // The bytes were measured moments ago by admit(); the first launch does not read them back.
      if (reg.desiredStatus === 'running') await this.launch(reg.name, bytes);
      return this.details(reg);
    });
  }

  /** Replace a module (IoT Edge PUT: stop → remove → create → optional start). Creates it if missing. */
  async update(spec: ModuleSpec, startNow?: boolean): Promise<ModuleDetails> {
    return this.locked(spec.name, async () => {
      const old = this.registry.get(spec.name);
      const [reg, bytes] = await this.admit(spec, old);
      if (startNow !== undefined) reg.desiredStatus = startNow ? 'running' : 'stopped';
      if (old) await this.halt(spec.name, 'updating');
      await this.registry.put(reg);
      if (old) this.forget(spec.name);
      this.states.set(reg.name, { status: 'stopped', restartCount: 0, crashCount: old ? this.state(reg.name).crashCount : 0 });
      this.saveCounters();
      this.event(reg.name, old ? 'updated' : 'created', `registered ${reg.digest} from ${reg.source}`);
      // The bytes were measured moments ago by admit(); the first launch does not read them back.
      if (reg.desiredStatus === 'running') await this.launch(reg.name, bytes);
      return this.details(reg);
    });
  }

  async remove(name: string): Promise<void> {
    await this.locked(name, async () => {
      this.reg(name);
      await this.halt(name, 'removed');
      await this.registry.delete(name);
      this.forget(name);
      this.states.delete(name);
      this.saveCounters();
      this.event(name, 'removed', 'module removed');
      await this.logStore.remove(name);
    });
  }

  /** A direct method. The payload is JSON; the guest's answer is parsed as JSON when it is. */
  async invoke(name: string, method: string, payload: unknown): Promise<InvokeResult> {
    this.reg(name);
    const inst = this.instances.get(name);
    if (!inst?.alive) throw new RuntimeError('conflict', `module "${name}" is not running`);
    const out: InvokeOutcome = await inst.invoke(method, JSON.stringify(payload ?? null));
    if (!out.ok) return { status: 500, payload: { message: out.message } };
    let value: unknown = out.value;
    try { value = out.value === '' ? null : JSON.parse(out.value); } catch { /* plain text answer */ }
    return { status: 200, payload: value };
  }

  /** Reconcile to a manifest (deployer.ts): create what is new, update what changed, remove what is gone. */
  async deploy(specs: ModuleSpec[]): Promise<DeployResult> {
    // A manifest with a module no capability agrees to is refused whole, before anything changes.
    for (const s of specs) this.configure(s);
    return reconcile(this, specs);
  }

  /** The registration of `name`, if any (deployer, workload API). */
  registration(name: string): Registration | undefined {
    return this.registry.get(name);
  }

  registrations(): Registration[] {
    return this.registry.all();
  }

  /** Running, or waiting out a back-off before its next start. */
  isActive(name: string): boolean {
    return Boolean(this.instances.get(name)?.alive) || this.timers.has(name);
  }

  // ---- internals -----------------------------------------------------------------------------------

  /** Every capability's deploy-time check (granted or not): a refusal is `invalid` (400). */
  private configure(spec: ModuleSpec): void {
    const refused = configureGrants({ module: spec.name, grants: spec.capabilities, ...(spec.network ? { network: spec.network } : {}) }, this.capabilities);
    if (refused) throw new RuntimeError('invalid', refused);
  }

  /** The module was removed or replaced: capabilities drop what they kept for it. */
  private forget(name: string): void {
    for (const c of this.capabilities) c.forget?.(name);
  }

  /**
   * Measure and check a spec before anything is registered: digest pin, component validity,
   * grants against imports, memory ceiling. Throws with the reason; nothing is persisted on failure.
   */
  private async admit(spec: ModuleSpec, old?: Registration): Promise<[Registration, Uint8Array]> {
    this.configure(spec);
    const bytes = await readSource(spec.source, spec.digest);
    const measured = measure(bytes);
    if (spec.digest && spec.digest !== measured) {
      const msg = `module "${spec.name}": component ${spec.source} measured ${measured} but the deployment pins ${spec.digest}; refused`;
      this.event(spec.name, 'integrity-violation', msg, { measured, expected: spec.digest });
      throw new IntegrityError(msg, measured);
    }
    // The signature is checked before anything parses the bytes (as the measurement is).
    const material = spec.signature ? await loadSignature(spec.signature).catch((err: unknown) => this.refused(spec.name, err)) : undefined;
    const who = await this.verifySignature(spec.name, bytes, material);
    // Keeping the content-addressed copy (fsync'd) overlaps the transpile; both must succeed.
    const storing = this.loader.store(bytes);
    storing.catch(() => undefined);
    const prepared = await this.loader.prepare(measured, async () => bytes);
    if (!prepared.exports.some((e) => e.startsWith('edgeward:module/lifecycle'))) {
      throw new RuntimeError('invalid', `module "${spec.name}": component does not export edgeward:module/lifecycle (build it for the "module" world in wit/module)`);
    }
    const plan = planLinks(spec.name, prepared.imports, spec.capabilities, this.capabilities);
    if (!plan.ok) {
      this.event(spec.name, 'denied', plan.message);
      throw new RuntimeError('denied', plan.message);
    }
    this.checkTypes(spec.name, measured, bytes);
    await this.loader.compile(prepared, this.limitsOf(spec).memory_mib);
    await storing;
    const { digest: _pin, signature: _src, ...rest } = spec;
    const generationId = old && old.digest === measured && old.signer === who.signer ? old.generationId : randomUUID();
    return [{ ...rest, digest: measured, generationId, ...who, ...(material ? { signature: material } : {}) }, bytes];
  }

  /**
   * The typed boundary: the component's declared types of every interface it imports (all linked, the
   * link plan said) and of the lifecycle the host calls, against the host's WIT. A mismatch is an event
   * and a `type-mismatch` error naming interface, function and the first difference.
   */
  private checkTypes(name: string, digest: string, bytes: Uint8Array): void {
    try {
      let types = this.declared.get(digest);
      if (!types) {
        types = componentTypes(name, bytes);
        this.declared.set(digest, types);
      }
      checkBoundary(name, types, this.extraInterfaces);
    } catch (err) {
      if (!(err instanceof BoundaryTypeError)) throw err;
      this.event(name, 'type-mismatch', err.message);
      throw new RuntimeError('type-mismatch', err.message);
    }
  }

  /** The host's WIT types of every (non-private) interface the capabilities link, for the worker's argument checks. */
  private linkedTypes(caps: readonly Capability[]): Record<string, InstanceType> {
    const out: Record<string, InstanceType> = {};
    for (const c of caps) {
      for (const iface of c.interfaces) {
        const t = hostInterface(iface, this.extraInterfaces);
        if (t) out[iface] = t;
      }
    }
    return out;
  }

  /** verifyModule under this device's trust; a refusal is an event and a typed error. */
  private async verifySignature(name: string, bytes: Uint8Array, material: SignatureMaterial | undefined): Promise<SignerIdentity> {
    return verifyModule(name, bytes, material, this.trust).catch((err: unknown) => this.refused(name, err));
  }

  private refused(name: string, err: unknown): never {
    if (err instanceof SignatureError) this.event(name, 'signature-refused', `${err.reason}: ${err.message}`);
    throw err;
  }

  /**
   * The start-time check over the bytes just measured: the signature still verifies under the current
   * trust, by the signer the registration recorded. Resolves to the same buffer.
   */
  private async verifyAtStart(r: Registration, bytes: Uint8Array): Promise<Uint8Array> {
    const who = await this.verifySignature(r.name, bytes, r.signature);
    if (who.signer !== r.signer) {
      this.refused(r.name, new SignatureError('untrusted-signer', `module "${r.name}": verified signer ${who.signer} is not the registered signer ${r.signer}`));
    }
    return bytes;
  }

  private limitsOf(r: Pick<Registration, 'limits'>): LimitsConfig {
    return { ...this.opts.limits, ...r.limits };
  }

  /** Start one instance of a registered module. Caller holds the module's lock. */
  private async launch(name: string, justMeasured?: Uint8Array): Promise<void> {
    const r = this.reg(name);
    const s = this.state(name);
    const limits = this.limitsOf(r);
    let inst: Instance;
    try {
      // Measure the stored bytes on every start, concurrently with reading the cache and the worker's
      // linking; the guest is instantiated only once the measurement matched (sandbox `gate`).
      const measuring = (justMeasured ? Promise.resolve(justMeasured) : this.loader.loadStored(name, r.digest as Digest)).catch((err: RuntimeError) => {
        const measured = err instanceof IntegrityError ? err.measured : undefined;
        this.event(name, 'integrity-violation', err.message, { ...(measured ? { measured } : {}), expected: r.digest });
        throw err;
      });
      const verified = measuring.then((bytes) => this.verifyAtStart(r, bytes));
      verified.catch(() => undefined);
      const prepared = await this.loader.prepare(r.digest as Digest, () => verified);
      const plan = planLinks(name, prepared.imports, r.capabilities, this.capabilities);
      if (!plan.ok) throw new RuntimeError('denied', plan.message);
      // The import types against the host's WIT as it is now (it may have changed since the deploy).
      const checked = verified.then((bytes) => this.checkTypes(name, r.digest, bytes));
      checked.catch(() => undefined);
      const coreModules = await this.loader.compile(prepared, limits.memory_mib);
      const instanceId = this.nextInstanceId++;
      const log = this.logStore.for(name);
      inst = await Instance.start({
        module: name,
        generationId: r.generationId,
        digest: r.digest as Digest,
        signer: r.signer,
        instanceId,
        glueSource: prepared.glueSource,
        coreModules,
        capabilities: plan.capabilities,
        interfaceTypes: this.linkedTypes(plan.capabilities),
        config: JSON.stringify({ name, generationId: r.generationId, env: r.env, settings: r.settings }),
        limits,
        ...(r.network ? { network: r.network } : {}),
        dataDir: path.join(this.opts.stateDir, 'modules', name, 'data'),
        onLog: (level, message) => log.append(level, message),
        current: () => {
          const now = this.registry.get(name);
          return now !== undefined && now.generationId === r.generationId && now.digest === r.digest && now.signer === r.signer;
        },
        onExit: (reason) => this.onInstanceEnded(name, instanceId, reason),
        onInternalError: (where, cause) => this.onInternalError(name, instanceId, where, cause),
        gate: checked,
      });
      s.instanceId = instanceId;
    } catch (err) {
      const e = err as RuntimeError;
      const terminal = e.code === 'integrity-mismatch' || e.code === 'type-mismatch' || e.code === 'denied' || e.code === 'invalid';
      s.status = terminal ? 'dead' : 'failed';
      s.description = e.message;
      s.lastError = e.message;
      s.exit = { time: new Date(), code: 1 };
      this.saveCounters();
      this.event(name, 'start-failed', e.message);
      if (!terminal) this.scheduleRestart(name, 'failed');
      throw err;
    }
    this.instances.set(name, inst);
    Object.assign(s, { status: 'running', description: undefined, startTime: inst.startedAt, nextRestartAt: undefined });
    this.event(name, 'started', `instance ${s.instanceId} of ${r.digest} running`);
  }

  private async startWith(name: string, clearBackoff: boolean): Promise<void> {
    await this.locked(name, async () => {
      const r = this.reg(name);
      if (r.desiredStatus !== 'running') await this.registry.put({ ...r, desiredStatus: 'running' });
      if (this.instances.get(name)?.alive) return;
      this.cancelRestart(name);
      if (clearBackoff) {
        this.state(name).restartCount = 0;
        this.saveCounters();
      }
      await this.launch(name);
    });
  }

  /** Stop the instance if any and cancel a pending restart. Caller holds the lock. */
  private async halt(name: string, why: string): Promise<void> {
    this.cancelRestart(name);
    const inst = this.instances.get(name);
    this.instances.delete(name);
    const s = this.states.get(name);
    if (inst) {
      await inst.stop();
      this.event(name, 'stopped', why);
    }
    if (s && (inst || s.status !== 'dead')) Object.assign(s, { status: 'stopped', description: undefined, exit: inst ? { time: new Date(), code: 0 } : s.exit });
    if (inst) this.saveCounters();
  }

  private onInstanceEnded(name: string, instanceId: number, reason: ExitReason): void {
    const s = this.states.get(name);
    if (!s || s.instanceId !== instanceId) return;
    this.instances.delete(name);
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
    if (s.startTime && Date.now() - s.startTime.getTime() >= this.backoff.intensiveCareMs) s.restartCount = 0;
    this.saveCounters();
    this.event(name, reason.kind === 'timeout' ? 'timeout' : failed ? 'crashed' : 'exited', message);
    this.scheduleRestart(name, failed ? 'failed' : 'exited-ok');
  }

  /**
   * A host-side bug while serving an instance (sandbox.ts): the cause, stack included, goes to the daemon
   * log only; the event (and so the module log) names the place, never the cause.
   */
  private onInternalError(name: string, instanceId: number, where: string, cause: unknown): void {
    const err = cause instanceof Error ? { name: cause.name, message: cause.message, stack: cause.stack } : { value: String(cause) };
    this.opts.logger.error({ module: name, instanceId, where, err }, `internal error in ${where}; instance trapped`);
    this.event(name, 'internal-error', `internal error in ${where}; instance ${instanceId} trapped (cause in the daemon log)`, {}, false);
  }

  private scheduleRestart(name: string, ended: 'failed' | 'exited-ok'): void {
    const r = this.registry.get(name);
    const s = this.states.get(name);
    if (!r || !s || this.closed) return;
    const d = decideRestart(r.restartPolicy, r.desiredStatus, ended, s.restartCount, this.backoff);
    if (!d.restart) {
      if (d.reason === 'max-restarts') {
        s.description = `${s.description ?? 'failed'}; not restarted after ${s.restartCount} restarts`;
        this.event(name, 'restart-abandoned', s.description);
      }
      return;
    }
    s.nextRestartAt = new Date(Date.now() + d.delayMs);
    s.description = `backoff: ${s.description ?? 'ended'}; restarting after ${formatDelay(d.delayMs)}`;
    this.event(name, 'restart-scheduled', `Module '${name}' scheduled to restart after ${formatDelay(d.delayMs)} (restart ${s.restartCount + 1}, cool-off ${d.delayMs} ms)`);
    this.cancelRestart(name);
    const timer = setTimeout(() => {
      this.timers.delete(name);
      void this.locked(name, async () => {
        if (this.closed || this.instances.get(name)?.alive || this.registry.get(name)?.desiredStatus !== 'running') return;
        s.restartCount++;
        s.nextRestartAt = undefined;
        this.saveCounters();
        await this.launch(name);
      }).catch(() => undefined); // launch recorded the failure and scheduled the next attempt
    }, d.delayMs);
    timer.unref();
    this.timers.set(name, timer);
  }

  /** Persist every module's counters (counters.ts); a failed write is logged, never fatal. */
  private saveCounters(): void {
    this.countersSaved = this.counters.save(this.states).catch((err: Error) => {
      this.opts.logger.warn({ err: err.message, file: this.counters.file }, 'could not save supervisor counters');
    });
  }

  private cancelRestart(name: string): void {
    const t = this.timers.get(name);
    if (t) clearTimeout(t);
    this.timers.delete(name);
    const s = this.states.get(name);
    if (s) s.nextRestartAt = undefined;
  }

  private event(module: string, kind: RuntimeEventKind, message: string, extra: { measured?: string; expected?: string } = {}, toDaemonLog = true): void {
    this.eventRing.push({ module, kind, message, ...extra });
    const level = kind === 'integrity-violation' || kind === 'signature-refused' || kind === 'denied' || kind === 'crashed' || kind === 'timeout' || kind === 'start-failed' || kind === 'internal-error' ? 'warn' : 'info';
    if (toDaemonLog) this.opts.logger[level]({ module, event: kind, ...extra }, message);
    if (!this.registry.get(module)) return;
    try {
      this.logStore.for(module).append(level, `[edgeward] ${kind}: ${message}`);
    } catch (err) {
      // A module log that cannot be written (disk full, a file in the way) must not undo the bookkeeping
      // of the event: the daemon log has it.
      this.opts.logger.warn({ module, err: (err as Error).message }, 'could not write the module log');
    }
  }

  private reg(name: string): Registration {
    const r = this.registry.get(name);
    if (!r) throw new RuntimeError('not-found', `module "${name}" not found`);
    return r;
  }

  private state(name: string): ModuleState {
    let s = this.states.get(name);
    if (!s) {
      s = { status: 'stopped', restartCount: 0, crashCount: 0 };
      this.states.set(name, s);
    }
    return s;
  }

  private details(r: Registration): ModuleDetails {
    return renderDetails(r, this.state(r.name), this.limitsOf(r));
  }

  private async startInOrder(names: string[]): Promise<void> {
    const regs = names.map((n) => this.reg(n));
    const orders = [...new Set(regs.map((r) => r.startupOrder))].sort((a, b) => a - b);
    for (const o of orders) {
      await Promise.all(regs.filter((r) => r.startupOrder === o).map((r) => this.resume(r.name).catch(() => undefined)));
    }
  }

  private locked<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(name) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.locks.set(name, tail);
    void tail.then(() => { if (this.locks.get(name) === tail) this.locks.delete(name); });
    return next;
  }
}
