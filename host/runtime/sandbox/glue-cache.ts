/**
 * V8 code caches of the glue the sandbox workers compile (glue-script.mjs), made on the daemon's thread
 * from the verified glue text (compiled, never run here) and handed to each worker that loads the same
 * glue: a tiny component's glue then compiles in well under 1 ms instead of ~4 ms, a bigger one's in
 * proportion. Nothing a worker sends back feeds a cache (a guest cannot touch another instance's code),
 * and nothing is written to disk: the sealed transpile cache stays the only one. V8 accepts a cache only
 * for the very text and V8 flags it was made with, and compiles afresh otherwise.
 *
 * A glue's first start goes without (its cache is made just after, off that start's critical path), so
 * the next start of the same glue (a restart, a crash restart, a second instance) gets it.
 */
import { Script } from 'node:vm';
import { glue } from './shared.js';

/** Glue texts remembered (a few KB of cache each); the oldest goes first. */
const MAX_ENTRIES = 32;
/** How long after a glue's first start its cache is made (the start's own work goes first). */
const MAKE_AFTER_MS = 50;
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
    try {
      caches.set(source, new Script(glue.glueScript(source), { filename: glue.GLUE_FILENAME }).createCachedData());
    } catch {
      // Glue that does not compile has no cache; its worker refuses it the same way.
    }
  }, MAKE_AFTER_MS).unref();
  return undefined;
}

/** Forget every cache (tests). */
export function clearGlueCodeCaches(): void {
  caches.clear();
}
