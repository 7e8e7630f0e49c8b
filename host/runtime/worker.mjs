// Sandbox worker: one per module instance. Plain ESM, run as it is under tsx (the tests) and bundled as
// CommonJS for the compiled daemon (scripts/bundle.mjs: a worker whose code is all CommonJS boots without
// Node's ES module loader, ~15 ms of CPU less per worker). It links only what the host sent it: the compiled core modules of ONE component,
// the worker-side capability modules the registration grants, and proxies for host-side capabilities
// that go through the broker. Nothing from preview2-shim is linked: a guest never sees the host's
// filesystem (only its own data directory, when granted), sockets (HTTP goes through the host, to
// granted hosts only), env or process.
import { parentPort } from 'node:worker_threads';
import { deserialize, getHeapStatistics, serialize } from 'node:v8';
import { guardInterface } from '../boundary/validate.mjs';
import { compileGlue as compileGlueScript } from './glue-script.mjs';
import {
  ANSWER_FALSE, ANSWER_LEN, ANSWER_NUMBER, ANSWER_SEQ, ANSWER_TRUE, ANSWER_UNDEFINED, MAX_NUMBER_ARGS, PRIVATE_PREFIX,
  REQ_FN, REQ_LEN, REQ_SEQ, valueBytes,
  CALL_SEQ, CALL_METHOD_LEN, CALL_PAYLOAD_LEN, REPLY_SEQ, REPLY_KIND, REPLY_LEN, REPLY_MICROS, REPLY_POSTED,
  REPLY_OK, REPLY_GUEST_ERROR, REPLY_TRAP, REPLY_EXIT,
} from './broker-protocol.mjs';
/** @import { ArgumentLimit } from './capabilities.js' */
/** @import { BrokerProxy, HostMessage, ImportObject, InitMessage, LoadMessage, WorkerContext } from './sandbox/worker-api.js' */
/** @import { Reply, WorkerMemory } from './sandbox/messages.js' */

/** The worker's port to the host (a sandbox worker is always a worker thread). */
const port = /** @type {import('node:worker_threads').MessagePort} */ (parentPort);

// The worker-side capability modules compiled into this thread's own CommonJS bundle, by URL (the compiled
// daemon runs dist/host/runtime/worker.bundle.cjs, built by scripts/bundle.mjs; under tsx this file runs
// as it is and there are none). Taken once, and off the global, before any glue or guest runs here. A URL
// not in it (a test's capability) is imported as before.
const BUNDLED = Symbol.for('edgeward.bundledWorkerModules');
const bundled = /** @type {Map<string, () => Promise<unknown>> | undefined} */ (Reflect.get(globalThis, BUNDLED));
Reflect.deleteProperty(globalThis, BUNDLED);
/** @param {string} url @returns {Promise<unknown>} */
const importModule = (url) => bundled?.get(url)?.() ?? import(url);

// Set by `load` (workers are spawned ahead of need, before they know their instance). The broker is
// shared memory only (no message port on the hot path): `flag` (Int32) holds the slots below, the guest's
// arguments go into `request`, the host's answer comes back in `answer`.
/** @type {Int32Array} */ let flag;
/** @type {Buffer} */ let request;
/** @type {Buffer} */ let answer;
/** @type {Float64Array} */ let answerNumber;
/** @type {Float64Array} */ let requestNumbers;
/** @type {number} */ let maxValueBytes;
/** @type {number} */ let brokerTimeoutMs;
// The invoke channel's slots (broker-protocol.mjs; the daemon's half is sandbox/call-channel.ts): the
// daemon's calls into the guest and their replies travel in `request`, idle while the guest is not running.
/** @type {Int32Array} */ let callFlag;

/** Thrown through the guest's frames by wasi:cli/exit; ends this instance only. */
class ExitSignal {
  /** @param {number} code */
  constructor(code) { this.code = code; }
}

/** Messages posted to the host so far (wraps; the invoke channel's replies say how many came before them). */
let posted = 0;
/** @param {Reply} msg */
const post = (msg) => {
  posted = (posted + 1) | 0;
  port.postMessage(msg);
};

/** How long a guest's thread spins for a host answer before it sleeps on the flag (bounded CPU per call). */
const BROKER_SPIN_MS = 0.1;

