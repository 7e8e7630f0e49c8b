/**
 * Component runtime benchmark (issue 5), standalone: `npx tsx bench/runtime.ts`.
 * (a) cold start of `hello` (deploy → first invoke answered, empty state dir) vs a Node child process
 *     running the same logic and answering one message — target ratio ≤ 0.2;
 * (b) warm start (transpile cache on disk, new runtime; and restart in a running runtime);
 * (c) brokered host-capability call from a guest vs a direct JS call — target median ≤ 20 µs;
 * (d) resident memory per idle module.
 * hello is deployed as builtin:default has it, granted `edgeward:workload/identity` (real file-backend key,
 * identity and certificate services per runtime), so its start includes a SAS token and a server certificate.
 * Needs the sample guests: `npm run build:guests`.
 */
import 'reflect-metadata'; // @peculiar/x509 (tsyringe, via the certificate service) needs it before its first import
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import path from 'node:path';
import { buildTestGuest } from '../guests/adversarial/components.js';
import { ComponentRuntime } from '../host/runtime/runtime.js';
import { warmWorkerPool } from '../host/runtime/sandbox/index.js';
import { builtinDefaultManifest, type ModuleSpec } from '../host/runtime/manifest.js';
import { silentLogger } from '../host/log.js';
import { testCapability } from '../test/helpers/wit.js';
import { openIdentityServices } from '../test/helpers/identity-services.js';
import { workloadIdentityCapability } from '../host/capabilities/workload-identity/index.js';
import { edgewardCapabilities } from '../host/capabilities/index.js';

const LIMITS = { memory_mib: 64, call_timeout_ms: 10_000, max_value_bytes: 1024 * 1024 };
const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const tmp: string[] = [];
const newDir = () => { const d = mkdtempSync(path.join(os.tmpdir(), 'edgeward-bench-')); tmp.push(d); return d; };
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };
const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

const hello = builtinDefaultManifest()[0]!;
if (!existsSync(hello.source)) {
  console.error(`missing ${hello.source}: run \`npm run build:guests\` first`);
  process.exit(2);
}

/** A runtime as a running daemon has it: opened, its worker pool booted (daemon start-up, not module start). */
/** Closes each runtime's identity services after the runtime itself. */
const services = new Map<ComponentRuntime, () => Promise<void>>();

/**
 * A runtime as a running daemon has it: opened with `edgeward:workload/identity` over real key (file
 * backend), identity and certificate services under `stateDir/identity` and bound to its registrations,
 * its worker pool booted (daemon start-up, not module start).
 */
async function open(stateDir: string): Promise<ComponentRuntime> {
  const logger = silentLogger();
  const { keys, identity, certs, close: closeServices } = await openIdentityServices(path.join(stateDir, 'identity'), { deviceId: 'bench' });
  const rt = await ComponentRuntime.open({
    stateDir, logger, limits: LIMITS,
    capabilities: [...edgewardCapabilities(), workloadIdentityCapability({ identity, certs, keys })],
  });
  services.set(rt, closeServices);
  await warmWorkerPool();
  return rt;
}

async function close(rt: ComponentRuntime): Promise<void> {
  await rt.close();
  await services.get(rt)?.();
  services.delete(rt);
}

/** deploy → first invoke answered, in a fresh runtime over `stateDir`. */
async function startOnce(stateDir: string, spec: ModuleSpec, method = 'hello'): Promise<number> {
  const rt = await open(stateDir);
  const t0 = performance.now();
  await rt.deploy([spec]);
  const r = await rt.invoke(spec.name, method, { name: 'bench' });
  const ms = performance.now() - t0;
  if (r.status !== 200) throw new Error(`invoke failed: ${JSON.stringify(r)}`);
  await close(rt);
  return ms;
}

