/**
 * Per-module logs, kept by the host (a guest only ever appends to its own): one file per module with
 * size-based rotation (`module.log`, `module.log.1` … `.N`), read back with tail/since/until and
 * followed live. Lines are `RFC3339 LEVEL message`; control characters from the guest are replaced so a
 * module cannot forge another line or a terminal escape.
 */
import { appendFileSync, mkdirSync, promises as fs, renameSync, statSync, rmSync } from 'node:fs';
import { EventEmitter, on } from 'node:events';
import path from 'node:path';
import type { LogQuery } from './types.js';
import type { LogLevel } from './capabilities.js';

export const DEFAULT_MAX_LOG_BYTES = 1024 * 1024;
export const DEFAULT_LOG_FILES = 3;
/** tail is capped so one request cannot make the daemon hold a whole log history in memory twice. */
export const MAX_TAIL_LINES = 100_000;

const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f\u009b]/g;

export interface LogStoreOptions {
  maxBytes?: number;
  files?: number;
}

export class ModuleLog {
  private size: number;
  private readonly file: string;
  private readonly events = new EventEmitter();

  constructor(readonly dir: string, private readonly opts: Required<LogStoreOptions>) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.file = path.join(dir, 'module.log');
    this.size = statSync(this.file, { throwIfNoEntry: false })?.size ?? 0;
    this.events.setMaxListeners(0);
  }

  /** Append one message (split on newlines) at `level`. */
  append(level: LogLevel, message: string): void {
    const ts = new Date().toISOString();
    const lvl = level.toUpperCase().slice(0, 5).padEnd(5);
    const lines = message.split(/\r?\n/).map((l) => `${ts} ${lvl} ${l.replace(CONTROL, '\uFFFD')}`);
    const text = lines.join('\n') + '\n';
    if (this.size + text.length > this.opts.maxBytes && this.size > 0) this.rotate();
    appendFileSync(this.file, text, { mode: 0o600 });
    this.size += Buffer.byteLength(text);
    for (const l of lines) this.events.emit('line', l);
  }

  private rotate(): void {
    const n = this.opts.files;
    rmSync(`${this.file}.${n - 1}`, { force: true });
    for (let i = n - 2; i >= 1; i--) {
      try { renameSync(`${this.file}.${i}`, `${this.file}.${i + 1}`); } catch { /* missing */ }
    }
    if (n > 1) renameSync(this.file, `${this.file}.1`);
    else rmSync(this.file, { force: true });
    this.size = 0;
  }

  /** Files oldest first. */
  async files(): Promise<string[]> {
    const out: string[] = [];
    for (let i = this.opts.files - 1; i >= 1; i--) out.push(`${this.file}.${i}`);
    out.push(this.file);
    const present: string[] = [];
    for (const f of out) if (await fs.stat(f).catch(() => undefined)) present.push(f);
    return present;
  }

  /** Stored lines matching the query, then (with `follow`) new lines until `signal` aborts. */
  async *read(query: LogQuery): AsyncGenerator<string> {
    // Subscribe before reading the files so no line falls between the two.
    const live = query.follow ? on(this.events, 'line', { signal: query.signal }) : undefined;
    const lines: string[] = [];
    for (const f of await this.files()) {
      const text = await fs.readFile(f, 'utf8').catch(() => '');
      for (const l of text.split('\n')) if (l && inRange(l, query)) lines.push(l);
    }
    const tail = Math.min(query.tail ?? MAX_TAIL_LINES, MAX_TAIL_LINES);
    yield* lines.slice(Math.max(0, lines.length - tail));
    if (!live) return;
    try {
      for await (const [l] of live as AsyncIterable<[string]>) if (inRange(l, query)) yield l;
    } catch (err) {
      if ((err as Error).name !== 'AbortError') throw err;
    }
  }

  /** Delete the files (module removed). */
  async remove(): Promise<void> {
    await fs.rm(this.dir, { recursive: true, force: true });
  }
}

function inRange(line: string, q: LogQuery): boolean {
  if (!q.since && !q.until) return true;
  const t = Date.parse(line.slice(0, 24));
  if (Number.isNaN(t)) return true;
  return (!q.since || t >= q.since.getTime()) && (!q.until || t <= q.until.getTime());
}

/** Opens one ModuleLog per module under `<root>/<name>/`. */
export class LogStore {
  private readonly logs = new Map<string, ModuleLog>();
  private readonly opts: Required<LogStoreOptions>;

  constructor(private readonly root: string, opts: LogStoreOptions = {}) {
    this.opts = { maxBytes: opts.maxBytes ?? DEFAULT_MAX_LOG_BYTES, files: opts.files ?? DEFAULT_LOG_FILES };
  }

  for(module: string): ModuleLog {
    let log = this.logs.get(module);
    if (!log) {
      log = new ModuleLog(path.join(this.root, module), this.opts);
      this.logs.set(module, log);
    }
    return log;
  }

  async remove(module: string): Promise<void> {
    await this.for(module).remove();
    this.logs.delete(module);
  }
}
