// wasi:filesystem (types, preopens) for one instance, inside the sandbox worker: exactly one preopened
// directory, the module's own data directory (`<state_dir>/modules/<name>/data`, created 0700 on first
// use), seen by the guest as `/data`. Nothing from preview2-shim: its preopens are process-global and it
// follows symlinks.
//
// Confinement (paths resolved component by component, no symbolic link followed) is tree.mjs's.
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
import { ENTRY_BYTES, confined, ensureDataDir, measure, statOf, sys, typeOf } from './tree.mjs';

export { ENTRY_BYTES, MAX_PATH_BYTES } from './tree.mjs';
/** @import { ImportObject, WorkerContext } from '../../runtime/sandbox/worker-api.js' */

// WIT flags as jco represents them: an object of booleans by camelCase name.
/** @typedef {{ read?: boolean; write?: boolean; mutateDirectory?: boolean }} DescriptorFlags */
/** @typedef {{ symlinkFollow?: boolean }} PathFlags */
/** @typedef {{ create?: boolean; directory?: boolean; exclusive?: boolean; truncate?: boolean }} OpenFlags */
/** @typedef {{ type: string; name: string }} DirectoryEntry */

/** Bytes the data directory of one module may hold. */
export const DATA_QUOTA_BYTES = 16 * 1024 * 1024;
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

/**
 * The open(2) flags for opening a file at: never following a symbolic link; truncating needs write.
 * @param {OpenFlags} openFlags @param {DescriptorFlags} flags
 */
function openMode(openFlags, flags) {
  let mode = flags.write ? (flags.read ? O_RDWR : O_WRONLY) : O_RDONLY;
  mode |= O_NOFOLLOW;
  if (openFlags.create) mode |= O_CREAT;
  if (openFlags.exclusive) mode |= O_EXCL;
  if (openFlags.truncate) {
    if (!flags.write) throw 'invalid';
    mode |= O_TRUNC;
  }
  return mode;
}

/** One instance's data directory: its root, the bytes it holds (the quota's usage) and its live descriptors and streams. */
class DataDir {
  /**
   * @param {string} root an absolute path
   * @param {((path: string) => unknown) | undefined} denied the host's report of a refused path (a denied call)
   */
  constructor(root, denied) {
    ensureDataDir(root);
    this.root = root;
    this.usage = measure(root);
    this.live = 0;
    const { walk, resolve, withFile } = confined(root);
    this.walk = walk;
    /** @type {typeof resolve} */
    this.resolve = (parts, p) => {
      try {
        return resolve(parts, p);
      } catch (err) {
        if (err === 'not-permitted' && denied) {
          try { denied(String(p)); } catch { /* the report is best effort: the guest gets its refusal regardless */ }
        }
        throw err;
      }
    };
    this.withFile = withFile;
  }
  /** Whether the descriptor and stream cap is reached. */
  full() { return this.live >= MAX_LIVE_DESCRIPTORS; }
  /** Count one more live descriptor or stream, or refuse it at the cap. */
  acquire() {
    if (this.full()) throw 'insufficient-memory';
    this.live++;
  }
  /** One descriptor or stream fewer: the guest dropped it. */
  release() { this.live--; }
  /** Give back `bytes` the directory no longer holds (or a failed change charged). @param {number} bytes */
  refund(bytes) { this.usage -= bytes; }
  /** Charge `bytes` more against the quota, or refuse them. @param {number} bytes */
  charge(bytes) {
    if (bytes > 0 && this.usage + bytes > DATA_QUOTA_BYTES) throw 'insufficient-space';
    this.usage += bytes;
  }
}

