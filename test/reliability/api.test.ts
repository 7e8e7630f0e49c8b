/**
 * Reliability scenarios A5, A7 and H9 (HTTP half) (../shared/reference/reliability-scenarios.md) against the real
 * management and workload listeners (`serveOnUnixSocket` + the real hono apps, composed as the daemon
 * composes them) running in a child process (test/reliability/api-server.ts), spoken to in raw bytes.
 * Memory is the child's: its peak RSS (VmHWM, reset before each case) minus its RSS before the case.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import fc from 'fast-check';
import net from 'node:net';
import { report } from '../helpers/reliability.js';
import { DEFAULT_HTTP_LIMITS, MAX_WORKLOAD_CONNECTIONS } from '../../host/api/serve.js';
import { MAX_WORKLOAD_BODY_BYTES } from '../../host/api/workload/app.js';
import { MAX_MGMT_BODY_BYTES } from '../../host/api/management/app.js';
import { exchange, peakRssDelta, percentile, sleep, startApiServer, write, type ApiServer, type Exchange } from './api-fixture.js';

const MiB = 1024 * 1024;
const WV = 'api-version=2020-07-07';
const MV = 'api-version=2020-07-07';
/** Shortened timeouts for the test server (the shipped ones are DEFAULT_HTTP_LIMITS). */
const LIMITS = { headersTimeoutMs: 2000, requestTimeoutMs: 4000, timeoutCheckIntervalMs: 250 };

let api: ApiServer;
beforeAll(async () => {
  api = await startApiServer(LIMITS);
});
afterAll(async () => {
  await api?.stop();
});

const mb = (bytes: number) => (bytes / MiB).toFixed(1);
const signPath = (m: 'flood' | 'calm' | 'fuzz') => `/modules/${m}/genid/${api.modules[m].genid}/sign?${WV}`;

/** Stream `total` bytes of body (64 KiB writes, with backpressure) until done or the server answers. */
function bodyStreamer(headers: string, total: number, chunked: boolean) {
  return async (sock: net.Socket, done: () => boolean) => {
    let answered = false;
    sock.once('data', () => (answered = true));
    if (!(await write(sock, headers))) return;
    const piece = Buffer.alloc(64 * 1024, 0x61);
    for (let sent = 0; sent < total && !done() && !answered; sent += piece.length) {
      const data = chunked ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]) : piece;
      if (!(await write(sock, data))) return;
      await new Promise(setImmediate); // read while writing, as an HTTP client does
    }
    if (chunked && !done() && !answered) await write(sock, '0\r\n\r\n');
  };
}