/** The same logic as guests/hello, as a Node child process answering one line on stdin. */
const CHILD = `let count=0;const greeting=process.env.GREETING||'Hello';process.stdin.once('data',d=>{const m=JSON.parse(d);count++;process.stdout.write(JSON.stringify({message:greeting+', '+m.payload.name+'!',count})+'\\n');process.exit(0);});`;
function childOnce(): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const c = spawn(process.execPath, ['-e', CHILD], { stdio: ['pipe', 'pipe', 'inherit'], env: { GREETING: 'Hello from Edgeward' } });
    c.stdout.once('data', () => resolve(performance.now() - t0));
    c.on('error', reject);
    c.stdin.write(JSON.stringify({ method: 'hello', payload: { name: 'bench' } }) + '\n');
  });
}

async function main(): Promise<void> {
  // Warm the host itself (jco's transpiler, module loading) so "cold" measures the module, not the daemon's own start.
  const echoFile = path.join(newDir(), 'echo.wasm');
  writeFileSync(echoFile, await buildTestGuest('echo'));
  const echo: ModuleSpec = { ...hello, name: 'echo', source: echoFile, env: {}, capabilities: [] };
  await startOnce(newDir(), echo, 'x');

  const child: number[] = [];
  for (let i = 0; i < RUNS; i++) child.push(await childOnce());

  const cold: number[] = [];
  const warmDisk: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const d = newDir();
    cold.push(await startOnce(d, hello));
    warmDisk.push(await startOnce(d, hello));
  }
  const rt = await open(newDir());
  await rt.deploy([hello]);
  const restart: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await rt.restart('hello');
    await rt.invoke('hello', 'count', null);
    restart.push(performance.now() - t0);
  }
  const invokeLat: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t0 = performance.now();
    await rt.invoke('hello', 'count', null);
    invokeLat.push((performance.now() - t0) * 1000);
  }
  const tinyCold: number[] = [];
  const tinyWarm: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const d = newDir();
    tinyCold.push(await startOnce(d, echo, 'x'));
    tinyWarm.push(await startOnce(d, echo, 'x'));
  }
  await close(rt);

  // (c) broker: a guest calling a host capability N times per invoke; the same guest with the same
  // capability served inside its worker (no broker hop) splits that into jco's glue and the round trip.
  const loopFile = path.join(newDir(), 'hostloop.wasm');
  writeFileSync(loopFile, await buildTestGuest('hostloop'));
  const hostEcho = (x: unknown) => (x as number) + 1;
  const brt = await ComponentRuntime.open({
    stateDir: newDir(), logger: silentLogger(), limits: LIMITS,
    capabilities: [
      ...edgewardCapabilities(),
      await testCapability('echo', () => ({ 'edgeward:test/echo': { echo: hostEcho } })),
      await testCapability('echo', undefined, { name: 'edgeward:test/echo-local', workerModule: 'bench/echo.worker.mjs' }),
    ],
  });
  await brt.create({ ...echo, name: 'loop', source: loopFile, capabilities: ['edgeward:test/echo'] });
  await brt.create({ ...echo, name: 'local', source: loopFile, capabilities: ['edgeward:test/echo-local'] });
  const N = 2000;
  const perCallOf = async (module: string): Promise<number[]> => {
    const out: number[] = [];
    for (let i = 0; i < 30; i++) {
      let t0 = performance.now();
      await brt.invoke(module, 'x', 'y'.repeat(N - 2)); // JSON adds 2 quote bytes: N calls
      const withCalls = performance.now() - t0;
      t0 = performance.now();
      await brt.invoke(module, 'x', '');
      out.push(((withCalls - (performance.now() - t0)) * 1000) / N);
    }
    return out;
  };
  const perCall = await perCallOf('loop');
  const localCall = await perCallOf('local');
  let sink = 0;
  const direct: number[] = [];
  for (let i = 0; i < 30; i++) {
    const t0 = performance.now();
    for (let j = 0; j < N; j++) sink += hostEcho(j);
    direct.push(((performance.now() - t0) * 1e6) / N);
  }
  await brt.close();

  // (d) RSS per idle module: 8 idle hello instances.
  const M = 8;
  const mrt = await open(newDir());
  await mrt.deploy([hello]);
  await mrt.invoke('hello', 'count', null);
  (globalThis as { gc?: () => void }).gc?.();
  const rss0 = process.memoryUsage().rss;
  await mrt.deploy(Array.from({ length: M + 1 }, (_, i) => ({ ...hello, name: i === 0 ? 'hello' : `hello${i}` })));
  await new Promise((r) => setTimeout(r, 500));
  const rssPer = (process.memoryUsage().rss - rss0) / M / 1048576;
  await close(mrt);

  // G1: a spinning guest is terminated at its deadline while another module keeps answering.
  const spinFile = path.join(newDir(), 'spin.wasm');
  writeFileSync(spinFile, await buildTestGuest('spin'));
  const grt = await open(newDir());
  await grt.create({ ...echo, name: 'echo', source: echoFile });
  await grt.create({ ...echo, name: 'spin', source: spinFile, restartPolicy: 'never', limits: { call_timeout_ms: 50 } });
  const over: number[] = [];
  let served = 0;
  const eld = monitorEventLoopDelay({ resolution: 1 });
  eld.enable();
  const G1_RUNS = Number(process.env.BENCH_G1_RUNS ?? 100);
  for (let i = 0; i < G1_RUNS; i++) {
    const t0 = performance.now();
    const spin = grt.invoke('spin', 'loop', null).then(() => undefined, () => undefined);
    let done = false;
    void spin.then(() => { done = true; });
    while (!done) {
      await grt.invoke('echo', 'x', i);
      served++;
    }
    over.push(performance.now() - t0 - 50);
    await grt.start('spin');
  }
  eld.disable();
  await close(grt);
  over.sort((a, b) => a - b);

  const c = median(child);
  console.log(`hello component: ${(await import('node:fs')).statSync(hello.source).size} bytes; runs per figure: ${RUNS}`);
  console.log(`(a) child process (spawn node, answer one message): median ${fmt(c)}`);
  console.log(`(a) cold start hello (deploy→first invoke, empty cache: measure+transpile+compile+instantiate): median ${fmt(median(cold))}`);
  console.log(`(b) warm start hello, new runtime, transpile cache on disk: median ${fmt(median(warmDisk))}`);
  console.log(`(b) warm restart hello in a running runtime (compiled in memory): median ${fmt(median(restart))}`);
  console.log(`    tiny WAT echo: cold ${fmt(median(tinyCold))}, warm ${fmt(median(tinyWarm))}; hello invoke round trip median ${median(invokeLat).toFixed(0)} µs`);
  console.log(`(c) brokered host call: median ${median(perCall).toFixed(2)} µs/call; direct JS call: ${median(direct).toFixed(3)} ns/call (sink ${sink % 7})`);
  console.log(`    same call served in the worker (jco glue only, no broker): median ${median(localCall).toFixed(2)} µs/call → broker round trip ≈ ${(median(perCall) - median(localCall)).toFixed(2)} µs`);
  console.log(`(d) RSS per idle hello module: ${rssPer.toFixed(1)} MiB (${M} instances)`);
  console.log(`(G1) spin terminated: deadline→rejection p50 ${median(over).toFixed(1)} ms, max ${over[over.length - 1]!.toFixed(1)} ms over ${G1_RUNS} runs; echo served ${served} calls meanwhile; max event-loop delay ${(eld.max / 1e6).toFixed(1)} ms`);
  console.log(`ratio cold/child = ${(median(cold) / c).toFixed(2)} (target ≤ 0.2)`);
  console.log(`ratio warm-disk/child = ${(median(warmDisk) / c).toFixed(2)}, warm-restart/child = ${(median(restart) / c).toFixed(2)}`);
  console.log(`broker median = ${median(perCall).toFixed(2)} µs (target ≤ 20 µs), of which jco glue ${median(localCall).toFixed(2)} µs`);
  console.log(`rss per idle module = ${rssPer.toFixed(1)} MiB`);
}

try {
  await main();
} finally {
  for (const d of tmp) rmSync(d, { recursive: true, force: true });
}
