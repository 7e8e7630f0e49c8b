// The module's data directory on the host, for wasi:filesystem (worker.mjs): path resolution confined
// to it, the errno → WIT error-code mapping, stat, and what it already holds against the quota.
//
// Confinement is the host's, never the guest's: every path is resolved here, component by component,
// relative to the descriptor it is opened from. Absolute paths, `..` past that descriptor, and any
// symbolic link on the way are refused with `not-permitted` (wasmtime/cap-std answer escapes the same
// way). Symlinks are refused outright rather than resolved: the guest cannot create one (`symlink-at`,
// `link-at` → `not-permitted`), an existing one (planted from outside) is never followed (lstat on every
// intermediate component, O_NOFOLLOW on the last), and `readlink-at` does not reveal its target. Node has
// no openat(2), so the lstat walk is a check-then-use: it holds against the guest (the only writer of the
// directory that runs code in it), not against another local process racing it.
import fs from 'node:fs';
import path from 'node:path';

/** What one file or directory entry costs against the quota, besides its contents. */
export const ENTRY_BYTES = 512;
/** Longest path a guest may pass (bytes of UTF-8), like PATH_MAX. */
export const MAX_PATH_BYTES = 4096;

const { O_NOFOLLOW } = fs.constants;

/** @type {Record<string, string | undefined>} */
const ERRNO = {
  ENOENT: 'no-entry', EEXIST: 'exist', ENOTDIR: 'not-directory', EISDIR: 'is-directory', ENOTEMPTY: 'not-empty',
  EACCES: 'access', EPERM: 'not-permitted', ELOOP: 'not-permitted', ENAMETOOLONG: 'name-too-long',
  ENOSPC: 'insufficient-space', EDQUOT: 'quota', EINVAL: 'invalid', EBADF: 'bad-descriptor', EFBIG: 'file-too-large',
  EXDEV: 'cross-device', EBUSY: 'busy', EROFS: 'read-only',
};

/**
 * Run a host fs call; an errno becomes the WIT `error-code` (thrown as jco expects), anything else traps.
 * @template T @param {() => T} fn @returns {T}
 */
export function sys(fn) {
  try {
    return fn();
  } catch (err) {
    if (typeof err === 'string') throw err;
    const code = /** @type {{ code?: unknown } | null | undefined} */ (err)?.code;
    if (typeof code === 'string' && code.startsWith('E')) throw ERRNO[code] ?? 'io';
    throw err;
  }
}

/** @param {string} p @returns {fs.BigIntStats | null} */
function lstatOrNull(p) {
  try {
    return fs.lstatSync(p, { bigint: true });
  } catch (err) {
    if (/** @type {NodeJS.ErrnoException} */ (err).code === 'ENOENT') return null;
    return sys(() => { throw err; });
  }
}

/** The WIT descriptor-type of an entry. @param {fs.BigIntStats | fs.Dirent} st */
export function typeOf(st) {
  if (st.isFile()) return 'regular-file';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symbolic-link';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'character-device';
  if (st.isBlockDevice()) return 'block-device';
  return 'unknown';
}

/** @param {bigint} ns */
const timestamp = (ns) => ({ seconds: ns / 1_000_000_000n, nanoseconds: Number(ns % 1_000_000_000n) });

/** The WIT descriptor-stat of an entry. @param {fs.BigIntStats} st */
export function statOf(st) {
  return {
    type: typeOf(st),
    linkCount: st.nlink,
    size: st.size,
    dataAccessTimestamp: timestamp(st.atimeNs),
    dataModificationTimestamp: timestamp(st.mtimeNs),
    statusChangeTimestamp: timestamp(st.ctimeNs),
  };
}

/** Bytes charged for what is already in `dir` (not following links). @param {string} dir @returns {number} */
export function measure(dir) {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    total += ENTRY_BYTES;
    if (e.isDirectory()) total += measure(p);
    else if (e.isFile()) total += fs.lstatSync(p).size;
  }
  return total;
}

/** Create the data directory (and its parent) 0700 if missing; refuse one that is not a real directory. @param {string} dir */
export function ensureDataDir(dir) {
  fs.mkdirSync(path.dirname(dir), { recursive: true, mode: 0o700 });
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if (/** @type {NodeJS.ErrnoException} */ (err).code !== 'EEXIST') throw err;
  }
  if (!fs.lstatSync(dir).isDirectory()) throw new Error(`data directory ${dir} is not a directory`);
}

/**
 * Path resolution confined to `root` (see the header). A place below root is its components (`parts`).
 * @param {string} root
 */
export function confined(root) {
  /** Every directory above the last component of `full` is a real directory (never a link). @param {string[]} full */
  function walk(full) {
    for (let i = 1; i < full.length; i++) {
      const st = lstatOrNull(path.join(root, ...full.slice(0, i)));
      if (!st) throw 'no-entry';
      if (st.isSymbolicLink()) throw 'not-permitted';
      if (!st.isDirectory()) throw 'not-directory';
    }
  }

  /**
   * Resolve `p` under the directory `parts` (components below root): lexical, refusing absolute paths
   * and `..` past the descriptor, with every intermediate component lstat'ed (a link → not-permitted).
   * Returns the components of the target and the lstat of the last one (null when it does not exist).
   * @param {string[]} parts @param {unknown} p
   */
  function resolve(parts, p) {
    if (typeof p !== 'string') throw 'invalid';
    if (Buffer.byteLength(p, 'utf8') > MAX_PATH_BYTES) throw 'name-too-long';
    if (p.includes('\0')) throw 'invalid';
    if (p.startsWith('/')) throw 'not-permitted';
    /** @type {string[]} */
    const rel = [];
    for (const c of p.split('/')) {
      if (c === '' || c === '.') continue;
      if (c === '..') {
        if (rel.length === 0) throw 'not-permitted';
        rel.pop();
      } else rel.push(c);
    }
    const full = [...parts, ...rel];
    walk(full);
    const abs = path.join(root, ...full);
    return { full, abs, st: lstatOrNull(abs), isSelf: rel.length === 0 };
  }

  /**
   * Open the regular file at `full` for one operation (no link followed anywhere), run `fn(fd)`, close.
   * @template T @param {string[]} full @param {number} mode @param {(fd: number) => T} fn @returns {T}
   */
  function withFile(full, mode, fn) {
    walk(full);
    const fd = sys(() => fs.openSync(path.join(root, ...full), mode | O_NOFOLLOW));
    try {
      if (!fs.fstatSync(fd).isFile()) throw 'not-permitted';
      return sys(() => fn(fd));
    } finally {
      fs.closeSync(fd);
    }
  }

  return { walk, resolve, withFile };
}
