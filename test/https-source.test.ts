/**
 * `settings.image` as an https URL, end to end: a daemon whose environment trusts a private CA
 * (NODE_EXTRA_CA_CERTS, as a service unit would set it) deploys a component served over https on
 * loopback, pinned by `settings.digest`; a wrong pin is refused after the download, before anything runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { buildTestGuest } from '../guests/adversarial/components.js';
import { envFor, runCli, startDaemon, stopDaemon, tempHome, type DaemonHandle } from './helpers/cli.js';

describe('deploy from an https source', () => {
  let home: string;
  let cleanup: () => void;
  let env: NodeJS.ProcessEnv;
  let daemon: DaemonHandle | undefined;
  let server: https.Server;
  let base: string;
  let component: Uint8Array;
  const served: string[] = [];

  beforeAll(async () => {
    ({ home, cleanup } = tempHome());
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', path.join(home, 'key.pem'), '-out', path.join(home, 'ca.pem')], { stdio: 'ignore' });
    component = await buildTestGuest('echo');
    server = https.createServer({ key: readFileSync(path.join(home, 'key.pem')), cert: readFileSync(path.join(home, 'ca.pem')) }, (req, res) => {
      served.push(req.url ?? '');
      if (req.url !== '/echo.wasm') return res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/wasm' }).end(component);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    writeFileSync(path.join(home, 'config.toml'), '[provisioning]\nsource = "none"\n[runtime]\n');
    env = envFor(home, { NODE_EXTRA_CA_CERTS: path.join(home, 'ca.pem') });
    daemon = await startDaemon(env);
  }, 60_000);
  afterAll(async () => {
    if (daemon) await stopDaemon(daemon, 'SIGKILL');
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    cleanup();
  });

  const manifest = (name: string, digest: string) => {
    const file = path.join(home, `${name}.json`);
    writeFileSync(file, JSON.stringify({ modules: { [name]: { settings: { image: `${base}/echo.wasm`, digest }, restartPolicy: 'never' } } }));
    return file;
  };

  it('downloads, measures against the pin and runs the module', async () => {
    const digest = `sha256:${createHash('sha256').update(component).digest('hex')}`;
    const r = await runCli(['deploy', manifest('remote', digest)], env, 60_000);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(served).toContain('/echo.wasm');
    const inv = await runCli(['invoke', 'remote', 'ping', '{"a":1}'], env);
    expect(inv.code).toBe(0);
    expect(JSON.parse(inv.stdout)).toEqual({ a: 1 });
  });

  it('refuses bytes that do not match the pinned digest', async () => {
    const wrong = `sha256:${'0'.repeat(64)}`;
    const r = await runCli(['deploy', manifest('pinned', wrong)], env, 60_000);
    expect(r.code).not.toBe(0);
    expect(`${r.stdout}${r.stderr}`).toMatch(/sha256:0{64}/);
    const list = await runCli(['list', '--json'], env);
    expect(JSON.parse(list.stdout).map((m: { name: string }) => m.name)).not.toContain('pinned');
  });
});
