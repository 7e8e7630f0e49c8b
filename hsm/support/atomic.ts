/**
 * Crash-safe file writes for the state directory.
 *
 * Every write goes temp file → fsync(file) → rename → fsync(directory), so a SIGKILL at any instant
 * leaves either the old or the new content under the final name, never a prefix of the new one
 * (POSIX rename(2) is atomic within one file system; the directory fsync makes the rename durable).
 */
import { promises as fs, constants as fsc } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

/** Mode for secret-bearing state files: owner read/write only. */
export const SECRET_FILE_MODE = 0o600;

/** Write `data` to `file` atomically with the given mode (default 0600). */
export async function writeFileAtomic(
  file: string,
  data: string | Uint8Array,
  mode: number = SECRET_FILE_MODE,
): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await fs.open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, mode);
  try {
    await fh.writeFile(data);
    await fh.chmod(mode); // umask may have narrowed or widened the create mode
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dir);
}

/** fsync a directory so that a rename or unlink inside it survives power loss. */
export async function fsyncDir(dir: string): Promise<void> {
  const dh = await fs.open(dir, fsc.O_RDONLY);
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/** Remove a file and make the removal durable. Missing files are fine. */
export async function removeFileDurable(file: string): Promise<void> {
  await fs.rm(file, { force: true });
  await fsyncDir(path.dirname(file));
}

/**
 * Remove temp files left behind by writers that were killed between create and rename.
 * Returns the names removed, so startup can log what it reconciled.
 */
export async function sweepTempFiles(dir: string): Promise<string[]> {
  const removed: string[] = [];
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    if (name.startsWith('.') && name.endsWith('.tmp')) {
      await fs.rm(path.join(dir, name), { force: true });
      removed.push(name);
    }
  }
  if (removed.length > 0) await fsyncDir(dir);
  return removed;
}
