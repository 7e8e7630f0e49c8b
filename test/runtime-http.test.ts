/**
 * wasi:http/outgoing-handler: a module reaches only the hosts its registration grants (issue 5, G8).
 * The `fetcher` guest (componentize-js, `http` feature, `await fetch(url)`) in real sandbox workers
 * against real node:http servers on 127.0.0.1 that count what reached them.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { assetPath } from '../host/runtime/assets.js';
import { parseManifest } from '../host/runtime/manifest.js';
import { measure } from '../host/runtime/loader.js';
import { planLinks, unversioned } from '../host/runtime/capabilities.js';
import { edgewardCapabilities } from '../host/capabilities/index.js';
import { RuntimeError } from '../host/runtime/types.js';
import type { ComponentRuntime } from '../host/runtime/runtime.js';
import { Fixture, moduleLogLines, spec } from './helpers/runtime.js';
import { closedPort } from './helpers/net.js';
import { report } from './helpers/reliability.js';

const GRANT = 'wasi:http/outgoing-handler';
const FETCHER = assetPath('guests/fetcher/dist/fetcher.wasm');

/** A loopback server that records every request and answers by path. */
class Server {
  readonly seen: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
  private readonly srv: http.Server;
  port = 0;
  constructor(private readonly name: string, private readonly routes: Record<string, (res: http.ServerResponse) => void> = {}) {
    this.srv = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        const route = this.routes[req.url ?? ''];
        if (route) return route(res);
        res.writeHead(200, { 'content-type': 'text/plain', 'x-server': this.name });
        res.end(`hello from ${this.name}`);
      });
    });
  }
  async start(): Promise<this> {
    await new Promise<void>((r) => this.srv.listen(0, '127.0.0.1', () => r()));
    this.port = (this.srv.address() as AddressInfo).port;
    return this;
  }
  get authority(): string {
    return `127.0.0.1:${this.port}`;
  }
  close(): Promise<void> {
    this.srv.closeAllConnections();
    return new Promise((r) => this.srv.close(() => r()));
  }
}

let fx: Fixture;
let servers: Server[] = [];
const server = async (name: string, routes?: Record<string, (res: http.ServerResponse) => void>) => {
  const s = await new Server(name, routes).start();
  servers.push(s);
  return s;
};

