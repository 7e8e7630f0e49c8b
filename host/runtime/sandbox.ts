/**
 * Sandbox: one worker thread per module instance, and the broker that carries its host-capability
 * calls. The worker gets an empty env, no execArgv, no sockets (outbound HTTP only through the host's
 * `wasi:http/outgoing-handler`, to granted hosts) and no preopens except the module's own data
 * directory when `wasi:filesystem/data` is granted (nothing from preview2-shim is linked); its JS heap is capped by `resourceLimits` and its linear memories by the
 * loader's rewrite. A call that runs past its deadline terminates the worker (V8 stops a spinning
 * guest within milliseconds) while the daemon's thread keeps serving.
 */
import { deserialize, serialize } from 'node:v8';
import { Worker } from 'node:worker_threads';
import type { LimitsConfig } from '../config/schema.js';
import { shadowed, type ArgumentLimit, type Capability, type HostFunction, type InstanceContext, type LogLevel } from './capabilities.js';
import type { CoreModule, Digest } from './loader.js';
import { assetPath, assetUrl } from './assets.js';
import { RuntimeError } from './types.js';
import type { InstanceType } from '../boundary/types.js';

// The validator is plain ESM shared with the sandbox worker, which loads it from the package's sources
// (like every worker module); tsc does not copy .mjs into dist/, so it is loaded the same way here.
const { functionCheckers } = (await import(assetUrl('host/boundary/validate.mjs'))) as typeof import('../boundary/validate.mjs');
// The broker protocol (slots, answer codes, the one size function), shared with worker.mjs the same way.
const {
  ANSWER_FALSE, ANSWER_LEN, ANSWER_NUMBER, ANSWER_SEQ, ANSWER_TRUE, ANSWER_UNDEFINED, FLAG_SLOTS, MAX_NUMBER_ARGS, PRIVATE_PREFIX,
  REQ_FN, REQ_LEN, REQ_SEQ, valueBytes,
} = (await import(assetUrl('host/runtime/broker-protocol.mjs'))) as typeof import('./broker-protocol.mjs');


/** How long a guest may block on one host-capability call before the worker gives up on it. */
const BROKER_TIMEOUT_MS = 30_000;
/** After a synchronous answer, how long the daemon's thread watches for the same guest's next call. */
const HOST_SPIN_MS = 0.03;
/** The longest the daemon's thread serves one guest's back-to-back calls before yielding to the event loop. */
const HOST_BURST_MS = 1;
/** JS heap of a sandbox worker (the glue and its tables; guest data lives in linear memory). */
const WORKER_HEAP_MIB = 64;
/** A start gets at least this long: instantiation of a 12 MB guest is ~100 ms, on a slow device more. */
const MIN_START_TIMEOUT_MS = 10_000;

/** Why an instance ended without the host asking it to. */
export type ExitReason =
  | { kind: 'exited'; code: number }
  | { kind: 'trap'; message: string }
  | { kind: 'timeout'; message: string }
  | { kind: 'error'; message: string };

export type InvokeOutcome = { ok: true; value: string } | { ok: false; message: string };

export interface SandboxOptions {
  module: string;
  generationId: string;
  digest: Digest;
  /** The verified signer of those bytes (`sha256:<SPKI hex>` or "unsigned"). */
  signer: string;
  instanceId: number;
  /** The component's verified JS glue (imported by the worker from a data: URL). */
  glueSource: string;
  coreModules: Record<string, CoreModule>;
  capabilities: readonly Capability[];
  /** The host's WIT types of every interface linked (host/boundary): the worker checks arguments against them. */
  interfaceTypes: Readonly<Record<string, InstanceType>>;
  /** JSON handed to the guest's `start`. */
  config: string;
  limits: LimitsConfig;
  /** The registration's `network` (hosts for wasi:http/outgoing-handler), if any. */
  network?: { hosts: readonly string[] };
  /**
   * The module's own data directory (absolute), handed only to capabilities that declare `dataDir`
   * (wasi:filesystem/data), which create it on first use. Other capabilities never see a host path.
   */
  dataDir?: string;
  onLog(level: LogLevel, message: string): void;
  /** Whether the instance is still its module's registration (InstanceContext.current). */
  current(): boolean;
  /**
   * A bug on the host side of this instance: an unexpected exception from a capability call (`where` is
   * `capability <interface>.<function>`) or from handling the worker's messages. The instance is trapped as
   * "internal error in <where>"; `cause` (with its stack) is for the daemon log only, never for
   * the module log (it may name host paths or state).
   */
  onInternalError(where: string, cause: unknown): void;
  /** Resolves when the component's measurement matched; the guest is not instantiated before. */
  gate?: Promise<unknown>;
  /** Called once, when the instance ends on its own (trap, exit, timeout, worker error). */
  onExit(reason: ExitReason): void;
}

