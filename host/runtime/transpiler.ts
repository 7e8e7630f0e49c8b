/**
 * jco's transpiler in one child process, started on demand and ended after 15 quiet seconds. Calls queue on
 * it; the daemon's event loop stays free while a component is transpiled.
 *
 * A process, not a thread, for two reasons measured on this 2-core machine (hello's stubbed component,
 * a cold transpiler):
 * - jco's transpiler is 3.5 MB of WebAssembly that runs once per component. Under V8's default dynamic
 *   tiering it spends its first calls compiling hot functions with TurboFan; with `--liftoff-only` (a
 *   process-wide flag, so not for the daemon's own guests) `generate` took 194–262 ms against 425–556 ms,
 *   and 0.65–0.69 s of CPU against 1.2–1.4 s.
 * - What it allocates (~80 MiB at its peak) goes back to the system when it exits; a thread's stayed in
 *   the daemon's heap.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { assetPath } from './assets.js';

export interface Transpiled {
  files: Record<string, Uint8Array>;
  imports: string[];
  exports: string[];
}

/** A deployment's components queue on one process; it ends this long after the last (~80 MiB while it runs). */
let idleMs = 15_000;
/** The transpiler's V8: Liftoff only (above), and the daemon's own size setting. */
export const TRANSPILER_FLAGS = ['--liftoff-only', '--optimize-for-size'];

let child: ChildProcess | undefined;
let idle: NodeJS.Timeout | undefined;
let nextId = 1;
const pending = new Map<number, { bytes: Uint8Array; resolve: (t: Transpiled) => void; reject: (e: Error) => void }>();

/**
 * jco's transpiler is a component itself: once it traps (a Rust panic on input it cannot handle, e.g. a
 * `latin1+utf16` string encoding), its instance refuses every later call ("cannot enter component
 * instance"). Such a process is retired and what was queued on it is sent to a fresh one, so one bad
 * component does not make every later deploy fail.
 */
const POISONED = /wasm trap|unreachable|cannot enter component instance/;

function retire(c: ChildProcess): void {
  if (child !== c) return;
  child = undefined;
  c.kill('SIGKILL');
  if (pending.size === 0) return;
  const fresh = spawnTranspiler();
  for (const [id, p] of pending) fresh.send({ id, bytes: p.bytes });
}

function failAll(err: Error): void {
  for (const p of pending.values()) p.reject(err);
  pending.clear();
  child = undefined;
}

function spawnTranspiler(): ChildProcess {
  if (child) return child;
  // No environment (NODE_OPTIONS and the like stay the daemon's), no inherited flags (a test's tsx loader),
  // no stdio but the channel: what it has to say comes back as a message.
  const c = fork(assetPath('host/runtime/transpile.child.mjs'), [], {
    execPath: process.execPath,
    execArgv: TRANSPILER_FLAGS,
    env: {},
    serialization: 'advanced',
    stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
  });
  c.on('message', (m: { id: number; error?: string } & Partial<Transpiled>) => {
    if (child !== c) return; // retired: what it had queued was sent again
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (!p) return;
    if (m.error !== undefined) {
      p.reject(new Error(m.error));
      if (POISONED.test(m.error)) return retire(c);
    } else p.resolve({ files: m.files ?? {}, imports: m.imports ?? [], exports: m.exports ?? [] });
    if (pending.size === 0) quiet(c);
  });
  c.on('error', (err: Error) => { if (child === c) failAll(err); });
  c.on('exit', (code, signal) => { if (child === c) failAll(new Error(`transpiler process exited (${signal ?? code})`)); });
  child = c;
  return c;
}

/** Nothing queued: the daemon may exit without waiting for it, and it ends after a quiet spell. */
function quiet(c: ChildProcess): void {
  c.unref();
  c.channel?.unref();
  idle = setTimeout(() => { if (child === c && pending.size === 0) { child = undefined; c.disconnect(); } }, idleMs);
  idle.unref();
}

/** Transpile component bytes with jco (async instantiation, core modules as separate files). */
export function transpileComponent(bytes: Uint8Array): Promise<Transpiled> {
  if (idle) clearTimeout(idle);
  const c = spawnTranspiler();
  c.ref();
  c.channel?.ref();
  const id = nextId++;
  return new Promise<Transpiled>((resolve, reject) => {
    pending.set(id, { bytes, resolve, reject });
    c.send({ id, bytes });
  });
}

/** How long the transpiler may stay quiet before it ends (tests shorten it). */
export function setTranspilerIdleMs(ms: number): void {
  idleMs = ms;
}

/** The transpiler process's pid, if one runs (tests). */
export function transpilerPid(): number | undefined {
  return child?.pid;
}
