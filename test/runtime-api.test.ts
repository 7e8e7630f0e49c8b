/**
 * The module routes of the management API (in memory, `app.request`) and the module CLI commands
 * (real client over a Unix socket), both on a real runtime running test guests.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createAdaptorServer } from '@hono/node-server';
import { Command } from 'commander';
import { Hono } from 'hono';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { errorHandler } from '../host/api/errors.js';
import { modulesRoutes, parseTime } from '../host/api/management/modules.js';
import { createMgmtClient } from '../host/cli/client.js';
import { registerModuleCommands, describeModule } from '../host/cli/commands/modules.js';
import { silentLogger } from '../host/log.js';
import type { ComponentRuntime } from '../host/runtime/runtime.js';
import type { ModuleDetails } from '../host/runtime/types.js';
import { Fixture } from './helpers/runtime.js';

let fx: Fixture;
let rt: ComponentRuntime;
let app: Hono;

beforeEach(async () => {
  fx = new Fixture();
  rt = await fx.runtime();
  app = new Hono();
  app.route('/modules', modulesRoutes(rt));
  app.onError(errorHandler(silentLogger()));
});
afterEach(async () => { await fx.cleanup(); });

const json = (method: string, body: unknown, type = 'application/json') => ({ method, headers: { 'content-type': type }, body: typeof body === 'string' ? body : JSON.stringify(body) });
const moduleSpec = (name: string, image: string, extra: Record<string, unknown> = {}) => ({ name, type: 'wasm', config: { settings: { image }, env: [{ key: 'K', value: 'V' }] }, restartPolicy: 'never', ...extra });

describe('management routes', () => {
  it('POST, GET, invoke, stop, start, restart, DELETE a module', async () => {
    const echo = await fx.guest('echo');
    let res = await app.request('/modules', json('POST', moduleSpec('echo', echo)));
    expect(res.status).toBe(201);
    const created = (await res.json()) as ModuleDetails;
    expect(created).toMatchObject({ name: 'echo', type: 'wasm', config: { settings: { image: echo }, env: [{ key: 'K', value: 'V' }] }, status: { runtimeStatus: { status: 'running' } } });
    res = await app.request('/modules/echo/invoke', json('POST', { methodName: 'ping', payload: { a: [1, 2] } }));
    expect(await res.json()).toEqual({ status: 200, payload: { a: [1, 2] } });
    for (const a of ['stop', 'start', 'restart']) expect((await app.request(`/modules/echo/${a}`, { method: 'POST' })).status).toBe(204);
    res = await app.request('/modules');
    expect(((await res.json()) as { modules: ModuleDetails[] }).modules.map((m) => [m.name, m.status.runtimeStatus.status])).toEqual([['echo', 'running']]);
    res = await app.request('/modules/echo/logs?tail=2');
    expect(res.headers.get('content-type')).toContain('text/plain');
    const lines = (await res.text()).trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/\[edgeward\] started: instance/);
    expect((await app.request('/modules/echo', { method: 'DELETE' })).status).toBe(204);
    res = await app.request('/modules/echo');
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ message: 'module "echo" not found' });
  });

  it('PUT replaces a module, honours ?start=false, and checks the name in the body', async () => {
    const echo = await fx.guest('echo');
    let res = await app.request('/modules/m?start=false', json('PUT', moduleSpec('m', echo)));
    expect(res.status).toBe(201);
    expect(((await res.json()) as ModuleDetails).status.runtimeStatus.status).toBe('stopped');
    res = await app.request('/modules/m', json('PUT', moduleSpec('other', echo)));
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ message: 'module name in body ("other") differs from the URL ("m")' });
    res = await app.request('/modules/m', json('PUT', 'name=m', 'text/plain'));
    expect(res.status).toBe(415);
  });

  it('maps runtime errors onto statuses with the message', async () => {
    const bad = path.join(fx.dir, 'bad.wasm');
    writeFileSync(bad, 'not wasm at all');
    let res = await app.request('/modules', json('POST', moduleSpec('bad', bad)));
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(/^not a WebAssembly component: bad magic/);
    res = await app.request('/modules', json('POST', moduleSpec('net', await fx.guest('sockets'))));
    expect(res.status).toBe(403);
    expect(((await res.json()) as { message: string }).message).toContain('"wasi:sockets/instance-network", which is not granted');
    const echo = await fx.guest('echo');
    res = await app.request('/modules', json('POST', moduleSpec('pinned', echo, { config: { settings: { image: echo, digest: `sha256:${'a'.repeat(64)}` } } })));
    expect(res.status).toBe(409);
    res = await app.request('/modules', json('POST', moduleSpec('rel', './echo.wasm')));
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ message: 'image "./echo.wasm": use an absolute path, file://, https:// or builtin:<guest>' });
    res = await app.request('/modules', json('POST', '{"name":'));
    expect(res.status).toBe(422);
    res = await app.request('/modules/bad%20name');
    expect(res.status).toBe(400);
    res = await app.request('/modules/x/invoke', json('POST', { methodName: '' }));
    expect(res.status).toBe(400);
    res = await app.request('/modules', { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(9 * 1024 * 1024) });
    expect(res.status).toBe(413);
  });

  it('PUT /modules reconciles to a manifest: create, update on digest change, remove', async () => {
    const echo = await fx.guest('echo');
    const crash = await fx.guest('crash');
    const manifest = (images: Record<string, string>) => ({
      modulesContent: { $edgeAgent: { 'properties.desired': { schemaVersion: '1.1', modules: Object.fromEntries(Object.entries(images).map(([n, image]) => [n, { type: 'wasm', status: 'running', restartPolicy: 'never', startupOrder: n.charCodeAt(0), settings: { image } }])) } } },
    });
    let res = await app.request('/modules', json('PUT', manifest({ a: echo, b: echo })));
    expect(await res.json()).toEqual({ created: ['a', 'b'], updated: [], removed: [], unchanged: [], failed: [] });
    res = await app.request('/modules', json('PUT', manifest({ a: echo, b: crash, c: echo })));
    expect(await res.json()).toEqual({ created: ['c'], updated: ['b'], removed: [], unchanged: ['a'], failed: [] });
    res = await app.request('/modules', json('PUT', manifest({ c: echo })));
    expect(await res.json()).toEqual({ created: [], updated: [], removed: ['a', 'b'], unchanged: ['c'], failed: [] });
    res = await app.request('/modules', json('PUT', { modules: { d: { settings: { image: echo }, capabilities: ['nope'] } } }));
    expect(((await res.json()) as { failed: { message: string }[] }).failed[0]!.message).toMatch(/unknown capability "nope"/);
  });

  it('parses IoT Edge since/until forms', () => {
    const now = Date.parse('2026-01-02T00:00:00Z');
    expect(parseTime('1 day', now)?.toISOString()).toBe('2026-01-01T00:00:00.000Z');
    expect(parseTime('2h30m', now)?.toISOString()).toBe('2026-01-01T21:30:00.000Z');
    expect(parseTime('1700000000', now)?.getTime()).toBe(1_700_000_000_000);
    expect(parseTime('2026-01-01T12:00:00Z', now)?.toISOString()).toBe('2026-01-01T12:00:00.000Z');
  });
});

describe('module CLI', () => {
  async function cli(sock: string, ...args: string[]): Promise<{ out: string; code: number }> {
    const program = new Command().exitOverride();
    registerModuleCommands(program, async () => createMgmtClient(sock));
    let out = '';
    const write = process.stdout.write.bind(process.stdout);
    const ewrite = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((c: string) => { out += c; return true; }) as typeof process.stdout.write;
    process.stderr.write = ((c: string) => { out += c; return true; }) as typeof process.stderr.write;
    process.exitCode = 0;
    try {
      await program.parseAsync(['node', 'edgeward', ...args]);
    } finally {
      process.stdout.write = write;
      process.stderr.write = ewrite;
    }
    const code = Number(process.exitCode ?? 0);
    process.exitCode = 0;
    return { out, code };
  }

  it('deploys a manifest with a relative path, lists, invokes, restarts, shows logs, stops and removes', async () => {
    const sock = path.join(fx.dir, 'mgmt.sock');
    const server = createAdaptorServer({ fetch: app.fetch });
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      const dir = path.join(fx.dir, 'deploy');
      mkdirSync(dir);
      writeFileSync(path.join(dir, 'echo.wasm'), await (await import('../guests/adversarial/components.js')).buildTestGuest('echo'));
      writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ modules: { echo: { settings: { image: './echo.wasm' }, restartPolicy: 'on-failure' } } }));
      expect(await cli(sock, 'deploy', path.join(dir, 'manifest.json'))).toEqual({ out: 'created: echo\n', code: 0 });
      const list = await cli(sock, 'list');
      expect(list.out).toMatch(/^NAME\s+STATUS\s+DESCRIPTION\s+RESTARTS\s+CRASHES\s+Config\necho\s+running\s+Up Less than a second\s+0\s+0\s+\/.*deploy\/echo\.wasm\n$/);
      expect(await cli(sock, 'invoke', 'echo', 'say', '{"x":1}')).toEqual({ out: '{"x":1}\n', code: 0 });
      // The module's error answer: its message on stderr, exit 1.
      expect(await cli(sock, 'invoke', 'echo', 'fail')).toEqual({ out: 'error: module "echo" answered fail with guest-error (422): bad method\n', code: 1 });
      // Text that is not JSON is refused, saying how to send it; --text sends it as a JSON string.
      const notJson = await cli(sock, 'invoke', 'echo', 'say', 'plain words');
      expect(notJson.code).not.toBe(0);
      expect(notJson.out).toContain('payload is not JSON: "plain words"; quote a string as JSON (\'"plain words"\') or pass --text to send it as a string');
      expect(await cli(sock, 'invoke', 'echo', 'say', 'plain words', '--text')).toEqual({ out: 'plain words\n', code: 0 });
      expect(await cli(sock, 'restart', 'echo')).toEqual({ out: 'Restarted echo\n', code: 0 });
      expect((await cli(sock, 'logs', 'echo', '--tail', '1')).out).toMatch(/INFO  \[edgeward\] started: instance 2 /);
      expect(await cli(sock, 'stop', 'echo')).toEqual({ out: 'Stopped echo\n', code: 0 });
      expect((await cli(sock, 'list', '--json')).out).toContain('"status": "stopped"');
      expect(await cli(sock, 'remove', 'echo')).toEqual({ out: 'Removed echo\n', code: 0 });
      expect(await cli(sock, 'start', 'echo')).toEqual({ out: 'error: the daemon refused the request (404): module "echo" not found\n', code: 1 });
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('describes modules the way iotedge list does', () => {
    const base = { id: 'm', name: 'm', type: 'wasm', config: { settings: { image: 'x' }, env: [] } };
    const now = Date.parse('2026-01-01T03:00:00Z');
    expect(describeModule({ ...base, status: { startTime: '2026-01-01T00:00:00Z', runtimeStatus: { status: 'running' } } }, now)).toBe('Up 3 hours');
    expect(describeModule({ ...base, status: { exitStatus: { exitTime: '2026-01-01T02:58:00Z', statusCode: '134' }, runtimeStatus: { status: 'failed' } } }, now)).toBe('Failed (134) 2 minutes ago');
    expect(describeModule({ ...base, status: { exitStatus: { exitTime: '2026-01-01T02:59:59.500Z', statusCode: '1' }, runtimeStatus: { status: 'failed', description: 'backoff: x' } } }, now)).toBe('Backoff (1) Less than a second ago');
  });
});