type Reply = { id?: number; t: string; value?: string; message?: string; code?: number; level?: LogLevel; timings?: StartTimings };

/** The WIT `edgeward:module/logging.level` cases; `satisfies` keeps the list inside the generated type. */
const LOG_LEVELS: ReadonlySet<string> = new Set(['trace', 'debug', 'info', 'warn', 'error'] satisfies LogLevel[]);
/** What a sandbox worker may post (worker.mjs); `ended` is the host's own and never accepted from it. */
const WORKER_REPLIES: ReadonlySet<string> = new Set(['log', 'loaded', 'started', 'ok', 'guest-error', 'trap', 'exit', 'start-failed']);

/**
 * Check one message from a sandbox worker. The worker runs the guest, so what it posts is untrusted: the
 * reply, or why it is refused. Fields are checked for their JS types only; their meaning is onMessage's.
 */
export function checkReply(m: unknown): Reply | string {
  if (typeof m !== 'object' || m === null || Array.isArray(m)) return 'not an object';
  const r = m as Record<string, unknown>;
  if (typeof r.t !== 'string' || !WORKER_REPLIES.has(r.t)) return `unknown kind ${describe(r.t)}`;
  if (r.id !== undefined && !(Number.isSafeInteger(r.id) && (r.id as number) > 0)) return `"id" is ${describe(r.id)}`;
  if (r.t === 'log') {
    if (typeof r.level !== 'string' || !LOG_LEVELS.has(r.level)) return `log "level" is ${describe(r.level)}, not one of ${[...LOG_LEVELS].join(', ')}`;
    if (typeof r.message !== 'string') return `log "message" is ${describe(r.message)}`;
  }
  for (const k of ['message', 'value'] as const) if (r[k] !== undefined && typeof r[k] !== 'string') return `"${k}" is ${describe(r[k])}`;
  if (r.code !== undefined && !Number.isSafeInteger(r.code)) return `"code" is ${describe(r.code)}`;
  if (r.timings !== undefined) {
    const t = r.timings as Record<string, unknown> | null;
    if (typeof t !== 'object' || t === null || !['link', 'instantiate', 'start'].every((k) => typeof t[k] === 'number')) return '"timings" are malformed';
  }
  return r as Reply;
}

/** A short, bounded description of an untrusted value (for a trap reason, which goes to the module log). */
function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (v === null || typeof v !== 'object') return typeof v === 'number' || typeof v === 'boolean' ? `${typeof v} ${String(v)}` : typeof v;
  return Array.isArray(v) ? 'an array' : 'an object';
}

/**
 * A deliberate WIT `result` error from a capability: an Error carrying `payload` (jco lowers it as the
 * error case; hsm-keys/errors.ts, workload-identity/errors.ts). Anything else a capability throws is a
 * host bug.
 */
function isWitError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && Object.hasOwn(err, 'payload');
}

/** Where a start's time went, in ms (worker side). */
export interface StartTimings { link: number; instantiate: number; start: number }


/**
 * Workers spawned ahead of need: a thread takes tens of milliseconds to boot (more on a loaded
 * device), which would otherwise sit on every start's critical path. A pooled worker has no instance,
 * no guest and no capability until `init`; idle ones do not keep the process alive.
 */
const POOL_SIZE = 1;
const pool: Worker[] = [];
const online = new WeakMap<Worker, Promise<void>>();

function spawnWorker(): Worker {
  const w = new Worker(assetPath('host/runtime/worker.mjs'), {
    env: {},
    execArgv: [],
    argv: [],
    stdout: true,
    stderr: true,
    resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MIB, maxYoungGenerationSizeMb: 8 },
  });
  // Referenced while it boots (so awaiting warmWorkerPool keeps a process alive), then idle and unref'd.
  online.set(w, new Promise<void>((resolve) => {
    w.once('online', () => { if (pool.includes(w)) w.unref(); resolve(); });
    w.once('exit', () => resolve());
  }));
  // A pooled worker that dies before use is dropped (its 'error' must not be unhandled).
  const drop = () => { const i = pool.indexOf(w); if (i >= 0) pool.splice(i, 1); };
  w.on('error', drop);
  w.on('exit', drop);
  return w;
}

