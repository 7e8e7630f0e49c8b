/**
 * `edgeward new module`: a scaffolded guest builds with guests/build.mjs (from a folder outside guests/,
 * as --dir makes it), deploys into a temporary runtime with the grant its world needs, and answers.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { scaffoldModule } from '../host/cli/commands/new.js';
import { hsmKeysCapability } from '../host/capabilities/hsm-keys/index.js';
import { configSchema } from '../host/config/schema.js';
import { assetPath } from '../host/runtime/assets.js';
import { openKeyService } from '../hsm/keys/index.js';
import { Fixture, spec } from './helpers/runtime.js';

const parent = mkdtempSync(path.join(os.tmpdir(), 'edgeward-new-'));
afterAll(() => rmSync(parent, { recursive: true, force: true }));

let fx: Fixture;
beforeEach(() => { fx = new Fixture(); });
afterEach(async () => { await fx.cleanup(); });

/** Run guests/build.mjs on the given guests (names or folders). */
function build(...guests: string[]) {
  return spawnSync(process.execPath, [assetPath('guests/build.mjs'), ...guests], { encoding: 'utf8' });
}

describe('edgeward new module', () => {
  it('scaffolds a keys guest that builds, deploys with its grant and signs', async () => {
    const dir = scaffoldModule('vault', { world: 'keys', dir: parent });
    expect(dir).toBe(path.join(parent, 'vault'));
    for (const f of ['world.wit', 'src/index.ts', 'engine', 'manifest.json', 'README.md', 'vault.test.ts']) expect(existsSync(path.join(dir, f))).toBe(true);
    expect(readFileSync(path.join(dir, 'engine'), 'utf8')).toBe('quickjs\n'); // the default
    expect(readFileSync(path.join(dir, 'world.wit'), 'utf8')).toContain('  include edgeward:module/module@0.1.0;\n  import edgeward:hsm/keys@0.1.0;\n');
    const r = build(dir);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const config = configSchema.parse({
      hostname: 'h', state_dir: fx.dir, provisioning: { source: 'none' },
      connect: { management_uri: 'unix:///x/m.sock', workload_uri: 'unix:///x/w.sock' },
      listen: { management_uri: 'unix:///x/m.sock', workload_uri: 'unix:///x/w.sock' },
    });
    const keys = await openKeyService({ config, stateDir: path.join(fx.dir, 'keys'), logger: pino({ level: 'silent' }) });
    try {
      const rt = await fx.runtime({ limits: { memory_mib: 64, call_timeout_ms: 5_000, max_value_bytes: 65_536 }, capabilities: [hsmKeysCapability(keys)] });
      await rt.create(spec('vault', path.join(dir, 'dist', 'vault.wasm'), { capabilities: ['edgeward:hsm/keys'] }));
      expect(await rt.invoke('vault', 'ping', null)).toEqual({ status: 200, payload: { pong: 'vault' } });
      const signed = await rt.invoke('vault', 'sign', 'x');
      expect(signed.status).toBe(200);
      expect((signed.payload as { signature: string }).signature).toMatch(/^30[0-9a-f]+$/); // DER SEQUENCE
    } finally {
      await fx.cleanup();
      await keys.close();
    }
  }, 600_000);

  it('refuses a bad name, an unknown world and an existing folder, writing nothing', () => {
    expect(() => scaffoldModule('Bad_Name', { dir: parent })).toThrow(/module name "Bad_Name": lower-case words/);
    expect(() => scaffoldModule('x', { world: 'sockets', dir: parent })).toThrow('unknown world "sockets" (known: module, identity, keys, data)');
    expect(existsSync(path.join(parent, 'x'))).toBe(false);
    scaffoldModule('twice', { dir: parent });
    expect(() => scaffoldModule('twice', { dir: parent })).toThrow(`${path.join(parent, 'twice')} already exists`);
  });

  it('picks quickjs, or componentize-js for a world importing WASI (which quickjs would stub), and says which engine lacks a web API', () => {
    expect(readFileSync(path.join(scaffoldModule('plain', { dir: parent }), 'engine'), 'utf8')).toBe('quickjs\n');
    const data = scaffoldModule('files', { world: 'data', dir: parent });
    expect(readFileSync(path.join(data, 'engine'), 'utf8')).toBe('componentize-js\n');
    expect(() => scaffoldModule('qfiles', { world: 'data', dir: parent, engine: 'quickjs' })).toThrow('world "data" imports WASI (wasi:filesystem/preopens@0.2.12, wasi:filesystem/types@0.2.12), which the quickjs engine stubs with traps: use --engine componentize-js');
    // Forced by hand, the build refuses it before building anything.
    writeFileSync(path.join(data, 'engine'), '# tried\nquickjs\n');
    const r = build(data);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${data}/world.wit imports wasi:filesystem: the quickjs engine stubs every WASI import with a trap, the world's too; build it with componentize-js (write \`componentize-js\` in ${data}/engine)`);
    // No engine file: quickjs, where console does not exist; the failure names the engine and the way out.
    const noisy = scaffoldModule('noisy', { dir: parent });
    rmSync(path.join(noisy, 'engine'));
    const src = path.join(noisy, 'src', 'index.ts');
    writeFileSync(src, readFileSync(src, 'utf8').replace("log('info', `${name} started`);", "console.log(`${name} started`);"));
    const n = build(noisy);
    expect(n.status).toBe(1);
    expect(n.stderr).toContain("Cannot find name 'console'");
    expect(n.stderr).toContain(`noisy is built with the quickjs engine (the default), which has no web APIs (console, fetch, TextEncoder…): use the world's imports (edgeward:module/logging for logs), or write \`componentize-js\` in ${noisy}/engine`);
  });

  it('a guest whose world does not type-check fails alone, with the reason, and the exit status is 1', () => {
    const good = scaffoldModule('good', { dir: parent });
    const bad = scaffoldModule('broken', { dir: parent });
    writeFileSync(path.join(bad, 'src', 'index.ts'), "/// <reference path=\"../types/broken.d.ts\" />\nimport { log } from 'edgeward:module/logging@0.1.0';\nlog('loud', 1);\nexport const lifecycle = { start() {}, stop() {} };\n");
    const r = build(bad, good);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`guests: ${bad} FAILED: broken does not type-check against its world "broken" (types in ${bad}/types/):`);
    expect(r.stderr).toContain("Argument of type '\"loud\"' is not assignable to parameter of type 'Level'");
    expect(r.stderr).toContain("Property 'invoke' is missing");
    expect(r.stderr).toContain(`guests: 1 failed (${bad}); the others are built`);
    expect(existsSync(path.join(good, 'dist', 'good.wasm'))).toBe(true);
    expect(existsSync(path.join(bad, 'dist', 'broken.wasm'))).toBe(false);
  }, 600_000);

  it('a world that uses an unknown package is reported without building anything', () => {
    const dir = scaffoldModule('odd', { dir: parent });
    writeFileSync(path.join(dir, 'world.wit'), 'package guest:odd;\nworld odd {\n  include edgeward:module/module@0.1.0;\n  import acme:thing/api@1.0.0;\n}\n');
    const r = build(dir);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`guests: ${dir} FAILED: ${dir}/world.wit uses package "acme:thing", which is neither in wit/ nor a WASI 0.2.12 package (known: edgeward:`);
    expect(r.stderr).toMatch(/\(known: [^)]*edgeward:hsm, [^)]*wasi:io[,)]/);
  });
});
