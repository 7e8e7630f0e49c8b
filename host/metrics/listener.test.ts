import http from 'node:http';
import net from 'node:net';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { MAX_METRICS_CONNECTIONS, METRICS_CONTENT_TYPE, serveMetrics } from './listener.js';

const logger = pino({ level: 'silent' });

function request(port: number, method: string, p: string, body?: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    // GET does not frame a body by default: say its length, or the server reads it as the next request.
    const headers = body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) };
    const req = http.request({ host: '127.0.0.1', port, method, path: p, agent: false, headers }, (res) => {
      let out = '';
      res.on('data', (c) => (out += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body: out }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function listening(render: () => Promise<string>) {
  const l = await serveMetrics({ kind: 'tcp', host: '127.0.0.1', port: 0, loopback: true }, render, logger);
  return { l, port: Number(/:(\d+)$/.exec(l.address)![1]) };
}

describe('metrics listener', () => {
  it('serves GET and HEAD /metrics as 0.0.4 text; any other path or method is 404; a body is refused', async () => {
    const { l, port } = await listening(async () => '# HELP x_total x\n# TYPE x_total counter\nx_total 1\n');
    try {
      expect(await request(port, 'GET', '/metrics')).toEqual({ status: 200, type: METRICS_CONTENT_TYPE, body: '# HELP x_total x\n# TYPE x_total counter\nx_total 1\n' });
      expect(await request(port, 'HEAD', '/metrics')).toMatchObject({ status: 200, body: '' });
      for (const [m, p] of [['POST', '/metrics'], ['PUT', '/metrics'], ['GET', '/'], ['GET', '/metrics/'], ['GET', '/debug']]) {
        expect((await request(port, m!, p!)).status, `${m} ${p}`).toBe(404);
      }
      expect((await request(port, 'GET', '/metrics', 'x'.repeat(100))).status).toBe(413);
    } finally {
      await l.close();
    }
  });

  it('a render that fails answers 500 without its cause', async () => {
    const { l, port } = await listening(async () => { throw new Error('secret cause /etc/key.pem'); });
    try {
      const r = await request(port, 'GET', '/metrics');
      expect(r.status).toBe(500);
      expect(r.body).not.toContain('secret');
    } finally {
      await l.close();
    }
  });

  it(`accepts at most ${MAX_METRICS_CONNECTIONS} connections at once; close() frees the port`, async () => {
    const { l, port } = await listening(async () => '');
    const held: net.Socket[] = [];
    try {
      for (let i = 0; i < MAX_METRICS_CONNECTIONS; i++) {
        const s = net.connect(port, '127.0.0.1');
        await new Promise((r) => s.once('connect', r));
        held.push(s);
      }
      await new Promise((r) => setTimeout(r, 100));
      const extra = net.connect(port, '127.0.0.1');
      const closed = await new Promise<boolean>((resolve) => {
        extra.once('close', () => resolve(true));
        setTimeout(() => resolve(false), 2_000);
      });
      expect(closed).toBe(true);
    } finally {
      for (const s of held) s.destroy();
      await l.close();
    }
    const again = net.createServer();
    await new Promise<void>((resolve, reject) => { again.once('error', reject); again.listen(port, '127.0.0.1', () => resolve()); });
    again.close();
  });
});
