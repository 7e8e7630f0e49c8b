import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { loopbackServerCert } from '../../test/helpers/pki.js';
import { fetchHttps, MAX_REDIRECTS } from './fetch-source.js';

/** A self-signed certificate for 127.0.0.1 made with openssl, and an https server on loopback. */
describe('fetchHttps against a real https server', () => {
  let dir: string;
  let ca: Buffer;
  let server: https.Server;
  let plain: http.Server;
  let base: string;
  let plainBase: string;
  const body = Buffer.alloc(100_000, 7);
  let requests = 0;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ew-fetch-'));
    const tls = loopbackServerCert(dir);
    ca = tls.cert;
    server = https.createServer(tls, (req, res) => {
      requests++;
      const u = new URL(req.url ?? '/', 'https://x');
      switch (u.pathname) {
        case '/ok.wasm': res.writeHead(200, { 'content-length': body.length }); return res.end(body);
        case '/chunked.wasm': // no content-length: only the streaming cap can stop it
          res.writeHead(200);
          for (let i = 0; i < 20; i++) res.write(body);
          return res.end();
        case '/liar.wasm': res.writeHead(200, { 'content-length': 10 ** 9 }); return res.end(body);
        case '/redirect': res.writeHead(302, { location: '/ok.wasm' }); return res.end();
        case '/to-http': res.writeHead(302, { location: `${plainBase}/ok.wasm` }); return res.end();
        case '/loop': res.writeHead(302, { location: '/loop' }); return res.end();
        case '/silent': return; // never answers
        default: res.writeHead(404); return res.end();
      }
    });
    plain = http.createServer((_req, res) => { requests++; res.end(body); });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    plainBase = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await new Promise((r) => plain.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('downloads the bytes from a trusted server, following an https redirect', async () => {
    expect(Buffer.from(await fetchHttps(`${base}/ok.wasm`, { maxBytes: 1 << 20, ca }))).toEqual(body);
    expect(Buffer.from(await fetchHttps(`${base}/redirect`, { maxBytes: 1 << 20, ca }))).toEqual(body);
  });

  it('refuses a server whose certificate is not trusted', async () => {
    await expect(fetchHttps(`${base}/ok.wasm`, { maxBytes: 1 << 20 })).rejects.toThrow(/SELF_SIGNED|self-signed|unable to verify/i);
  });

  it('caps the size while streaming, with or without a content-length', async () => {
    await expect(fetchHttps(`${base}/chunked.wasm`, { maxBytes: 1 << 20, ca })).rejects.toMatchObject({ code: 'invalid', message: expect.stringContaining(`larger than ${1 << 20} bytes`) });
    await expect(fetchHttps(`${base}/liar.wasm`, { maxBytes: 1 << 20, ca })).rejects.toMatchObject({ code: 'invalid' });
    await expect(fetchHttps(`${base}/ok.wasm`, { maxBytes: 1000, ca })).rejects.toMatchObject({ code: 'invalid' });
  });

  it('refuses a redirect to plain http, and a redirect loop', async () => {
    const before = requests;
    await expect(fetchHttps(`${base}/to-http`, { maxBytes: 1 << 20, ca })).rejects.toThrow('redirect to http:// refused (https only)');
    expect(requests).toBe(before + 1); // the plain server was never asked
    await expect(fetchHttps(`${base}/loop`, { maxBytes: 1 << 20, ca })).rejects.toThrow(`more than ${MAX_REDIRECTS} redirects`);
  });

  it('gives up on a silent server and on the overall deadline, and reports HTTP errors', async () => {
    await expect(fetchHttps(`${base}/silent`, { maxBytes: 1 << 20, ca, idleTimeoutMs: 200 })).rejects.toThrow('no data for 200 ms');
    await expect(fetchHttps(`${base}/silent`, { maxBytes: 1 << 20, ca, timeoutMs: 300 })).rejects.toThrow('download timed out');
    await expect(fetchHttps(`${base}/missing.wasm`, { maxBytes: 1 << 20, ca })).rejects.toThrow(`source ${base}/missing.wasm: HTTP 404`);
  });
});
