/**
 * The capability samples built by `npm run build:guests` (guests/notes, guests/keeper): each deployed into
 * a temporary runtime with its grants, and what it did checked from outside the sandbox (the file in the
 * module's data directory on the host; the signature verified with node:crypto against the key service's
 * own public key). Without the grants, one deploy names every missing grant.
 */
import { spawnSync } from 'node:child_process';
import { createPublicKey, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { configSchema } from '../host/config/schema.js';
import { hsmKeysCapability } from '../host/capabilities/hsm-keys/index.js';
import { assetPath } from '../host/runtime/assets.js';
import { openKeyService, type KeyService } from '../hsm/keys/index.js';
import { Fixture, rejection, spec } from './helpers/runtime.js';

beforeAll(() => {
  // Cached by source hash: a no-op when the guests are up to date.
  const r = spawnSync(process.execPath, [assetPath('guests/build.mjs'), 'notes', 'keeper'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`npm run build:guests -- notes keeper failed:\n${r.stderr}`);
}, 480_000);

let fx: Fixture;
beforeEach(() => { fx = new Fixture(); });
afterEach(async () => { await fx.cleanup(); });

const LIMITS = { memory_mib: 64, call_timeout_ms: 5_000, max_value_bytes: 64 * 1024 };
const image = (guest: string) => assetPath(`guests/${guest}/dist/${guest}.wasm`);

describe('notes (wasi:filesystem/data)', () => {
  /** What notes needs: the filesystem, and the stdio and clock imports the JS engine adds beside it. */
  const GRANTS = ['wasi:filesystem/data', 'wasi:cli/stdio', 'wasi:clocks'];

  it('writes a file that is really in its data directory, and reads it back', async () => {
    const rt = await fx.runtime({ limits: LIMITS });
    await rt.create(spec('notes', image('notes'), { capabilities: GRANTS }));
    expect(await rt.invoke('notes', 'write', { name: 'todo.txt', text: 'buy milk ✓' })).toEqual({ status: 200, payload: { bytes: 12 } });
    expect(readFileSync(path.join(fx.dir, 'state', 'modules', 'notes', 'data', 'todo.txt'), 'utf8')).toBe('buy milk ✓');
    expect(await rt.invoke('notes', 'read', { name: 'todo.txt' })).toEqual({ status: 200, payload: { text: 'buy milk ✓' } });
  });

  it('lists /data with read-directory, with or without a payload', async () => {
    const rt = await fx.runtime({ limits: LIMITS });
    await rt.create(spec('notes', image('notes'), { capabilities: GRANTS }));
    expect(await rt.invoke('notes', 'list', null)).toEqual({ status: 200, payload: { names: [] } });
    for (const name of ['b.txt', 'a.txt']) await rt.invoke('notes', 'write', { name, text: name });
    // The call without a payload is the one that "trapped": the host sends "null", and notes read a
    // property of JSON.parse("null"); a TypeError, which componentize-js turned into a trap.
    expect(await rt.invoke('notes', 'list', null)).toEqual({ status: 200, payload: { names: ['a.txt', 'b.txt'] } });
    expect(await rt.invoke('notes', 'list', {})).toEqual({ status: 200, payload: { names: ['a.txt', 'b.txt'] } });
    expect((await rt.get('notes')).edgeward).toMatchObject({ crashCount: 0 });
  });

  it('cannot leave /data', async () => {
    const rt = await fx.runtime({ limits: LIMITS });
    await rt.create(spec('notes', image('notes'), { capabilities: GRANTS }));
    expect(await rt.invoke('notes', 'write', { name: '../escape.txt', text: 'x' })).toEqual({ status: 422, payload: { code: 'guest-error', message: 'write ../escape.txt: not-permitted' } });
  });

  it('is refused without grants, with every missing grant named in one message', async () => {
    const rt = await fx.runtime({ limits: LIMITS });
    const err = await rejection(rt.create(spec('notes', image('notes'))));
    expect(err.code).toBe('denied');
    // The filesystem is counted under stdio, which would link it (with no /data): README says to grant all three.
    expect(err.message).toBe('module "notes" imports interfaces that are not granted: '
      + 'grant "wasi:cli/stdio" is missing (for "wasi:cli/stderr", "wasi:cli/stdin", "wasi:cli/stdout", "wasi:filesystem/preopens", "wasi:filesystem/types", "wasi:io/error", "wasi:io/poll", "wasi:io/streams"); '
      + 'grant "wasi:clocks" is missing (for "wasi:clocks/wall-clock")');
  });
});

describe('keeper (edgeward:hsm/keys)', () => {
  let keys: KeyService | undefined;
  afterEach(async () => { await keys?.close(); keys = undefined; });

  /** A runtime with the hsm-keys capability, served by a file-backed key service in the fixture's dir. */
  async function keysRuntime() {
    const config = configSchema.parse({
      hostname: 'h', state_dir: fx.dir, provisioning: { source: 'none' },
      connect: { management_uri: 'unix:///x/m.sock', workload_uri: 'unix:///x/w.sock' },
      listen: { management_uri: 'unix:///x/m.sock', workload_uri: 'unix:///x/w.sock' },
    });
    keys = await openKeyService({ config, stateDir: path.join(fx.dir, 'keys'), logger: pino({ level: 'silent' }) });
    return fx.runtime({ limits: LIMITS, capabilities: [hsmKeysCapability(keys)] });
  }

  it('creates a key in its own namespace and signs; the signature verifies with node:crypto', async () => {
    const rt = await keysRuntime();
    await rt.create(spec('keeper', image('keeper'), { capabilities: ['edgeward:hsm/keys'] }));
    const res = await rt.invoke('keeper', 'sign', { message: 'hello device' });
    expect(res.status).toBe(200);
    const { publicKey, signature } = res.payload as { publicKey: string; signature: string };
    const spki = createPublicKey({ key: Buffer.from(publicKey, 'hex'), format: 'der', type: 'spki' });
    expect(spki.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(verify('sha256', Buffer.from('hello device'), spki, Buffer.from(signature, 'hex'))).toBe(true);
    expect(verify('sha256', Buffer.from('hello devicf'), spki, Buffer.from(signature, 'hex'))).toBe(false);
    // The same key the next time: created once, in keeper's own namespace.
    const again = await rt.invoke('keeper', 'sign', { message: 'again' });
    expect((again.payload as { publicKey: string }).publicKey).toBe(publicKey);
    expect(await rt.invoke('keeper', 'keys', null)).toEqual({ status: 200, payload: { keys: [{ id: 'signing', kind: 'ec-p256' }] } });
  });

  it('is refused without the grant', async () => {
    const rt = await keysRuntime();
    const err = await rejection(rt.create(spec('keeper', image('keeper'))));
    expect(err.message).toBe('module "keeper" imports "edgeward:hsm/keys", which is not granted: grant "edgeward:hsm/keys" is missing');
  });
});
