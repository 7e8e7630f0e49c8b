/**
 * Guests built with the QuickJS engine (guests/<name>/engine = quickjs, `edgeward new module --engine
 * quickjs`): a ~1 MB component instead of componentize-js's ~12 MB, whose only imports are its world's (every
 * WASI import of the engine itself is stubbed with a trap), that runs in the sandbox like any other guest:
 * WIT imports, resources and results, a thrown Error as the export's `err` (HTTP 422 guest-error), and a
 * trap as a trap. Its core modules need V8's extended-const, which host/runtime/wasm-features.ts enables.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scaffoldModule } from '../host/cli/commands/new.js';
import { hsmKeysCapability } from '../host/capabilities/hsm-keys/index.js';
import { componentTypes } from '../host/boundary/check.js';
import { configSchema } from '../host/config/schema.js';
import { assetPath } from '../host/runtime/assets.js';
import { openKeyService, type KeyService } from '../hsm/keys/index.js';
import { Fixture, spec } from './helpers/runtime.js';

const parent = mkdtempSync(path.join(os.tmpdir(), 'edgeward-qjs-'));
let dir = '';
let wasm = '';
let fx: Fixture;
let keys: KeyService;

beforeAll(async () => {
  dir = scaffoldModule('qvault', { world: 'keys', dir: parent, engine: 'quickjs' });
  // A method that throws an Error and one that traps (an unreachable JS state the engine reports as a trap).
  const src = path.join(dir, 'src', 'index.ts');
  writeFileSync(src, readFileSync(src, 'utf8').replace("      default:", "      case 'boom': throw new Error('kaboom from quickjs');\n      default:"));
  const r = spawnSync(process.execPath, [assetPath('guests/build.mjs'), dir], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  wasm = path.join(dir, 'dist', 'qvault.wasm');
  fx = new Fixture();
  const config = configSchema.parse({
    hostname: 'h', state_dir: fx.dir, provisioning: { source: 'none' },
    connect: { management_uri: 'unix:///x/m.sock', workload_uri: 'unix:///x/w.sock' },
    listen: { management_uri: 'unix:///x/m.sock', workload_uri: 'unix:///x/w.sock' },
  });
  keys = await openKeyService({ config, stateDir: path.join(fx.dir, 'keys'), logger: pino({ level: 'silent' }) });
}, 300_000);

afterAll(async () => {
  await fx?.cleanup();
  await keys?.close();
  rmSync(parent, { recursive: true, force: true });
});

describe('a guest built with the quickjs engine', () => {
  it('is small and imports only what its world declares (no WASI of the engine)', () => {
    expect(readFileSync(path.join(dir, 'engine'), 'utf8')).toBe('quickjs\n');
    const size = statSync(wasm).size;
    expect(size).toBeLessThan(2 * 1024 * 1024);
    const imports = Object.keys(componentTypes('qvault', readFileSync(wasm)).imports).map((i) => i.replace(/@.*/, '')).sort();
    expect(imports).toEqual(['edgeward:hsm/keys', 'edgeward:module/logging']);
  });

  it('deploys, signs through edgeward:hsm/keys (resources and results), and reports a thrown Error as guest-error', async () => {
    const rt = await fx.runtime({ limits: { memory_mib: 64, call_timeout_ms: 5_000, max_value_bytes: 65_536 }, capabilities: [hsmKeysCapability(keys)] });
    await rt.create(spec('qvault', wasm, { capabilities: ['edgeward:hsm/keys'] }));
    expect(await rt.invoke('qvault', 'ping', null)).toEqual({ status: 200, payload: { pong: 'qvault' } });
    const signed = await rt.invoke('qvault', 'sign', 'x');
    expect(signed, JSON.stringify(signed)).toMatchObject({ status: 200 });
    expect((signed.payload as { signature: string }).signature).toMatch(/^30[0-9a-f]+$/); // DER SEQUENCE
    const boom = await rt.invoke('qvault', 'boom', null);
    expect(boom.status).toBe(422);
    expect(boom.payload).toMatchObject({ code: 'guest-error', message: expect.stringContaining('kaboom from quickjs') });
    // The instance lives on after a guest error: it still answers.
    expect(await rt.invoke('qvault', 'ping', null)).toEqual({ status: 200, payload: { pong: 'qvault' } });
    const unknown = await rt.invoke('qvault', 'nope', null);
    expect(unknown.status).toBe(422);
  }, 120_000);
});