function refillPool(): void {
  while (pool.length < POOL_SIZE) pool.push(spawnWorker());
}

function takeWorker(): Worker {
  const w = pool.shift() ?? spawnWorker();
  w.removeAllListeners('error');
  w.removeAllListeners('exit');
  w.ref();
  setImmediate(refillPool);
  return w;
}

/**
 * Spawn the pooled workers now (the runtime does at open, so a daemon's first module start does not
 * wait for a thread to boot). Resolves when they are running.
 */
export async function warmWorkerPool(): Promise<void> {
  refillPool();
  await Promise.all(pool.map((w) => online.get(w)));
}

/** Terminate idle pooled workers (tests, shutdown). */
export async function drainWorkerPool(): Promise<void> {
  const idle = pool.splice(0);
  await Promise.all(idle.map((w) => w.terminate()));
}

function errorReply(err: unknown): { err: { message: string; payload?: unknown } } {
  const e = err as { message?: string; payload?: unknown };
  return { err: { message: e?.message ?? String(err), ...(e?.payload === undefined ? {} : { payload: e.payload }) } };
}

export class Instance {
  private readonly worker: Worker;
  private readonly flag = new Int32Array(new SharedArrayBuffer(FLAG_SLOTS * 4));
  private readonly answerBuf: Uint8Array;
  private readonly answerNumber: Float64Array;
  private readonly requestBuf: Buffer;
  private readonly requestNumbers: Float64Array;
  private readonly brokerInit: Record<string, unknown>;
  private readonly pending = new Map<number, (r: Reply) => void>();
  private nextId = 1;
  private chain: Promise<unknown> = Promise.resolve();
  private ended = false;
  private hostStopping = false;
  readonly startedAt = new Date();
  /** When the guest call in progress is cut off (performance.now() clock); undefined between calls. */
  deadline: number | undefined;
  /** Worker-side timings of this instance's start (link imports + load glue, instantiate, start()). */
  timings?: StartTimings;

  /** Host functions by call index: [interface, function name, implementation]. */
  private readonly table: [string, string, HostFunction][];
  /** By the same index: the argument check from the host's WIT (undefined for `edgeward-private:` ones). */
  private readonly checkers: (((args: unknown[]) => void) | undefined)[];

  private constructor(private readonly opts: SandboxOptions, host: Record<string, Record<string, HostFunction>>, private readonly lifetime: AbortController) {
    this.table = Object.entries(host).flatMap(([iface, fns]) => Object.entries(fns).map(([fn, impl]) => [iface, fn, impl] as [string, string, HostFunction]));
    // Defence in depth: the worker checked the arguments against the WIT already; the daemon checks again
    // what arrives over the broker. A host function with no WIT definition is not served at all.
    const byIface = new Map<string, Map<string, (args: unknown[]) => void>>();
    this.checkers = this.table.map(([iface, fn]) => {
      if (iface.startsWith(PRIVATE_PREFIX)) return undefined;
      const types = opts.interfaceTypes[iface];
      if (!types) throw new RuntimeError('invalid', `module "${opts.module}": host interface ${iface} has no WIT types; not linked`);
      if (!byIface.has(iface)) byIface.set(iface, functionCheckers(iface, types));
      const check = byIface.get(iface)!.get(fn);
      if (!check) throw new RuntimeError('invalid', `module "${opts.module}": host function ${iface}.${fn} is not in the WIT of ${iface}; not linked`);
      return check;
    });
    // Capability calls travel through shared memory only: arguments and answers each get the value cap
    // plus room for the serialisation envelope.
    this.answerBuf = new Uint8Array(new SharedArrayBuffer(opts.limits.max_value_bytes + 4096));
    this.answerNumber = new Float64Array(this.answerBuf.buffer, 0, 1);
    const requestSab = new SharedArrayBuffer(Math.max(opts.limits.max_value_bytes + 4096, MAX_NUMBER_ARGS * 8));
    this.requestBuf = Buffer.from(requestSab);
    this.requestNumbers = new Float64Array(requestSab, 0, MAX_NUMBER_ARGS);
    this.worker = takeWorker();
    this.brokerInit = { brokerFlag: this.flag.buffer, brokerData: this.answerBuf.buffer, brokerRequest: requestSab, maxValueBytes: opts.limits.max_value_bytes, brokerTimeoutMs: BROKER_TIMEOUT_MS };
    // Nothing a worker sends or does may throw out of these listeners: an exception there would be
    // uncaught on the daemon's thread. Host-side failures trap this instance as `internal`.
    const LOG = 'capability edgeward:module/logging.log';
    this.worker.stdout.on('data', (d: Buffer) => this.guard(LOG, () => opts.onLog('info', d.toString('utf8').trimEnd())));
    this.worker.stderr.on('data', (d: Buffer) => this.guard(LOG, () => opts.onLog('error', d.toString('utf8').trimEnd())));
    this.worker.on('message', (m: unknown) => this.guard('the sandbox message handler', () => this.onMessage(m)));
    this.worker.on('error', (err: unknown) => this.guard('the sandbox error handler', () => this.end({ kind: 'error', message: err instanceof Error ? `${err.name}: ${err.message}` : `sandbox worker failed: ${describe(err)}` })));
    this.worker.on('exit', (code) => this.guard('the sandbox exit handler', () => this.end({ kind: 'error', message: `sandbox worker exited (${code})` })));
    if (this.table.length > 0) this.brokerLoop().catch((err: unknown) => this.internal('the broker', err));
  }

