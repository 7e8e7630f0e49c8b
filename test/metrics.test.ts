/**
 * Prometheus metrics through the real daemon (`[metrics] listen`): each scrape read by a strict 0.0.4
 * reader (test/helpers/prometheus.ts) and, when installed, `promtool check metrics`; a deployed module's
 * state, a call, a crash, a denial, workload API requests by status, key operations and a stop all move
 * the numbers they should; `system restart` closes and binds the listener again; no `[metrics]` means no
 * listener; a bad `listen` is refused by `edgeward check`.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import http from 'node:http';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildTestGuest } from '../guests/adversarial/components.js';
import { MGMT_API_VERSION } from '../host/api/versions.js';
import { parseConfigText } from '../host/config/load.js';
import { daemonHomePerTest, runCli, startDaemon, waitUntil } from './helpers/cli.js';
import { buildMonitorGuest } from './helpers/monitor.js';
import { closedPort } from './helpers/net.js';
import { parseExposition, promtoolCheck, valueOf, type MetricFamily } from './helpers/prometheus.js';

type Target = { port: number } | { socketPath: string };

function get(target: Target, p: string, method = 'GET', body?: unknown): Promise<{ status: number; type: string; body: string }> {
  const where = 'port' in target ? { host: '127.0.0.1', port: target.port } : { socketPath: target.socketPath };
  const headers = body === undefined ? {} : { 'content-type': 'application/json' };
  return new Promise((resolve, reject) => {
    const req = http.request({ ...where, path: p, method, headers, timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** A management API request on the daemon's socket (what the CLI sends, without paying a CLI start each). */
async function mgmt(home: string, method: string, p: string, body?: unknown): Promise<{ status: number; json: any }> {
  const r = await get({ socketPath: path.join(home, 'run', 'mgmt.sock') }, `${p}?api-version=${MGMT_API_VERSION}`, method, body);
  return { status: r.status, json: r.body ? JSON.parse(r.body) : undefined };
}

/** Scrape, check the media type, read the text strictly (and with promtool when installed). */
async function scrape(target: Target): Promise<{ families: Map<string, MetricFamily>; text: string }> {
  const r = await get(target, '/metrics');
  expect(r.status).toBe(200);
  expect(r.type).toBe('text/plain; version=0.0.4; charset=utf-8');
  const promtool = promtoolCheck(r.body);
  if (promtool) expect(promtool, promtool.output).toEqual({ code: 0, output: '' });
  return { families: parseExposition(r.body), text: r.body };
}

/** TCP ports a process listens on: its socket fds matched against /proc/net/tcp{,6} entries in LISTEN. */
function listeningPorts(pid: number): number[] {
  const inodes = new Set(readdirSync(`/proc/${pid}/fd`).map((fd) => { try { return /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1]; } catch { return undefined; } }).filter(Boolean));
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === '0A' && inodes.has(f[9])) ports.push(parseInt(f[1]!.split(':')[1]!, 16));
    }
  }
  return ports;
}

