import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_HTTP_LIMITS, httpServer } from '../serve.js';
import { bodyLimit } from './body-limit.js';

const MAX = 100;

/** An app behind the body limit that tells whether node-server had to build a web Request. */
function app(): Hono {
  const a = new Hono();
  a.use('*', bodyLimit({ maxSize: MAX, onError: (c) => c.json({ message: 'too large' }, 413) }));
  a.post('/', async (c) => c.json({ length: (await c.req.text()).length }));
  return a;
}

function post(port: number, body: string, chunked: boolean): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers = chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(Buffer.byteLength(body)) };
    const req = http.request({ port, host: '127.0.0.1', method: 'POST', path: '/', headers }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: text }));
    });
    req.on('error', reject);
    if (chunked) {
      // Two chunks, so the body is not known until it has arrived.
      req.write(body.slice(0, 10));
      req.end(body.slice(10));
    } else req.end(body);
  });
}

describe('bodyLimit (workload API, second layer behind the listener)', () => {
  let server: http.Server;
  let stop: () => Promise<void>;
  let port: number;

  beforeAll(async () => {
    // The listener's own limit is far larger, so every refusal below is the middleware's.
    ({ server, stop } = httpServer(app(), 10, { ...DEFAULT_HTTP_LIMITS, maxBodyBytes: 1024 * 1024 }));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => stop());

  it('served by node: over the limit is 413, with Content-Length and chunked; at the limit the app reads it', async () => {
    for (const chunked of [false, true]) {
      expect(await post(port, 'x'.repeat(MAX + 1), chunked), `chunked ${chunked}`).toEqual({ status: 413, body: '{"message":"too large"}' });
      expect(await post(port, 'x'.repeat(MAX), chunked), `chunked ${chunked}`).toEqual({ status: 200, body: `{"length":${MAX}}` });
    }
  });

  it('in memory (no listener in front): the same answers', async () => {
    const a = app();
    const over = await a.request('/', { method: 'POST', body: 'x'.repeat(MAX + 1) });
    expect(over.status).toBe(413);
    const chunks = new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode('x'.repeat(MAX + 1))); c.close(); } });
    expect((await a.request('/', { method: 'POST', body: chunks, duplex: 'half' } as RequestInit)).status).toBe(413);
    expect(await (await a.request('/', { method: 'POST', body: 'abc' })).json()).toEqual({ length: 3 });
  });
});