describe('A5: oversized bodies, headers, query strings and slowloris on the real listeners', () => {
  it('10 MiB bodies, with Content-Length and chunked without one, get 413 without being buffered', async () => {
    const targets = [
      { name: 'workload sign', socket: api.modules.calm.socket, path: signPath('calm'), method: 'POST', limit: MAX_WORKLOAD_BODY_BYTES },
      { name: 'management PUT /modules', socket: api.management, path: `/modules?${MV}`, method: 'PUT', limit: MAX_MGMT_BODY_BYTES },
    ];
    const figures: string[] = [];
    for (const t of targets) {
      for (const chunked of [false, true]) {
        const framing = chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${10 * MiB}`;
        const headers = `${t.method} ${t.path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${framing}\r\n\r\n`;
        // Four at once: a server that buffered would grow by 40 MiB.
        const { value, delta } = await peakRssDelta(api.pid, () =>
          Promise.all([0, 1, 2, 3].map(() => exchange(t.socket, { send: bodyStreamer(headers, 10 * MiB, chunked), responses: 1, timeoutMs: 15_000 }))),
        );
        for (const r of value) expect(r.statuses, `${t.name} ${chunked ? "chunked" : "length"}: ${JSON.stringify({ ...r, head: r.head.slice(0, 200) })}`).toEqual([413]);
        const ms = Math.max(...value.map((r) => r.firstByteMs ?? Infinity));
        // Bounded by what the limit lets it hold (4 × the limit, plus 8 MiB of slack), far below the 40 MiB sent.
        expect(delta).toBeLessThan(4 * t.limit + 8 * MiB);
        figures.push(`${t.name} ${chunked ? 'chunked' : 'Content-Length'}: 413 in ${ms.toFixed(0)} ms, peak RSS +${mb(delta)} MiB (limit ${mb(t.limit)} MiB)`);
      }
    }
    report('A5', `4 × 10 MiB bodies at once → ${figures.join('; ')}`);
  });

  it('64 KiB of headers get 431, 10k query parameters a bounded answer', async () => {
    const sockets = { workload: api.modules.calm.socket, management: api.management };
    const figures: string[] = [];
    for (const [name, socket] of Object.entries(sockets)) {
      const p = name === 'workload' ? `/trust-bundle?${WV}` : `/systeminfo?${MV}`;
      const oneBig = `GET ${p} HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`;
      const many = `GET ${p} HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 1024 }, (_, i) => `X-H${i}: ${'b'.repeat(58)}\r\n`).join('')}\r\n`;
      const params10k = `GET ${p}&${Array.from({ length: 10_000 }, (_, i) => `p${i}=${i}`).join('&')} HTTP/1.1\r\nHost: x\r\n\r\n`;
      // 6000 parameters that fit the header limit: parsed and answered.
      const params6k = `GET ${p}${'&a'.repeat(6000)} HTTP/1.1\r\nHost: x\r\n\r\n`;
      const { value, delta } = await peakRssDelta(api.pid, async () => {
        const out: Record<string, Exchange> = {};
        for (const [k, req] of Object.entries({ oneBig, many, params10k, params6k })) out[k] = await exchange(socket, { send: req, responses: 1, timeoutMs: 5000 });
        return out;
      });
      expect(value.oneBig!.statuses, value.oneBig!.head).toEqual([431]);
      expect(value.many!.statuses, value.many!.head).toEqual([431]);
      expect(value.params10k!.statuses, value.params10k!.head).toEqual([431]);
      expect(value.params6k!.statuses, value.params6k!.head.slice(0, 300)).toEqual([200]);
      expect(delta).toBeLessThan(8 * MiB);
      const ms = (e: Exchange) => `${(e.firstByteMs ?? NaN).toFixed(0)} ms`;
      figures.push(
        `${name}: 64 KiB header 431 in ${ms(value.oneBig!)}, 1024 headers (64 KiB) 431 in ${ms(value.many!)}, 10k params 431 in ${ms(value.params10k!)}, 6k params 200 in ${ms(value.params6k!)}; peak RSS +${mb(delta)} MiB`,
      );
    }
    report('A5', `header limit ${DEFAULT_HTTP_LIMITS.maxHeaderBytes / 1024} KiB (request line included) → ${figures.join('; ')}`);
  });

  it('slowloris: headers or a body trickled one byte a second get 408 or are closed within the timeouts', async () => {
    const trickle = (prefix: string, rest: string) => async (sock: net.Socket, done: () => boolean) => {
      if (!(await write(sock, prefix))) return;
      for (const ch of rest) {
        if (done()) return;
        if (!(await write(sock, ch))) return;
        await sleep(1000);
      }
    };
    const headerTrickle = (p: string) => trickle('', `GET ${p} HTTP/1.1\r\nHost: x\r\nX-Slow: ${'s'.repeat(100)}\r\n\r\n`);
    const bodyTrickle = (p: string, chunked: boolean) =>
      chunked
        ? trickle(`POST ${p} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`, '1\r\n{\r\n'.repeat(50))
        : trickle(`POST ${p} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n`, '{'.repeat(100));
    const short = LIMITS;
    const d = DEFAULT_HTTP_LIMITS;
    const cases = [
      { name: 'workload headers', socket: api.modules.calm.socket, send: headerTrickle(`/trust-bundle?${WV}`), bound: short.headersTimeoutMs + short.timeoutCheckIntervalMs },
      { name: 'workload body', socket: api.modules.calm.socket, send: bodyTrickle(signPath('calm'), false), bound: short.requestTimeoutMs + short.timeoutCheckIntervalMs },
      { name: 'workload chunked body', socket: api.modules.calm.socket, send: bodyTrickle(signPath('calm'), true), bound: short.requestTimeoutMs + short.timeoutCheckIntervalMs },
      { name: 'management headers', socket: api.management, send: headerTrickle(`/systeminfo?${MV}`), bound: short.headersTimeoutMs + short.timeoutCheckIntervalMs },
      { name: 'management body', socket: api.management, send: bodyTrickle(`/modules/x/invoke?${MV}`, false), bound: short.requestTimeoutMs + short.timeoutCheckIntervalMs },
      // The shipped limits: headers within 10 s (checked each second), not Node's 30 s check interval.
      { name: 'management headers, shipped limits', socket: api.managementDefault, send: headerTrickle(`/systeminfo?${MV}`), bound: d.headersTimeoutMs + d.timeoutCheckIntervalMs },
    ];
    const { value, delta } = await peakRssDelta(api.pid, () => Promise.all(cases.map((c) => exchange(c.socket, { send: c.send, timeoutMs: c.bound + 5000 }))));
    const figures: string[] = [];
    value.forEach((r, i) => {
      const c = cases[i]!;
      expect(r.timedOut, c.name).toBe(false);
      expect(r.closed, c.name).toBe(true);
      expect([[], [408]], `${c.name}: ${r.head}`).toContainEqual(r.statuses);
      // Ended within its timeout plus one check interval (and scheduling slack).
      expect(r.ms, c.name).toBeLessThan(c.bound + 1500);
      figures.push(`${c.name}: ${r.statuses[0] ?? 'closed'} after ${(r.ms / 1000).toFixed(1)} s (bound ${(c.bound / 1000).toFixed(1)} s)`);
    });
    expect(delta).toBeLessThan(8 * MiB);
    report('A5', `slowloris, 1 byte/s → ${figures.join('; ')}; peak RSS +${mb(delta)} MiB`);
  }, 25_000);
});

/**
 * The flooder, a separate process (so its load is not on the test's event loop, where the other
 * module's latency is timed): N connections at once on one socket; after 300 ms it reports how many are
 * still open (the cap), then every connection loops: a sign request and its answer while the server
 * keeps it, a reconnect at once when it is closed. On SIGTERM it prints its counts.
 */
const FLOODER = `
const net = require('node:net');
const [sock, genid, n] = [process.argv[1], process.argv[2], Number(process.argv[3])];
const body = JSON.stringify({ data: Buffer.from('flood').toString('base64') });
const req = 'POST /modules/flood/genid/' + genid + '/sign?api-version=2020-07-07 HTTP/1.1\\r\\nHost: x\\r\\nContent-Type: application/json\\r\\nContent-Length: ' + body.length + '\\r\\n\\r\\n' + body;
const stats = { connects: 0, rejected: 0, served: 0, other: 0 };
let flooding = false, stopping = false;
function conn() {
  if (stopping) return;
  stats.connects++;
  const s = net.connect(sock);
  let answers = 0, buf = '';
  s.on('connect', () => { s.connected = true; if (flooding) s.write(req); });
  s.on('data', (d) => {
    buf += d.toString('latin1');
    for (;;) {
      const end = buf.indexOf('\\r\\n\\r\\n');
      if (end < 0) break;
      const len = Number(/content-length: (\\d+)/i.exec(buf.slice(0, end))?.[1] ?? 0);
      if (buf.length < end + 4 + len) break;
      const status = buf.slice(9, 12);
      buf = buf.slice(end + 4 + len);
      answers++;
      if (status === '200') stats.served++; else stats.other++;
      if (!stopping) s.write(req);
    }
  });
  s.on('error', () => {});
  s.on('close', () => { if (answers === 0) stats.rejected++; s.closed = true; setImmediate(conn); });
  return s;
}
const first = Array.from({ length: n }, conn);
setTimeout(() => {
  const open = first.filter((s) => !s.closed && !s.destroyed).length;
  process.stdout.write(JSON.stringify({ heldOpen: open }) + '\\n');
  flooding = true;
  for (const s of first) if (!s.closed && !s.destroyed) s.write(req);
}, 300);
process.on('SIGTERM', () => { stopping = true; process.stdout.write(JSON.stringify(stats) + '\\n'); process.exit(0); });
`;

/** Sequential sign requests on one keep-alive connection; latency of each (ms). */
async function signLatencies(socketPath: string, genid: string, module: string, n: number): Promise<number[]> {
  const body = JSON.stringify({ data: Buffer.from('calm').toString('base64') });
  const req = `POST /modules/${module}/genid/${genid}/sign?${WV} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
  const sock = net.connect(socketPath);
  await new Promise((r, j) => (sock.once('connect', r), sock.once('error', j)));
  const out: number[] = [];
  let buf = '';
  let waiter: (() => void) | undefined;
  sock.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    waiter?.();
  });
  try {
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      sock.write(req);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        const len = end < 0 ? 0 : Number(/content-length: (\d+)/i.exec(buf.slice(0, end))?.[1] ?? 0);
        if (end >= 0 && buf.length >= end + 4 + len) {
          expect(buf.slice(0, 12)).toBe('HTTP/1.1 200');
          buf = buf.slice(end + 4 + len);
          break;
        }
        if (sock.destroyed) throw new Error(`connection closed after ${i} answers`);
        await new Promise<void>((r) => (waiter = r));
      }
      out.push(performance.now() - t);
    }
  } finally {
    sock.destroy();
  }
  return out;
}