beforeAll(() => {
  // Cached by source hash: a no-op when the guests are up to date.
  const r = spawnSync(process.execPath, [assetPath('guests/build.mjs'), 'fetcher'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`build of guests/fetcher failed:\n${r.stderr}`);
}, 240_000);
beforeEach(() => { fx = new Fixture(); });
afterEach(async () => {
  await fx.cleanup();
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function fetcher(name: string, hosts: string[] | undefined, limits = {}): Promise<ComponentRuntime> {
  const rt = await fx.runtime();
  await rt.create(spec(name, FETCHER, hosts ? { capabilities: [GRANT], network: { hosts }, limits } : { limits }));
  return rt;
}

const fetchVia = (rt: ComponentRuntime, module: string, args: Record<string, unknown>) => rt.invoke(module, 'fetch', args);

/** A module's log lines without their timestamp. */
async function logsOf(rt: ComponentRuntime, module: string): Promise<string[]> {
  return (await moduleLogLines(rt, module)).map((l) => l.slice(25));
}

describe('wasi:http/outgoing-handler', () => {
  it('a granted host: status and body reach the guest; the call is logged without its query', async () => {
    const a = await server('a');
    const rt = await fetcher('net', [a.authority]);
    const r = await fetchVia(rt, 'net', { url: `http://${a.authority}/hello?sig=secret` });
    expect(r).toEqual({ status: 200, payload: { status: 200, body: 'hello from a' } });
    expect(a.seen.map((s) => s.url)).toEqual(['/hello?sig=secret']);
    const lines = await logsOf(rt, 'net');
    expect(lines).toContain(`INFO  http: GET http://${a.authority}/hello?… → 200 (12 bytes, ${/\d+/.exec(lines.find((l) => l.includes('→ 200'))!.split('bytes, ')[1]!)![0]} ms)`);
    expect(lines.join('\n')).not.toContain('secret');
  });

  it('sends method, headers and body; host and framing headers are the host\'s', async () => {
    const a = await server('a');
    const rt = await fetcher('net', [a.authority]);
    const r = await fetchVia(rt, 'net', { url: `http://${a.authority}/post`, method: 'POST', body: 'ping', headers: { 'x-test': 'yes' } });
    expect(r.status).toBe(200);
    expect(a.seen).toHaveLength(1);
    expect(a.seen[0]).toMatchObject({ method: 'POST', url: '/post', body: 'ping' });
    expect(a.seen[0]!.headers['x-test']).toBe('yes');
    expect(a.seen[0]!.headers.host).toBe(a.authority);
  });

  it('a host not in the list: HTTP-request-denied, the server saw nothing, a warning in the module log', async () => {
    const a = await server('a');
    const b = await server('b');
    const rt = await fetcher('net', [a.authority]);
    expect(await fetchVia(rt, 'net', { url: `http://${b.authority}/` })).toEqual({ status: 422, payload: { code: 'guest-error', message: expect.stringMatching(/^fetch failed: /) } });
    expect(b.seen).toEqual([]);
    expect(await logsOf(rt, 'net')).toContain(`WARN  http: GET http "${b.authority}" denied: not in network.hosts`);
  });

  it('the same host on another port, or by another spelling of the name, is denied', async () => {
    const a = await server('a');
    const rt = await fetcher('net', [`localhost:${a.port}`]);
    expect((await fetchVia(rt, 'net', { url: `http://${a.authority}/` })).status).toBe(422);
    expect((await fetchVia(rt, 'net', { url: `http://localhost:${await closedPort()}/` })).status).toBe(422);
    expect(a.seen).toEqual([]);
    const lines = await logsOf(rt, 'net');
    expect(lines.filter((l) => l.startsWith('WARN  http:') && l.endsWith('denied: not in network.hosts'))).toHaveLength(2);
  });

  it('a redirect to an ungranted host is not followed', async () => {
    const b = await server('b');
    const a = await server('a', { '/go': (res) => { res.writeHead(302, { location: `http://${b.authority}/stolen` }); res.end(); } });
    const rt = await fetcher('net', [a.authority]);
    // The host never follows a 3xx: the guest gets it as is. (componentize-js's fetch does not follow
    // it either, in "follow" mode too; a guest that did would make a new request, checked again.)
    const redirected = { status: 200, payload: { status: 302, body: '', location: `http://${b.authority}/stolen` } };
    expect(await fetchVia(rt, 'net', { url: `http://${a.authority}/go` })).toEqual(redirected);
    expect(await fetchVia(rt, 'net', { url: `http://${a.authority}/go`, redirect: 'manual' })).toEqual(redirected);
    expect(b.seen).toEqual([]);
    expect(a.seen.map((s) => s.url)).toEqual(['/go', '/go']);
    // Following it by hand is a new request to an ungranted host: denied.
    expect((await fetchVia(rt, 'net', { url: `http://${b.authority}/stolen` })).status).toBe(422);
    expect(b.seen).toEqual([]);
  });

  it('a response body over the module\'s max_value_bytes is refused (HTTP-response-body-size)', async () => {
    const big = 'x'.repeat(80 * 1024);
    const a = await server('a', { '/big': (res) => { res.writeHead(200, { 'content-length': String(big.length) }); res.end(big); } });
    const rt = await fetcher('net', [a.authority]);
    expect((await fetchVia(rt, 'net', { url: `http://${a.authority}/big` })).status).toBe(422);
    expect((await logsOf(rt, 'net')).some((l) => l.startsWith(`WARN  http: GET http://${a.authority}/big failed: HTTP-response-body-size`))).toBe(true);
    // The instance is still healthy.
    expect(await fetchVia(rt, 'net', { url: `http://${a.authority}/small` })).toEqual({ status: 200, payload: { status: 200, body: 'hello from a' } });
  });

  it('a refused connection is connection-refused, logged, and the guest gets an error', async () => {
    const port = await closedPort();
    const rt = await fetcher('net', [`127.0.0.1:${port}`]);
    expect((await fetchVia(rt, 'net', { url: `http://127.0.0.1:${port}/` })).status).toBe(422);
    expect((await logsOf(rt, 'net')).some((l) => l.startsWith(`WARN  http: GET http://127.0.0.1:${port}/ failed: connection-refused`))).toBe(true);
  });

  it('G8: two modules side by side, granted and not granted x two servers: each reaches only its own hosts', async () => {
    const a = await server('a');
    const b = await server('b');
    const rt = await fx.runtime();
    await rt.create(spec('to-a', FETCHER, { capabilities: [GRANT], network: { hosts: [a.authority] } }));
    await rt.create(spec('to-b', FETCHER, { capabilities: [GRANT], network: { hosts: [b.authority] } }));
    const matrix: [string, Server, boolean][] = [['to-a', a, true], ['to-a', b, false], ['to-b', a, false], ['to-b', b, true]];
    // Twice, interleaved: no grant leaks from one instance to the other, nor from one call to the next.
    for (let round = 0; round < 2; round++) {
      for (const [module, srv, allowed] of matrix) {
        const r = await fetchVia(rt, module, { url: `http://${srv.authority}/${module}` });
        if (allowed) expect(r).toEqual({ status: 200, payload: { status: 200, body: `hello from ${srv === a ? 'a' : 'b'}` } });
        else expect(r.status).toBe(422);
      }
    }
    // And all four at once (each worker blocks on its own request; the host serves them concurrently).
    const concurrent = await Promise.all(matrix.map(([module, srv]) => fetchVia(rt, module, { url: `http://${srv.authority}/${module}` })));
    expect(concurrent.map((r) => r.status)).toEqual(matrix.map(([, , allowed]) => (allowed ? 200 : 422)));
    expect(a.seen.map((s) => s.url)).toEqual(['/to-a', '/to-a', '/to-a']);
    expect(b.seen.map((s) => s.url)).toEqual(['/to-b', '/to-b', '/to-b']);
    const denied = async (module: string, srv: Server) => (await logsOf(rt, module)).filter((l) => l === `WARN  http: GET http "${srv.authority}" denied: not in network.hosts`).length;
    expect([await denied('to-a', b), await denied('to-b', a), await denied('to-a', a), await denied('to-b', b)]).toEqual([3, 3, 0, 0]);
    report('G8', 'matrix of 4 (module × server), sequential ×2 and concurrent: allowed 2/2, denied 2/2 each time; denials logged only in the denied module\'s log');
  });

  it('the built fetcher imports only its log, wasi:http and the wasi:io they use; only the http grant links them', async () => {
    const rt = await fx.runtime();
    const bytes = readFileSync(FETCHER);
    const { imports } = await rt.loader.prepare(measure(bytes), async () => bytes);
    expect(imports.map(unversioned).sort()).toEqual([
      'edgeward:module/logging', 'wasi:http/outgoing-handler', 'wasi:http/types', 'wasi:io/error', 'wasi:io/poll', 'wasi:io/streams',
    ]);
    const plan = planLinks('net', imports, [GRANT], edgewardCapabilities());
    expect(plan.ok && plan.capabilities.map((c) => c.name).sort()).toEqual(['edgeward:module/logging', GRANT]);
  });

  it('a component importing wasi:http with no grant fails deploy naming wasi:http/outgoing-handler', async () => {
    const rt = await fx.runtime();
    const err = await rt.create(spec('net', FETCHER)).catch((e: RuntimeError) => e);
    expect(err).toBeInstanceOf(RuntimeError);
    expect((err as RuntimeError).code).toBe('denied');
    expect((err as RuntimeError).message).toMatch(/^module "net" imports "wasi:http\/(types|outgoing-handler)(@0\.2\.\d+)?", which is not granted: grant "wasi:http\/outgoing-handler" is missing$/);
    expect(await rt.list()).toEqual([]);
  });

  it('hosts without the grant, and the grant without hosts, are refused at deploy with a message naming it', async () => {
    const rt = await fx.runtime();
    const noGrant = await rt.create(spec('net', FETCHER, { network: { hosts: ['api.example.com'] } })).catch((e: RuntimeError) => e);
    expect((noGrant as RuntimeError).message).toBe('module "net": "network.hosts" is set but capability "wasi:http/outgoing-handler" is not granted');
    const noHosts = await rt.create(spec('net', FETCHER, { capabilities: [GRANT] })).catch((e: RuntimeError) => e);
    expect((noHosts as RuntimeError).message).toBe('module "net": capability "wasi:http/outgoing-handler" needs "network": {"hosts": [...]} naming the hosts it may reach');
    expect(() => parseManifest({ modules: { net: { settings: { image: 'builtin:fetcher' }, network: { hosts: ['api.example.com'] } } } }, undefined, edgewardCapabilities())).toThrow(
      'module "net": "network.hosts" is set but capability "wasi:http/outgoing-handler" is not granted',
    );
    expect(() => parseManifest({ modules: { net: { settings: { image: 'builtin:fetcher' }, capabilities: [GRANT], network: { hosts: [] } } } }, undefined, edgewardCapabilities())).toThrow(/needs "network": \{"hosts"/);
    expect(() => parseManifest({ modules: { net: { settings: { image: 'builtin:fetcher' }, capabilities: [GRANT], network: { hosts: ['granted.com@evil.com'] } } } }, undefined, edgewardCapabilities())).toThrow(
      /network\.hosts: "granted\.com@evil\.com" is not a host/,
    );
    expect(await rt.list()).toEqual([]);
    const [ok] = parseManifest({ modules: { net: { settings: { image: 'builtin:fetcher' }, capabilities: [GRANT], network: { hosts: ['api.example.com', '*.blob.core.windows.net'] } } } }, undefined, edgewardCapabilities());
    expect(ok).toMatchObject({ capabilities: [GRANT], network: { hosts: ['api.example.com', '*.blob.core.windows.net'] } });
    expect(() => parseManifest({ modules: { net: { settings: { image: 'builtin:fetcher' }, capabilities: [GRANT], network: { hosts: ['a.com'], ports: [1] } } } }, undefined, edgewardCapabilities())).toThrow(/network: Unrecognized key/);
  });

  it('the grant and its hosts are persisted in the registration and survive a runtime reopen', async () => {
    const a = await server('a');
    const rt = await fetcher('net', [a.authority]);
    expect(rt.registration('net')).toMatchObject({ capabilities: [GRANT], network: { hosts: [a.authority] } });
    await rt.close();
    const again = await fx.runtime();
    expect(again.registration('net')).toMatchObject({ capabilities: [GRANT], network: { hosts: [a.authority] } });
    expect((await again.get('net')).edgeward).toMatchObject({ capabilities: [GRANT], network: { hosts: [a.authority] } });
    await again.start('net');
    expect((await fetchVia(again, 'net', { url: `http://${a.authority}/` })).status).toBe(200);
  });
});
