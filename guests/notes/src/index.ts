/**
 * notes: a module that keeps small text files in its own data directory, `/data` (the one directory
 * `wasi:filesystem/data` preopens: `<state_dir>/modules/<name>/data` on the host, kept across restarts).
 *   write {"name", "text"} → {"bytes": n}      (creates or replaces /data/<name>)
 *   read  {"name"}         → {"text"}
 *   list                   → {"names": [...]}   (the entries of /data, sorted)
 * A filesystem error is the `err` answer: "<method> <name>: <error-code>" (e.g. `not-permitted` for a
 * name with `..` or `/`, which the host refuses to resolve outside /data).
 * Built for the `notes` world (guests/notes/world.wit). The engine adds imports of its own when it
 * links the filesystem (wasi:cli/stdin/stdout/stderr, wasi:clocks/wall-clock): grant
 * `wasi:filesystem/data`, `wasi:cli/stdio` and `wasi:clocks` (see guests/README.md).
 */
/// <reference path="../types/notes.d.ts" />
import { log } from 'edgeward:module/logging@0.1.0';
import { getDirectories } from 'wasi:filesystem/preopens@0.2.12';
import type { Descriptor } from 'wasi:filesystem/types@0.2.12';

/** Largest note read back, bytes (the host caps the whole directory at 16 MiB). */
const MAX_NOTE_BYTES = 64 * 1024;

/** The preopened `/data` directory. */
function dataDir(): Descriptor {
  const data = getDirectories().find(([, p]) => p === '/data');
  if (!data) throw 'no /data directory: grant "wasi:filesystem/data"';
  return data[0];
}

/** A WASI filesystem error (jco throws the WIT error-code as `payload`) as the `err` answer. */
function failure(method: string, name: string, err: unknown): string {
  const code = (err as { payload?: unknown } | null)?.payload;
  return `${method} ${name}: ${typeof code === 'string' ? code : String(err)}`;
}

function write(name: string, text: string): { bytes: number } {
  const bytes = new TextEncoder().encode(text);
  const file = dataDir().openAt({}, name, { create: true, truncate: true }, { write: true });
  let done = 0;
  while (done < bytes.length) done += Number(file.write(bytes.subarray(done), BigInt(done)));
  log('info', `wrote ${done} bytes to /data/${name}`);
  return { bytes: done };
}

function read(name: string): { text: string } {
  const file = dataDir().openAt({}, name, {}, { read: true });
  const [bytes] = file.read(BigInt(MAX_NOTE_BYTES), 0n);
  return { text: new TextDecoder().decode(bytes) };
}

function list(): { names: string[] } {
  const entries = dataDir().readDirectory();
  const names: string[] = [];
  for (let e = entries.readDirectoryEntry(); e; e = entries.readDirectoryEntry()) names.push(e.name);
  return { names: names.sort() };
}

export const lifecycle = {
  start(_config: string): void {
    log('info', 'notes started');
  },
  stop(): void {},
  invoke(method: string, payload: string): string {
    // The host sends "null" for a call without payload (JSON.parse gives null, not {}).
    const args = ((payload ? JSON.parse(payload) : null) ?? {}) as { name?: string; text?: string };
    const name = args.name ?? '';
    try {
      switch (method) {
        case 'write': return JSON.stringify(write(name, args.text ?? ''));
        case 'read': return JSON.stringify(read(name));
        case 'list': return JSON.stringify(list());
        default: throw `unknown method "${method}"`;
      }
    } catch (err) {
      throw typeof err === 'string' ? err : failure(method, name, err);
    }
  },
};
