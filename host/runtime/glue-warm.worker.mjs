// The V8 code cache of one component's glue, made with the functions a start and a call run already
// compiled (sandbox/glue-cache.ts). V8 compiles a function the first time it runs: a cache made of the
// glue only compiled (never run) holds little more than its top level, so every sandbox worker compiled
// jco's instantiate, its task machinery and the lift/lower of start and invoke again, ~3-5 ms of each
// start. Here the glue runs once, in a thread of its own that no guest ever enters, against stand-ins:
// no core module is instantiated (no guest code runs), every import and core export is a stub that
// answers 0, and linear memory is a blank page; then each trampoline (the glue's side of a guest's call
// to an import) is called once with zeros, as the guest's code would. Whatever it reaches is compiled;
// whatever throws on the blanks stops that call there, and the rest compiles lazily in the worker as
// before. The cache holds V8's compilation of the glue text only (V8 accepts it for that text and these
// flags only); the glue is the same verified text every sandbox worker runs.
import { parentPort, workerData } from 'node:worker_threads';
import { compileGlue } from './glue-script.mjs';

/** A stand-in for every import and core export: callable (answers 0), constructible, any property is itself. */
/** @type {any} */
const stub = new Proxy(function stub() {}, {
  get: (_t, key) => (key === 'then' || typeof key === 'symbol' ? undefined : stub),
  apply: () => 0,
  construct: () => ({}),
});

/** WebAssembly, as far as used here (tsconfig's lib has no WebAssembly types). */
const wasm = /** @type {{ Memory: new (d: { initial: number }) => object }} */ (/** @type {any} */ (globalThis).WebAssembly);
const memory = new wasm.Memory({ initial: 1 });
/** Allocations above the first KB (an answer's return area at 0 reads as zeros: `ok`, empty), 8-aligned. */
let next = 1024;
/** @param {number} _old @param {number} _oldSize @param {number} _align @param {number} size */
const realloc = (_old, _oldSize, _align, size) => {
  const at = next;
  next += (Number(size) + 7) & ~7;
  if (next > 60 * 1024) next = 1024;
  return at;
};

/** A core instance's exports: its memory, its allocator, and stubs for everything else. */
const coreExports = new Proxy({}, {
  get: (_t, key) => {
    if (typeof key === 'symbol' || key === 'then') return undefined;
    if (key === 'memory') return memory;
    if (key.includes('realloc')) return realloc;
    return stub;
  },
});

/** The functions the glue hands a core instance as its imports: its trampolines (a guest's calls out). */
/** @type {Function[]} */
const trampolines = [];

/** @param {unknown} _module @param {Record<string, Record<string, unknown>>} [imports] */
async function instantiateCore(_module, imports = {}) {
  for (const fields of Object.values(imports)) {
    for (const f of Object.values(fields ?? {})) if (typeof f === 'function' && f !== stub) trampolines.push(f);
  }
  return { exports: coreExports };
}

/** Each call once, its exception ignored (a blank answer the lift refuses: what ran is compiled). @param {Array<() => unknown>} calls */
function rehearse(calls) {
  for (const call of calls) {
    try {
      call();
    } catch {
      // as above
    }
  }
}

const script = compileGlue(/** @type {{ source: string }} */ (workerData).source);
try {
  const instantiate = script.runInThisContext();
  const exports = await instantiate(() => ({}), stub, instantiateCore);
  const lifecycle = exports['edgeward:module/lifecycle@0.1.0'] ?? exports.lifecycle;
  const health = exports['edgeward:module/health@0.1.0'] ?? exports.health;
  rehearse([() => lifecycle?.start?.('{}'), () => lifecycle?.invoke?.('', ''), () => health?.check?.()]);
  // Last, as a guest would call them (with zeros: a log line at 0 of length 0, handle 0, ...): they write
  // their answers into the blank memory, so they come after the calls above have read it.
  rehearse(trampolines.map((f) => () => f(0, 0, 0, 0, 0, 0, 0, 0)));
} catch {
  // instantiate stopped on a stand-in: the cache holds what ran until then
}
/** @type {import('node:worker_threads').MessagePort} */ (parentPort).postMessage(script.createCachedData());
