/**
 * wasi:filesystem/data: a module's only host directory is its own data directory, preopened as `/data`.
 * One adversarial test per property, each asserting the exact wasi:filesystem `error-code` the guest got
 * (guests/adversarial `fs`, a real component in a real worker).
 */
import { lstatSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FS_ERROR_CODES } from '../guests/adversarial/components.js';
import { RuntimeError } from '../host/runtime/types.js';
import { Fixture, spec } from './helpers/runtime.js';
import type { ComponentRuntime } from '../host/runtime/runtime.js';

const GRANT = 'wasi:filesystem/data';

let fx: Fixture;
beforeEach(() => { fx = new Fixture(); });
afterEach(async () => { await fx.cleanup(); });

/** What the guest answers for a filesystem error: `{status: 422, payload: {code: "guest-error", message: <index>}}`. */
const fsError = (code: string) => {
  const i = FS_ERROR_CODES.indexOf(code);
  expect(i).toBeGreaterThanOrEqual(0);
  return { status: 422, payload: { code: 'guest-error', message: String(i) } };
};
const ok = (payload: unknown = null) => ({ status: 200, payload });

async function withModules(...names: string[]): Promise<ComponentRuntime> {
  const rt = await fx.runtime();
  const file = await fx.guest('fs');
  for (const name of names) await rt.create(spec(name, file, { capabilities: [GRANT] }));
  return rt;
}

const dataDir = (name: string) => path.join(fx.dir, 'state', 'modules', name, 'data');

describe('wasi:filesystem/data', () => {
  it('preopens only /data, created 0700 under the state dir', async () => {
    const rt = await withModules('files');
    expect(await rt.invoke('files', 'p', '')).toEqual(ok('/data'));
    expect(statSync(dataDir('files')).mode & 0o777).toBe(0o700);
  });

  it('round trip: a file written in /data is read back, also after the module restarts', async () => {
    const rt = await withModules('files');
    expect(await rt.invoke('files', 'w"kept"', 'notes.json')).toEqual(ok());
    expect(await rt.invoke('files', 'r', 'notes.json')).toEqual(ok('kept'));
    expect(readFileSync(path.join(dataDir('files'), 'notes.json'), 'utf8')).toBe('"kept"');
    await rt.restart('files');
    expect(await rt.invoke('files', 'r', 'notes.json')).toEqual(ok('kept'));
    expect(await rt.invoke('files', 'r', 'missing')).toEqual(fsError('no-entry'));
  });

  it('refuses a ../ escape with not-permitted', async () => {
    const rt = await withModules('files');
    writeFileSync(path.join(fx.dir, 'state', 'modules', 'files', 'outside'), 'secret');
    expect(await rt.invoke('files', 'r', '../outside')).toEqual(fsError('not-permitted'));
    expect(await rt.invoke('files', 'r', 'a/../../outside')).toEqual(fsError('not-permitted'));
    expect(await rt.invoke('files', 'w"x"', '../../../../../../tmp/escaped')).toEqual(fsError('not-permitted'));
  });

  it('refuses an absolute path with not-permitted', async () => {
    const rt = await withModules('files');
    expect(await rt.invoke('files', 'r', '/etc/passwd')).toEqual(fsError('not-permitted'));
    expect(await rt.invoke('files', 'w"x"', '/data/abs')).toEqual(fsError('not-permitted'));
  });

  it('never follows a symlink planted in the data dir (to /etc), as a file or as a directory', async () => {
    const rt = await withModules('files');
    symlinkSync('/etc/hostname', path.join(dataDir('files'), 'host'));
    symlinkSync('/etc', path.join(dataDir('files'), 'etc'));
    expect(await rt.invoke('files', 'r', 'host')).toEqual(fsError('not-permitted'));
    expect(await rt.invoke('files', 'w"x"', 'host')).toEqual(fsError('not-permitted'));
    expect(await rt.invoke('files', 'r', 'etc/passwd')).toEqual(fsError('not-permitted'));
    expect(await rt.invoke('files', 'w"x"', 'etc/edgeward-escape')).toEqual(fsError('not-permitted'));
  });

  it('refuses symlink-at by the guest with not-permitted, and creates nothing', async () => {
    const rt = await withModules('files');
    expect(await rt.invoke('files', 's/etc', 'link')).toEqual(fsError('not-permitted'));
    expect(await rt.invoke('files', 's../..', 'up')).toEqual(fsError('not-permitted'));
    expect(() => lstatSync(path.join(dataDir('files'), 'link'))).toThrow(/ENOENT/);
  });

  it('gives two modules two directories: A cannot read B\'s file (no-entry)', async () => {
    const rt = await withModules('alpha', 'beta');
    expect(await rt.invoke('beta', 'w"beta\'s"', 'secret')).toEqual(ok());
    expect(await rt.invoke('alpha', 'r', 'secret')).toEqual(fsError('no-entry'));
    expect(await rt.invoke('alpha', 'r', '../../beta/data/secret')).toEqual(fsError('not-permitted'));
    expect(await rt.invoke('beta', 'r', 'secret')).toEqual(ok("beta's"));
    expect(dataDir('alpha')).not.toBe(dataDir('beta'));
  });

  it('enforces the 16 MiB quota with insufficient-space, counting what is already there at start', async () => {
    const rt = await withModules('files');
    expect(await rt.invoke('files', 'q', 'big')).toEqual(fsError('insufficient-space'));
    expect(statSync(path.join(dataDir('files'), 'big')).size).toBe(0);
    // Nearly 16 MiB left by a previous life: the quota holds across restarts. Every entry costs 512 bytes
    // (ENTRY_BYTES): big, old, old/blob and the new "more" leave 2548 - 4 * 512 = 500 bytes.
    await rt.stop('files');
    mkdirSync(path.join(dataDir('files'), 'old'));
    writeFileSync(path.join(dataDir('files'), 'old', 'blob'), Buffer.alloc(16 * 1024 * 1024 - 2548));
    await rt.start('files');
    expect(await rt.invoke('files', `w"${'x'.repeat(1000)}"`, 'more')).toEqual(fsError('insufficient-space'));
    expect(await rt.invoke('files', 'w"small"', 'more')).toEqual(ok());
  });

  it('denies the deploy of a guest importing wasi:filesystem without the grant, naming it', async () => {
    const rt = await fx.runtime();
    const err = await rt.create(spec('nofs', await fx.guest('fs'))).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(RuntimeError);
    expect((err as RuntimeError).code).toBe('denied');
    expect((err as RuntimeError).message).toBe('module "nofs" imports "wasi:filesystem/preopens", which is not granted: grant "wasi:filesystem/data" is missing');
    expect(() => statSync(dataDir('nofs'))).toThrow(/ENOENT/);
  });
});
