/**
 * One module instance's lifecycle: a worker from the pool, the component linked and loaded while the host
 * measures it, instantiated and started once the measurement matched, then invoked one call at a time
 * until it is stopped, or ends on its own (trap, exit, deadline, worker failure). Its host-capability
 * calls are the broker's (broker.ts).
 */
import type { Worker } from 'node:worker_threads';
import type { HostFunction } from '../capabilities.js';
import { RuntimeError } from '../types.js';
import { TrapError } from '../errors.js';
import { Broker, guard, type Fault } from './broker.js';
import { CallChannel } from './call-channel.js';
import { checkReply, describe, type Reply, type StartTimings, type WorkerMemory } from './messages.js';
import { loadMessage, prepareHost, type ExitReason, type SandboxOptions } from './link.js';
import { retireWorker, takeWorker } from './pool.js';
import { protocol } from './shared.js';
import type { HostRequest } from './worker-api.js';

/** A start gets at least this long: instantiation of a 12 MB guest is ~100 ms, on a slow device more. */
const MIN_START_TIMEOUT_MS = 10_000;


export type InvokeOutcome = { ok: true; value: string } | { ok: false; message: string };

export type { ExitReason, SandboxOptions } from './link.js';

export class Instance {
  private readonly worker: Worker;
  private readonly broker: Broker;
  /** Calls into the guest (invoke) and their replies, through shared memory. */
  private readonly calls: CallChannel;
  private readonly pending = new Map<number, (r: Reply) => void>();
  private nextId = 1;
  private chain: Promise<unknown> = Promise.resolve();
  /** Guest calls queued or running (invoke, health); 0: the next one runs at once, without a chain hop. */
  private queued = 0;
  private ended = false;
  private hostStopping = false;
  /** Host-side failures while serving this instance trap it as `internal`. */
  private readonly fault: Fault = (where, cause) => this.internal(where, cause);
  readonly startedAt = new Date();
  /** When the guest call in progress is cut off (performance.now() clock); undefined between calls. */
  deadline: number | undefined;
  /** Worker-side timings of this instance's start (link imports + load glue, instantiate, start()). */
  timings?: StartTimings;

  private constructor(private readonly opts: SandboxOptions, host: Record<string, Record<string, HostFunction>>, private readonly lifetime: AbortController) {
    const fault = this.fault;
    this.broker = new Broker({ module: opts.module, maxValueBytes: opts.limits.max_value_bytes, host, interfaceTypes: opts.interfaceTypes, fault });
    this.calls = new CallChannel(this.broker.idleBuffer, () => this.broker.calls());
    const t0 = performance.now();
    this.worker = takeWorker();
    opts.phases?.add('worker', performance.now() - t0);
    // Nothing a worker sends or does may throw out of these listeners: an exception there would be
    // uncaught on the daemon's thread. Host-side failures trap this instance as `internal`.
    const LOG = 'capability edgeward:module/logging.log';
    this.worker.stdout.on('data', (d: Buffer) => guard(fault, LOG, () => opts.onLog('info', d.toString('utf8').trimEnd())));
    this.worker.stderr.on('data', (d: Buffer) => guard(fault, LOG, () => opts.onLog('error', d.toString('utf8').trimEnd())));
    this.worker.on('message', (m: unknown) => guard(fault, 'the sandbox message handler', () => this.onMessage(m)));
    this.worker.on('error', (err: unknown) => guard(fault, 'the sandbox error handler', () => this.end({ kind: 'error', message: err instanceof Error ? `${err.name}: ${err.message}` : `sandbox worker failed: ${describe(err)}` })));
    this.worker.on('exit', (code) => guard(fault, 'the sandbox exit handler', () => this.end({ kind: 'error', message: `sandbox worker exited (${code})` })));
    this.broker.start();
  }

