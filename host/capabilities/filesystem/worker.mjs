// wasi:filesystem (types, preopens) for one instance, inside the sandbox worker: exactly one preopened
// directory, the module's own data directory (`<state_dir>/modules/<name>/data`, created 0700 on first
// use), seen by the guest as `/data`. Nothing from preview2-shim: its preopens are process-global and it
// follows symlinks.
//
// Confinement is the host's, never the guest's: every path is resolved here, component by component,
// relative to the descriptor it is opened from. Absolute paths, `..` past that descriptor, and any
// symbolic link on the way are refused with `not-permitted` (wasmtime/cap-std answer escapes the same
// way). Symlinks are refused outright rather than resolved: the guest cannot create one (`symlink-at`,
// `link-at` → `not-permitted`), an existing one (planted from outside) is never followed (lstat on every
// intermediate component, O_NOFOLLOW on the last), and `readlink-at` does not reveal its target. Node has
// no openat(2), so the lstat walk is a check-then-use: it holds against the guest (the only writer of the
// directory that runs code in it), not against another local process racing it.
//
// File descriptors are not held: sandbox workers are terminated at any point (deadline, trap, stop) and
// an fd opened in a worker belongs to the daemon's process, so a held one would leak on every kill. A
// file descriptor is its path below the root, re-walked and opened (O_NOFOLLOW) for each operation and
// closed before it returns; a file renamed or removed under an open descriptor is therefore `no-entry`.
//
// Quota: the bytes in the directory (file sizes, plus ENTRY_BYTES per file or directory so empty entries
// are not free) may not exceed DATA_QUOTA_BYTES; a write, set-size or create past it is
// `insufficient-space`. Usage is measured at instance start, so it holds across restarts.
import fs from 'node:fs';
import path from 'node:path';

/** Bytes the data directory of one module may hold. */
export const DATA_QUOTA_BYTES = 16 * 1024 * 1024;
/** What one file or directory entry costs against the quota, besides its contents. */
export const ENTRY_BYTES = 512;
/** Longest path a guest may pass (bytes of UTF-8), like PATH_MAX. */
export const MAX_PATH_BYTES = 4096;
/** Most bytes one `read` returns and one `write` accepts. */
export const MAX_IO_BYTES = 1024 * 1024;
/**
 * Most descriptors and directory-entry streams one instance may hold at once (reliability G3): open-at
 * and read-directory past it answer `insufficient-memory` (wasi:filesystem has no error for a full
 * handle table; ENOMEM's is the nearest); get-directories, which has no error case, traps.
 */
export const MAX_LIVE_DESCRIPTORS = 1024;
/** Name the guest sees for its data directory. */
export const PREOPEN_NAME = '/data';

const { O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_NOFOLLOW } = fs.constants;

const ERRNO = {
  ENOENT: 'no-entry', EEXIST: 'exist', ENOTDIR: 'not-directory', EISDIR: 'is-directory', ENOTEMPTY: 'not-empty',
  EACCES: 'access', EPERM: 'not-permitted', ELOOP: 'not-permitted', ENAMETOOLONG: 'name-too-long',
  ENOSPC: 'insufficient-space', EDQUOT: 'quota', EINVAL: 'invalid', EBADF: 'bad-descriptor', EFBIG: 'file-too-large',
  EXDEV: 'cross-device', EBUSY: 'busy', EROFS: 'read-only',
};

/** Run a host fs call; an errno becomes the WIT `error-code` (thrown as jco expects), anything else traps. */
function sys(fn) {
  try {
    return fn();
  } catch (err) {
    if (typeof err === 'string') throw err;
    if (err && typeof err.code === 'string' && err.code.startsWith('E')) throw ERRNO[err.code] ?? 'io';
    throw err;
  }
}

function lstatOrNull(p) {
  try {
    return fs.lstatSync(p, { bigint: true });
  } catch (err) {
    if (err.code === 'ENOENT') return null;
    return sys(() => { throw err; });
  }
}

function typeOf(st) {
  if (st.isFile()) return 'regular-file';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symbolic-link';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'character-device';
  if (st.isBlockDevice()) return 'block-device';
  return 'unknown';
}

const timestamp = (ns) => ({ seconds: ns / 1_000_000_000n, nanoseconds: Number(ns % 1_000_000_000n) });