/**
 * A synchronous call to host function number `index` (the table sent at load): write the arguments into
 * shared memory, bump the request counter and wake the host (which waits on it with Atomics.waitAsync),
 * block until the host has answered this very request, read the answer from shared memory.
 * @param {number} index @param {string} name @param {unknown[]} args @param {ArgumentLimit | undefined} limit
 */
function brokerCall(index, name, args, limit) {
  // Checked here, before the arguments are copied again to the host's thread (G4); the copy out of
  // linear memory that jco already made is bounded by the module's memory ceiling. A function's own cap
  // (Capability.argumentLimits) answers its WIT error; the module's max_value_bytes traps.
  const size = valueBytes(args);
  if (size > maxValueBytes) throw new Error(`${name}: arguments larger than ${maxValueBytes} bytes`);
  if (limit && size > limit.bytes) throw Object.assign(new Error(`${name}: arguments larger than ${limit.bytes} bytes`), { payload: limit.refusal });
  if (args.length <= MAX_NUMBER_ARGS && args.every((a) => typeof a === 'number')) {
    for (let i = 0; i < args.length; i++) requestNumbers[i] = /** @type {number} */ (args[i]);
    Atomics.store(flag, REQ_LEN, -args.length);
  } else {
    const bytes = serialize(args);
    if (bytes.length > request.length) throw new Error(`${name}: arguments larger than ${maxValueBytes} bytes`);
    request.set(bytes);
    Atomics.store(flag, REQ_LEN, bytes.length);
  }
  Atomics.store(flag, REQ_FN, index);
  const seq = (Atomics.add(flag, REQ_SEQ, 1) + 1) | 0; // the Int32 slot wraps after 2^31 calls; so does this
  Atomics.notify(flag, REQ_SEQ);
  // Most host answers take microseconds: stay on the CPU for a short while before sleeping, so the
  // answer does not also pay for waking this thread (on an idle machine a futex wake costs ~100 µs).
  const spinUntil = performance.now() + BROKER_SPIN_MS;
  while (Atomics.load(flag, ANSWER_SEQ) !== seq && performance.now() < spinUntil);
  // ANSWER_SEQ only ever moves to the sequence number the host answered, so there is no flag to reset and
  // no window in which an answer can be lost.
  const deadline = performance.now() + brokerTimeoutMs;
  for (;;) {
    const got = Atomics.load(flag, ANSWER_SEQ);
    if (got === seq) break;
    const left = deadline - performance.now();
    if (left <= 0) throw new Error(`host capability ${name} did not answer within ${brokerTimeoutMs} ms`);
    Atomics.wait(flag, ANSWER_SEQ, got, left);
  }
  const len = Atomics.load(flag, ANSWER_LEN);
  if (len === ANSWER_NUMBER) return answerNumber[0];
  if (len === ANSWER_UNDEFINED) return undefined;
  if (len === ANSWER_TRUE) return true;
  if (len === ANSWER_FALSE) return false;
  const { ok, err } = deserialize(answer.subarray(0, len));
  if (err) throw Object.assign(new Error(err.message), err.payload === undefined ? {} : { payload: err.payload });
  return ok;
}

