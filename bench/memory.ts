/**
 * Memory of the real daemon (`edgeward daemon`, the CLI, not an in-process runtime), side by side with bare
 * Node in the same run (issue 14). Each daemon runs in its own Edgeward home on a config file that names a
 * deployment manifest: no module, `hello`, hello + keeper + runaway (three different QuickJS samples, the
 * samples' default engine), hello + console + fetcher (console and fetcher stay on componentize-js for its
 * web APIs), and ten tiny WAT components. Every daemon is started twice: the first start fills the transpile cache, the
 * second (the one measured) starts as a device does after its first boot. RSS is read from
 * /proc/PID/status after every module answers and the process has settled.
 *
 * The same `hello` source is also built with componentize-js (guests/README.md "Two engines") and measured
 * alone and as three copies, so both engines are compared in one run.
 *
 * The daemon is started as a user starts it (`node dist/host/bundle/edgeward.js daemon`, which is what the
 * `edgeward` bin runs): its V8 flags are set by the CLI itself at run time (host/cli/v8-flags.ts), not on a command
 * line, so nothing here differs from the bin. The no-module daemon is also measured with V8's defaults
 * (EDGEWARD_V8_DEFAULTS=1) to show what the flags are worth.
 *
 * Baselines: a bare `node` idling, and the same with one idle worker thread (the floor of one worker per
 * instance). Prints each figure, its ratio and the target.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildTestGuest } from '../guests/adversarial/components.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist', 'host', 'bundle', 'edgeward.js');
/** tsc's output before bundling (scripts/bundle.mjs): measured beside the bundle the bin runs. */
const UNBUNDLED = path.join(ROOT, 'dist', 'host', 'cli', 'main.js');
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? 8000);
const MiB = 1024 * 1024;

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A Node process running `code`, its RSS after settling. */
async function nodeRss(code: string): Promise<number> {
  const child = spawn(process.execPath, ['-e', code], { stdio: 'ignore' });
  await sleep(SETTLE_MS);
  const rss = rssOf(child.pid!);
  child.kill('SIGKILL');
  return rss;
}

interface Setup {
  label: string;
  modules: Record<string, unknown>;
  /** Print each module's share from `edgeward system status --json` (where its memory goes). */
  budget?: boolean;
  /** The CLI entry to run (default: the bin's bundle). */
  entry?: string;
  /** Also read the RSS at the first start, settled (the components transpiled in that run): `firstStartRss`. */
  firstStart?: boolean;
}

/** RSS at the first start (empty transpile cache), by setup label, where `firstStart` asked for it. */
const firstStartRss = new Map<string, number>();

function cli(home: string, args: string[]): string {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, EDGEWARD_HOME: home }, encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`edgeward ${args.join(' ')}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** Start a daemon; resolves once its management API listens, with the time from spawn to then. */
async function startDaemon(home: string, config: string, env: Record<string, string> = {}, entry = CLI): Promise<{ child: ChildProcess; ms: number }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [entry, 'daemon', '--config', config], { env: { ...process.env, ...env, EDGEWARD_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const ms = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon did not start: ${out}`)), 120_000);
    const seen = (c: Buffer) => {
      out += c;
      if (out.includes('management API listening')) {
        clearTimeout(timer);
        resolve(performance.now() - t0);
      }
    };
    child.stdout!.on('data', seen);
    child.stderr!.on('data', seen);
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`daemon exited ${code}: ${out}`)); });
  });
  child.removeAllListeners('exit');
  return { child, ms };
}

/** Wait until every module of the manifest runs (or the deadline). */
async function allRunning(home: string, names: string[]): Promise<void> {
  const deadline = Date.now() + 180_000;
  for (;;) {
    const list = JSON.parse(cli(home, ['list', '--json'])) as { name: string; status?: { runtimeStatus?: { status?: string } } }[];
    const running = new Set(list.filter((m) => m.status?.runtimeStatus?.status === 'running').map((m) => m.name));
    if (names.every((n) => running.has(n))) return;
    if (Date.now() > deadline) throw new Error(`modules not running: ${JSON.stringify(list)}`);
    await sleep(250);
  }
}

