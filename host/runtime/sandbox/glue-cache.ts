/**
 * V8 code caches of the glue the sandbox workers compile (glue-script.mjs), handed to each worker that
 * loads the same glue: V8 then skips compiling what the cache holds. A glue's cache is made once, after
 * its first start (off that start's critical path), so the next start of the same glue (a restart, a
 * crash restart, a second instance) gets it; nothing is written to disk: the sealed transpile cache stays
 * the only one. V8 accepts a cache only for the very text and V8 flags it was made with, and compiles
 * afresh otherwise.
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

/** Glue texts remembered (a rehearsed cache is ~100–250 KB); the oldest goes first. */
const MAX_ENTRIES = 32;
/** How long after a glue's first start its cache is made (the start's own work goes first). */
const MAKE_AFTER_MS = 50;
/** A rehearsal that has not answered by then is ended; the compile-only cache is made instead. */
const REHEARSAL_TIMEOUT_MS = 10_000;
/** By glue text; null while it is being made, or when the glue does not compile (the worker fails it too). */
const caches = new Map<string, Uint8Array | null>();

/** The code cache of this glue if there is one; otherwise undefined, and one is made soon. */
export function glueCodeCache(source: string): Uint8Array | undefined {
  const cached = caches.get(source);
  if (cached !== undefined) return cached ?? undefined;
  caches.set(source, null);
  if (caches.size > MAX_ENTRIES) caches.delete(caches.keys().next().value!);
  setTimeout(() => {
    if (!caches.has(source)) return;
    void rehearsed(source).catch(() => compiledOnly(source)).then((data) => {
      if (caches.has(source) && data) caches.set(source, data);
    });
  }, MAKE_AFTER_MS).unref();
  return undefined;
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
