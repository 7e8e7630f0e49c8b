/**
 * Issue 13 with a daemon running: `config apply` moving the sockets, `system status` and `check` saying
 * where the daemon is, `system restart` showing the daemon's start-up error, and ignored-key warnings that
 * name the key. Each test starts and stops its own daemon (no sample guest deployed).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { envFor, runCli, startDaemon, stopDaemon, tempHome, type DaemonHandle } from './helpers/cli.js';

const BASE = '[provisioning]\nsource = "none"\n[runtime]\n';

describe('config and the running daemon', () => {
  let home: string;
  let cleanup: () => void;
  let env: NodeJS.ProcessEnv;
  let daemon: DaemonHandle | undefined;

  beforeEach(() => {
    ({ home, cleanup } = tempHome('ew-cfgd-'));
    env = envFor(home);
    writeFileSync(path.join(home, 'config.toml'), BASE);
  });
  afterEach(async () => {
    if (daemon) await stopDaemon(daemon, 'SIGKILL');
    daemon = undefined;
    cleanup();
  });

  /** A config whose sockets are in `<home>/<dir>/`. */
  function movedConfig(dir: string): string {
    const file = path.join(home, `${dir}.toml`);
    writeFileSync(file, `${BASE}[connect]\nmanagement_uri = "unix://${home}/${dir}/mgmt.sock"\nworkload_uri = "unix://${home}/${dir}/workload.sock"\n`);
    return file;
  }

  it('after config apply moves the sockets, status and check say where the daemon listens and what to run; restart moves it', async () => {
    daemon = await startDaemon(env);
    const applied = await runCli(['config', 'apply', '-c', movedConfig('run2')], env);
    expect(applied.code).toBe(0);
    expect(applied.stdout).toMatch(/Daemon reloaded: .*run "edgeward system restart" for: .*connect, listen/);
    const moved = `the daemon (pid ${daemon.child.pid}) listens on unix://${home}/run/mgmt.sock, not on [connect] management_uri unix://${home}/run2/mgmt.sock: run "edgeward system restart" so it moves to the applied sockets`;
    const status = await runCli(['system', 'status'], env);
    expect(status.code).toBe(1);
    expect(status.stdout).toContain(`Down - ${moved}`);
    const check = await runCli(['check', '--json'], env);
    const sock = (JSON.parse(check.stdout) as { checks: { id: string; result: string; message: string; fix: string }[] }).checks.find((c) => c.id === 'connect-management-uri')!;
    expect(sock).toMatchObject({ result: 'error', message: moved });
    expect(sock.fix).toContain('run "edgeward system restart"');
    const restarted = await runCli(['system', 'restart'], env);
    expect(restarted).toMatchObject({ code: 0, stdout: 'Restarted edgeward.\n' });
    expect((await runCli(['system', 'status'], env)).code).toBe(0);
  }, 60_000);

  it('system restart shows the start-up error the daemon recorded, instead of waiting 30 s', async () => {
    daemon = await startDaemon(env);
    mkdirSync(path.join(home, 'run3'), { mode: 0o700 });
    writeFileSync(path.join(home, 'run3', 'mgmt.sock'), 'not a socket\n');
    expect((await runCli(['config', 'apply', '-c', movedConfig('run3')], env)).code).toBe(0);
    const started = Date.now();
    const r = await runCli(['system', 'restart'], env);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error: the daemon stopped: its restart failed:\n${home}/run3/mgmt.sock exists and is not a socket; remove it or choose another path`);
    expect(r.stderr).toContain('hint: fix the config, run "edgeward config apply", then start it with "edgeward daemon"');
    expect(await daemon.exited).toBe(0);
  }, 60_000);

  it('system restart onto a config the preflight refuses restarts nothing: exit 2, the daemon keeps running', async () => {
    const signer = path.join(home, 'signer.pem');
    writeFileSync(signer, generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) as string);
    writeFileSync(path.join(home, 'config.toml'), `${BASE}[modules]\ntrusted_signers = ["${signer}"]\n`);
    daemon = await startDaemon(env);
    rmSync(signer);
    const r = await runCli(['system', 'restart'], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`modules.trusted_signers.0: ${signer}: cannot read (ENOENT): give a PEM file of public keys or CA certificates`);
    expect(r.stderr).toContain('The daemon was not restarted and keeps running on its current config: fix the fields above and run "edgeward config apply".');
    expect((await runCli(['system', 'status'], env)).code).toBe(0);
  }, 60_000);

  it('an ignored IoT Edge key is logged by name (values are redacted, names never)', async () => {
    writeFileSync(path.join(home, 'config.toml'), `${BASE}[agent]\nname = "edgeAgent"\n[moby_runtime]\nuri = "unix:///var/run/docker.sock"\n`);
    daemon = await startDaemon(env);
    const logs = (await runCli(['system', 'logs'], env)).stdout;
    expect(logs).toContain('"setting":"agent"');
    expect(logs).toContain('"setting":"moby_runtime"');
    expect(logs).toContain('config key is an IoT Edge setting with no meaning for Edgeward; ignored (remove it, or see \\"edgeward config import\\" for what each key becomes)');
    expect(logs).not.toContain('<redacted>');
  }, 60_000);
});