/** @param {LoadMessage} init @returns {Promise<ImportObject>} */
async function buildImports(init) {
  /** @type {ImportObject} */
  const imports = {};
  // hostFunctions: [[iface, fn, limit?], …] in the host's table order; the index is the call's address.
  // `edgeward-private:` interfaces go to the worker modules (ctx.host), never into the guest's imports.
  /** @type {[string, string, BrokerProxy][]} */
  const proxies = init.hostFunctions.map(([iface, fn, limit], index) => [iface, fn, (...args) => brokerCall(index, `${iface}.${fn}`, args, limit)]);
  /** @type {WorkerContext} */
  const ctx = {
    log: rateLimitedLog((level, message) => post({ t: 'log', level, message })),
    exit: (code) => { throw new ExitSignal(code); },
    host: {},
    maxValueBytes,
  };
  for (const [iface, fn, call] of proxies) if (iface.startsWith(PRIVATE_PREFIX)) (ctx.host[iface] ??= {})[fn] = call;
  // Each entry: { url, skip: placeholder interfaces another module provides, dataDir? (only for the
  // capability that serves the module's data directory) }.
  for (const { url, skip, dataDir } of init.workerModules) {
    const mod = /** @type {{ imports(ctx: WorkerContext): ImportObject }} */ (await importModule(url));
    const provided = mod.imports(dataDir === undefined ? ctx : { ...ctx, dataDir });
    for (const iface of skip) delete provided[iface];
    Object.assign(imports, provided);
  }
  for (const [iface, fn, call] of proxies) if (!iface.startsWith(PRIVATE_PREFIX)) (imports[iface] ??= {})[fn] = call;
  // Every function the guest can reach checks its arguments against the host's WIT first (validate.mjs):
  // a value of the wrong type traps this instance before any capability code runs. The host sent the
  // types of every interface it links; one it has no types for is not linked at all.
  for (const [iface, fns] of Object.entries(imports)) {
    const types = init.types?.[iface];
    if (!types) throw new Error(`no WIT types for linked interface ${iface}`);
    imports[iface] = guardInterface(iface, types, fns);
  }
  return imports;
}

/**
 * The guest's `edgeward:module/lifecycle` exports, once started.
 * @type {{ start(config: string): void; invoke(method: string, payload: string): unknown; stop(): void } | undefined}
 */
let lifecycle;
/**
 * The guest's optional `edgeward:module/health` export (probed by the supervisor), once started.
 * @type {{ check(): void } | undefined}
 */
let health;

// A guest logging in a loop must not flood the daemon's thread (every line is a message and a file
// append there): a token bucket per instance, and one line saying how many were dropped.
const LOG_LINES_PER_SECOND = 1000;
const LOG_BURST = 2000;

/** @param {WorkerContext['log']} emit @returns {WorkerContext['log']} */
function rateLimitedLog(emit) {
  let tokens = LOG_BURST;
  let last = performance.now();
  let dropped = 0;
  return (level, message) => {
    const now = performance.now();
    tokens = Math.min(LOG_BURST, tokens + ((now - last) * LOG_LINES_PER_SECOND) / 1000);
    last = now;
    if (tokens < 1) {
      dropped++;
      return;
    }
    tokens--;
    if (dropped > 0) {
      emit('warn', `[edgeward] ${dropped} log lines dropped (limit ${LOG_LINES_PER_SECOND}/s)`);
      dropped = 0;
    }
    emit(level, String(message));
  };
}

/** What a guest's exception means: its exit, its WIT error, or a trap. @param {unknown} err @returns {Reply} */
function classify(err) {
  if (err instanceof ExitSignal) return { t: 'exit', code: err.code };
  // jco lifts a WIT `result` error into a thrown Error carrying `payload`: a guest-level answer.
  if (err && typeof err === 'object' && 'payload' in err) return { t: 'guest-error', message: String(err.payload) };
  return { t: 'trap', message: err instanceof Error ? `${err.name}: ${err.message}` : String(err) };
}

/** @typedef {(getCoreModule: (name: string) => unknown, imports: ImportObject, instantiateCore?: (module: unknown, imports?: unknown) => Promise<unknown>) => Promise<Record<string, any>>} Instantiate */
/** @type {{ imports: ImportObject; instantiate: Instantiate; link: number } | undefined} */
let loaded;

/**
 * The verified glue the host sent, compiled in memory (no file to swap) as a script (glue-script.mjs),
 * with the host's code cache of the same text when it has one (sandbox/glue-cache.ts; V8 checks that it
 * belongs to this text and compiles afresh otherwise).
 * @param {string} source @param {Uint8Array | undefined} cachedData @returns {Instantiate}
 */
function compileGlue(source, cachedData) {
  return compileGlueScript(source, cachedData).runInThisContext();
}

/** The load in progress or done (`init` waits for it). @type {Promise<void> | undefined} */
let loading;