  /** Spawn the worker, instantiate the component with its granted imports, and call `start(config)`. */
  static async start(opts: SandboxOptions): Promise<Instance> {
    const lifetime = new AbortController();
    let instRef: Instance | undefined;
    const inst = new Instance(opts, prepareHost(opts, lifetime.signal, () => instRef?.deadline), lifetime);
    instRef = inst;
    const timeoutMs = Math.max(opts.limits.call_timeout_ms, MIN_START_TIMEOUT_MS);
    const fail = async (why: string, code: 'failed' | 'guest-error' = 'failed'): Promise<never> => {
      inst.hostStopping = true;
      await inst.worker.terminate();
      throw new RuntimeError(code, code === 'guest-error' ? `module "${opts.module}" refused to start: its start answered: ${why}` : `module "${opts.module}" failed to start: ${why}`);
    };
    // The worker links and loads the glue while the host finishes measuring; nothing of the guest runs
    // until the measurement matched (`gate`).
    const phases = opts.phases;
    const t0 = performance.now();
    const loading = inst.exchange(loadMessage(opts, inst.broker, inst.calls), timeoutMs, 'load');
    loading.catch(() => undefined);
    try {
      await opts.gate;
      phases?.add('gate', performance.now() - t0);
    } catch (err) {
      inst.hostStopping = true;
      await inst.worker.terminate();
      throw err;
    }
    // `init` goes now, not after `loaded`: the worker runs it once its load finished (one message
    // round trip less per start).
    const starting = inst.exchange({ t: 'init', modules: opts.coreModules, config: opts.config }, timeoutMs, 'start');
    starting.catch(() => undefined);
    const loaded = await loading.catch((e: Error) => fail(e.message));
    if (loaded.t !== 'loaded') await fail(loaded.message ?? loaded.t);
    phases?.add('load', performance.now() - t0);
    const reply = await starting.catch((e: Error) => fail(e.message));
    if (reply.t === 'start-error') await fail(reply.message ?? '', 'guest-error');
    if (reply.t !== 'started') await fail(reply.t === 'exit' ? `exited with code ${reply.code} during start` : (reply.message ?? reply.t));
    inst.timings = reply.timings;
    if (phases && reply.timings) {
      phases.add('link', reply.timings.link);
      phases.add('instantiate', reply.timings.instantiate);
      phases.add('start', reply.timings.start);
    }
    return inst;
  }

  get alive(): boolean {
    return !this.ended;
  }

  /** Call the guest's `invoke`. Calls run one at a time; each gets `call_timeout_ms` once it starts. */
  invoke(method: string, payload: string): Promise<InvokeOutcome> {
    const max = this.opts.limits.max_value_bytes;
    if (protocol.valueBytes(method) + protocol.valueBytes(payload) > max) {
      return Promise.reject(new RuntimeError('invalid', `payload larger than the module's limit of ${max} bytes`));
    }
    const run = async (): Promise<InvokeOutcome> => {
      const r = await this.exchange((onReply) => this.calls.send(method, payload, onReply), this.opts.limits.call_timeout_ms, `invoke "${method}"`);
      if (r.t === 'ok') return { ok: true, value: r.value ?? '' };
      if (r.t === 'guest-error') return { ok: false, message: r.message ?? '' };
      this.kill(r.t === 'exit' ? { kind: 'exited', code: r.code ?? 0 } : { kind: 'trap', message: r.message ?? r.t });
      throw new TrapError(r.t === 'exit' ? `module "${this.opts.module}" exited with code ${r.code}` : `module "${this.opts.module}" trapped: ${r.message}`);
    };
    return this.serial(run);
  }

  /**
   * A health probe: the guest's `edgeward:module/health.check`, queued behind other calls like `invoke`,
   * with its own deadline (at most `call_timeout_ms`). A probe past its deadline ends the instance, as any
   * call past its deadline does.
   */
  health(timeoutMs: number): Promise<InvokeOutcome> {
    const run = async (): Promise<InvokeOutcome> => {
      const r = await this.exchange({ t: 'health' }, Math.min(timeoutMs, this.opts.limits.call_timeout_ms), 'health probe');
      if (r.t === 'ok') return { ok: true, value: '' };
      if (r.t === 'guest-error') return { ok: false, message: r.message ?? '' };
      this.kill(r.t === 'exit' ? { kind: 'exited', code: r.code ?? 0 } : { kind: 'trap', message: r.message ?? r.t });
      throw new TrapError(r.t === 'exit' ? `module "${this.opts.module}" exited with code ${r.code}` : `module "${this.opts.module}" trapped: ${r.message}`);
    };
    return this.serial(run);
  }

  /** Run guest calls one at a time, in call order; with nothing queued, at once (no promise hop). */
  private serial<T>(run: () => Promise<T>): Promise<T> {
    const p = this.queued++ === 0 ? run() : this.chain.then(run, run);
    const done = p.finally(() => { this.queued--; });
    this.chain = done.catch(() => undefined);
    return p;
  }

  /**
   * Ask the guest to stop (bounded by the call timeout), then end the worker. Idempotent. The instance's
   * host side is released before this resolves (broker closed, capabilities' signal aborted), so the
   * thread has nothing left to run; `awaitExit: false` (a restart) does not wait ~5 ms more for it to be
   * torn down, which then goes on beside the next start (pool.ts `workersExited` waits for it).
   */
  async stop(awaitExit = true): Promise<void> {
    if (this.ended) return;
    this.hostStopping = true;
    await this.exchange({ t: 'stop' }, this.opts.limits.call_timeout_ms, 'stop').catch(() => undefined);
    this.end({ kind: 'exited', code: 0 }); // not reported: the host asked for it
    const exited = retireWorker(this.worker);
    if (awaitExit) await exited;
  }