async function stop(child: ChildProcess): Promise<void> {
  const done = new Promise((r) => child.on('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await done;
  clearTimeout(t);
}

/** A config in `home` whose deployment manifest runs `modules`; its path. */
function writeConfig(home: string, modules: Record<string, unknown>): string {
  const manifest = path.join(home, 'deployment.json');
  writeFileSync(manifest, JSON.stringify({ modules }));
  const config = path.join(home, 'config.toml');
  writeFileSync(config, `[runtime]\ndeployment = "${manifest}"\n`);
  return config;
}

/** RSS of a daemon running `setup`, at its second start (transpile cache on disk). */
async function daemonRss(setup: Setup, env: Record<string, string> = {}): Promise<number> {
  const home = mkdtempSync(path.join(os.tmpdir(), 'ew-mem-'));
  try {
    const config = writeConfig(home, setup.modules);
    const names = Object.keys(setup.modules);
    let d = (await startDaemon(home, config, env, setup.entry)).child;
    await allRunning(home, names);
    if (setup.firstStart) {
      await sleep(SETTLE_MS);
      firstStartRss.set(setup.label, rssOf(d.pid!));
      // The transpiler's own process (host/runtime/transpiler.ts), while it idles before it ends.
      const kids = readFileSync(`/proc/${d.pid}/task/${d.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
      firstStartRss.set(`${setup.label}:children`, kids.reduce((n, k) => n + rssOf(k), 0));
    }
    await stop(d);
    d = (await startDaemon(home, config, env, setup.entry)).child;
    await allRunning(home, names);
    await sleep(SETTLE_MS);
    const rss = rssOf(d.pid!);
    if (setup.budget) printBudget(setup.label, cli(home, ['system', 'status', '--json']));
    await stop(d);
    return rss;
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

/**
 * A daemon with no module: median time from spawn to its management API listening, over `runs` starts
 * after a first one (which issues the quickstart Edge CA), from `entry`.
 */
async function daemonStartMs(entry: string, runs: number): Promise<number> {
  const home = mkdtempSync(path.join(os.tmpdir(), 'ew-start-'));
  try {
    const config = writeConfig(home, {});
    await stop((await startDaemon(home, config, {}, entry)).child);
    const ms: number[] = [];
    for (let i = 0; i < runs; i++) {
      const d = await startDaemon(home, config, {}, entry);
      ms.push(d.ms);
      await stop(d.child);
    }
    return median(ms);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

/** A bare `node` from spawn to its first line on stdout, median of `runs`. */
async function bareNodeStartMs(runs: number): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const child = spawn(process.execPath, ['-e', "process.stdout.write('ready\\n')"], { stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    ms.push(performance.now() - t0);
    await new Promise((r) => child.once('exit', r));
  }
  return median(ms);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Each module's share as the daemon reports it (memory-budget.ts): linear memory, worker heap, code. */
function printBudget(label: string, json: string): void {
  const m = (b: number | null) => (b === null ? '?' : `${(b / MiB).toFixed(1)}`);
  const status = JSON.parse(json) as { memory?: { modules: { name: string; linearBytes: number | null; heapTotalBytes: number | null; externalBytes: number | null; codeBytes: number }[] } };
  for (const x of status.memory?.modules ?? []) {
    console.log(`  ${label}: ${x.name}: linear memory ${m(x.linearBytes)} MiB (grown; RSS counts touched pages), worker heap ${m(x.heapTotalBytes)} MiB, off-heap ${m(x.externalBytes)} MiB, component ${m(x.codeBytes)} MiB`);
  }
}

async function main(): Promise<void> {
  if (!existsSync(CLI)) throw new Error('build first: npm run build');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ew-mem-wat-'));
  const echo = path.join(dir, 'echo.wasm');
  writeFileSync(echo, await buildTestGuest('echo'));
  const hello = { settings: { image: 'builtin:hello' }, env: { GREETING: { value: 'hi' } }, capabilities: ['edgeward:workload/identity'] };
  const three = {
    hello,
    console: { settings: { image: 'builtin:console' }, capabilities: ['wasi:cli/stdio'] },
    fetcher: { settings: { image: 'builtin:fetcher' }, capabilities: ['wasi:http/outgoing-handler'], network: { hosts: ['127.0.0.1'] } },
  };
  // hello's source built with componentize-js (its folder copied with an `engine` file; built by guests/build.mjs),
  // so both engines are measured on the same source: the samples' default is QuickJS.
  const cdir = path.join(dir, 'helloc');
  cpSync(path.join(ROOT, 'guests', 'hello'), cdir, { recursive: true, filter: (f) => !/[/](dist|types)$/.test(f) });
  writeFileSync(path.join(cdir, 'engine'), 'componentize-js\n');
  const b = spawnSync(process.execPath, [path.join(ROOT, 'guests', 'build.mjs'), cdir], { encoding: 'utf8' });
  if (b.status !== 0) throw new Error(`componentize-js build of hello failed: ${b.stderr}`);
  const helloc = { ...hello, settings: { image: path.join(cdir, 'dist', 'helloc.wasm') } };
  // Three different QuickJS samples (the samples' default engine).
  const threeQ = {
    hello,
    keeper: { settings: { image: 'builtin:keeper' }, capabilities: ['edgeward:hsm/keys'] },
    runaway: { settings: { image: 'builtin:runaway' } },
  };
  const tiny = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`tiny${i}`, { settings: { image: echo } }]));

  const bare = await nodeRss('setInterval(() => {}, 1 << 30)');
  const withWorker = await nodeRss("new (require('node:worker_threads').Worker)('setInterval(() => {}, 1 << 30)', { eval: true }); setInterval(() => {}, 1 << 30)");
  const worker = withWorker - bare;
  const none = await daemonRss({ label: 'no modules', modules: {} });
  const noneUnbundled = await daemonRss({ label: 'no modules, unbundled', modules: {}, entry: UNBUNDLED });
  const startBundle = await daemonStartMs(CLI, 5);
  const startUnbundled = await daemonStartMs(UNBUNDLED, 5);
  const startBare = await bareNodeStartMs(5);
  const noneDefaults = await daemonRss({ label: 'no modules, V8 defaults', modules: {} }, { EDGEWARD_V8_DEFAULTS: '1' });
  const one = await daemonRss({ label: 'hello', modules: { hello }, firstStart: true });
  const js3 = await daemonRss({ label: 'hello + console + fetcher', modules: three, budget: true });
  const ten = await daemonRss({ label: '10 tiny', modules: tiny });
  const js3q = await daemonRss({ label: 'hello + keeper + runaway (quickjs)', modules: threeQ, budget: true });
  const oneC = await daemonRss({ label: 'hello (componentize-js)', modules: { helloc } });
  const threeC = await daemonRss({ label: '3 × hello (componentize-js)', modules: { c1: helloc, c2: helloc, c3: helloc } });
  rmSync(dir, { recursive: true, force: true });

  const f = (b: number) => `${(b / MiB).toFixed(1)} MiB`;
  const perTiny = (ten - none) / 10;
  const perFurtherJs = (js3q - one) / 2;
  console.log(`settle ${SETTLE_MS} ms; RSS from /proc/PID/status; every daemon measured at its second start (transpile cache on disk)`);
  console.log(`bare node idling: ${f(bare)}; + one idle worker thread: +${f(worker)}`);
  console.log(`daemon, no modules: ${f(none)}; hello (quickjs): ${f(one)} (+${f(one - none)}); hello+keeper+runaway (quickjs): ${f(js3q)}; hello (quickjs)+console+fetcher (componentize-js): ${f(js3)}; 10 tiny: ${f(ten)}`);
  const rows: [string, number, string][] = [
    ['daemon no modules / bare node', none / bare, '≤ 1.4'],
    ['daemon + 3 JS sample modules (quickjs: hello, keeper, runaway) / bare node', js3q / bare, '≤ 2.5'],
    ['daemon + hello, console, fetcher (1 quickjs, 2 componentize-js: web APIs) / bare node', js3 / bare, '≤ 2.5'],
    ['per tiny (WAT) module / idle worker thread', perTiny / worker, '≤ 1.2'],
    ['per further JS module / idle worker thread', perFurtherJs / worker, '≤ 2'],
  ];
  const perFurtherC = (threeC - oneC) / 2;
  console.log(`daemon, no modules, V8's default flags (EDGEWARD_V8_DEFAULTS=1): ${f(noneDefaults)} (the CLI's flags save ${f(noneDefaults - none)})`);
  console.log(`daemon, no modules, run unbundled (tsc's dist/host/cli/main.js): ${f(noneUnbundled)} (the bundle saves ${f(noneUnbundled - none)})`);
  console.log(`daemon start, no module (spawn → management API listening, median of 5): bundle ${startBundle.toFixed(0)} ms, unbundled ${startUnbundled.toFixed(0)} ms; bare node spawn → first line ${startBare.toFixed(0)} ms`);
  rows.push(['daemon start, no module / bare node start (bundle; unbundled ' + (startUnbundled / startBare).toFixed(2) + ')', startBundle / startBare, 'no target; lower is better']);
  const oneFirst = firstStartRss.get('hello')!;
  console.log(`daemon + hello at its first start (empty cache: hello transpiled in that run, by the transpiler process), settled: ${f(oneFirst)}; at its second start ${f(one)}: the transpile left ${f(oneFirst - one)} in the daemon; the transpiler's process, idle before it ends: ${f(firstStartRss.get('hello:children')!)}`);
  console.log(`per tiny module: ${f(perTiny)}; first JS module (quickjs): ${f(one - none)}; per further JS module (quickjs): ${f(perFurtherJs)}`);
  console.log(`componentize-js engine, same hello source: hello ${f(oneC)} (+${f(oneC - none)} over no modules, quickjs +${f(one - none)}); 3 × hello ${f(threeC)}, per further copy ${f(perFurtherC)}`);
  rows.push(['daemon + hello (quickjs) / daemon + hello (componentize-js), over no modules', (one - none) / (oneC - none), 'lower is better']);
  rows.push(['per further componentize-js module / idle worker thread', perFurtherC / worker, '≤ 2']);
  for (const [what, ratio, target] of rows) console.log(`${what}: ratio = ${ratio.toFixed(2)} (target ${target})`);
}

await main();