  /**
   * Wait (without blocking the daemon's thread) for the guest's next capability call: the worker bumps
   * REQ_SEQ and notifies; `Atomics.waitAsync` resolves here. One call is outstanding at a time (the
   * guest is blocked until answered). Ends when the instance ends (`end` notifies the waiter).
   *
   * Waking this thread costs tens of µs on an idle CPU, more than the call itself. So after a call answered
   * synchronously, the loop watches the flag for HOST_SPIN_MS for the guest's next call and serves it at
   * once; such a burst holds the daemon's thread for at most HOST_BURST_MS, then yields to the event loop.
   */
  private async brokerLoop(): Promise<void> {
    let seen = 0;
    while (!this.ended) {
      const w = Atomics.waitAsync(this.flag, REQ_SEQ, seen);
      if (w.async) await w.value;
      const burstEnd = performance.now() + HOST_BURST_MS;
      for (;;) {
        if (this.ended) return;
        const seq = Atomics.load(this.flag, REQ_SEQ);
        if (seq === seen) break;
        seen = seq;
        if (!this.serve(seq)) break; // answered later (a promise): nothing to wait for meanwhile
        const now = performance.now();
        if (now >= burstEnd) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          break;
        }
        const spinUntil = Math.min(now + HOST_SPIN_MS, burstEnd);
        while (Atomics.load(this.flag, REQ_SEQ) === seen && performance.now() < spinUntil);
      }
    }
  }

  /** Spawn the worker, instantiate the component with its granted imports, and call `start(config)`. */
  static async start(opts: SandboxOptions): Promise<Instance> {
    const lifetime = new AbortController();
    let instRef: Instance | undefined;
    const ctx: InstanceContext = {
      module: opts.module,
      generationId: opts.generationId,
      digest: opts.digest,
      signer: opts.signer,
      instanceId: opts.instanceId,
      limits: opts.limits,
      ...(opts.network ? { network: opts.network } : {}),
      signal: lifetime.signal,
      callDeadline: () => instRef?.deadline,
      log: opts.onLog,
      current: opts.current,
    };
    const host: Record<string, Record<string, HostFunction>> = {};
    for (const cap of opts.capabilities) if (cap.prepare) Object.assign(host, cap.prepare(ctx));
    const inst = new Instance(opts, host, lifetime);
    instRef = inst;
    const timeoutMs = Math.max(opts.limits.call_timeout_ms, MIN_START_TIMEOUT_MS);
    const fail = async (why: string): Promise<never> => {
      inst.hostStopping = true;
      await inst.worker.terminate();
      throw new RuntimeError('failed', `module "${opts.module}" failed to start: ${why}`);
    };
    const limits = new Map<string, ArgumentLimit>();
    for (const c of opts.capabilities) {
      for (const [iface, fns] of Object.entries(c.argumentLimits ?? {})) for (const [fn, limit] of Object.entries(fns)) limits.set(`${iface}.${fn}`, limit);
    }
    const load = {
      t: 'load',
      ...inst.brokerInit,
      glueSource: opts.glueSource,
      workerModules: opts.capabilities.filter((c) => c.workerModule).map((c) => ({
        url: assetUrl(c.workerModule!),
        skip: shadowed(c, opts.capabilities),
        ...(c.dataDir ? { dataDir: opts.dataDir } : {}),
      })),
      hostFunctions: inst.table.map(([iface, fn]) => [iface, fn, limits.get(`${iface}.${fn}`)]),
      types: opts.interfaceTypes,
    };
    // The worker links and loads the glue while the host finishes measuring; nothing of the guest runs
    // until the measurement matched (`gate`).
    const loading = inst.exchange(load, timeoutMs, 'load');
    loading.catch(() => undefined);
    try {
      await opts.gate;
    } catch (err) {
      inst.hostStopping = true;
      await inst.worker.terminate();
      throw err;
    }
    const loaded = await loading.catch((e: Error) => fail(e.message));
    if (loaded.t !== 'loaded') await fail(loaded.message ?? loaded.t);
    const reply = await inst.exchange({ t: 'init', modules: opts.coreModules, config: opts.config }, timeoutMs, 'start');
    if (reply.t !== 'started') await fail(reply.t === 'exit' ? `exited with code ${reply.code} during start` : (reply.message ?? reply.t));
    inst.timings = reply.timings;
    return inst;
  }

  get alive(): boolean {
    return !this.ended;
  }

  /** Call the guest's `invoke`. Calls run one at a time; each gets `call_timeout_ms` once it starts. */
  invoke(method: string, payload: string): Promise<InvokeOutcome> {
    const max = this.opts.limits.max_value_bytes;
    if (valueBytes(method) + valueBytes(payload) > max) {
      return Promise.reject(new RuntimeError('invalid', `payload larger than the module's limit of ${max} bytes`));
    }
    const run = async (): Promise<InvokeOutcome> => {
      const r = await this.exchange({ t: 'invoke', method, payload }, this.opts.limits.call_timeout_ms, `invoke "${method}"`);
      if (r.t === 'ok') return { ok: true, value: r.value ?? '' };
      if (r.t === 'guest-error') return { ok: false, message: r.message ?? '' };
      this.kill(r.t === 'exit' ? { kind: 'exited', code: r.code ?? 0 } : { kind: 'trap', message: r.message ?? r.t });
      throw new RuntimeError('failed', r.t === 'exit' ? `module "${this.opts.module}" exited with code ${r.code}` : `module "${this.opts.module}" trapped: ${r.message}`);
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** Ask the guest to stop (bounded by the call timeout), then end the worker. Idempotent. */
  async stop(): Promise<void> {
    if (this.ended) return;
    this.hostStopping = true;
    await this.exchange({ t: 'stop' }, this.opts.limits.call_timeout_ms, 'stop').catch(() => undefined);
    this.end({ kind: 'exited', code: 0 }); // not reported: the host asked for it
    await this.worker.terminate();
  }

  private exchange(msg: Record<string, unknown>, timeoutMs: number, what: string): Promise<Reply> {
    if (this.ended) return Promise.reject(new RuntimeError('failed', `module "${this.opts.module}" is not running`));
    const id = this.nextId++;
    // One guest call at a time (calls are chained), so one deadline.
    this.deadline = performance.now() + timeoutMs;
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        const message = `module "${this.opts.module}": ${what} exceeded the ${timeoutMs} ms limit; instance terminated`;
        this.kill({ kind: 'timeout', message });
        reject(new RuntimeError('timeout', message));
      }, timeoutMs);
      this.pending.set(id, (r) => {
        clearTimeout(timer);
        this.pending.delete(id);
        this.deadline = undefined;
        if (r.t === 'ended') reject(new RuntimeError('failed', `module "${this.opts.module}" ended during ${what}: ${r.message}`));
        else resolve(r);
      });
      this.worker.postMessage({ ...msg, id });
    });
  }

  /** One message from the worker, checked first (checkReply): a malformed one traps the instance. */
  private onMessage(raw: unknown): void {
    const m = checkReply(raw);
    if (typeof m === 'string') return this.kill({ kind: 'trap', message: `sandbox worker sent an invalid message: ${m}` });
    if (m.t === 'log') return this.guard('capability edgeward:module/logging.log', () => this.opts.onLog(m.level!, m.message!));
    if (m.id !== undefined) return this.pending.get(m.id)?.(m);
    if (m.t === 'exit') return this.kill({ kind: 'exited', code: m.code ?? 0 });
    this.kill({ kind: 'trap', message: m.message ?? 'unexpected message' });
  }

  /**
   * One capability call from the guest. Synchronous results are answered at once (no promise tick on
   * the hot path; returns true); a promise is awaited while the guest stays blocked on the flag (false).
   * A WIT error the capability throws (`payload`) is the guest's answer; any other exception is a host
   * bug and ends the call as `internal` (settle). Never throws.
   */
  private serve(seq: number): boolean {
    let entry: [string, string, HostFunction] | undefined;
    let args: unknown[];
    try {
      entry = this.table[Atomics.load(this.flag, REQ_FN)];
      if (!entry) throw new Error('call to a host function that is not linked for this instance');
      args = this.readArgs();
      if (valueBytes(args) > this.opts.limits.max_value_bytes) throw new Error(`arguments larger than ${this.opts.limits.max_value_bytes} bytes`);
      this.checkers[Atomics.load(this.flag, REQ_FN)]?.(args);
    } catch (err) {
      // The request itself is malformed (the guest's doing): answered as an error, which traps the guest.
      this.guard(entry ? `capability ${entry[0]}.${entry[1]}` : 'the broker', () => this.answer(seq, errorReply(err)));
      return true;
    }
    const where = `capability ${entry[0]}.${entry[1]}`;
    let out: unknown;
    try {
      out = entry[2](...args);
    } catch (err) {
      this.settle(seq, where, { err });
      return true;
    }
    if (out instanceof Promise) {
      out.then((ok: unknown) => this.settle(seq, where, { ok }), (err: unknown) => this.settle(seq, where, { err }));
      return false;
    }
    this.settle(seq, where, { ok: out });
    return true;
  }

  /**
   * Answer capability call `seq` with what the host function returned or threw. A thrown WIT error is
   * answered; anything else thrown, or an answer that cannot be written, traps the instance as `internal`.
   */
  private settle(seq: number, where: string, outcome: { ok: unknown } | { err: unknown }): void {
    if ('err' in outcome && !isWitError(outcome.err)) return this.internal(where, outcome.err);
    this.guard(where, () => this.answer(seq, 'err' in outcome ? errorReply(outcome.err) : { ok: outcome.ok }));
  }

  /** Run host-side code for this instance; whatever it throws traps the instance as `internal` (never thrown on). */
  private guard(where: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.internal(where, err);
    }
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

  /** The current request's arguments, from shared memory (the guest is blocked, so they hold still). */
  private readArgs(): unknown[] {
    const len = Atomics.load(this.flag, REQ_LEN);
    if (len <= 0) {
      if (-len > MAX_NUMBER_ARGS) throw new Error('malformed capability call');
      return Array.from(this.requestNumbers.subarray(0, -len));
    }
    if (len > this.requestBuf.length) throw new Error('malformed capability call');
    // Deserialised from a copy: v8.deserialize makes typed arrays that view its input, and the shared
    // request buffer is overwritten by the guest's next call (a host function keeping a list<u8> would
    // see it change under it).
    const args: unknown = deserialize(new Uint8Array(this.requestBuf.subarray(0, len)));
    if (!Array.isArray(args)) throw new Error('malformed capability call');
    return args;
  }

  /** Write the answer into shared memory (scalars by fast path, see worker.mjs) and wake the guest. */
  private answer(seq: number, reply: { ok?: unknown; err?: { message: string; payload?: unknown } }): void {
    // The guest gave up on a call that answers too late (broker timeout) and may be in its next one.
    if (this.ended || seq !== Atomics.load(this.flag, REQ_SEQ)) return;
    let code: number;
    const v = reply.ok;
    if (!reply.err && typeof v === 'number') {
      this.answerNumber[0] = v;
      code = ANSWER_NUMBER;
    } else if (!reply.err && (v === undefined || typeof v === 'boolean')) {
      code = v === undefined ? ANSWER_UNDEFINED : v ? ANSWER_TRUE : ANSWER_FALSE;
    } else {
      let bytes = serialize(reply);
      if (bytes.length > this.answerBuf.length) bytes = serialize({ err: { message: `answer larger than ${this.opts.limits.max_value_bytes} bytes` } });
      this.answerBuf.set(bytes);
      code = bytes.length;
    }
    Atomics.store(this.flag, ANSWER_LEN, code);
    Atomics.store(this.flag, ANSWER_SEQ, seq); // last: publishes the answer
    Atomics.notify(this.flag, ANSWER_SEQ);
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
    this.lifetime.abort();
    for (const resolve of [...this.pending.values()]) resolve({ t: 'ended', message: 'message' in reason ? reason.message : `exit ${reason.code}` });
    Atomics.notify(this.flag, REQ_SEQ); // ends brokerLoop
    if (first && !this.hostStopping) {
      try {
        this.opts.onExit(reason);
      } catch (err) {
        try { this.opts.onInternalError('the instance exit handler', err); } catch { /* nothing left to tell */ }
      }
    }
  }
}
