/**
 * The state directory: created 0700, refused when its permissions are unsafe, held by one daemon at a
 * time, and read only through `readStateFile`, which refuses files others can read or write.
 */
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { StartupError } from '../errors.js';
import { sweepTempFiles, writeFileAtomic } from './atomic.js';
import { UnsafePermissionsError, writeStateJson } from '../../hsm/support/state-file.js';

export { UnsafePermissionsError, readStateFile, readStateJson, writeStateJson } from '../../hsm/support/state-file.js';

/** Create the state directory (0700) if missing; refuse it if others may write to it or it is not ours. */
export async function prepareStateDir(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await checkDirSafe(dir);
}

/**
 * With the lock held: refuse unsafe files, and remove temp files that a killed writer left behind
 * (only the lock holder may do that: another daemon's write could be in flight otherwise).
 */
export async function reconcileStateDir(dir: string): Promise<string[]> {
  await checkTreeSafe(dir, STATE_SCAN_DEPTH);
  return sweepTempFiles(dir);
}

/** How deep the startup scan looks for unsafe files (state keeps its secrets in the first levels). */
const STATE_SCAN_DEPTH = 2;

/**
 * Refuse the state directory if any file in it (to `depth` levels) can be read or written by others, or
 * any directory written by others: a key or token there may have leaked or been planted.
 */
export async function checkTreeSafe(dir: string, depth: number): Promise<void> {
  const entries = await fs.readdir(dir, { withFileTypes: true });
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isSymbolicLink()) throw new StartupError(`${p} is a symbolic link; the state directory must not contain links`);
    if (e.isDirectory()) {
      const st = await fs.stat(p);
      if (st.mode & 0o022) throw new UnsafePermissionsError(p, st.mode, `run "chmod go-w ${p}"`);
      if (depth > 1) await checkTreeSafe(p, depth - 1);
    } else if (e.isFile()) {
      const st = await fs.stat(p);
      if (st.mode & 0o077) throw new UnsafePermissionsError(p, st.mode, `run "chmod 600 ${p}"`);
    }
  }
}

export async function checkDirSafe(dir: string): Promise<void> {
  const st = await fs.lstat(dir);
  if (st.isSymbolicLink()) throw new StartupError(`state directory ${dir} is a symbolic link; use the real path`);
  if (!st.isDirectory()) throw new StartupError(`state directory ${dir} is not a directory`);
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) {
    throw new StartupError(`state directory ${dir} is owned by uid ${st.uid}, not by this user (uid ${process.getuid()}): chown it or choose another state_dir`);
  }
  if (st.mode & 0o022) throw new UnsafePermissionsError(dir, st.mode, `run "chmod go-w ${dir}" (0700 recommended)`);
}

/** Make a subdirectory of the state dir (0700). */
export async function ensureSubdir(stateDir: string, name: string): Promise<string> {
  const dir = path.join(stateDir, name);
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await checkDirSafe(dir);
  await sweepTempFiles(dir);
  return dir;
}

/**
 * One state file rewritten whole on every change: writes are serialised (each waits for the previous, so
 * the last snapshot wins on disk) and a failed write does not wedge the ones after it.
 */
export class SerialStateFile {
  private writing: Promise<void> = Promise.resolve();

  constructor(readonly file: string) {}

  write(value: unknown): Promise<void> {
    const next = this.writing.then(() => writeStateJson(this.file, value));
    this.writing = next.catch(() => undefined);
    return next;
  }
}

export interface StateLock {
  release(): Promise<void>;
}

/**
 * One daemon per state directory. The lock is a Linux abstract-namespace Unix socket named after the
 * state directory's real path: the kernel releases it when the holder dies, even by SIGKILL, so there is
 * never a stale lock to guess about (unlike pid files). `daemon.pid` beside it tells who holds it.
 */
export async function acquireStateLock(stateDir: string): Promise<StateLock> {
  const real = await fs.realpath(stateDir);
  const name = '\0edgeward-state-' + createHash('sha256').update(real).digest('hex').slice(0, 32);
  const pidFile = path.join(stateDir, 'daemon.pid');
  const server = net.createServer((sock) => sock.end(`${process.pid}\n`));
  await new Promise<void>((resolve, reject) => {
    server.once('error', async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EADDRINUSE') return reject(err);
      const holder = (await fs.readFile(pidFile, 'utf8').catch(() => '')).trim();
      reject(new StartupError(`another Edgeward daemon${holder ? ` (pid ${holder})` : ''} is already using the state directory ${stateDir}; stop it first or use another state_dir`, 1));
    });
    server.listen(name, () => resolve());
  });
  server.unref();
  await writeFileAtomic(pidFile, `${process.pid}\n`);
  return {
    async release() {
      await fs.rm(pidFile, { force: true });
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