/** Poll the async `ok` every 100 ms until it is true, or throw naming `what`. */
async function until(what: string, ok: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const BASE = '[provisioning]\nsource = "none"\n[runtime]\n';
const modState = (f: Map<string, MetricFamily>, module: string, state: string) => valueOf(f, 'edgeward_module_state', { module, state });

describe('edgeward metrics', () => {
  const t = daemonHomePerTest('ew-met-');

  it('a scrape shows module states, calls, crashes, denials, workload requests by status and key operations, and follows a stop and a restart', async () => {
    const port = await closedPort();
    writeFileSync(path.join(t.home, 'config.toml'), `${BASE}[metrics]\nlisten = "http://127.0.0.1:${port}"\n`);
    writeFileSync(path.join(t.home, 'echo.wasm'), await buildTestGuest('echo'));
    writeFileSync(path.join(t.home, 'crash.wasm'), await buildTestGuest('crash'));
    writeFileSync(path.join(t.home, 'sneaky.wasm'), await buildMonitorGuest('reporter'));
    const manifest = { modules: {
      echo: { settings: { image: path.join(t.home, 'echo.wasm') } },
      crash: { settings: { image: path.join(t.home, 'crash.wasm') }, restartPolicy: 'on-failure' },
      // A plain module asking for a monitor grant: refused at deploy with a `denied` event.
      sneaky: { settings: { image: path.join(t.home, 'sneaky.wasm') }, capabilities: ['edgeward:monitor/findings'] },
    } };
    t.daemon = await startDaemon(t.env);
    expect(t.daemon.output()).toContain('metrics listening');
    expect(listeningPorts(t.daemon.child.pid!)).toEqual([port]);

    const before = (await scrape({ port })).families;
    expect(valueOf(before, 'edgeward_build_info')).toBe(1);
    expect(before.get('edgeward_build_info')!.samples[0]!.labels.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(valueOf(before, 'edgeward_process_resident_memory_bytes')).toBeGreaterThan(10 * 1024 * 1024);
    expect(valueOf(before, 'edgeward_process_heap_bytes', { kind: 'used' })).toBeGreaterThan(0);
    expect(valueOf(before, 'edgeward_uptime_seconds')).toBeGreaterThanOrEqual(0);
    // The runtime cache seal key is created and used at every start.
    expect(valueOf(before, 'edgeward_key_operations_total', { operation: 'createSecretKey', outcome: 'ok' })).toBeGreaterThanOrEqual(1);

    const deployed = await mgmt(t.home, 'PUT', '/modules', manifest);
    expect(deployed.json.created.sort()).toEqual(['crash', 'echo']);
    expect(deployed.json.failed).toEqual([expect.objectContaining({ module: 'sneaky' })]);
    await until('echo running', async () => modState((await scrape({ port })).families, 'echo', 'running') === 1);

    const invoke = (module: string, methodName: string, payload: string) => mgmt(t.home, 'POST', `/modules/${module}/invoke`, { methodName, payload });
    expect((await invoke('echo', 'say', 'secret-payload-123')).json).toEqual({ status: 200, payload: 'secret-payload-123' });
    expect((await invoke('echo', 'say', 'x')).json.status).toBe(200);
    expect((await invoke('echo', 'fail', 'x')).json.status).toBe(422);
    expect((await invoke('crash', 'go', 'x')).status).toBe(500);
    expect((await mgmt(t.home, 'GET', '/keys/no-such-key/public')).status).toBe(404);
    const workload = { socketPath: path.join(t.home, 'run', 'workload.sock') };
    expect((await get(workload, '/trust-bundle?api-version=2020-07-07')).status).toBe(200);
    expect((await get(workload, '/trust-bundle?api-version=2020-07-07')).status).toBe(200);
    expect((await get(workload, '/trust-bundle')).status).toBe(400);
    expect((await get(workload, '/nothing-here?api-version=2020-07-07')).status).toBe(404);
    // A native module's own socket: counted under its name; a path naming another module is 403.
    expect((await mgmt(t.home, 'POST', '/identities', { moduleId: 'native1' })).status).toBe(200);
    const own = { socketPath: path.join(t.home, 'run', 'mnt', 'native1.sock') };
    expect((await get(own, '/trust-bundle?api-version=2020-07-07')).status).toBe(200);
    expect((await get(own, '/modules/other/certificate/identity?api-version=2020-07-07', 'POST')).status).toBe(403);

    const after = await scrape({ port });
    const f = after.families;
    expect(after.text).not.toContain('secret-payload-123');
    expect(valueOf(f, 'edgeward_module_calls_total', { module: 'echo', outcome: 'ok' })).toBe(2);
    expect(valueOf(f, 'edgeward_module_calls_total', { module: 'echo', outcome: 'guest-error' })).toBe(1);
    expect(valueOf(f, 'edgeward_module_calls_total', { module: 'crash', outcome: 'failed' })).toBe(1);
    expect(valueOf(f, 'edgeward_module_crashes_total', { module: 'crash' })).toBe(1);
    expect(valueOf(f, 'edgeward_module_crashes_total', { module: 'echo' })).toBe(0);
    expect(valueOf(f, 'edgeward_module_restarts_total', { module: 'crash' })).toBe(1);
    expect(valueOf(f, 'edgeward_module_denials_total', { module: 'sneaky' })).toBe(1);
    expect(valueOf(f, 'edgeward_workload_requests_total', { module: '', status: '200' })).toBe(2);
    expect(valueOf(f, 'edgeward_workload_requests_total', { module: '', status: '400' })).toBe(1);
    expect(valueOf(f, 'edgeward_workload_requests_total', { module: '', status: '404' })).toBe(1);
    expect(valueOf(f, 'edgeward_workload_requests_total', { module: 'native1', status: '200' })).toBe(1);
    expect(valueOf(f, 'edgeward_workload_requests_total', { module: 'native1', status: '403' })).toBe(1);
    expect(valueOf(f, 'edgeward_key_operations_total', { operation: 'loadKey', outcome: 'not-found' })).toBe(1);
    for (const s of ['stopped', 'failed', 'dead', 'unknown']) expect(modState(f, 'echo', s)).toBe(0);
    expect(modState(f, 'sneaky', 'running')).toBeUndefined();

    expect((await mgmt(t.home, 'POST', '/modules/echo/stop')).status).toBe(204);
    const stopped = (await scrape({ port })).families;
    expect(modState(stopped, 'echo', 'running')).toBe(0);
    expect(modState(stopped, 'echo', 'stopped')).toBe(1);

    // Only GET /metrics: other paths and methods are 404.
    expect((await get({ port }, '/')).status).toBe(404);
    expect((await get({ port }, '/metrics', 'POST')).status).toBe(404);
    expect((await get({ port }, '/metrics/x')).status).toBe(404);

    // A restart closes the listener and binds it again on the same port; counters start again (new instance).
    const instance = stopped.get('edgeward_device_info')!.samples[0]!.labels.instance_number;
    expect((await mgmt(t.home, 'POST', '/system/restart')).status).toBeLessThan(300);
    await waitUntil('the restart', () => t.daemon!.output().includes('edgeward restarted'));
    const again = (await scrape({ port })).families;
    expect(again.get('edgeward_device_info')!.samples[0]!.labels.instance_number).not.toBe(instance);
    expect(valueOf(again, 'edgeward_module_calls_total', { module: 'echo', outcome: 'ok' })).toBeUndefined();
    expect(modState(again, 'echo', 'stopped')).toBe(1);
    expect(listeningPorts(t.daemon.child.pid!)).toEqual([port]);
  }, 120_000);

  it('is off without [metrics]: the daemon listens on no TCP port and logs no metrics listener', async () => {
    writeFileSync(path.join(t.home, 'config.toml'), BASE);
    t.daemon = await startDaemon(t.env);
    expect(listeningPorts(t.daemon.child.pid!)).toEqual([]);
    expect(t.daemon.output()).not.toContain('metrics listening');
  }, 60_000);

  it('serves on a Unix socket named in [metrics] listen', async () => {
    const sock = path.join(t.home, 'run', 'metrics.sock');
    writeFileSync(path.join(t.home, 'config.toml'), `${BASE}[metrics]\nlisten = "unix://${sock}"\n`);
    t.daemon = await startDaemon(t.env);
    const { families } = await scrape({ socketPath: sock });
    expect(valueOf(families, 'edgeward_build_info')).toBe(1);
    expect(listeningPorts(t.daemon.child.pid!)).toEqual([]);
  }, 60_000);

  it('a port already in use stops the start with a message naming the address and what to do', async () => {
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (busy.address() as net.AddressInfo).port;
      writeFileSync(path.join(t.home, 'config.toml'), `${BASE}[metrics]\nlisten = "http://127.0.0.1:${port}"\n`);
      const r = await runCli(['daemon'], t.env, 30_000);
      expect(r.code).toBe(1);
      expect(r.stdout + r.stderr).toContain(`[metrics] listen: cannot listen on 127.0.0.1:${port}: the port is in use`);
      expect(existsSync(path.join(t.home, 'run', 'mgmt.sock'))).toBe(false);
    } finally {
      busy.close();
    }
  }, 60_000);

  it('edgeward check refuses a [metrics] listen that is not loopback, saying what to do', async () => {
    writeFileSync(path.join(t.home, 'config.toml'), `${BASE}[metrics]\nlisten = "http://0.0.0.0:9600"\n`);
    const r = await runCli(['check'], t.env);
    expect(r.code).toBe(2);
    expect(r.stdout + r.stderr).toMatch(/metrics\.listen: 0\.0\.0\.0 is not a loopback address.*allow_non_loopback = true/);
  }, 60_000);

  it('the config refuses a listen that is not HTTP, not an IP address, has a bad port or a path, or a misspelt key; allow_non_loopback allows', () => {
    const cases: [string, RegExp][] = [
      ['listen = "https://127.0.0.1:9600"', /metrics\.listen: .*no https/],
      ['listen = "http://metrics.example:9600"', /metrics\.listen: "metrics\.example" is not an IP address/],
      ['listen = "http://127.0.0.1:70000"', /metrics\.listen: port 70000 is not 1–65535/],
      ['listen = "http://127.0.0.1:9600/metrics"', /metrics\.listen: .*no path/],
      ['listen = "http://[::]:9600"', /metrics\.listen: :: is not a loopback address/],
      ['listen = "unix://relative.sock"', /metrics\.listen: a unix socket URI with an absolute path/],
      ['listn = "http://127.0.0.1:9600"', /metrics: .*listn/],
    ];
    for (const [line, why] of cases) expect(() => parseConfigText(`${BASE}[metrics]\n${line}\n`, 'test.toml', t.env), line).toThrow(why);
    for (const ok of ['listen = "http://0.0.0.0:9600"\nallow_non_loopback = true', 'listen = "http://[::1]:9600"', 'listen = "http://localhost:9600"', 'listen = "unix:///run/ew/m.sock"']) {
      expect(parseConfigText(`${BASE}[metrics]\n${ok}\n`, 'test.toml', t.env).config.metrics?.listen, ok).toMatch(/^(http|unix):/);
    }
    expect(parseConfigText(BASE, 'test.toml', t.env).config.metrics).toBeUndefined();
  });
});