/** Phase 1 (may run while the host is still measuring the component): link imports, load the glue. @param {LoadMessage} msg */
async function load(msg) {
  ({ maxValueBytes, brokerTimeoutMs } = msg);
  flag = new Int32Array(msg.brokerFlag);
  answer = Buffer.from(msg.brokerData);
  answerNumber = new Float64Array(msg.brokerData, 0, 1);
  request = Buffer.from(msg.brokerRequest);
  callFlag = new Int32Array(msg.callFlag);
  requestNumbers = new Float64Array(msg.brokerRequest, 0, MAX_NUMBER_ARGS);
  const t0 = performance.now();
  const imports = await buildImports(msg);
  loaded = { imports, instantiate: compileGlue(msg.glueSource, msg.glueCache), link: performance.now() - t0 };
}

/** Phase 2 (only after the measurement matched): instantiate the core modules and call start(config). @param {InitMessage} msg */
async function init(msg) {
  const modules = msg.modules;
  if (!loaded) throw new Error('init before load');
  /** @param {string} name */
  const getCoreModule = (name) => {
    const m = modules[name];
    if (!m) throw new Error(`core module ${name} was not measured by the host`);
    return m;
  };
  const t1 = performance.now();
  const exports = await loaded.instantiate(getCoreModule, loaded.imports, instantiateCore);
  const t2 = performance.now();
  const started = exports['edgeward:module/lifecycle@0.1.0'] ?? exports.lifecycle;
  lifecycle = started;
  health = exports['edgeward:module/health@0.1.0'] ?? exports.health;
  started.start(msg.config);
  return { link: loaded.link, instantiate: t2 - t1, start: performance.now() - t2 };
}

/** WebAssembly, typed as far as used here (tsconfig's lib has no WebAssembly types). */
const wasm = /** @type {{ instantiate(m: unknown, i?: unknown): Promise<{ exports: Record<string, unknown> }>; Memory: new (...a: any[]) => { buffer: ArrayBuffer } }} */ (
  /** @type {any} */ (globalThis).WebAssembly
);
/** The linear memories the component's core instances export (a memory jco links in is the same object). */
/** @type {Set<{ buffer: ArrayBuffer }>} */
const memories = new Set();

/**
 * jco's `instantiateCore` (WebAssembly.instantiate), noting each core instance's exported memories so
 * the `memory` probe can sum them. @param {unknown} module @param {unknown} [imports]
 */
async function instantiateCore(module, imports) {
  const instance = await wasm.instantiate(module, imports);
  for (const v of Object.values(instance.exports)) if (v instanceof wasm.Memory) memories.add(v);
  return instance;
}

/** This worker's own memory, for the host's `memory` probe (host/runtime/memory-budget.ts). @returns {WorkerMemory} */
function memoryReport() {
  let linear = 0;
  for (const m of memories) linear += m.buffer.byteLength;
  const h = getHeapStatistics();
  // V8 counts linear memories' backing stores as external memory: `external` is what is left besides them.
  const external = Math.max(0, h.external_memory - linear) + h.malloced_memory;
  return { linear, heapUsed: h.used_heap_size, heapTotal: h.total_heap_size, heapLimit: h.heap_size_limit, external };
}

/** @param {string} method @param {string} payload @returns {Reply} */
function invoke(method, payload) {
  if (!lifecycle) throw new Error('invoke before start');
  const out = lifecycle.invoke(method, payload);
  if (typeof out !== 'string') throw new Error('invoke returned a non-string');
  if (valueBytes(out) > maxValueBytes) return { t: 'guest-error', message: `response larger than ${maxValueBytes} bytes` };
  return { t: 'ok', value: out };
}

/** How long this thread watches the invoke channel after a reply, for the daemon's next call, before it sleeps. */
const CALL_SPIN_MS = 0.1;
/** The last call on the invoke channel this worker answered. */
let callsSeen = 0;

/**
 * Answer the daemon's call on the invoke channel, if there is a new one: read it, call the guest, write
 * the reply (a message longer than the buffer is cut at a character), REPLY_SEQ last.
 * @returns {boolean} whether there was one
 */