describe('A7: a connection flood on one module socket', () => {
  it("200 connections flooding module A's socket: the cap of 10 holds, module B's p99 stays within bounds", async () => {
    const N = 200;
    const SAMPLES = 400;
    const { calm, flood } = api.modules;
    await signLatencies(calm.socket, calm.genid, 'calm', 50); // warm up
    const baseline = await signLatencies(calm.socket, calm.genid, 'calm', SAMPLES);
    const child = spawn(process.execPath, ['-e', FLOODER, flood.socket, flood.genid, String(N)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`flooder did not report: ${out}`)), 10_000);
        const check = () => out.includes('heldOpen') && (clearTimeout(t), resolve());
        child.stdout.on('data', check);
      });
      const { heldOpen } = JSON.parse(out.split('\n')[0]!) as { heldOpen: number };
      await sleep(200); // the flood running
      const flooded = await signLatencies(calm.socket, calm.genid, 'calm', SAMPLES);
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      const stats = JSON.parse(out.trim().split('\n').pop()!) as { connects: number; rejected: number; served: number; other: number };
      const p99Base = percentile(baseline, 99);
      const p99Flood = percentile(flooded, 99);
      const ratio = p99Flood / p99Base;
      const [p50Base, p50Flood] = [percentile(baseline, 50), percentile(flooded, 50)];
      // Generous bounds: the flood shares the daemon's event loop, and the flooder the machine's 2 cores
      // (p99 alone is itself noisy on a shared machine: 10–50 ms seen). Were the cap not per socket, 200
      // connections' requests would queue ahead of each of B's (≈20× the 10 the cap lets in), far past these.
      const p99Bound = Math.max(10 * p99Base, p99Base + 400);
      const p50Bound = p50Base + 40;
      const held = heldOpen === MAX_WORKLOAD_CONNECTIONS && stats.served > 0 && stats.rejected >= N - MAX_WORKLOAD_CONNECTIONS && p99Flood < p99Bound && p50Flood < p50Bound;
      report(
        'A7',
        `${N} connections flooding one module socket: ${heldOpen} kept open (cap ${MAX_WORKLOAD_CONNECTIONS}), ${stats.rejected} connections rejected of ${stats.connects}, ` +
          `${stats.served} flood signs served; other module p99 ${p99Base.toFixed(2)} ms alone → ${p99Flood.toFixed(2)} ms under the flood (× ${ratio.toFixed(1)}; p50 ${p50Base.toFixed(2)} → ${p50Flood.toFixed(2)} ms; ${SAMPLES} signs each, measured before and during the flood)`,
        held,
      );
      expect(heldOpen).toBe(MAX_WORKLOAD_CONNECTIONS);
      expect(stats.served).toBeGreaterThan(0);
      expect(stats.other).toBe(0);
      expect(stats.rejected).toBeGreaterThanOrEqual(N - MAX_WORKLOAD_CONNECTIONS);
      expect(p99Flood).toBeLessThan(p99Bound);
      expect(p50Flood).toBeLessThan(p50Bound);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('H9: fuzzing the management and workload HTTP front ends', () => {
  /** Its own server: a case that broke it must not hide behind A5/A7's. */
  let fz: ApiServer;
  beforeAll(async () => {
    fz = await startApiServer(LIMITS);
  });
  afterAll(async () => {
    await fz?.stop();
  });

  it('a client that closes mid-body (Content-Length longer than what it sent): no 500, no error-level log', async () => {
    const before = fz.stderr().split('\n').length;
    const cut = (method: string, target: string) => {
      const json = '{"id":"k1","type":"hmac"}';
      return Buffer.from(`${method} ${target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${json.length + 10}\r\n\r\n${json}`);
    };
    const genid = fz.modules.fuzz.genid;
    const cases: [string, Buffer][] = [
      [fz.management, cut('POST', `/modules?api-version=2020-07-07`)],
      [fz.management, cut('PUT', `/modules/calm?api-version=2020-07-07`)],
      [fz.modules.fuzz.socket, cut('POST', `/modules/fuzz/genid/${genid}/sign?api-version=2020-07-07`)],
    ];
    for (const [sock, bytes] of cases) {
      const r = await exchange(sock, { send: bytes, end: true, responses: 1, timeoutMs: 3000 });
      expect(r.timedOut).toBe(false);
      expect(r.statuses).not.toContain(500);
    }
    await new Promise((r) => setTimeout(r, 200));
    const lines = fz.stderr().split('\n').slice(before - 1).filter((l) => /unhandled error|"level":50|Error:/.test(l));
    expect(lines, lines.slice(0, 3).join('\n')).toEqual([]);
  });

  it('random requests as raw bytes: 0 crashes, no 500, no hang, and the server answers a good request after each', async () => {
    const FUZZ_MS = Number(process.env.EDGEWARD_FUZZ_MS ?? 18_000);
    const genid = () => fz.modules.fuzz.genid;
    // Names for management routes (not `fuzz`, whose socket the workload cases use: deleting it is legitimate).
    const weird = ['..', '%2e%2e', '%2F', '..%2F..%2Fetc%2Fpasswd', '%00', '%ZZ', '%', '%C0%AE', '$edgeAgent', '%24edgeHub', '%20', '*', '', 'a'.repeat(300), '%F0%9F%92%A9', '%E9t%E9', '%FF%FE'];
    const segment = (own: string[]) =>
      fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom(...own) },
        { weight: 3, arbitrary: fc.constantFrom(...weird) },
        { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9._$-]{1,70}$/) },
        { weight: 2, arbitrary: fc.string({ maxLength: 40 }).map(encodeURIComponent) },
        { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }).map((s) => s.replace(/[\r\n ]/g, '_')) },
        { weight: 1, arbitrary: fc.integer({ min: 1, max: 20_000 }).map((n) => 'x'.repeat(n)) },
      );
    const mgmtPath = fc.oneof(
      fc.constantFrom('/modules', '/identities', '/keys', '/systeminfo', '/systeminfo/resources', '/system/status', '/system/log-level', '/system/logs', '/config/reload', '/system/restart'),
      fc.tuple(fc.constantFrom('/modules/', '/identities/', '/keys/'), segment(['calm', 'flood', 'ghost']), fc.constantFrom('', '/start', '/stop', '/restart', '/invoke', '/logs', '/env', '/public', '/', '/x/y'))
        .map(([a, b, c]) => a + b + c),
    );
    const workloadPath = fc.oneof(
      fc.constantFrom('/trust-bundle', '/manifest-trust-bundle'),
      fc
        .tuple(segment(['fuzz', 'calm', 'flood']), fc.oneof(fc.constant('@genid'), segment(['0', '1'])), fc.constantFrom('sign', 'encrypt', 'decrypt', 'certificate/server', 'x'))
        .map(([n, g, r]) => `/modules/${n}/genid/${g}/${r}`),
      segment(['fuzz']).map((n) => `/modules/${n}/certificate/identity`),
    );
    const anyPath = fc.oneof(fc.constantFrom('*', '/', '//', '/..', '/%', 'http://x/systeminfo', 'x'), fc.string({ maxLength: 60 }).map((s) => '/' + s.replace(/[\r\n ]/g, '')));
    const version = fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom('api-version=2020-07-07', 'api-version=2026-11-01') },
      fc.constantFrom('api-version=2020-07-07', 'api-version=2018-06-28', 'api-version=2026-11-01', 'api-version=2022-08-03', 'api-version=2021-05-11', 'api-version=', 'api-version', ''),
      fc.string({ maxLength: 40 }).map((s) => `api-version=${encodeURIComponent(s)}`),
      fc.constant(`api-version=${'9'.repeat(20_000)}`),
      fc.constant('api-version=2020-07-07&api-version=2026-11-01'),
    );
    const extraQuery = fc.array(
      fc.tuple(fc.constantFrom('tail', 'follow', 'since', 'until', 'start', 'x', '%ZZ', ''), fc.oneof(fc.constantFrom('true', 'false', 'all', '10', '-1', '1%20day', '90m', '2026-01-01T00:00:00Z', '%', '99999999999999'), fc.string({ maxLength: 30 }).map(encodeURIComponent))),
      { maxLength: 4 },
    );
    const b64 = fc.oneof(fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString('base64')), fc.string({ maxLength: 30 }));
    const shaped = fc.oneof(
      fc.record({ data: b64, keyId: fc.constant('primary'), algo: fc.constantFrom('HMACSHA256', 'x') }, { requiredKeys: [] }),
      fc.record({ plaintext: b64, ciphertext: b64, initializationVector: b64 }, { requiredKeys: [] }),
      fc.record({ commonName: fc.oneof(fc.constantFrom('gw.local', 'a b', ''), fc.string({ maxLength: 80 })), expiration: fc.string() }, { requiredKeys: [] }),
      fc.record({ moduleId: fc.oneof(fc.constantFrom('ghost', '', '..'), fc.string({ maxLength: 70 })), kind: fc.constantFrom('native', 'component'), uid: fc.oneof(fc.integer(), fc.double()) }, { requiredKeys: [] }),
      fc.record({ id: fc.oneof(fc.constantFrom('k1', '..', ''), fc.string({ maxLength: 40 })), type: fc.constantFrom('ec-p256', 'hmac', 'aes', 'rsa-2048', 'x') }, { requiredKeys: [] }),
      fc.record({ level: fc.constantFrom('debug', 'error', 'x', 5) }, { requiredKeys: [] }),
      fc.record({ methodName: fc.oneof(fc.constant('ping'), fc.string({ maxLength: 20 })), payload: fc.jsonValue() }, { requiredKeys: [] }),
      fc.record({ name: fc.string({ maxLength: 20 }), source: fc.string({ maxLength: 40 }), modules: fc.jsonValue() }, { requiredKeys: [] }),
    );
    const body = fc.oneof(
      fc.constant(Buffer.alloc(0)),
      { weight: 4, arbitrary: shaped.map((o) => Buffer.from(JSON.stringify(o))) },
      fc.json({ maxDepth: 3 }).map((j) => Buffer.from(j)),
      fc.uint8Array({ maxLength: 2000 }).map((b) => Buffer.from(b)),
      fc.constantFrom('{', '[', 'null', '"x"', '{"data":', '\u0000', '{"__proto__":{"x":1}}').map((s) => Buffer.from(s)),
    );
    const header = fc.oneof(
      { weight: 6, arbitrary: fc.tuple(fc.constantFrom('Content-Type'), fc.constantFrom('application/json', 'application/json', 'text/plain', 'application/json; charset=utf-16', 'multipart/form-data; boundary=x', '')) },
      { weight: 2, arbitrary: fc.tuple(fc.constantFrom('Content-Type', 'Accept', 'Connection', 'Expect', 'X-Forwarded-For', 'Cookie', 'Range', 'Content-Encoding', 'Upgrade'), fc.constantFrom('application/json', 'text/plain', 'application/json; charset=utf-16', 'close', '100-continue', 'gzip', 'h2c', 'bytes=0-1', '')) },
      { weight: 2, arbitrary: fc.tuple(fc.stringMatching(/^[A-Za-z0-9-]{1,30}$/), fc.string({ maxLength: 60 }).map((s) => s.replace(/[\r\n\0]/g, ''))) },
      { weight: 1, arbitrary: fc.tuple(fc.string({ unit: 'binary', maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 20 })) },
    );
    // 'none' with a body, and 'short', leave bytes that Node parses as a second (bad) request.
    const framing = fc.oneof({ weight: 12, arbitrary: fc.constantFrom('length', 'length', 'length', 'chunked') }, fc.constantFrom('none', 'short', 'long', 'both', 'negative', 'double'));
    const wellFormed = fc.record({
      target: fc.constantFrom('management', 'workload', 'shared'),
      method: fc.oneof({ weight: 15, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE') }, fc.constantFrom('CONNECT', 'get', 'BREW', 'M-SEARCH'), fc.stringMatching(/^[A-Z]{1,10}$/)),
      path: fc.oneof({ weight: 3, arbitrary: fc.oneof(mgmtPath, workloadPath) }, { weight: 1, arbitrary: anyPath }),
      version,
      extraQuery,
      host: fc.oneof({ weight: 15, arbitrary: fc.constant('Host: x') }, fc.constant(''), fc.constant('Host: '), fc.constant('Host: a\r\nHost: b')),
      headers: fc.array(header, { maxLength: 3 }),
      body,
      framing,
      httpVersion: fc.oneof({ weight: 15, arbitrary: fc.constant('HTTP/1.1') }, { weight: 1, arbitrary: fc.constantFrom('HTTP/1.0', 'HTTP/2.0', 'HTTP/1.2', 'http/1.1', '', 'HTTP/1.1 extra') }),
      eol: fc.oneof({ weight: 15, arbitrary: fc.constant('\r\n') }, { weight: 1, arbitrary: fc.constant('\n') }),
    });
    const raw = fc.record({ target: fc.constantFrom('management', 'workload', 'shared'), bytes: fc.oneof(fc.uint8Array({ maxLength: 3000 }).map((b) => Buffer.from(b)), fc.constantFrom('GET / HTTP/1.1', 'GET /\r\n\r\n', '\r\n\r\n', 'GET  /  HTTP/1.1\r\n\r\n', 'POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nHost: x\r\n\r\nzz\r\n', 'GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /systeminfo?api-version=2020-07-07 HTTP/1.1\r\nHost: x\r\n\r\n').map((s) => Buffer.from(s))) });
    type Case = { kind: 'request'; c: typeof wellFormed extends fc.Arbitrary<infer T> ? T : never } | { kind: 'raw'; c: typeof raw extends fc.Arbitrary<infer T> ? T : never };
    const anyCase: fc.Arbitrary<Case> = fc.oneof({ weight: 6, arbitrary: wellFormed.map((c) => ({ kind: 'request' as const, c })) }, { weight: 1, arbitrary: raw.map((c) => ({ kind: 'raw' as const, c })) });

    const socketOf = (t: 'management' | 'workload' | 'shared') => (t === 'management' ? fz.management : t === 'workload' ? fz.modules.fuzz.socket : fz.sharedWorkload);
    const serialize = (c: Case): Buffer => {
      if (c.kind === 'raw') return c.c.bytes;
      const r = c.c;
      const q = [r.version, ...r.extraQuery.map(([k, v]) => `${k}=${v}`)].filter(Boolean).join('&');
      const target = r.path.replace('@genid', genid()) + (q ? `?${q}` : '');
      const lines = [`${r.method} ${target}${r.httpVersion ? ` ${r.httpVersion}` : ''}`];
      if (r.host) lines.push(r.host);
      for (const [k, v] of r.headers) lines.push(`${k}: ${v}`);
      let payload = r.body;
      switch (r.framing) {
        case 'length': lines.push(`Content-Length: ${payload.length}`); break;
        case 'chunked':
          lines.push('Transfer-Encoding: chunked');
          payload = payload.length ? Buffer.concat([Buffer.from(`${payload.length.toString(16)}\r\n`), payload, Buffer.from('\r\n0\r\n\r\n')]) : Buffer.from('0\r\n\r\n');
          break;
        case 'none': break;
        case 'short': lines.push(`Content-Length: ${Math.max(0, payload.length - 3)}`); break;
        case 'long': lines.push(`Content-Length: ${payload.length + 10}`); break;
        case 'both': lines.push(`Content-Length: ${payload.length}`, 'Transfer-Encoding: chunked'); break;
        case 'negative': lines.push('Content-Length: -1'); break;
        case 'double': lines.push(`Content-Length: ${payload.length}`, `Content-Length: ${payload.length + 1}`); break;
      }
      return Buffer.concat([Buffer.from(lines.join(r.eol) + r.eol + r.eol, 'latin1'), payload]);
    };
    const health = { management: `GET /systeminfo?${MV} HTTP/1.1\r\nHost: x\r\n\r\n`, workload: `GET /trust-bundle?${WV} HTTP/1.1\r\nHost: x\r\n\r\n`, shared: `GET /trust-bundle?${WV} HTTP/1.1\r\nHost: x\r\n\r\n` };

    const HANG_MS = 3000;
    let execs = 0;
    const statuses = new Map<number, number>();
    let closedWithoutAnswer = 0;
    let slowest = 0;
    const t0 = Date.now();
    await fc.assert(
      fc.asyncProperty(anyCase, async (c) => {
        execs++;
        const sock = socketOf(c.c.target);
        // Half-closed after sending: the server answers what it got; nothing waits on a body never sent.
        const r = await exchange(sock, { send: serialize(c), end: true, responses: 1, timeoutMs: HANG_MS });
        slowest = Math.max(slowest, r.ms);
        for (const s of r.statuses) statuses.set(s, (statuses.get(s) ?? 0) + 1);
        if (r.statuses.length === 0) closedWithoutAnswer++;
        expect(fz.exited(), 'the server process exited').toBe(false);
        expect(r.timedOut, `no answer and not closed within ${HANG_MS} ms`).toBe(false);
        expect(r.statuses, r.head.slice(0, 400)).not.toContain(500);
        const ok = await exchange(sock, { send: health[c.c.target], responses: 1, timeoutMs: HANG_MS });
        expect(ok.statuses, `a well-formed request after the case: ${ok.head.slice(0, 200)} ${ok.error ?? ''}`).toEqual([200]);
      }),
      { numRuns: Number.MAX_SAFE_INTEGER, plugins: [fc.interruptAfterTimeLimit(FUZZ_MS)], endOnFailure: false },
    );
    const unhandled = fz.stderr().split('\n').filter((l) => /unhandled error|"level":50|Error:/.test(l));
    expect(unhandled, unhandled.slice(0, 5).join('\n')).toEqual([]);
    expect(fz.exited()).toBe(false);
    const dist = [...statuses.entries()].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}×${n}`).join(' ');
    report('H9', `HTTP front ends (management, module and shared workload sockets), fast-check ${((Date.now() - t0) / 1000).toFixed(0)} s: ${execs} execs, crashes 0, hangs 0, 500s 0; answers ${dist}; closed without an answer ${closedWithoutAnswer}; slowest ${slowest.toFixed(0)} ms`);
  }, 28_000);
});
