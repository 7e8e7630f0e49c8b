/**
 * The wasi:filesystem/data host functions called directly (as jco's glue calls them), for the operations
 * the `fs` test guest does not reach: directories, listing, stat, unlink, rename, set-size, and the
 * quota's bookkeeping. The confinement properties are tested end to end in test/runtime-fs.test.ts.
 */
import { mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DATA_QUOTA_BYTES, ENTRY_BYTES, imports, MAX_LIVE_DESCRIPTORS } from './worker.mjs';

type Desc = any;
const RW = { read: true, write: true };
const CREATE = { create: true };
const NOFOLLOW = { symlinkFollow: false };

let tmp: string;
let data: string;
let root: Desc;
beforeEach(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'edgeward-fs-'));
  data = path.join(tmp, 'modules', 'm', 'data');
  root = open();
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

function open(): Desc {
  const fsImports = imports({ dataDir: data });
  return (fsImports['wasi:filesystem/preopens']!.getDirectories as () => [Desc, string][])()[0]![0];
}

function code(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return 'no error';
}

describe('wasi:filesystem/data host functions', () => {
  it('creates the data directory 0700, with its parent', () => {
    expect(statSync(data).mode & 0o777).toBe(0o700);
    expect(statSync(path.dirname(data)).mode & 0o777).toBe(0o700);
  });

  it('makes, lists, stats, renames and removes files and directories', () => {
    root.createDirectoryAt('sub');
    expect(code(() => root.createDirectoryAt('sub'))).toBe('exist');
    const f = root.openAt(NOFOLLOW, 'sub/a.txt', CREATE, RW);
    expect(f.write(new TextEncoder().encode('hello'), 0n)).toBe(5n);
    expect(f.stat()).toMatchObject({ type: 'regular-file', size: 5n });
    expect(root.statAt(NOFOLLOW, 'sub/a.txt')).toMatchObject({ type: 'regular-file', size: 5n });
    const sub = root.openAt(NOFOLLOW, 'sub', { directory: true }, { read: true, mutateDirectory: true });
    expect(sub.getType()).toBe('directory');
    const entries = sub.readDirectory();
    expect(entries.readDirectoryEntry()).toEqual({ type: 'regular-file', name: 'a.txt' });
    expect(entries.readDirectoryEntry()).toBeUndefined();
    sub.renameAt('a.txt', root, 'b.txt');
    const [bytes, eof] = root.openAt(NOFOLLOW, 'b.txt', {}, { read: true }).read(64n, 0n);
    expect(new TextDecoder().decode(bytes)).toBe('hello');
    expect(eof).toBe(true);
    expect(code(() => f.read(1n, 0n))).toBe('no-entry'); // a descriptor is its path: renamed away
    const wo = root.openAt(NOFOLLOW, 'b.txt', {}, { write: true });
    expect(code(() => wo.read(1n, 0n))).toBe('bad-descriptor');
    expect(code(() => root.removeDirectoryAt('b.txt'))).toBe('not-directory');
    expect(code(() => root.unlinkFileAt('sub'))).toBe('is-directory');
    root.unlinkFileAt('b.txt');
    root.removeDirectoryAt('sub');
    expect(code(() => root.statAt(NOFOLLOW, 'b.txt'))).toBe('no-entry');
  });

  it('hands out read-only descriptors from a read-only directory and answers unsupported for streams', () => {
    root.createDirectoryAt('ro');
    const ro = root.openAt(NOFOLLOW, 'ro', { directory: true }, { read: true });
    expect(code(() => ro.openAt(NOFOLLOW, 'x', CREATE, RW))).toBe('read-only');
    expect(code(() => ro.createDirectoryAt('y'))).toBe('read-only');
    expect(code(() => root.readViaStream(0n))).toBe('unsupported');
    expect(code(() => root.linkAt(NOFOLLOW, 'a', root, 'b'))).toBe('not-permitted');
    expect(code(() => root.readlinkAt('a'))).toBe('not-permitted');
  });

  it('stat-at reports a planted link without following it, and refuses to follow it', () => {
    symlinkSync('/etc', path.join(data, 'etc'));
    expect(root.statAt(NOFOLLOW, 'etc')).toMatchObject({ type: 'symbolic-link' });
    expect(code(() => root.statAt({ symlinkFollow: true }, 'etc'))).toBe('not-permitted');
    expect(code(() => root.openAt(NOFOLLOW, 'etc', { directory: true }, { read: true }))).toBe('not-permitted');
    expect(code(() => root.statAt(NOFOLLOW, 'etc/passwd'))).toBe('not-permitted');
    root.unlinkFileAt('etc'); // removes the link only
    expect(statSync('/etc').isDirectory()).toBe(true);
  });

  it('keeps the quota through set-size and unlink, and measures what is there at start', () => {
    const f = root.openAt(NOFOLLOW, 'f', CREATE, RW);
    const room = DATA_QUOTA_BYTES - ENTRY_BYTES;
    expect(code(() => f.setSize(BigInt(room + 1)))).toBe('insufficient-space');
    f.setSize(BigInt(room));
    expect(code(() => root.createDirectoryAt('d'))).toBe('insufficient-space');
    f.setSize(BigInt(room - ENTRY_BYTES));
    root.createDirectoryAt('d');
    // A new instance measures the directory: still full.
    const again = open();
    expect(code(() => again.openAt(NOFOLLOW, 'g', CREATE, RW))).toBe('insufficient-space');
    again.unlinkFileAt('f');
    again.openAt(NOFOLLOW, 'g', CREATE, RW).write(new Uint8Array(1024), 0n);
  });

  it('answers insufficient-memory past MAX_LIVE_DESCRIPTORS live descriptors and streams, before creating a file; a drop frees one (G3)', () => {
    const held: Desc[] = [root];
    while (held.length < MAX_LIVE_DESCRIPTORS - 1) held.push(root.openAt(NOFOLLOW, '.', { directory: true }, { read: true }));
    held.push(root.readDirectory());
    expect(code(() => root.openAt(NOFOLLOW, 'new.txt', CREATE, RW))).toBe('insufficient-memory');
    expect(code(() => root.readDirectory())).toBe('insufficient-memory');
    expect(code(() => root.statAt(NOFOLLOW, 'new.txt'))).toBe('no-entry');
    held.pop()[Symbol.dispose]();
    held.pop()[Symbol.dispose]();
    held.push(root.openAt(NOFOLLOW, 'new.txt', CREATE, RW));
    expect(held.at(-1).getType()).toBe('regular-file');
  });

  it('refuses paths longer than PATH_MAX and NUL bytes', () => {
    expect(code(() => root.statAt(NOFOLLOW, 'a'.repeat(5000)))).toBe('name-too-long');
    expect(code(() => root.statAt(NOFOLLOW, 'a\0b'))).toBe('invalid');
  });
});
