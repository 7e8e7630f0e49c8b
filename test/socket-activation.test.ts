/**
 * systemd socket activation (issue 13): IoT Edge's `[listen] fd://aziot-edged.*.socket` URIs, with the real
 * `systemd-socket-activate` binding the sockets and passing them to the daemon as systemd does
 * (LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES). The CLI follows [connect], the paths the sockets are bound at.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { CLI, envFor, runCli, tempHome } from './helpers/cli.js';
import { configProblems } from './helpers/config.js';

function deviceConfig(home: string): string {
  return [
    'hostname = "gw"',
    `state_dir = "${home}/state"`,
    '[provisioning]',
    'source = "none"',
    '[connect]',
    `management_uri = "unix://${home}/run/mgmt.sock"`,
    `workload_uri = "unix://${home}/run/workload.sock"`,
    '[listen]',
    'management_uri = "fd://aziot-edged.mgmt.socket"',
    'workload_uri = "fd://aziot-edged.workload.socket"',
    '',
  ].join('\n');
}

function getJson(socketPath: string, urlPath: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path: urlPath, timeout: 10_000 }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    });
    req.on('error', reject);
  });
}

describe('systemd socket activation', () => {
  let home: string;
  let cleanup: () => void;
  let env: NodeJS.ProcessEnv;
  let cfg: string;
  let activator: ChildProcess | undefined;
  beforeEach(() => {
    ({ home, cleanup } = tempHome('ew-sa-'));
    cfg = path.join(home, 'config.toml');
    writeFileSync(cfg, deviceConfig(home));
    env = envFor(home); // <home>/config.toml is the config every command reads
  });
  afterEach(async () => {
    if (activator && activator.exitCode === null) {
      activator.kill('SIGKILL');
      await new Promise((r) => activator!.once('exit', r));
    }
    activator = undefined;
    cleanup();
  });

  it('the daemon serves the sockets systemd passes, by name, and keeps them across a restart', async () => {
    const run = path.join(home, 'run');
    // As the .socket units would: bound before the daemon exists; the first connection starts it.
    // systemd-socket-activate passes only the variables named with -E, as a unit's Environment= would.
    const passEnv = ['EDGEWARD_HOME', 'PATH'].flatMap((k) => ['-E', `${k}=${env[k]}`]);
    const sockets = ['-l', `${run}/mgmt.sock`, '-l', `${run}/workload.sock`, '--fdname=aziot-edged.mgmt.socket:aziot-edged.workload.socket'];
    activator = spawn('systemd-socket-activate', [...sockets, ...passEnv, process.execPath, CLI, 'daemon'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    activator.stdout!.on('data', (c) => (out += c));
    activator.stderr!.on('data', (c) => (out += c));
    await waitFor(() => out.includes('Listening on') && out.split('Listening on').length > 2, 5000, () => out);

    const status = await runCli(['system', 'status', '--json'], env, 30_000);
    expect(status.code, `${out}\n${status.stdout}\n${status.stderr}`).toBe(0);
    const s = JSON.parse(status.stdout) as { pid: number; managementUri: string };
    expect(s.pid).toBe(activator.pid); // exec'd in place: the activator's pid is the daemon's
    expect(s.managementUri).toBe(`unix://${run}/mgmt.sock`);
    // The API serves from the moment it listens; the line comes once the daemon record is written (an
    // fsync later), so it may follow the first answer.
    await waitFor(() => /"management API listening"/.test(out), 10_000, () => out);
    expect(out).toMatch(/"socket":"fd:\/\/aziot-edged\.mgmt\.socket".*"management API listening"/);
    const bundle = await getJson(`${run}/workload.sock`, '/trust-bundle?api-version=2019-01-30');
    expect(bundle.status).toBe(200);
    expect((bundle.body as { certificate: string }).certificate).toContain('BEGIN CERTIFICATE');

    // A restart in the process listens again on the same descriptors (closed ones could not be reopened).
    const restarted = await runCli(['system', 'restart'], env, 60_000);
    expect(restarted.code, restarted.stderr + out).toBe(0);
    expect((await runCli(['system', 'status', '--json'], env)).code).toBe(0);
    expect((await getJson(`${run}/workload.sock`, '/trust-bundle?api-version=2019-01-30')).status).toBe(200);
  }, 90_000);

  it('started without the sockets, the daemon says how to start it and exits', async () => {
    const r = await runCli(['daemon'], env, 30_000);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('listen URI "fd://aziot-edged.mgmt.socket" is systemd socket activation, but no socket was passed');
    expect(r.stderr).toContain('start the daemon through its .socket units');
  }, 40_000);

  it('fd:// belongs in [listen]: in [connect] it is refused with the path to give instead', () => {
    const p = configProblems('[provisioning]\nsource = "none"\n[connect]\nmanagement_uri = "fd://aziot-edged.mgmt.socket"\n', {});
    expect(p).toContainEqual({ path: 'connect.management_uri', message: expect.stringContaining('[connect] is where the CLI connects, so give the socket\'s path, such as "unix:///run/edgeward/mgmt.sock" (keep fd:// in [listen])') });
    expect(configProblems('[provisioning]\nsource = "none"\n[listen]\nmanagement_uri = "fd://a b"\n', {})[0]!.message).toContain('is not a socket name');
  });
});

async function waitFor(cond: () => boolean, ms: number, what: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
