/**
 * The `/keys` management sub-app in memory (`app.request`), and the `edgeward keys` CLI against it over a
 * real Unix socket, with the public key checked by node:crypto against a signature the service made.
 */
import { createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { getRequestListener } from '@hono/node-server';
import { Command } from 'commander';
import { Hono } from 'hono';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { keysRoutes } from '../host/api/management/keys.js';
import { createMgmtClient } from '../host/cli/client.js';
import { registerKeysCommands } from '../host/cli/commands/keys.js';
import { DAEMON_CALLER, openKeyService, type KeyService } from '../hsm/keys/index.js';
import { makeConfig, tempDir } from './helpers/keys.js';

let stateDir: string;
let keys: KeyService;
let app: Hono;

beforeAll(async () => {
  stateDir = await tempDir('edgeward-keys-api-');
  keys = await openKeyService({ config: makeConfig(stateDir, { backend: 'file' }), stateDir, logger: pino({ level: 'silent' }) });
  app = keysRoutes(keys);
});
afterAll(async () => {
  await keys?.close();
  await fs.rm(stateDir, { recursive: true, force: true });
});

const post = (body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) => app.request('/', { method: 'POST', body, headers });

describe('/keys management routes', () => {
  it('POST creates (201), repeats (200), conflicts on another type (409)', async () => {
    const r1 = await post(JSON.stringify({ id: 'edge-ca', type: 'ec-p256' }));
    expect(r1.status).toBe(201);
    expect(await r1.json()).toEqual({ id: 'edge-ca', type: 'ec-p256' });
    expect((await post(JSON.stringify({ id: 'edge-ca', type: 'ec-p256' }))).status).toBe(200);
    const r3 = await post(JSON.stringify({ id: 'edge-ca', type: 'rsa-2048' }));
    expect(r3.status).toBe(409);
    expect(r3.headers.get('content-type')).toMatch(/application\/json/);
    expect(await r3.json()).toEqual({ message: 'key "edge-ca" exists with type ec-p256' });
    expect((await post(JSON.stringify({ id: 'mac', type: 'hmac' }))).status).toBe(201);
  });

  it('GET / lists the daemon namespace only', async () => {
    await keys.createKeyPair({ kind: 'module', module: 'm' }, { id: 'module-key' }, 'ec-p256');
    const r = await app.request('/');
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ keys: [{ id: 'edge-ca', type: 'ec-p256' }, { id: 'mac', type: 'hmac-sha256' }] });
  });

  it('GET /:id/public serves a PEM that verifies the service\'s signature', async () => {
    const r = await app.request('/edge-ca/public');
    expect(r.status).toBe(200);
    const { pem } = (await r.json()) as { pem: string };
    expect(pem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    const h = await keys.loadKey(DAEMON_CALLER, { id: 'edge-ca' });
    const sig = await keys.sign(DAEMON_CALLER, h, 'ecdsa-sha256', Buffer.from('m'));
    expect(cryptoVerify('sha256', Buffer.from('m'), createPublicKey(pem), sig)).toBe(true);
  });

  it('errors are JSON {"message"} with 4xx', async () => {
    const cases: Array<[Response | Promise<Response>, number, RegExp]> = [
      [app.request('/nope/public'), 404, /no key "nope"/],
      [app.request('/mac/public'), 400, /has no public key/],
      [app.request('/..%2Fetc/public'), 400, /invalid id/],
      [post(JSON.stringify({ id: 'x', type: 'dsa' })), 400, /invalid type/],
      [post(JSON.stringify({ type: 'aes' })), 400, /invalid id/],
      [post('{not json'), 422, /invalid JSON/],
      [post('x'.repeat(5000)), 413, /larger than/],
      [post(JSON.stringify({ id: 'y', type: 'aes' }), { 'content-type': 'text/plain' }), 400, /invalid id/], // body treated as absent
    ];
    for (const [res, status, msg] of cases) {
      const r = await res;
      expect(r.status).toBe(status);
      expect(((await r.json()) as { message: string }).message).toMatch(msg);
    }
  });
});

describe('edgeward keys CLI', () => {
  let server: http.Server;
  let socketPath: string;

  beforeAll(async () => {
    socketPath = path.join(stateDir, 'mgmt.sock');
    const shell = new Hono().route('/keys', app);
    server = http.createServer(getRequestListener(shell.fetch));
    await new Promise<void>((r) => server.listen(socketPath, r));
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
  });

  async function run(...args: string[]): Promise<{ out: string; err: string; code: number }> {
    const out: string[] = [];
    const err: string[] = [];
    const so = vi.spyOn(process.stdout, 'write').mockImplementation((c) => (out.push(String(c)), true));
    const se = vi.spyOn(process.stderr, 'write').mockImplementation((c) => (err.push(String(c)), true));
    process.exitCode = 0;
    try {
      const program = new Command().exitOverride();
      registerKeysCommands(program, async () => createMgmtClient(socketPath));
      await program.parseAsync(['node', 'edgeward', ...args]);
    } finally {
      so.mockRestore();
      se.mockRestore();
    }
    const code = Number(process.exitCode ?? 0);
    process.exitCode = 0;
    return { out: out.join(''), err: err.join(''), code };
  }

  it('create, list and public', async () => {
    expect(await run('keys', 'create', 'cli-key', '--type', 'rsa-2048')).toMatchObject({ out: 'cli-key: rsa-2048\n', code: 0 });
    const list = await run('keys', 'list');
    expect(list.out).toMatch(/^ID\s+TYPE\n/);
    expect(list.out).toMatch(/\ncli-key\s+rsa-2048\n/);
    const pub = await run('keys', 'public', 'cli-key');
    expect(createPublicKey(pub.out).asymmetricKeyDetails?.modulusLength).toBe(2048);
  });

  it('a bad type or unknown key is a clear error with a non-zero exit', async () => {
    expect(await run('keys', 'create', 'k', '--type', 'dsa')).toMatchObject({ code: 2, err: expect.stringMatching(/--type must be one of/) });
    const r = await run('keys', 'public', 'missing');
    expect(r.code).toBe(1);
    expect(r.err).toBe('error: the daemon refused the request (404): no key "missing"\n');
  });
});
