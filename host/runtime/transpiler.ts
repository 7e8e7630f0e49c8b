/**
 * One transpiler thread, started on demand and ended after a quiet minute (jco holds tens of MB). Calls
 * queue on it; the daemon's event loop stays free while a component is transpiled.
 */
import { Worker } from 'node:worker_threads';
import { assetPath } from './assets.js';

export interface Transpiled {
  files: Record<string, Uint8Array>;
  imports: string[];
  exports: string[];
}

const IDLE_MS = 60_000;
const OPTIONS = { name: 'component', instantiation: 'async', base64Cutoff: 0, noTypescript: true, quiet: true };

let worker: Worker | undefined;
let idle: NodeJS.Timeout | undefined;
let nextId = 1;
const pending = new Map<number, { bytes: Uint8Array; resolve: (t: Transpiled) => void; reject: (e: Error) => void }>();

/**
 * jco's transpiler is a component itself: once it traps (a Rust panic on input it cannot handle, e.g. a
 * `latin1+utf16` string encoding), its instance refuses every later call ("cannot enter component
 * instance"). Such a thread is retired and what was queued on it is sent to a fresh one, so one bad
 * component does not make every later deploy fail.
 */
const POISONED = /wasm trap|unreachable|cannot enter component instance/;

function retire(w: Worker): void {
  if (worker !== w) return;
  worker = undefined;
  void w.terminate();
  if (pending.size === 0) return;
  const fresh = thread();
  for (const [id, p] of pending) fresh.postMessage({ id, bytes: p.bytes, options: OPTIONS });
}

function failAll(err: Error): void {
  for (const p of pending.values()) p.reject(err);
  pending.clear();
  worker = undefined;
}

function thread(): Worker {
  if (worker) return worker;
  const w = new Worker(assetPath('host/runtime/transpile.worker.mjs'), { env: {}, execArgv: [] });
  w.on('message', (m: { id: number; error?: string } & Partial<Transpiled>) => {
    if (worker !== w) return; // retired: what it had queued was sent again
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (!p) return;
    if (m.error !== undefined) {
      p.reject(new Error(m.error));
      if (POISONED.test(m.error)) return retire(w);
    } else p.resolve({ files: m.files ?? {}, imports: m.imports ?? [], exports: m.exports ?? [] });
    if (pending.size === 0) {
      w.unref();
      idle = setTimeout(() => { if (worker === w && pending.size === 0) void w.terminate(); }, IDLE_MS);
      idle.unref();
    }
  });
  w.on('error', (err: Error) => { if (worker === w) failAll(err); });
  w.on('exit', (code) => { if (worker === w) failAll(new Error(`transpiler thread exited (${code})`)); });
  worker = w;
  return w;
}

/** Transpile component bytes with jco (async instantiation, core modules as separate files). */
export function transpileComponent(bytes: Uint8Array): Promise<Transpiled> {
  if (idle) clearTimeout(idle);
  const w = thread();
  w.ref();
  const id = nextId++;
  return new Promise<Transpiled>((resolve, reject) => {
    pending.set(id, { bytes, resolve, reject });
    w.postMessage({ id, bytes, options: OPTIONS });
  });
}
