/**
 * Workload API throughput (issue 14): `POST /modules/{m}/genid/{g}/sign` on 8 native modules' sockets ×
 * 8 keep-alive connections each (IoT Edge caps 10 per socket), against a bare hono server on 8 Unix
 * sockets answering the same JSON (bench/workload-bare.mjs: JSON parse, base64 decode, HMAC-SHA256 with a
 * key held in memory, nothing else), in one run.
 *
 * Edgeward is the real daemon (the CLI, default config: the development file key store, no cloud, no
 * deployed module), with 8 modules registered through `edgeward module register`; every sign goes through
 * the whole path (caller check, api-version, body limits, the key service and its file backend). Both
 * servers are child processes; the load generator is this process, so neither server pays for the client
 * and both pay the same client on the same 2 cores. The client is a minimal HTTP/1.1 keep-alive client on
 * raw Unix sockets (one request in flight per connection, request bytes prebuilt), so that it costs far
 * less per request than either server and the figure is the server's. Rounds alternate (bare, Edgeward,
 * bare, Edgeward) so drifting machine load hits both; every digest is checked against node:crypto.
 *
 * Prints each side's throughput, p50/p99 latency and server CPU per request (from /proc), and the ratios
 * with the issue's targets. BENCH_WORKLOAD_SECONDS (default 5) per round, BENCH_WORKLOAD_ROUNDS (2),
 * BENCH_WORKLOAD_PROFILE=DIR runs both servers with --cpu-prof into DIR,
 * BENCH_WORKLOAD_TRACE_GC=FILE with --trace-gc into FILE.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist', 'host', 'bundle', 'edgeward.js');
const MODULES = 8;
const CONNECTIONS = 8;
const SECONDS = Number(process.env.BENCH_WORKLOAD_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_WORKLOAD_ROUNDS ?? 2);
const WARMUP_MS = 1000;
const API_VERSION = '2020-07-07';
const CLK_TCK = 100;

/** BENCH_WORKLOAD_TRACE_GC=FILE: the servers' --trace-gc lines, written to FILE at the end. */
const gcLines: string[] = [];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Target {
  socketPath: string;
  module: string;
  genid: string;
}

function cli(home: string, args: string[]): string {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, EDGEWARD_HOME: home }, encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`edgeward ${args.join(' ')}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** Spawn and wait for `ready` in its output; the output is kept for the error if it never comes. */
async function spawnUntil(name: string, args: string[], env: NodeJS.ProcessEnv, ready: string, stdin?: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin!.end(stdin ?? '');
  let out = '';
  child.stdout!.on('data', (c) => {
    out = (out + c).slice(-20_000);
    if (process.env.BENCH_WORKLOAD_TRACE_GC) for (const l of String(c).split('\n')) if (/Scavenge|Mark-Compact|Mark-sweep/.test(l)) gcLines.push(`${name} ${l}`);
  });
  child.stderr!.on('data', (c) => (out = (out + c).slice(-20_000)));
  const deadline = Date.now() + 120_000;
  while (!out.includes(ready)) {
    if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited ${child.exitCode}: ${out}`);
    if (Date.now() > deadline) throw new Error(`${args.join(' ')} did not start: ${out}`);
    await sleep(50);
  }
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const done = new Promise((r) => child.on('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await done;
  clearTimeout(t);
}

/** BENCH_WORKLOAD_PROFILE=DIR: V8's CPU profile of a server, written to DIR/NAME-….cpuprofile when it stops. */
function profileFlags(name: string): string[] {
  const dir = process.env.BENCH_WORKLOAD_PROFILE;
  const gc = process.env.BENCH_WORKLOAD_TRACE_GC ? ['--trace-gc'] : [];
  return [...gc, ...(dir ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(dir), '--cpu-prof-name', `${name}-${Date.now()}.cpuprofile`] : [])];
}