function serveCall() {
  const seq = Atomics.load(callFlag, CALL_SEQ);
  if (seq === callsSeen) return false;
  callsSeen = seq;
  const t0 = performance.now();
  const m = Atomics.load(callFlag, CALL_METHOD_LEN);
  const p = Atomics.load(callFlag, CALL_PAYLOAD_LEN);
  /** @type {Reply} */
  let r;
  try {
    // Read out before the guest runs: its capability calls write their arguments into `request`.
    r = invoke(request.toString('utf8', 0, m), request.toString('utf8', m, m + p));
  } catch (err) {
    r = classify(err);
  }
  if (r.t === 'exit') {
    Atomics.store(callFlag, REPLY_KIND, REPLY_EXIT);
    Atomics.store(callFlag, REPLY_LEN, r.code ?? 0);
  } else {
    const text = (r.t === 'ok' ? r.value : r.message) ?? '';
    Atomics.store(callFlag, REPLY_KIND, r.t === 'ok' ? REPLY_OK : r.t === 'guest-error' ? REPLY_GUEST_ERROR : REPLY_TRAP);
    Atomics.store(callFlag, REPLY_LEN, text.length === 0 ? 0 : request.write(text, 0, 'utf8'));
  }
  Atomics.store(callFlag, REPLY_MICROS, Math.min(0x7fffffff, Math.round((performance.now() - t0) * 1000)));
  Atomics.store(callFlag, REPLY_POSTED, posted);
  Atomics.store(callFlag, REPLY_SEQ, seq); // last: publishes the reply
  Atomics.notify(callFlag, REPLY_SEQ);
  return true;
}

/**
 * Serve the invoke channel once the guest has started: wait (without blocking this thread's event loop,
 * which still takes the daemon's messages) for a call, answer it, then watch for CALL_SPIN_MS for the
 * next one, since waking this thread costs more than most calls.
 */
async function serveCalls() {
  for (;;) {
    const w = Atomics.waitAsync(callFlag, CALL_SEQ, callsSeen);
    if (w.async) await w.value;
    while (serveCall()) {
      const until = performance.now() + CALL_SPIN_MS;
      while (Atomics.load(callFlag, CALL_SEQ) === callsSeen && performance.now() < until);
    }
  }
}

port.on('message', /** @param {HostMessage} msg */ async (msg) => {
  // A spare's warm-up (pool.ts): no instance yet, no reply. A failed import is left for `load` to report
  // (the import() there fails the same way).
  if (msg.t === 'preload') {
    if (!loaded) for (const url of msg.urls) importModule(url).catch(() => undefined);
    return;
  }
  // A call the daemon sent on the invoke channel before this message is answered first, as it was sent.
  if (loaded && lifecycle) serveCall();
  try {
    switch (msg.t) {
      case 'load':
        loading = load(msg);
        await loading;
        post({ id: msg.id, t: 'loaded' });
        break;
      case 'init':
        // The host sends `init` once the measurement matched, without waiting for `loaded`: it runs when
        // the load has finished, and fails as the load did.
        if (!loading) throw new Error('init before load');
        await loading;
        post({ id: msg.id, t: 'started', timings: await init(msg) });
        // A failure of the channel itself (never the guest's: serveCall classifies those) ends the instance.
        serveCalls().catch((err) => post({ t: 'trap', message: `invoke channel: ${err instanceof Error ? err.message : String(err)}` }));
        break;
      case 'health':
        // `check` returns on ok; its WIT `err` is thrown and classified as a guest-error.
        if (!health?.check) throw new Error('health probe: the component exports no edgeward:module/health');
        health.check();
        post({ id: msg.id, t: 'ok', value: '' });
        break;
      case 'memory':
        post({ id: msg.id, t: 'memory', memory: memoryReport() });
        break;
      case 'stop':
        lifecycle?.stop();
        post({ id: msg.id, t: 'ok', value: '' });
        break;
      default:
        post({ t: 'trap', message: `unknown message ${/** @type {{ t: unknown }} */ (msg).t}` });
    }
  } catch (err) {
    const c = classify(err);
    // start's own `err` answer is the module refusing to start (start-error), anything else a failure.
    if (msg.t === 'init' && c.t === 'guest-error') post({ id: msg.id, t: 'start-error', message: c.message });
    else if ((msg.t === 'init' || msg.t === 'load') && c.t !== 'exit') post({ id: msg.id, t: 'start-failed', message: c.message });
    else post({ id: msg.id, ...c });
  }
});
