/**
 * The host side of wasi:http/outgoing-handler (`outgoingSender`) against real loopback servers, each
 * case asserting the exact WIT error-code and what the server saw.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { InstanceContext, LogLevel } from '../../runtime/capabilities.js';
import { closedPort } from '../../../test/helpers/net.js';
import { loopbackServerCert } from '../../../test/helpers/pki.js';
import { outgoingSender, type SendRequest } from './host.js';

const servers: (http.Server | https.Server)[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => { s.closeAllConnections(); return new Promise((r) => s.close(r)); }));
});

async function serve(handler: http.RequestListener): Promise<{ authority: string; seen: string[] }> {
  const seen: string[] = [];
  const srv = http.createServer((req, res) => { seen.push(`${req.method} ${req.url}`); handler(req, res); });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return { authority: `127.0.0.1:${(srv.address() as AddressInfo).port}`, seen };
}

function instance(): { ctx: InstanceContext; lines: [LogLevel, string][] } {
  const lines: [LogLevel, string][] = [];
  const ctx: InstanceContext = {
    module: 'm', generationId: 'g', digest: 'sha256:0', signer: 'unsigned', instanceId: 1,
    limits: { memory_mib: 16, call_timeout_ms: 2_000, max_value_bytes: 4096 },
    log: (level, message) => lines.push([level, message]),
    current: () => true,
  };
  return { ctx, lines };
}

const get = (authority: string, path = '/', more: Partial<SendRequest> = {}): SendRequest => ({ method: 'GET', scheme: 'http', authority, pathWithQuery: path, headers: [], ...more });

function sender(hosts: string[], callTimeoutMs = 2_000) {
  const { ctx, lines } = instance();
  return { send: outgoingSender(ctx, { hosts, maxResponseBytes: 4096, callTimeoutMs }), lines };
}

describe('outgoingSender', () => {
  it('answers status, headers and body from a granted host', async () => {
    const a = await serve((_q, res) => { res.setHeader('x-a', '1'); res.end('hi'); });
    const { send, lines } = sender([a.authority]);
    const r = await send(get(a.authority, '/x?token=s3cret'));
    if (!('ok' in r)) throw new Error(JSON.stringify(r));
    expect(r.ok.status).toBe(200);
    expect(r.ok.headers).toContainEqual(['x-a', '1']);
    expect(Buffer.from(r.ok.body).toString()).toBe('hi');
    expect(lines).toEqual([['info', expect.stringMatching(new RegExp(`^http: GET http://${a.authority}/x\\?… → 200 \\(2 bytes, \\d+ ms\\)$`))]]);
  });

  it('denies an ungranted host before any DNS lookup (an unresolvable name is denied, not a DNS error)', async () => {
    const { send, lines } = sender(['api.example.com']);
    expect(await send(get('no-such-host.invalid'))).toEqual({ error: { tag: 'HTTP-request-denied' } });
    expect(await send(get('api.example.com@no-such-host.invalid'))).toEqual({ error: { tag: 'HTTP-request-denied' } });
    expect(await send({ ...get('api.example.com'), scheme: 'ftp' })).toEqual({ error: { tag: 'HTTP-request-denied' } });
    expect(lines.map(([l]) => l)).toEqual(['warn', 'warn', 'warn']);
    expect(lines[0]![1]).toBe('http: GET http "no-such-host.invalid" denied: not in network.hosts');
  });

  it('refuses a request target that is not origin-form (absolute-form would reach past a granted proxy)', async () => {
    const a = await serve((_q, res) => res.end());
    const { send } = sender([a.authority]);
    for (const target of ['http://evil.com/', 'evil.com:80', '', 'x/y', '/a b']) {
      expect(await send(get(a.authority, target))).toEqual({ error: { tag: 'HTTP-request-URI-invalid' } });
    }
    expect(a.seen).toEqual([]);
  });

  it('each sender has its own list: no grant leaks between instances', async () => {
    const a = await serve((_q, res) => res.end('a'));
    const b = await serve((_q, res) => res.end('b'));
    const toA = sender([a.authority]).send;
    const toB = sender([b.authority]).send;
    expect(await toA(get(b.authority))).toEqual({ error: { tag: 'HTTP-request-denied' } });
    expect(await toB(get(a.authority))).toEqual({ error: { tag: 'HTTP-request-denied' } });
    expect('ok' in (await toA(get(a.authority)))).toBe(true);
    expect(a.seen).toEqual(['GET /']);
    expect(b.seen).toEqual([]);
  });

  it('refuses CONNECT (no tunnels through a granted host), answers a 101 upgrade at once, and takes any header name', async () => {
    const a = await serve((q, res) => {
      if (q.url === '/upgrade') { res.writeHead(101, { connection: 'upgrade', upgrade: 'x' }); res.end(); return; }
      res.end(JSON.stringify(q.rawHeaders));
    });
    const { send } = sender([a.authority], 5_000);
    expect(await send(get(a.authority, '/', { method: 'CONNECT' }))).toEqual({ error: { tag: 'HTTP-request-method-invalid' } });
    expect(a.seen).toEqual([]);
    const t0 = performance.now();
    expect(await send(get(a.authority, '/upgrade'))).toEqual({ error: { tag: 'HTTP-protocol-error' } });
    expect(performance.now() - t0).toBeLessThan(2_000);
    const r = await send(get(a.authority, '/h', { headers: [['__proto__', 'p'], ['constructor', 'c']] }));
    if (!('ok' in r)) throw new Error(JSON.stringify(r));
    const raw = JSON.parse(Buffer.from(r.ok.body).toString()) as string[]; // the header lines the server read
    expect(raw.slice(0, 4)).toEqual(['__proto__', 'p', 'constructor', 'c']);
  });

  it("ends a request within what is left of the guest's call, and sends none once its time is up", async () => {
    const silent = await serve(() => undefined); // accepts, never answers
    const { ctx, lines } = instance();
    let deadline: number | undefined = performance.now() + 600;
    const send = outgoingSender({ ...ctx, callDeadline: () => deadline }, { hosts: [silent.authority], maxResponseBytes: 4096, callTimeoutMs: 10_000 });
    const t0 = performance.now();
    expect(await send(get(silent.authority, '/slow'))).toEqual({ error: { tag: 'HTTP-response-timeout' } });
    const took = performance.now() - t0;
    expect(took).toBeGreaterThan(250);
    expect(took).toBeLessThan(600); // ended before the deadline, with its margin
    deadline = performance.now() + 100; // less than the margin: not sent at all
    const seen = silent.seen.length;
    expect(await send(get(silent.authority, '/late'))).toEqual({ error: { tag: 'HTTP-response-timeout' } });
    expect(silent.seen.length).toBe(seen);
    expect(lines.at(-1)).toEqual(['warn', expect.stringContaining("not sent: the call's time is up")]);
  });

  it('never follows a redirect', async () => {
    const b = await serve((_q, res) => res.end('b'));
    const a = await serve((_q, res) => { res.writeHead(301, { location: `http://${b.authority}/` }); res.end(); });
    const r = await sender([a.authority]).send(get(a.authority));
    expect('ok' in r && r.ok.status).toBe(301);
    expect(b.seen).toEqual([]);
  });

  it('refuses a response over max_value_bytes with HTTP-response-body-size (declared or streamed)', async () => {
    const a = await serve((req, res) => {
      if (req.url === '/declared') { res.setHeader('content-length', 8192); res.end('x'.repeat(8192)); return; }
      res.write('x'.repeat(3000));
      setTimeout(() => res.end('y'.repeat(3000)), 20);
    });
    const { send } = sender([a.authority]);
    expect(await send(get(a.authority, '/declared'))).toEqual({ error: { tag: 'HTTP-response-body-size', val: 8192n } });
    expect(await send(get(a.authority, '/chunked'))).toEqual({ error: { tag: 'HTTP-response-body-size', val: undefined } });
  });

  it('maps a refused connection, a silent server and an unresolvable granted name to their error-codes', async () => {
    const port = await closedPort();
    expect(await sender([`127.0.0.1:${port}`]).send(get(`127.0.0.1:${port}`))).toEqual({ error: { tag: 'connection-refused' } });
    const silent = await serve(() => undefined);
    const t0 = Date.now();
    expect(await sender([silent.authority], 60_000).send(get(silent.authority, '/', { firstByteTimeoutMs: 200 }))).toEqual({ error: { tag: 'HTTP-response-timeout' } });
    expect(Date.now() - t0).toBeLessThan(2_000);
    // Under the instance's call deadline even with no request-options (call_timeout_ms 600 → 350 ms budget).
    expect(await sender([silent.authority], 600).send(get(silent.authority))).toEqual({ error: { tag: 'HTTP-response-timeout' } });
    const dns = await sender(['no-such-host.invalid']).send(get('no-such-host.invalid'));
    expect(['DNS-error', 'DNS-timeout']).toContain('error' in dns && dns.error.tag);
  });

  it('drops framing and connection headers the guest sent; the host sets Host and Content-Length', async () => {
    let headers: http.IncomingHttpHeaders = {};
    let body = '';
    const a = await serve((req, res) => { headers = req.headers; req.on('data', (c: Buffer) => { body += c.toString(); }); req.on('end', () => res.end()); });
    await sender([a.authority]).send({
      ...get(a.authority), method: 'POST', body: new TextEncoder().encode('abc'),
      headers: [['Host', 'evil.com'], ['Content-Length', '999'], ['Connection', 'upgrade'], ['x-ok', 'yes']],
    });
    expect(headers.host).toBe(a.authority);
    expect(headers['content-length']).toBe('3');
    expect(headers['x-ok']).toBe('yes');
    expect(headers.connection).not.toBe('upgrade');
    expect(body).toBe('abc');
  });

  it('an HTTPS server with a certificate Node does not trust is TLS-certificate-error, and nothing is sent', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'edgeward-tls-'));
    try {
      const seen: string[] = [];
      const srv = https.createServer(loopbackServerCert(dir), (req, res) => { seen.push(String(req.url)); res.end('x'); });
      servers.push(srv);
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
      const authority = `127.0.0.1:${(srv.address() as AddressInfo).port}`;
      const { send, lines } = sender([authority]);
      expect(await send({ ...get(authority, '/secret'), scheme: 'https' })).toEqual({ error: { tag: 'TLS-certificate-error' } });
      expect(seen).toEqual([]);
      expect(lines).toEqual([['warn', expect.stringMatching(new RegExp(`^http: GET https://${authority}/secret failed: TLS-certificate-error \\(\\d+ ms\\)$`))]]);
      // Plain HTTP to the TLS port is a protocol error, not a hang.
      const plain = await send(get(authority));
      expect(['HTTP-protocol-error', 'connection-terminated']).toContain('error' in plain && plain.error.tag);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an instance that ends mid-request closes its connection at once (not at the timeout)', async () => {
    let closed = false;
    const silent = await serve((req) => { req.socket.on('close', () => { closed = true; }); });
    const { ctx } = instance();
    const lifetime = new AbortController();
    const send = outgoingSender({ ...ctx, signal: lifetime.signal }, { hosts: [silent.authority], maxResponseBytes: 4096, callTimeoutMs: 60_000 });
    const t0 = Date.now();
    const pending = send(get(silent.authority));
    setTimeout(() => lifetime.abort(), 100);
    expect(await pending).toEqual({ error: { tag: 'internal-error', val: 'instance ended' } });
    expect(Date.now() - t0).toBeLessThan(2_000);
    await new Promise((r) => setTimeout(r, 50));
    expect(closed).toBe(true);
    expect(await send(get(silent.authority))).toEqual({ error: { tag: 'internal-error', val: 'instance ended' } });
  });

  it('limits its log lines per instance and says how many it dropped', async () => {
    const { send, lines } = sender(['api.example.com']);
    for (let i = 0; i < 200; i++) await send(get('evil.example.com'));
    expect(lines.length).toBeLessThanOrEqual(60);
    await new Promise((r) => setTimeout(r, 100));
    await send(get('evil.example.com'));
    expect(lines.at(-2)).toEqual(['warn', expect.stringMatching(/^http: \d+ request log lines dropped \(limit 50\/s\)$/)]);
  });
});
