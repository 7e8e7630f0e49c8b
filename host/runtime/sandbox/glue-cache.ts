/**
 * V8 code caches of the glue the sandbox workers compile (glue-script.mjs), handed to each worker that
 * loads the same glue: V8 then skips compiling what the cache holds. A glue's cache is made once, after
 * its first start (off that start's critical path), so the next start of the same glue (a restart, a
 * crash restart, a second instance) gets it; where the transpile cache is sealed, it is kept there too
 * (glue-code-store.ts, under the device key's MAC), so the next daemon's first start gets it and does
 * not rehearse again. V8 accepts a cache only for the V8 and flags it was made with, and compiles afresh
 * otherwise.
 *
 * The cache is made by a rehearsal (glue-warm.worker.mjs): the glue's instantiate, start, invoke and
 * import trampolines run once against stand-ins in a thread of its own, so the functions a start and a
 * call run are in the cache compiled (echo's glue: 95 KB of cache instead of 3.6 KB, hello's 237 KB
 * instead of 5 KB). Measured (tiny WAT echo, restarts 400 ms apart, same minute): instantiate 2.5 →
 * 0.8–1.3 ms, start ~5 → 1.6–2.4 ms. No guest ever runs in that thread, and nothing a sandbox worker
 * sends back feeds a cache (a guest cannot touch another instance's code). If the rehearsal fails or
 * takes too long, the cache is made here as before: the glue compiled, never run.
 */
import { Worker } from 'node:worker_threads';
import { assetPath } from '../assets.js';
import { glue } from './shared.js';
import type { GlueCodeStore } from '../glue-code-store.js';

/** Glue texts remembered (a rehearsed cache is ~100–250 KB); the oldest goes first. */
const MAX_ENTRIES = 32;
/** How long after a glue's first start its cache is made (the start's own work goes first). */
const MAKE_AFTER_MS = 50;
/** A rehearsal that has not answered by then is ended; the compile-only cache is made instead. */
const REHEARSAL_TIMEOUT_MS = 10_000;
/** By glue text; null while it is being made, or when the glue does not compile (the worker fails it too). */
const caches = new Map<string, Uint8Array | null>();

/** What the caches did (tests): rehearsals run, and caches taken from disk. */
export const glueCacheStats = { rehearsals: 0, fromDisk: 0 };

/**
 * The code cache of this glue if there is one (in memory, or verified on disk: `disk`, glue-code-store.ts);
 * otherwise undefined, and one is made soon, by a rehearsal, and kept on disk for the next daemon (a
 * compile-only cache, the fallback, is not kept there: the next daemon rehearses again).
 */
export function glueCodeCache(source: string, disk?: GlueCodeStore): Uint8Array | undefined {
  const cached = caches.get(source);
  if (cached !== undefined) return cached ?? undefined;
  if (disk?.data) {
    glueCacheStats.fromDisk++;
    remember(source, disk.data);
    return disk.data;
  }
  remember(source, null);
  setTimeout(() => {
    if (!caches.has(source)) return;
    glueCacheStats.rehearsals++;
    void rehearsed(source).then(
      (data) => {
        if (!caches.has(source)) return;
        caches.set(source, data);
        void disk?.save(data).catch(() => undefined); // not kept: the next daemon rehearses again
      },
      () => {
        const data = compiledOnly(source);
        if (caches.has(source) && data) caches.set(source, data);
      },
    );
  }, MAKE_AFTER_MS).unref();
  return undefined;
}

function remember(source: string, data: Uint8Array | null): void {
  caches.set(source, data);
  if (caches.size > MAX_ENTRIES) caches.delete(caches.keys().next().value!);
}

/** The cache a rehearsal of the glue made (glue-warm.worker.mjs). */
function rehearsed(source: string): Promise<Uint8Array> {
  const w = new Worker(assetPath('host/runtime/glue-warm.worker.mjs'), {
    workerData: { source }, env: {}, execArgv: [], argv: [], stdout: true, stderr: true,
    resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 8 },
  });
  w.unref();
  w.stdout.resume();
  w.stderr.resume();
  let timer: NodeJS.Timeout | undefined;
  return new Promise<Uint8Array>((resolve, reject) => {
    timer = setTimeout(() => reject(new Error('glue rehearsal timed out')), REHEARSAL_TIMEOUT_MS).unref();
    w.once('message', (m: unknown) => (m instanceof Uint8Array && m.byteLength > 0 ? resolve(m) : reject(new Error('glue rehearsal sent no cache'))));
    w.once('error', reject);
    w.once('exit', () => reject(new Error('glue rehearsal ended without a cache')));
  }).finally(() => {
    clearTimeout(timer);
    void w.terminate();
  });
}

/** The glue compiled here, never run: its top level only. Null when it does not compile. */
function compiledOnly(source: string): Uint8Array | null {
  try {
    return glue.compileGlue(source).createCachedData();
  } catch {
    return null;
  }
}

/** Forget every cache (tests). */
export function clearGlueCodeCaches(): void {
  caches.clear();
}