  /** The worker thread's id (tests: a restart's instance runs in a worker of its own). */
  get threadId(): number {
    return this.worker.threadId;
  }

  /**
   * Ask the worker for its memory (messages.ts WorkerMemory). Not queued behind guest calls and never
   * ends the instance: a worker busy in a guest call answers after it, so past `timeoutMs` this resolves
   * to undefined (unknown) and the late answer is dropped.
   */
  memory(timeoutMs: number): Promise<WorkerMemory | undefined> {
    if (this.ended) return Promise.resolve(undefined);
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.pending.set(id, (r) => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(r.t === 'memory' ? r.memory : undefined);
      });
      this.worker.postMessage({ t: 'memory', id } satisfies HostRequest & { id: number });
    });
  }

  /**
   * One request to the worker and its reply, with the call's deadline: a message posted, or a call sent
   * on the invoke channel (which hands the reply back).
   */
  private exchange(request: (HostRequest & { id?: number }) | ((onReply: (r: Reply) => void) => void), timeoutMs: number, what: string): Promise<Reply> {
    if (this.ended) return Promise.reject(new RuntimeError('failed', `module "${this.opts.module}" is not running`));
    const id = this.nextId++;
    // One guest call at a time (calls are chained), so one deadline; at a start, the load's reply may
    // come after `init` went, and leaves init's deadline alone.
    const deadline = performance.now() + timeoutMs;
    this.deadline = deadline;
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        const message = `module "${this.opts.module}": ${what} exceeded the ${timeoutMs} ms limit; instance terminated`;
        this.kill({ kind: 'timeout', message });
        reject(new RuntimeError('timeout', message));
      }, timeoutMs);
      const settled = (): void => {
        clearTimeout(timer);
        this.pending.delete(id);
        if (this.deadline === deadline) this.deadline = undefined;
      };
      this.pending.set(id, (r) => {
        settled();
        if (r.t === 'ended') reject(new RuntimeError('failed', `module "${this.opts.module}" ended during ${what}: ${r.message}`));
        else resolve(r);
      });
      try {
        if (typeof request === 'function') {
          request((r) => this.pending.get(id)?.(r));
        } else {
          request.id = id;
          this.worker.postMessage(request);
        }
      } catch (err) {
        // Nothing was sent (a value the message cannot carry): the call fails, the instance goes on.
        settled();
        reject(err);
      }
    });
  }

  /** One message from the worker, checked first (checkReply): a malformed one traps the instance. */
  private onMessage(raw: unknown): void {
    try {
      this.handleMessage(raw);
    } finally {
      this.calls.arrived(); // an invoke reply may wait for this message (call-channel.ts)
    }
  }

  private handleMessage(raw: unknown): void {
    const m = checkReply(raw);
    if (typeof m === 'string') return this.kill({ kind: 'trap', message: `sandbox worker sent an invalid message: ${m}` });
    if (m.t === 'log') return guard(this.fault, 'capability edgeward:module/logging.log', () => this.opts.onLog(m.level!, m.message!));
    if (m.id !== undefined) return this.pending.get(m.id)?.(m);
    if (m.t === 'exit') return this.kill({ kind: 'exited', code: m.code ?? 0 });
    this.kill({ kind: 'trap', message: m.message ?? 'unexpected message' });
  }

  /**
   * A host-side bug while serving this instance: the daemon log gets the cause (onInternalError), the
   * instance traps with a reason that names only the place (`capability <interface>.<function>` or a
   * handler of the sandbox). Once the instance has ended nobody waits
   * for the call (a late rejection after a stop or a timeout), and nothing is reported.
   */
  private internal(where: string, cause: unknown): void {
    if (this.ended) return;
    try {
      this.opts.onInternalError(where, cause);
    } catch {
      // The report failed too; the trap below still ends the call.
    }
    this.kill({ kind: 'trap', message: `internal error in ${where}` });
  }

  /** End the instance now (host decision: deadline, trap, exit) and report it once. */
  private kill(reason: ExitReason): void {
    if (this.ended) return;
    this.end(reason);
    this.worker.terminate().catch(() => undefined);
  }

  private end(reason: ExitReason): void {
    if (this.ended && reason.kind === 'error') return;
    const first = !this.ended;
    this.ended = true;
    this.broker.close(); // late answers are dropped; the broker's loop ends
    this.calls.close();
    this.lifetime.abort();
    for (const resolve of [...this.pending.values()]) resolve({ t: 'ended', message: 'message' in reason ? reason.message : `exit ${reason.code}` });
    if (first && !this.hostStopping) {
      try {
        this.opts.onExit(reason);
      } catch (err) {
        try { this.opts.onInternalError('the instance exit handler', err); } catch { /* nothing left to tell */ }
      }
    }
  }
}
