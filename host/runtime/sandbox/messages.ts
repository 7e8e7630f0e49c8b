/**
 * What a sandbox worker posts to the daemon (worker.mjs `post`). The worker runs the guest, so every
 * message is untrusted: checkReply checks it before the instance looks at it.
 */
import type { LogLevel } from '../capabilities.js';

/** Where a start's time went, in ms (worker side). */
export interface StartTimings { link: number; instantiate: number; start: number }

/**
 * A worker's answer to a `memory` probe, in bytes: its linear memories (their byte length: grown, not
 * necessarily resident), its V8 heap (used, total, limit), and its other off-heap memory (V8 external
 * memory besides the linear memories, plus malloced; approximate: V8 updates its external count lazily,
 * e.g. after a memory grew page by page, until its next GC).
 */
export interface WorkerMemory { linear: number; heapUsed: number; heapTotal: number; heapLimit: number; external: number }
const WORKER_MEMORY_FIELDS = ['linear', 'heapUsed', 'heapTotal', 'heapLimit', 'external'] as const;

/** One checked message from a worker, or the host's own `ended` (pending calls of an instance that ended). */
export type Reply = { id?: number; t: string; value?: string; message?: string; code?: number; level?: LogLevel; timings?: StartTimings; memory?: WorkerMemory };

/** The WIT `edgeward:module/logging.level` cases; `satisfies` keeps the list inside the generated type. */
const LOG_LEVELS: ReadonlySet<string> = new Set(['trace', 'debug', 'info', 'warn', 'error'] satisfies LogLevel[]);
/** What a sandbox worker may post (worker.mjs); `ended` is the host's own and never accepted from it. */
const WORKER_REPLIES: ReadonlySet<string> = new Set(['log', 'loaded', 'started', 'ok', 'guest-error', 'trap', 'exit', 'start-failed', 'start-error', 'memory']);

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
  if (r.t === 'memory' || r.memory !== undefined) {
    const mem = r.memory as Record<string, unknown> | null;
    if (typeof mem !== 'object' || mem === null || !WORKER_MEMORY_FIELDS.every((k) => Number.isSafeInteger(mem[k]) && (mem[k] as number) >= 0)) return '"memory" is malformed';
  }
  return r as Reply;
}

/** A short, bounded description of an untrusted value (for a trap reason, which goes to the module log). */
export function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (v === null || typeof v !== 'object') return typeof v === 'number' || typeof v === 'boolean' ? `${typeof v} ${String(v)}` : typeof v;
  return Array.isArray(v) ? 'an array' : 'an object';
}
