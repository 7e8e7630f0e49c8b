/**
 * Helpers for the API reliability tests: start `api-server.ts` in a child process, speak raw bytes to a
 * Unix socket (no client library between the test and the server's parser), and read the server's
 * resident memory from /proc (VmHWM, the peak, reset through `clear_refs`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HttpLimits } from '../../host/api/serve.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');

export interface ApiServer {
  pid: number;
  limits: HttpLimits;
  management: string;
  managementDefault: string;
  sharedWorkload: string;
  modules: Record<'flood' | 'calm' | 'fuzz', { socket: string; genid: string }>;
  child: ChildProcess;
  /** The child's stderr so far (its error log). */
  stderr(): string;
  exited(): boolean;
  stop(): Promise<void>;
}

/** Start the API front ends in a child process with `limits` (the rest are the shipped defaults). */
export async function startApiServer(limits: Partial<HttpLimits>, timeoutMs = 25_000): Promise<ApiServer> {
  const home = mkdtempSync(path.join(os.tmpdir(), 'ewr-'));
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(HERE, 'api-server.ts'), home, JSON.stringify(limits)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let exited = false;
  const exit = new Promise<void>((r) => child.once('exit', () => ((exited = true), r())));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const ready = await new Promise<Omit<ApiServer, 'child' | 'stderr' | 'exited' | 'stop'>>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`api-server not ready in ${timeoutMs} ms:\n${out}\n${err}`)), timeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{"ready"'));
      if (line) (clearTimeout(t), resolve(JSON.parse(line)));
    });
    void exit.then(() => (clearTimeout(t), reject(new Error(`api-server exited:\n${out}\n${err}`))));
  });
  return {
    ...ready,
    child,
    stderr: () => err,
    exited: () => exited,
    async stop() {
      if (!exited) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exit;
      clearTimeout(t);
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** Resident set and its peak (bytes) of a process, from /proc/<pid>/status. */
export function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

/** Reset the peak RSS (VmHWM) to the current RSS (Linux `clear_refs` 5). */
export function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

/** Run `fn` and return how far the server's peak RSS rose above its RSS before (bytes). */
export async function peakRssDelta<T>(pid: number, fn: () => Promise<T>): Promise<{ value: T; delta: number }> {
  resetPeak(pid);
  const before = memoryOf(pid).rss;
  const value = await fn();
  return { value, delta: memoryOf(pid).peak - before };
}

export interface Exchange {
  /** Status codes of the responses received, in order. */
  statuses: number[];
  /** The first bytes received (up to 64 KiB). */
  head: string;
  /** The server closed (or reset) the connection. */
  closed: boolean;
  /** Nothing ended the exchange within the bound: a hang. */
  timedOut: boolean;
  /** ms from connect to the first response byte, and to the end of the exchange. */
  firstByteMs: number | undefined;
  ms: number;
  error?: string;
}

export interface ExchangeOptions {
  /** What to write: bytes, or a writer that may trickle (it should stop once `done()` is true). */
  send: Buffer | string | ((sock: net.Socket, done: () => boolean) => Promise<void>);
  /** Half-close after sending (the server then answers what it has and closes). */
  end?: boolean;
  /** End the exchange as soon as this many responses' status lines have arrived. */
  responses?: number;
  timeoutMs: number;
}

/** One raw exchange on a Unix socket, measured. Never rejects. */
export function exchange(socketPath: string, o: ExchangeOptions): Promise<Exchange> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let head = '';
    let firstByteMs: number | undefined;
    let finished = false;
    let error: string | undefined;
    const sock = net.connect(socketPath);
    const statuses = () => [...head.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));
    const finish = (closed: boolean, timedOut: boolean) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ statuses: statuses(), head, closed, timedOut, firstByteMs, ms: performance.now() - t0, ...(error ? { error } : {}) });
    };
    const timer = setTimeout(() => finish(false, true), o.timeoutMs);
    sock.on('data', (d: Buffer) => {
      firstByteMs ??= performance.now() - t0;
      if (head.length < 65536) head += d.toString('latin1');
      if (o.responses !== undefined && statuses().length >= o.responses) finish(false, false);
    });
    sock.on('error', (e: NodeJS.ErrnoException) => (error ??= e.code ?? e.message));
    sock.on('close', () => finish(true, false));
    sock.on('connect', () => {
      void (async () => {
        try {
          if (typeof o.send === 'function') await o.send(sock, () => finished || sock.destroyed);
          else await write(sock, o.send);
          if (o.end && !sock.destroyed) sock.end();
        } catch (e) {
          error ??= (e as NodeJS.ErrnoException).code ?? (e as Error).message;
        }
      })();
    });
  });
}

/** Write with backpressure; resolves false if the socket is gone. */
export function write(sock: net.Socket, data: Buffer | string): Promise<boolean> {
  return new Promise((resolve) => {
    if (sock.destroyed || !sock.writable) return resolve(false);
    if (sock.write(data)) return resolve(true);
    const onDrain = () => (sock.off('close', onClose), resolve(true));
    const onClose = () => (sock.off('drain', onDrain), resolve(false));
    sock.once('drain', onDrain);
    sock.once('close', onClose);
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** p-th percentile (0..100) of samples. */
export function percentile(samples: number[], p: number): number {
  const s = [...samples].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