/** A wasi:filesystem descriptor in one instance's data directory. */
class Descriptor {
  #data; #parts; #isFile; #flags; #closed = false;
  /**
   * A directory or a regular file, by its components below root (see the header on fds).
   * @param {DataDir} data @param {string[]} parts @param {boolean} isFile @param {Required<DescriptorFlags>} flags
   */
  constructor(data, parts, isFile, flags) {
    data.acquire();
    this.#data = data;
    this.#parts = parts;
    this.#isFile = isFile;
    this.#flags = flags;
  }
  #dir() {
    if (this.#closed) throw 'bad-descriptor';
    if (this.#isFile) throw 'not-directory';
    return this.#parts;
  }
  /**
   * Run `fn(fd)` on this file, opened read-only or for writing for the duration of the call.
   * @template T @param {boolean} write @param {(fd: number) => T} fn @returns {T}
   */
  #file(write, fn) {
    if (this.#closed) throw 'bad-descriptor';
    if (!this.#isFile) throw 'is-directory';
    if (write ? !this.#flags.write : !this.#flags.read) throw 'bad-descriptor';
    return this.#data.withFile(this.#parts, write ? O_WRONLY : O_RDONLY, fn);
  }
  #mutating() {
    this.#dir();
    if (!this.#flags.mutateDirectory) throw 'read-only';
  }
  get #abs() { return path.join(this.#data.root, ...this.#parts); }

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

  /** @param {bigint} size */
  setSize(size) {
    const n = Number(size);
    if (!Number.isSafeInteger(n)) throw 'file-too-large';
    this.#file(true, (fd) => {
      const cur = fs.fstatSync(fd).size;
      this.#data.charge(Math.max(0, n - cur));
      try {
        fs.ftruncateSync(fd, n);
      } catch (err) {
        this.#data.refund(Math.max(0, n - cur));
        throw err;
      }
      if (n < cur) this.#data.refund(cur - n);
    });
  }

  /** @param {bigint} length @param {bigint} offset @returns {[Uint8Array, boolean]} */
  read(length, offset) {
    const want = Math.min(Number(length), MAX_IO_BYTES);
    const buf = Buffer.alloc(want);
    const n = this.#file(false, (fd) => fs.readSync(fd, buf, 0, want, Number(offset)));
    return [new Uint8Array(buf.buffer, buf.byteOffset, n), n < want || want === 0];
  }

  /** @param {Uint8Array} buffer @param {bigint} offset */
  write(buffer, offset) {
    if (buffer.byteLength > MAX_IO_BYTES) throw 'invalid';
    const end = Number(offset) + buffer.byteLength;
    if (!Number.isSafeInteger(end)) throw 'file-too-large';
    return this.#file(true, (fd) => {
      const growth = Math.max(0, end - fs.fstatSync(fd).size);
      this.#data.charge(growth);
      try {
        return BigInt(fs.writeSync(fd, buffer, 0, buffer.byteLength, Number(offset)));
      } catch (err) {
        this.#data.refund(growth);
        throw err;
      }
    });
  }

  readDirectory() {
    const dir = this.#dir();
    const entries = sys(() => fs.readdirSync(path.join(this.#data.root, ...dir), { withFileTypes: true }));
    return new DirectoryEntryStream(this.#data, entries.map((e) => ({ type: typeOf(e), name: e.name })));
  }

  stat() {
    if (this.#closed) throw 'bad-descriptor';
    this.#data.walk(this.#parts);
    const st = sys(() => fs.lstatSync(this.#abs, { bigint: true }));
    if (st.isSymbolicLink()) throw 'not-permitted';
    return statOf(st);
  }

  /** @param {PathFlags} pathFlags @param {string} p */
  statAt(pathFlags, p) {
    const { st } = this.#data.resolve(this.#dir(), p);
    if (!st) throw 'no-entry';
    if (st.isSymbolicLink() && pathFlags.symlinkFollow) throw 'not-permitted';
    return statOf(st);
  }

  /** @param {PathFlags} pathFlags @param {string} p @param {OpenFlags} openFlags @param {DescriptorFlags} flags */
  openAt(pathFlags, p, openFlags, flags) {
    const parent = this.#dir();
    if (this.#data.full()) throw 'insufficient-memory'; // before a file is created
    const { full, abs, st, isSelf } = this.#data.resolve(parent, p);
    if (st?.isSymbolicLink()) throw 'not-permitted';
    if (st && openFlags.create && openFlags.exclusive) throw 'exist';
    // No more rights than the parent: a read-only directory hands out read-only descriptors.
    const granted = this.#flags;
    if ((flags.write && !granted.mutateDirectory) || (flags.mutateDirectory && !granted.mutateDirectory)) throw 'read-only';
    if (st?.isDirectory() || (isSelf && !st)) {
      if (flags.write || openFlags.truncate) throw 'is-directory';
      if (openFlags.create && openFlags.exclusive) throw 'exist';
      return new Descriptor(this.#data, full, false, { read: !!flags.read, write: false, mutateDirectory: !!flags.mutateDirectory && granted.mutateDirectory });
    }
    if (openFlags.directory) throw st ? 'not-directory' : 'no-entry';
    if (st && !st.isFile()) throw 'not-permitted';
    if (!st && !openFlags.create) throw 'no-entry';
    if ((openFlags.create || openFlags.truncate) && !granted.mutateDirectory) throw 'read-only';
    const mode = openMode(openFlags, flags);
    if (!st) this.#data.charge(ENTRY_BYTES);
    // Opened once to create/truncate and to check access, then closed (see the header on fds).
    try {
      fs.closeSync(sys(() => fs.openSync(abs, mode, 0o600)));
    } catch (err) {
      if (!st) this.#data.refund(ENTRY_BYTES);
      throw err;
    }
    if (st && openFlags.truncate) this.#data.refund(Number(st.size));
    return new Descriptor(this.#data, full, true, { read: !!flags.read, write: !!flags.write, mutateDirectory: false });
  }

  /** @param {string} p */
  createDirectoryAt(p) {
    this.#mutating();
    const { abs, st, isSelf } = this.#data.resolve(this.#dir(), p);
    if (st || isSelf) throw 'exist';
    this.#data.charge(ENTRY_BYTES);
    try {
      sys(() => fs.mkdirSync(abs, { mode: 0o700 }));
    } catch (err) {
      this.#data.refund(ENTRY_BYTES);
      throw err;
    }
  }

  /** @param {string} p */
  removeDirectoryAt(p) {
    this.#mutating();
    const { abs, st, isSelf } = this.#data.resolve(this.#dir(), p);
    if (isSelf) throw 'busy';
    if (!st) throw 'no-entry';
    if (!st.isDirectory()) throw 'not-directory';
    sys(() => fs.rmdirSync(abs));
    this.#data.refund(ENTRY_BYTES);
  }

  /** Removes a file, or a symbolic link itself (never what it points to). @param {string} p */
  unlinkFileAt(p) {
    this.#mutating();
    const { abs, st, isSelf } = this.#data.resolve(this.#dir(), p);
    if (isSelf || st?.isDirectory()) throw 'is-directory';
    if (!st) throw 'no-entry';
    sys(() => fs.unlinkSync(abs));
    this.#data.refund(ENTRY_BYTES + (st.isFile() ? Number(st.size) : 0));
  }

  /** @param {string} oldPath @param {unknown} newDescriptor @param {string} newPath */
  renameAt(oldPath, newDescriptor, newPath) {
    this.#mutating();
    if (!(newDescriptor instanceof Descriptor) || newDescriptor.#data !== this.#data) throw 'bad-descriptor';
    newDescriptor.#mutating();
    const from = this.#data.resolve(this.#dir(), oldPath);
    const to = this.#data.resolve(newDescriptor.#dir(), newPath);
    if (!from.st) throw 'no-entry';
    if (from.isSelf || to.isSelf) throw 'busy';
    if (to.st?.isSymbolicLink()) throw 'not-permitted';
    sys(() => fs.renameSync(from.abs, to.abs));
    if (to.st) this.#data.refund(ENTRY_BYTES + (to.st.isFile() ? Number(to.st.size) : 0));
  }

  // Links are refused: a symbolic link could point anywhere, and refusing them is simpler to get right
  // than resolving them inside the root.
  symlinkAt() { throw 'not-permitted'; }
  linkAt() { throw 'not-permitted'; }
  readlinkAt() { throw 'not-permitted'; }

  /** @param {unknown} other */
  isSameObject(other) {
    return other instanceof Descriptor && other.#data === this.#data && other.#abs === this.#abs;
  }

  /**
   * Dropped by the guest: later calls are `bad-descriptor`. jco's glue calls `Symbol.dispose ??
   * Symbol.for('dispose')`, which is Symbol.dispose on every Node this runs on (package.json engines).
   */
  [Symbol.dispose]() {
    if (!this.#closed) this.#data.release();
    this.#closed = true;
  }
}

/** The entries of one directory, as they were when it was read. */
class DirectoryEntryStream {
  #data;
  /** @type {DirectoryEntry[] | undefined} */
  #entries;
  /** @param {DataDir} data @param {DirectoryEntry[]} entries */
  constructor(data, entries) {
    data.acquire();
    this.#data = data;
    this.#entries = entries;
  }
  readDirectoryEntry() {
    if (!this.#entries) throw new Error('wasi:filesystem: directory-entry-stream used after it was dropped');
    return this.#entries.shift();
  }
  [Symbol.dispose]() {
    if (this.#entries) this.#data.release();
    this.#entries = undefined;
  }
}

/** Must match FILESYSTEM_HOST_INTERFACE in index.ts. */
const HOST_INTERFACE = 'edgeward-private:filesystem';

/** @param {Pick<WorkerContext, 'dataDir'> & Partial<Pick<WorkerContext, 'host'>>} ctx @returns {ImportObject} */
export function imports(ctx) {
  const { dataDir } = ctx;
  if (typeof dataDir !== 'string' || !path.isAbsolute(dataDir)) throw new Error('wasi:filesystem/data: no data directory for this instance');
  const denied = ctx.host?.[HOST_INTERFACE]?.denied;
  const data = new DataDir(dataDir, denied && ((p) => denied(p)));
  // A new descriptor per call: the guest owns (and drops) each one it is handed.
  const preopen = () => new Descriptor(data, [], false, { read: true, write: false, mutateDirectory: true });
  return {
    'wasi:filesystem/types': { Descriptor, DirectoryEntryStream, filesystemErrorCode: () => undefined },
    'wasi:filesystem/preopens': {
      getDirectories: () => {
        if (data.full()) throw new Error(`more than ${MAX_LIVE_DESCRIPTORS} live wasi:filesystem descriptors in this instance`);
        return [[preopen(), PREOPEN_NAME]];
      },
    },
  };
}
