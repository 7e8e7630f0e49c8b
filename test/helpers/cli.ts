/**
 * Test helpers: run the compiled `edgeward` CLI against a temporary Edgeward home, and start/stop a daemon.
 * The build is done once by test/global-setup.ts.
 */
import { afterEach, beforeEach } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** What the `edgeward` bin runs (package.json): the bundle scripts/bundle.mjs makes from tsc's dist/. */
export const CLI = path.join(ROOT, 'dist', 'host', 'bundle', 'edgeward.js');

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A fresh Edgeward home in /tmp (short, so socket paths stay under the 108-byte limit). */
export function tempHome(prefix = 'ew-'): { home: string; cleanup: () => void } {
  const home = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { home, cleanup: () => rmSync(home, { recursive: true, force: true }) };
}

export function envFor(home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, EDGEWARD_HOME: home, ...extra };
  delete env.EDGEWARD_CONFIG;
  delete env.EDGEWARD_HOST;
  return env;
}

export function runCli(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 20_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`edgeward ${args.join(' ')} timed out after ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface DaemonHandle {
  child: ChildProcess;
  output: () => string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

/**
 * Start `edgeward daemon` and wait until its management API is listening. `command` replaces the CLI for
 * a script that runs the same daemon differently (test/helpers/faulty-daemon.mjs).
 */
export async function startDaemon(env: NodeJS.ProcessEnv, args: string[] = [], socket?: string, timeoutMs = 30_000, command: string[] = [CLI, 'daemon']): Promise<DaemonHandle> {
  const child = spawn(process.execPath, [...command, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const sock = socket ?? path.join(env.EDGEWARD_HOME!, 'run', 'mgmt.sock');
  const deadline = Date.now() + timeoutMs;
  while (!existsSync(sock) || !out.includes('management API listening')) {
    if (child.exitCode !== null) throw new Error(`daemon exited with ${child.exitCode}:\n${out}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`daemon did not start within ${timeoutMs} ms:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, output: () => out, exited };
}

export async function stopDaemon(d: DaemonHandle, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (d.child.exitCode !== null) return d.child.exitCode;
  d.child.kill(signal);
  const timer = setTimeout(() => d.child.kill('SIGKILL'), 15_000);
  const code = await d.exited;
  clearTimeout(timer);
  return code;
}

/**
 * A fresh Edgeward home for each test of the enclosing describe (`home`, `env`), and the daemon a test
 * starts there (`daemon`), killed after the test; the home is removed.
 */
export function daemonHomePerTest(prefix = 'ew-'): { home: string; env: NodeJS.ProcessEnv; daemon: DaemonHandle | undefined } {
  const t = { home: '', env: {} as NodeJS.ProcessEnv, daemon: undefined as DaemonHandle | undefined };
  let cleanup = (): void => undefined;
  beforeEach(() => {
    ({ home: t.home, cleanup } = tempHome(prefix));
    t.env = envFor(t.home);
  });
  afterEach(async () => {
    if (t.daemon) await stopDaemon(t.daemon, 'SIGKILL');
    t.daemon = undefined;
    cleanup();
  });
  return t;
}

/** The names of the daemon's modules (`edgeward list --json`), sorted. */
export async function moduleNames(env: NodeJS.ProcessEnv): Promise<string[]> {
  const r = await runCli(['list', '--json'], env);
  if (r.code !== 0) throw new Error(`edgeward list failed (${r.code}): ${r.stderr}`);
  return (JSON.parse(r.stdout) as { name: string }[]).map((m) => m.name).sort();
}

/** Modules start once the API answers: wait until the daemon says its start-up deployment is done, then list. */
export async function modulesStarted(env: NodeJS.ProcessEnv, timeoutMs = 60_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = JSON.parse((await runCli(['system', 'status', '--json'], env)).stdout || '{}') as { modules?: { starting?: boolean } };
    if (st.modules && !st.modules.starting) return moduleNames(env);
    if (Date.now() > deadline) throw new Error(`the start-up deployment did not finish within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Poll `fn` every 100 ms until it returns a truthy value (returned), or throw naming `what`. */
export async function waitUntil<T>(what: string, fn: () => T | undefined | false, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `edgeward module env NAME` as a map (a native module's IOTEDGE_* environment). */
export async function moduleEnvOf(env: NodeJS.ProcessEnv, name: string): Promise<Record<string, string>> {
  const out = await runCli(['module', 'env', name], env);
  if (out.code !== 0) throw new Error(`edgeward module env ${name} failed (${out.code}): ${out.stderr}`);
  return Object.fromEntries(out.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}
