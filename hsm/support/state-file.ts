/**
 * State files read and written safely (below both layers: the roots of trust keep state too): a state file
 * is read only if no one else can read or write it and it is not a symlink; JSON is written atomically.
 */
import { promises as fs } from 'node:fs';
import { StartupError } from './errors.js';
import { writeFileAtomic } from './atomic.js';

/** Unsafe state permissions: refused with a message and a one-line fix. */
export class UnsafePermissionsError extends StartupError {
  constructor(file: string, mode: number, fix: string) {
    super(`unsafe permissions ${(mode & 0o777).toString(8).padStart(4, '0')} on ${file}: ${fix}`, 2, fix);
    this.name = 'UnsafePermissionsError';
  }
}

/**
 * Read a state file, refusing one that others can read or write (a key or token there may have leaked
 * or been planted) or that is a symlink. Returns undefined if the file does not exist.
 */
export async function readStateFile(file: string): Promise<Buffer | undefined> {
  let st;
  try {
    st = await fs.lstat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  if (st.isSymbolicLink()) throw new StartupError(`state file ${file} is a symbolic link; refusing to follow it`);
  if (st.mode & 0o077) throw new UnsafePermissionsError(file, st.mode, `run "chmod 600 ${file}"`);
  return fs.readFile(file);
}

/** Write a JSON state file atomically (0600). */
export async function writeStateJson(file: string, value: unknown): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
}

export async function readStateJson<T>(file: string): Promise<T | undefined> {
  const buf = await readStateFile(file);
  if (!buf) return undefined;
  try {
    return JSON.parse(buf.toString('utf8')) as T;
  } catch (err) {
    throw new StartupError(`state file ${file} is not valid JSON (${(err as Error).message}); it was not written by Edgeward's atomic writer — move it away to reset it`, 1);
  }
}
