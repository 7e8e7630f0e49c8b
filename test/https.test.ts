/**
 * https end to end, through a daemon whose environment trusts a private CA (NODE_EXTRA_CA_CERTS, as a
 * service unit would set it), against an https server on loopback with an openssl certificate:
 * - `settings.image` as an https URL, pinned by `settings.digest`; a wrong pin is refused after the
 *   download, before anything runs;
 * - a module granted `wasi:http/outgoing-handler` for that host fetches from it over TLS; the same server
 *   under another name is denied.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { buildTestGuest } from '../guests/adversarial/components.js';
import { assetPath } from '../host/runtime/assets.js';
import { loopbackServerCert } from './helpers/pki.js';
import { envFor, runCli, startDaemon, stopDaemon, tempHome, type DaemonHandle } from './helpers/cli.js';

describe('https through a daemon that trusts a private CA', () => {
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
    // Cached by source hash: a no-op when the guests are up to date.
    const built = spawnSync(process.execPath, [assetPath('guests/build.mjs'), 'fetcher'], { encoding: 'utf8' });
    if (built.status !== 0) throw new Error(`build of guests/fetcher failed:\n${built.stderr}`);
    const tls = loopbackServerCert(home);
    component = await buildTestGuest('echo');
    server = https.createServer(tls, (req, res) => {
      served.push(req.url ?? '');
      if (req.url === '/hello.txt') return res.writeHead(200, { 'content-type': 'text/plain' }).end('hello over TLS');
      if (req.url !== '/echo.wasm') return res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/wasm' }).end(component);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    writeFileSync(path.join(home, 'config.toml'), '[provisioning]\nsource = "none"\n[runtime]\n');
    env = envFor(home, { NODE_EXTRA_CA_CERTS: tls.certFile });
    daemon = await startDaemon(env);
  }, 240_000);
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

  it('a module granted the host fetches from it over TLS; the same server under another name is denied', async () => {
    const port = new URL(base).port;
    const file = path.join(home, 'fetcher.json');
    writeFileSync(file, JSON.stringify({ modules: { fetcher: {
      settings: { image: 'builtin:fetcher' }, restartPolicy: 'never',
      capabilities: ['wasi:http/outgoing-handler'], network: { hosts: [`127.0.0.1:${port}`] },
    } } }));
    const d = await runCli(['deploy', file], env, 120_000);
    expect(d.stderr).toBe('');
    expect(d.code).toBe(0);
    const ok = await runCli(['invoke', 'fetcher', 'fetch', JSON.stringify({ url: `${base}/hello.txt` })], env, 30_000);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({ status: 200, body: 'hello over TLS' });
    const before = served.length;
    const denied = await runCli(['invoke', 'fetcher', 'fetch', JSON.stringify({ url: `https://localhost:${port}/hello.txt` })], env, 30_000);
    expect(denied.code).not.toBe(0);
    expect(`${denied.stdout}${denied.stderr}`).toContain('fetch failed');
    expect(served.length).toBe(before);
    const logs = await runCli(['logs', 'fetcher'], env);
    expect(logs.stdout).toMatch(/INFO  http: GET https:\/\/127\.0\.0\.1:\d+\/hello\.txt → 200/);
    expect(logs.stdout).toMatch(/WARN  http: GET https "localhost:\d+" denied: not in network\.hosts/);
  }, 180_000);
});