/** The real daemon with an empty deployment and MODULES native modules registered. */
async function startEdgeward(home: string): Promise<{ daemon: ChildProcess; targets: Target[]; master: Buffer }> {
  const manifest = path.join(home, 'deployment.json');
  writeFileSync(manifest, JSON.stringify({ modules: {} }));
  const config = path.join(home, 'config.toml');
  writeFileSync(config, `[runtime]\ndeployment = "${manifest}"\n`);
  const daemon = await spawnUntil('edgeward', [...profileFlags('edgeward'), CLI, 'daemon', '--config', config], { ...process.env, EDGEWARD_HOME: home }, 'management API listening');
  const targets: Target[] = [];
  for (let i = 0; i < MODULES; i++) {
    const module = `sensor${i}`;
    cli(home, ['module', 'register', module]);
    const env = Object.fromEntries(cli(home, ['module', 'env', module]).trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2)));
    targets.push({ module, socketPath: env.IOTEDGE_WORKLOADURI!.replace(/^unix:\/\//, ''), genid: env.IOTEDGE_MODULEGENERATIONID! });
  }
  return { daemon, targets, master: masterKey(path.join(home, 'state', 'keys')) };
}

/** The daemon's module base key, read from the development file store (to check every digest). */
function masterKey(dir: string): Buffer {
  const file = readdirSync(dir).find((f) => f.includes('identity-master'));
  if (!file) throw new Error(`no identity-master key in ${dir}`);
  return Buffer.from((JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as { secret: string }).secret, 'base64');
}

async function startBare(dir: string, master: Buffer): Promise<{ server: ChildProcess; targets: Target[] }> {
  const targets = Array.from({ length: MODULES }, (_, i) => ({ module: `sensor${i}`, socketPath: path.join(dir, `bare${i}.sock`), genid: '1' }));
  const arg = JSON.stringify(Object.fromEntries(targets.map((t) => [t.socketPath, t.module])));
  const server = await spawnUntil('bare', [...profileFlags('bare'), path.join(ROOT, 'bench', 'workload-bare.mjs'), arg], process.env, 'ready', master.toString('base64'));
  return { server, targets };
}

/** What a module's SDK signs: its SAS string `{audience}\n{expiry}`, base64 in `data`. */
function requestFor(t: Target, data: Buffer): Buffer {
  const body = JSON.stringify({ keyId: 'primary', algo: 'HMACSHA256', data: data.toString('base64') });
  return Buffer.from(
    `POST /modules/${t.module}/genid/${t.genid}/sign?api-version=${API_VERSION} HTTP/1.1\r\nHost: localhost\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

interface Tally {
  latenciesMs: number[];
  errors: number;
}

/**
 * One keep-alive connection sending `request` back to back until `until`, each answer parsed (status,
 * Content-Length) and its body checked once against `expected`; latencies recorded after `from`.
 */
function drive(t: Target, request: Buffer, expected: string, from: number, until: number, tally: Tally): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(t.socketPath);
    let buf: Buffer = Buffer.alloc(0);
    let sent = 0;
    let checked = false;
    const send = () => {
      sent = performance.now();
      sock.write(request);
    };
    sock.on('connect', send);
    sock.on('error', reject);
    sock.on('data', (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        const len = /\r\ncontent-length: *(\d+)/i.exec(head);
        if (!len) return reject(new Error(`${t.socketPath}: answer without Content-Length: ${head}`));
        const total = end + 4 + Number(len[1]);
        if (buf.length < total) return;
        const status = Number(head.slice(9, 12));
        const body = buf.subarray(end + 4, total).toString();
        buf = buf.subarray(total);
        const now = performance.now();
        if (status !== 200) tally.errors++;
        else if (!checked) {
          checked = true;
          if (body !== expected) return reject(new Error(`${t.socketPath}: wrong answer ${body}, expected ${expected}`));
        }
        if (sent >= from) tally.latenciesMs.push(now - sent);
        if (now >= until) return void (sock.end(), resolve());
        send();
      }
    });
  });
}

function cpuMs(pid: number): number {
  return ticksMs(readFileSync(`/proc/${pid}/stat`, 'utf8'));
}

/** utime + stime of a /proc stat line, in ms. */
function ticksMs(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

/** CPU ms of each of the process's threads, by thread name (main thread: its pid). */
function threadCpuMs(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = tid === String(pid) ? 'main' : readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      out.set(name, (out.get(name) ?? 0) + ticksMs(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')));
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out;
}

interface Round {
  requests: number;
  seconds: number;
  latenciesMs: number[];
  errors: number;
  serverCpuMs: number;
  /** Server CPU ms during the measured window, by thread name. */
  threads: Map<string, number>;
}

/** One round: warm-up, then SECONDS of load on every target × CONNECTIONS. */
async function round(targets: Target[], master: Buffer, pid: number): Promise<Round> {
  const data = Buffer.from(`hub.example%2Fdevices%2Fdev%2Fmodules%2Fsensor\n${Math.floor(Date.now() / 1000) + 3600}`);
  const tally: Tally = { latenciesMs: [], errors: 0 };
  const start = performance.now();
  const from = start + WARMUP_MS;
  const until = from + SECONDS * 1000;
  let cpu0 = 0;
  let threads0 = new Map<string, number>();
  const cpuAt = setTimeout(() => ((cpu0 = cpuMs(pid)), (threads0 = threadCpuMs(pid))), WARMUP_MS);
  const runs = targets.flatMap((t) => {
    const key = createHmac('sha256', master).update(t.module).digest();
    const expected = JSON.stringify({ digest: createHmac('sha256', key).update(data).digest('base64') });
    const request = requestFor(t, data);
    return Array.from({ length: CONNECTIONS }, () => drive(t, request, expected, from, until, tally));
  });
  await Promise.all(runs);
  clearTimeout(cpuAt);
  const seconds = (performance.now() - from) / 1000;
  const threads = new Map([...threadCpuMs(pid)].map(([k, v]) => [k, v - (threads0.get(k) ?? 0)]));
  return { requests: tally.latenciesMs.length, seconds, latenciesMs: tally.latenciesMs, errors: tally.errors, serverCpuMs: cpuMs(pid) - cpu0, threads };
}

interface Summary {
  rps: number;
  p50: number;
  p99: number;
  cpuUsPerReq: number;
  errors: number;
  /** Server CPU µs per request by thread name, largest first. */
  threads: [string, number][];
}

function summarize(rounds: Round[]): Summary {
  const lat = new Float64Array(rounds.flatMap((r) => r.latenciesMs)).sort();
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!;
  const requests = rounds.reduce((a, r) => a + r.requests, 0);
  const seconds = rounds.reduce((a, r) => a + r.seconds, 0);
  const cpu = rounds.reduce((a, r) => a + r.serverCpuMs, 0);
  const threads = new Map<string, number>();
  for (const r of rounds) for (const [k, v] of r.threads) threads.set(k, (threads.get(k) ?? 0) + v);
  const perReq = [...threads].map(([k, v]): [string, number] => [k, (v * 1000) / requests]).filter(([, v]) => v >= 1).sort((a, b) => b[1] - a[1]);
  return { rps: requests / seconds, p50: q(0.5), p99: q(0.99), cpuUsPerReq: (cpu * 1000) / requests, errors: rounds.reduce((a, r) => a + r.errors, 0), threads: perReq };
}

async function main(): Promise<void> {
  if (!existsSync(CLI)) throw new Error('build first: npm run build');
  const home = mkdtempSync(path.join(os.tmpdir(), 'ew-wl-'));
  const children: ChildProcess[] = [];
  try {
    const ew = await startEdgeward(home);
    children.push(ew.daemon);
    const bare = await startBare(home, ew.master);
    children.push(bare.server);
    const results = { bare: [] as Round[], edgeward: [] as Round[] };
    for (let i = 0; i < ROUNDS; i++) {
      results.bare.push(await round(bare.targets, ew.master, bare.server.pid!));
      results.edgeward.push(await round(ew.targets, ew.master, ew.daemon.pid!));
    }
    report(summarize(results.edgeward), summarize(results.bare));
    if (process.env.BENCH_WORKLOAD_TRACE_GC) writeFileSync(process.env.BENCH_WORKLOAD_TRACE_GC, gcLines.join('\n'));
  } finally {
    for (const c of children.reverse()) await stop(c);
    rmSync(home, { recursive: true, force: true });
  }
}

function report(ew: Summary, bare: Summary): void {
  const line = (name: string, s: Summary) =>
    `${name}: ${Math.round(s.rps)} req/s, p50 ${s.p50.toFixed(2)} ms, p99 ${s.p99.toFixed(2)} ms, non-200 ${s.errors}\n` +
    `  server CPU ${s.cpuUsPerReq.toFixed(0)} µs/req (${s.threads.map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ')})`;
  console.log(`${MODULES} sockets × ${CONNECTIONS} keep-alive connections, ${ROUNDS} alternating rounds of ${SECONDS} s (after ${WARMUP_MS} ms warm-up), one client process`);
  console.log(line('bare hono (JSON + base64 + HMAC, key in memory)', bare));
  console.log(line('Edgeward daemon workload API sign', ew));
  console.log(`workload sign throughput / bare hono: ratio = ${(ew.rps / bare.rps).toFixed(2)} (target ≥ 0.7)`);
  console.log(`workload sign p99 / bare hono p99: ratio = ${(ew.p99 / bare.p99).toFixed(2)} (target ≤ 1.5)`);
}

await main();
