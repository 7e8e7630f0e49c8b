/**
 * Workers spawned ahead of need: a thread takes tens of milliseconds to boot (more on a loaded
 * device), which would otherwise sit on every start's critical path. A pooled worker has no instance,
 * no guest and no capability until `load`; idle ones do not keep the process alive.
 *
 * At most one spare, and only while it has a use (the runtime decides: runtime.ts `fitPool`): a daemon
 * with no module holds none; a deploy spawns it as it begins (it boots while the component is measured
 * and transpiled); each start that takes it spawns the next; with the last module removed it is ended,
 * and a spare no start took within `spareIdleMs` is ended too (a daemon at rest holds none).
 *
 * A worker gets an empty env, no execArgv, no argv, its stdout/stderr piped to the host (the module log),
 * and a capped JS heap (`resourceLimits`; its linear memories are capped by the loader's rewrite).
 */
import { existsSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { assetPath } from '../assets.js';
import type { PreloadMessage } from './worker-api.js';

/** JS heap of a sandbox worker (the glue and its tables; guest data lives in linear memory). */
const WORKER_HEAP_MIB = 64;
/**
 * Its young generation. Measured on the 2-core bench machine (.scratch figures in the branch report):
 * an idle worker is ~7.4 MiB whatever this is (1, 2 or 8), but a `hello` instance after 300 invokes
 * costs ~15 MiB with 1 MiB against ~19.5–20.7 MiB with 8 (V8 keeps grown semi-spaces), with no change in
 * invoke or start times beyond the machine's noise. Guest data lives in linear memory, not here.
 */
const WORKER_YOUNG_MIB = 1;
const POOL_SIZE = 1;
/**
 * How long a spare waits for a start before it is ended. Spares take the boot off bursts (a deployment's
 * modules, a restart, a crash restart after its back-off); a device at rest holds none, since an idle worker
 * is ~7.5–12 MiB of RSS (bench/memory.ts), which a module that restarts after a long quiet pays back as one
 * worker boot (~45–70 ms here). Any later start, deploy or removal spawns a spare again (runtime.ts `fitPool`).
 */
let spareIdleMs = 5_000;

/** Tests: a shorter idle time for spares. */
export function setSpareIdleMs(ms: number): void {
  spareIdleMs = ms;
}
const pool: Worker[] = [];
const online = new WeakMap<Worker, Promise<void>>();
/**
 * Worker-side capability modules (file URLs) every spare imports while it waits (runtime.ts `fitPool`:
 * those the registered modules may link). Importing is not linking: a module's code sits in the worker,
 * unreachable by any guest, until `load` links what the instance is granted; what a start then links is
 * already evaluated (a first import in a fresh worker costs 1–8 ms, all eight ~13 ms of the spare's boot).
 */
let preload: string[] = [];

/** The worker-side modules every spare spawned from now on imports ahead of need (replaces the list). */
export function preloadWorkerModules(urls: Iterable<string>): void {
  preload = [...new Set(urls)];
}

let entry: string | undefined;
/**
 * The worker's entry: the CommonJS bundle of worker.mjs and the capability worker modules where the build
 * made one (dist/, scripts/bundle.mjs: it boots without Node's ES module loader), worker.mjs itself under
 * tsx. Both come from the tree the code runs from (assets.ts), the one the code digest measures.
 */
export function workerEntry(): string {
  if (entry) return entry;
  const bundle = assetPath('host/runtime/worker.bundle.cjs');
  return (entry = existsSync(bundle) ? bundle : assetPath('host/runtime/worker.mjs'));
}

function spawnWorker(): Worker {
  const w = new Worker(workerEntry(), {
    env: {},
    execArgv: [],
    argv: [],
    stdout: true,
    stderr: true,
    resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MIB, maxYoungGenerationSizeMb: WORKER_YOUNG_MIB },
  });
  // Referenced while it boots (so awaiting warmWorkerPool keeps a process alive), then idle and unref'd.
  online.set(w, new Promise<void>((resolve) => {
    w.once('online', () => { if (pool.includes(w)) w.unref(); resolve(); });
    w.once('exit', () => resolve());
  }));
  if (preload.length > 0) w.postMessage({ t: 'preload', urls: preload } satisfies PreloadMessage);
  // A pooled worker that dies before use is dropped (its 'error' must not be unhandled).
  const drop = () => { const i = pool.indexOf(w); if (i >= 0) pool.splice(i, 1); };
  w.on('error', drop);
  w.on('exit', drop);
  return w;
}

function refillPool(): void {
  while (pool.length < POOL_SIZE) {
    const w = spawnWorker();
    pool.push(w);
    // Ended if still unused after spareIdleMs (a taken worker has left the pool: the timer does nothing).
    setTimeout(() => {
      const i = pool.indexOf(w);
      if (i < 0) return;
      pool.splice(i, 1);
      void w.terminate().catch(() => undefined);
    }, spareIdleMs).unref();
  }
}

/**
 * A worker for one instance: a pooled one (its pool listeners removed, referenced again) or a new one.
 * The next spare is spawned at once: a worker booting while this start runs costs the start little, but
 * one spawned only after it is still booting when a restart follows soon (bench: load − link ~130 ms).
 */
export function takeWorker(): Worker {
  const w = pool.shift() ?? spawnWorker();
  w.removeAllListeners('error');
  w.removeAllListeners('exit');
  w.ref();
  setImmediate(refillPool);
  return w;
}

/** How many idle spare workers there are now (0 or 1). */
export function spareWorkers(): number {
  return pool.length;
}

/** Spawn the spare if there is none (it boots in the background). */
export function keepSpare(): void {
  refillPool();
}

/** Spawn the spare now if there is none, and resolve when it is running (tests, benches). */
export async function warmWorkerPool(): Promise<void> {
  refillPool();
  await Promise.all(pool.map((w) => online.get(w)));
}

/** Workers of stopped instances still being torn down (instance.ts `stop`). */
const exiting = new Set<Promise<unknown>>();

/** Terminate the worker of an instance that has ended; resolves when the thread is gone. */
export function retireWorker(w: Worker): Promise<void> {
  const exited = w.terminate().then(() => undefined, () => undefined);
  exiting.add(exited);
  void exited.finally(() => exiting.delete(exited));
  return exited;
}

/** Resolves when every retired worker's thread is gone (shutdown, tests). */
export async function workersExited(): Promise<void> {
  await Promise.all([...exiting]);
}

/** The thread ids of the idle spares (tests). */
export function spareThreadIds(): number[] {
  return pool.map((w) => w.threadId);
}

/** Terminate idle pooled workers and wait for retired ones (tests, shutdown). */
export async function drainWorkerPool(): Promise<void> {
  const idle = pool.splice(0);
  await Promise.all([...idle.map((w) => w.terminate()), workersExited()]);
}