function statOf(st) {
  return {
    type: typeOf(st),
    linkCount: st.nlink,
    size: st.size,
    dataAccessTimestamp: timestamp(st.atimeNs),
    dataModificationTimestamp: timestamp(st.mtimeNs),
    statusChangeTimestamp: timestamp(st.ctimeNs),
  };
}

/** Bytes charged for what is already in `dir` (not following links). */
function measure(dir) {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    total += ENTRY_BYTES;
    if (e.isDirectory()) total += measure(p);
    else if (e.isFile()) total += fs.lstatSync(p).size;
  }
  return total;
}

/** Create the data directory (and its parent) 0700 if missing; refuse one that is not a real directory. */
function ensureDataDir(dir) {
  fs.mkdirSync(path.dirname(dir), { recursive: true, mode: 0o700 });
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if (err.code !== 'EEXIST') throw err;
  }
  if (!fs.lstatSync(dir).isDirectory()) throw new Error(`data directory ${dir} is not a directory`);
}

export function imports(ctx) {
  const root = ctx.dataDir;
  if (typeof root !== 'string' || !path.isAbsolute(root)) throw new Error('wasi:filesystem/data: no data directory for this instance');
  ensureDataDir(root);
  const state = { usage: measure(root), live: 0 };

  /** Count one more live descriptor or stream, or refuse it at the cap. */
  const acquire = () => {
    if (state.live >= MAX_LIVE_DESCRIPTORS) throw 'insufficient-memory';
    state.live++;
  };

  const charge = (bytes) => {
    if (bytes > 0 && state.usage + bytes > DATA_QUOTA_BYTES) throw 'insufficient-space';
    state.usage += bytes;
  };

  /**
   * Resolve `p` under the directory `parts` (components below root): lexical, refusing absolute paths
   * and `..` past the descriptor, with every intermediate component lstat'ed (a link → not-permitted).
   * Returns the components of the target and the lstat of the last one (null when it does not exist).
   */
  function resolve(parts, p) {
    if (typeof p !== 'string') throw 'invalid';
    if (Buffer.byteLength(p, 'utf8') > MAX_PATH_BYTES) throw 'name-too-long';
    if (p.includes('\0')) throw 'invalid';
    if (p.startsWith('/')) throw 'not-permitted';
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

  /** Every directory above the last component of `full` is a real directory (never a link). */
  function walk(full) {
    for (let i = 1; i < full.length; i++) {
      const st = lstatOrNull(path.join(root, ...full.slice(0, i)));
      if (!st) throw 'no-entry';
      if (st.isSymbolicLink()) throw 'not-permitted';
      if (!st.isDirectory()) throw 'not-directory';
    }
  }

  /** Open the regular file at `full` for one operation (no link followed anywhere), run `fn(fd)`, close. */
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

  class Descriptor {
    #parts; #isFile; #flags; #closed = false;
    /** A directory or a regular file, by its components below root (see the header on fds). */
    constructor(parts, isFile, flags) {
      acquire();
      this.#parts = parts;
      this.#isFile = isFile;
      this.#flags = flags;
    }
    #dir() {
      if (this.#closed) throw 'bad-descriptor';
      if (this.#isFile) throw 'not-directory';
      return this.#parts;
    }
    /** Run `fn(fd)` on this file, opened read-only or for writing for the duration of the call. */
    #file(write, fn) {
      if (this.#closed) throw 'bad-descriptor';
      if (!this.#isFile) throw 'is-directory';
      if (write ? !this.#flags.write : !this.#flags.read) throw 'bad-descriptor';
      return withFile(this.#parts, write ? O_WRONLY : O_RDONLY, fn);
    }
    #mutating() {
      this.#dir();
      if (!this.#flags.mutateDirectory) throw 'read-only';
    }
    get #abs() { return path.join(root, ...this.#parts); }

    readViaStream() { throw 'unsupported'; }
    writeViaStream() { throw 'unsupported'; }
    appendViaStream() { throw 'unsupported'; }
    advise() {}
    syncData() { if (this.#isFile && this.#flags.write) this.#file(true, (fd) => fs.fdatasyncSync(fd)); }
    sync() { if (this.#isFile && this.#flags.write) this.#file(true, (fd) => fs.fsyncSync(fd)); }
    getFlags() { return { ...this.#flags }; }
    getType() { return this.#isFile ? 'regular-file' : 'directory'; }
    setTimes() { throw 'unsupported'; }
    setTimesAt() { throw 'unsupported'; }
    metadataHash() { throw 'unsupported'; }
    metadataHashAt() { throw 'unsupported'; }

    setSize(size) {
      const n = Number(size);
      if (!Number.isSafeInteger(n)) throw 'file-too-large';
      this.#file(true, (fd) => {
        const cur = fs.fstatSync(fd).size;
        charge(Math.max(0, n - cur));
        try {
          fs.ftruncateSync(fd, n);
        } catch (err) {
          state.usage -= Math.max(0, n - cur);
          throw err;
        }
        if (n < cur) state.usage -= cur - n;
      });
    }

    read(length, offset) {
      const want = Math.min(Number(length), MAX_IO_BYTES);
      const buf = Buffer.alloc(want);
      const n = this.#file(false, (fd) => fs.readSync(fd, buf, 0, want, Number(offset)));
      return [new Uint8Array(buf.buffer, buf.byteOffset, n), n < want || want === 0];
    }

    write(buffer, offset) {
      if (buffer.byteLength > MAX_IO_BYTES) throw 'invalid';
      const end = Number(offset) + buffer.byteLength;
      if (!Number.isSafeInteger(end)) throw 'file-too-large';
      return this.#file(true, (fd) => {
        const growth = Math.max(0, end - fs.fstatSync(fd).size);
        charge(growth);
        try {
          return BigInt(fs.writeSync(fd, buffer, 0, buffer.byteLength, Number(offset)));
        } catch (err) {
          state.usage -= growth;
          throw err;
        }
      });
    }

    readDirectory() {
      const dir = this.#dir();
      const entries = sys(() => fs.readdirSync(path.join(root, ...dir), { withFileTypes: true }));
      return new DirectoryEntryStream(entries.map((e) => ({ type: typeOf(e), name: e.name })));
    }

    stat() {
      if (this.#closed) throw 'bad-descriptor';
      walk(this.#parts);
      const st = sys(() => fs.lstatSync(this.#abs, { bigint: true }));
      if (st.isSymbolicLink()) throw 'not-permitted';
      return statOf(st);
    }

    statAt(pathFlags, p) {
      const { st } = resolve(this.#dir(), p);
      if (!st) throw 'no-entry';
      if (st.isSymbolicLink() && pathFlags.symlinkFollow) throw 'not-permitted';
      return statOf(st);
    }

    openAt(pathFlags, p, openFlags, flags) {
      const parent = this.#dir();
      if (state.live >= MAX_LIVE_DESCRIPTORS) throw 'insufficient-memory'; // before a file is created
      const { full, abs, st, isSelf } = resolve(parent, p);
      if (st?.isSymbolicLink()) throw 'not-permitted';
      if (st && openFlags.create && openFlags.exclusive) throw 'exist';
      // No more rights than the parent: a read-only directory hands out read-only descriptors.
      const granted = this.#flags;
      if ((flags.write && !granted.mutateDirectory) || (flags.mutateDirectory && !granted.mutateDirectory)) throw 'read-only';
      if (st?.isDirectory() || (isSelf && !st)) {
        if (flags.write || openFlags.truncate) throw 'is-directory';
        if (openFlags.create && openFlags.exclusive) throw 'exist';
        return new Descriptor(full, false, { read: !!flags.read, write: false, mutateDirectory: !!flags.mutateDirectory && granted.mutateDirectory });
      }
      if (openFlags.directory) throw st ? 'not-directory' : 'no-entry';
      if (st && !st.isFile()) throw 'not-permitted';
      if (!st && !openFlags.create) throw 'no-entry';
      if ((openFlags.create || openFlags.truncate) && !granted.mutateDirectory) throw 'read-only';
      let mode = flags.write ? (flags.read ? O_RDWR : O_WRONLY) : O_RDONLY;
      mode |= O_NOFOLLOW;
      if (openFlags.create) mode |= O_CREAT;
      if (openFlags.exclusive) mode |= O_EXCL;
      if (openFlags.truncate) {
        if (!flags.write) throw 'invalid';
        mode |= O_TRUNC;
      }
      if (!st) charge(ENTRY_BYTES);
      // Opened once to create/truncate and to check access, then closed (see the header on fds).
      try {
        fs.closeSync(sys(() => fs.openSync(abs, mode, 0o600)));
      } catch (err) {
        if (!st) state.usage -= ENTRY_BYTES;
        throw err;
      }
      if (st && openFlags.truncate) state.usage -= Number(st.size);
      return new Descriptor(full, true, { read: !!flags.read, write: !!flags.write, mutateDirectory: false });
    }

    createDirectoryAt(p) {
      this.#mutating();
      const { abs, st, isSelf } = resolve(this.#dir(), p);
      if (st || isSelf) throw 'exist';
      charge(ENTRY_BYTES);
      try {
        sys(() => fs.mkdirSync(abs, { mode: 0o700 }));
      } catch (err) {
        state.usage -= ENTRY_BYTES;
        throw err;
      }
    }

    removeDirectoryAt(p) {
      this.#mutating();
      const { abs, st, isSelf } = resolve(this.#dir(), p);
      if (isSelf) throw 'busy';
      if (!st) throw 'no-entry';
      if (!st.isDirectory()) throw 'not-directory';
      sys(() => fs.rmdirSync(abs));
      state.usage -= ENTRY_BYTES;
    }

    /** Removes a file, or a symbolic link itself (never what it points to). */
    unlinkFileAt(p) {
      this.#mutating();
      const { abs, st, isSelf } = resolve(this.#dir(), p);
      if (isSelf || st?.isDirectory()) throw 'is-directory';
      if (!st) throw 'no-entry';
      sys(() => fs.unlinkSync(abs));
      state.usage -= ENTRY_BYTES + (st.isFile() ? Number(st.size) : 0);
    }

    renameAt(oldPath, newDescriptor, newPath) {
      this.#mutating();
      if (!(newDescriptor instanceof Descriptor)) throw 'bad-descriptor';
      newDescriptor.#mutating();
      const from = resolve(this.#dir(), oldPath);
      const to = resolve(newDescriptor.#dir(), newPath);
      if (!from.st) throw 'no-entry';
      if (from.isSelf || to.isSelf) throw 'busy';
      if (to.st?.isSymbolicLink()) throw 'not-permitted';
      sys(() => fs.renameSync(from.abs, to.abs));
      if (to.st) state.usage -= ENTRY_BYTES + (to.st.isFile() ? Number(to.st.size) : 0);
    }

    // Links are refused: a symbolic link could point anywhere, and refusing them is simpler to get right
    // than resolving them inside the root.
    symlinkAt() { throw 'not-permitted'; }
    linkAt() { throw 'not-permitted'; }
    readlinkAt() { throw 'not-permitted'; }

    isSameObject(other) {
      return other instanceof Descriptor && other.#abs === this.#abs;
    }

    /** Dropped by the guest (jco calls the dispose symbol): later calls are `bad-descriptor`. */
    [Symbol.for('dispose')]() {
      if (!this.#closed) state.live--;
      this.#closed = true;
    }
  }

  class DirectoryEntryStream {
    #entries;
    constructor(entries) {
      acquire();
      this.#entries = entries;
    }
    readDirectoryEntry() { return this.#entries.shift(); }
    [Symbol.for('dispose')]() {
      if (this.#entries) state.live--;
      this.#entries = undefined;
    }
  }

  // A new descriptor per call: the guest owns (and drops) each one it is handed.
  if (Symbol.dispose) {
    Descriptor.prototype[Symbol.dispose] = Descriptor.prototype[Symbol.for('dispose')];
    DirectoryEntryStream.prototype[Symbol.dispose] = DirectoryEntryStream.prototype[Symbol.for('dispose')];
  }
  const preopen = () => new Descriptor([], false, { read: true, write: false, mutateDirectory: true });
  return {
    'wasi:filesystem/types': { Descriptor, DirectoryEntryStream, filesystemErrorCode: () => undefined },
    'wasi:filesystem/preopens': {
      getDirectories: () => {
        if (state.live >= MAX_LIVE_DESCRIPTORS) throw new Error(`more than ${MAX_LIVE_DESCRIPTORS} live wasi:filesystem descriptors in this instance`);
        return [[preopen(), PREOPEN_NAME]];
      },
    },
  };
}
