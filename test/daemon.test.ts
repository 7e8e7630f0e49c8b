import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { MGMT_API_VERSION } from '../host/api/versions.js';
import { envFor, runCli, startDaemon, stopDaemon, tempHome, type DaemonHandle } from './helpers/cli.js';
import { report } from './helpers/reliability.js';

/** A raw request on the management socket (no client defaults), to test what the server enforces. */
function rawGet(socketPath: string, p: string): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ socketPath, path: p }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type'] ?? '') }));
      })
      .on('error', reject);
  });
}

/** A raw request with a body on the management socket. */
function rawSend(socketPath: string, method: string, p: string, body: string, type?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: p, method, headers: type ? { 'content-type': type } : {} }, (res) => {
      let out = '';
      res.on('data', (c) => (out += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: out }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('daemon on the embedded default', () => {
  let home: string;
  let cleanup: () => void;
  let env: NodeJS.ProcessEnv;
  let daemon: DaemonHandle | undefined;
  let sock: string;

  beforeEach((ctx) => {
    ({ home, cleanup } = tempHome());
    env = envFor(home);
    sock = path.join(home, 'run', 'mgmt.sock');
    // These tests are about the daemon itself: skip deploying the sample guest, except in the one
    // test that shows the embedded default (with hello) working.
    if (!ctx.task.name.startsWith('starts with no config file')) writeFileSync(path.join(home, 'config.toml'), '[provisioning]\nsource = "none"\n[runtime]\n');
  });
  afterEach(async () => {
    if (daemon) await stopDaemon(daemon, 'SIGKILL');
    daemon = undefined;
    cleanup();
  });

  it('starts with no config file; status and list answer through the management socket', async () => {
    daemon = await startDaemon(env);
    const status = await runCli(['system', 'status'], env);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/edgeward\s+Running - pid \d+/);
    const json = JSON.parse((await runCli(['system', 'status', '--json'], env)).stdout);
    expect(json).toMatchObject({ running: true, pid: daemon.child.pid, stateDir: path.join(home, 'state'), configSource: '<embedded default>' });
    // Modules start once the API answers; the sample hello appears within the deployment time.
    const deadline = Date.now() + 60_000;
    let names: string[] = [];
    while (Date.now() < deadline) {
      const modules = await rawGet(sock, '/modules?api-version=2020-07-07');
      expect(modules.status).toBe(200);
      const list = JSON.parse(modules.body).modules as { name: string; status: { runtimeStatus: { status: string } } }[];
      names = list.filter((m) => m.status.runtimeStatus.status === 'running').map((m) => m.name);
      if (names.length > 0) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(names).toEqual(['hello']);
    const list = await runCli(['list'], env);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^hello\s+running\s+Up /m);
    // The daemon seals hello's transpile cache with its key service's HMAC key.
    const cacheRoot = path.join(home, 'state', 'cache');
    expect(readdirSync(cacheRoot).filter((d) => existsSync(path.join(cacheRoot, d, 'index.mac')))).toHaveLength(1);
    const version = await runCli(['version'], env);
    expect(version.stdout).toMatch(/^edgeward \d+\.\d+\.\d+/);
  });

  it('the management socket is not world-accessible; api-version is enforced', async () => {
    daemon = await startDaemon(env);
    const st = statSync(sock);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o660);
    expect(await rawGet(sock, '/systeminfo')).toMatchObject({ status: 400, body: '{"message":"api-version not specified"}', type: expect.stringContaining('application/json') });
    expect(await rawGet(sock, '/modules?api-version=1999-01-01')).toMatchObject({ status: 400, body: '{"message":"invalid api-version \\"1999-01-01\\""}' });
    report('A3', 'a request without the api-version marker, or with an unknown one, gets 400 with a message from the api-version middleware, which runs before every route (management socket; the workload app uses the same middleware)');
    // A known version older than an Edgeward-only route: the route does not exist at that version.
    expect((await rawGet(sock, '/system/status?api-version=2020-07-07')).status).toBe(404);
    const info = await rawGet(sock, '/systeminfo?api-version=2020-07-07');
    expect(info.status).toBe(200);
    expect(JSON.parse(info.body)).toMatchObject({ osType: 'linux', architecture: expect.any(String), version: expect.any(String), uptime: expect.any(Number), runtime: { platform: 'wasi-p2-components' } });
  });

  it('A8: sockets keep their modes after a kill -9 left them stale, and after an in-place restart; no bind directory is left', async () => {
    const run = path.join(home, 'run');
    const modes = () => Object.fromEntries(readdirSync(run, { recursive: true }).map(String).sort().map((n) => [n, statSync(path.join(run, n)).mode & 0o7777]));
    daemon = await startDaemon(env);
    const first = modes();
    expect(first).toMatchObject({ 'mgmt.sock': 0o660, 'workload.sock': 0o660 });
    await stopDaemon(daemon, 'SIGKILL');
    // The killed daemon's sockets are still there, answering nobody: the next start replaces them. A kill
    // during a bind leaves its private directory: the next start removes it.
    expect(statSync(sock).isSocket()).toBe(true);
    mkdirSync(path.join(run, '.bKiLLd9', 's'), { recursive: true, mode: 0o700 });
    daemon = await startDaemon(env);
    expect(modes()).toEqual(first);
    expect((await runCli(['system', 'restart'], env)).code).toBe(0);
    expect(modes()).toEqual(first);
    expect(readdirSync(run).filter((n) => n.startsWith('.'))).toEqual([]);
    console.log(`[A8] socket modes after start, after kill -9 + start, after restart: ${Object.entries(first).map(([n, m]) => `${n} ${m.toString(8)}`).join(', ')}`);
  });

  it('a second daemon on the same state directory exits with a clear message', async () => {
    daemon = await startDaemon(env);
    const second = await runCli(['daemon'], env);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`another Edgeward daemon (pid ${daemon.child.pid}) is already using the state directory`);
    // The first one is unharmed.
    expect((await runCli(['system', 'status'], env)).code).toBe(0);
  });

  it('SIGTERM and SIGINT stop gracefully: exit 0, socket and pid file removed', async () => {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) {
      daemon = await startDaemon(env);
      expect(await stopDaemon(daemon, sig)).toBe(0);
      expect(existsSync(sock)).toBe(false);
      expect(existsSync(path.join(home, 'state', 'daemon.pid'))).toBe(false);
      expect(daemon.output()).toContain('edgeward stopped');
      daemon = undefined;
    }
    const down = await runCli(['system', 'status'], env);
    expect(down.code).toBe(1);
    expect(down.stdout).toContain('Down - the Edgeward daemon is not running');
  });

  it('config apply writes the effective config and the running daemon reloads the log level', async () => {
    daemon = await startDaemon(env);
    const file = path.join(home, 'mine.toml');
    writeFileSync(file, '[provisioning]\nsource = "none"\n[log]\nlevel = "debug"\n[runtime]\n');
    const applied = await runCli(['config', 'apply', '-c', file], env);
    expect(applied.code).toBe(0);
    expect(applied.stdout).toContain('Daemon reloaded: applied log.level');
    const status = JSON.parse((await runCli(['system', 'status', '--json'], env)).stdout);
    expect(status.logLevel).toBe('debug');
    expect(readFileSync(path.join(home, 'state', 'effective-config.toml'), 'utf8')).toMatch(/level = "debug"/);
    expect(statSync(path.join(home, 'state', 'effective-config.toml')).mode & 0o777).toBe(0o600);
    // And the applied file becomes the one a later daemon uses.
    expect(readFileSync(path.join(home, 'config.toml'), 'utf8')).toBe(readFileSync(file, 'utf8'));
  });

  it('config apply without a daemon says it is not running', async () => {
    const r = await runCli(['config', 'apply'], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('The daemon is not running');
    expect(readFileSync(path.join(home, 'state', 'effective-config.toml'), 'utf8')).toContain('source = "none"');
  });

  it('config show redacts secrets', async () => {
    const file = path.join(home, 'secret.toml');
    writeFileSync(file, '[provisioning]\nsource = "manual"\nconnection_string = "HostName=h.example;DeviceId=d1;SharedAccessKey=U0VDUkVUS0VZ"\n');
    const r = await runCli(['config', 'show', '-c', file], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('<redacted>');
    expect(r.stdout).not.toContain('U0VDUkVUS0VZ');
  });

  it('set-log-level changes the level at run time; system logs shows the daemon log', async () => {
    daemon = await startDaemon(env);
    expect((await runCli(['system', 'set-log-level', 'trace'], env)).code).toBe(0);
    expect(JSON.parse((await runCli(['system', 'status', '--json'], env)).stdout).logLevel).toBe('trace');
    const bad = await runCli(['system', 'set-log-level', 'loud'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('invalid level "loud"');
    const logs = await runCli(['system', 'logs', '--tail', '50'], env);
    expect(logs.stdout).toContain('management API listening');
    expect(logs.stdout).toContain('log level changed');
    // On a terminal (or with --format pretty) the lines read like module logs: time, level, message, fields.
    const pretty = await runCli(['system', 'logs', '--tail', '50', '--format', 'pretty'], env);
    expect(pretty.stdout).toMatch(/^\d{4}-\d\d-\d\dT\S+Z INFO  management API listening/m);
    expect(pretty.stdout).not.toContain('{"level"');
  });

  it('management bodies follow edged: unparseable JSON is 422, a PUT without JSON content type is 415', async () => {
    daemon = await startDaemon(env);
    const v = `?api-version=${MGMT_API_VERSION}`;
    expect(await rawSend(sock, 'PUT', `/system/log-level${v}`, '{"level":', 'application/json')).toMatchObject({ status: 422 });
    expect(await rawSend(sock, 'PUT', `/system/log-level${v}`, 'level=debug', 'text/plain')).toMatchObject({ status: 415 });
    expect(await rawSend(sock, 'PUT', `/system/log-level${v}`, '{"level":"loud"}', 'application/json')).toMatchObject({ status: 400 });
    expect(await rawSend(sock, 'POST', `/identities${v}`, '{"moduleId":', 'application/json')).toMatchObject({ status: 422 });
    expect(await rawSend(sock, 'POST', `/identities${v}`, '{"moduleId":"x"}', 'text/plain')).toMatchObject({ status: 400 });
  });

  it('system restart restarts in place and the daemon answers again', async () => {
    daemon = await startDaemon(env);
    const r = await runCli(['system', 'restart'], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Restarted edgeward.');
    expect(daemon.output()).toContain('edgeward restarted');
    expect((await runCli(['system', 'status'], env)).code).toBe(0);
  });

  it('check reports each check with ok/warning/error and a fix', async () => {
    daemon = await startDaemon(env);
    const r = await runCli(['check', '--json'], env);
    expect(r.code).toBe(0);
    const { checks } = JSON.parse(r.stdout) as { checks: { id: string; result: string; fix?: string }[] };
    expect(checks.map((c) => c.id)).toEqual(['config-well-formed', 'config-up-to-date', 'state-dir', 'key-store', 'connect-management-uri', 'host-local-time', 'certificates-expiry']);
    expect(checks.find((c) => c.id === 'connect-management-uri')!.result).toBe('ok');
    expect(checks.find((c) => c.id === 'key-store')).toMatchObject({ result: 'warning', fix: expect.stringContaining('pkcs11') });
    await stopDaemon(daemon);
    daemon = undefined;
    const text = await runCli(['check'], env);
    expect(text.stdout).toMatch(/‼ management socket answers - Warning/);
    expect(text.stdout).toMatch(/fix: start it with "edgeward daemon"/);
  });

  it('a state directory others can write, or a state file others can read, is refused', async () => {
    daemon = await startDaemon(env);
    await stopDaemon(daemon);
    daemon = undefined;
    const state = path.join(home, 'state');
    chmodSync(path.join(state, 'effective-config.toml'), 0o644);
    let r = await runCli(['daemon'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`unsafe permissions 0644 on ${path.join(state, 'effective-config.toml')}: run "chmod 600`);
    chmodSync(path.join(state, 'effective-config.toml'), 0o600);
    chmodSync(state, 0o777);
    r = await runCli(['daemon'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`unsafe permissions 0777 on ${state}`);
    const check = JSON.parse((await runCli(['check', '--json'], env)).stdout);
    expect(check.checks.find((c: { id: string }) => c.id === 'state-dir').result).toBe('error');
  });
});
