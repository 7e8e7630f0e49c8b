/**
 * Issue 6 acceptance: the official azure-iot-device SDK, configured only from the IOTEDGE_* environment
 * that `edgeward module env` prints, gets its SAS token and trust bundle through its own workload socket.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { envFor, runCli, startDaemon, stopDaemon, tempHome, type DaemonHandle } from './helpers/cli.js';
import { sdkModuleCredentials } from './helpers/sdk-module.js';

const DEVICE_KEY = randomBytes(32);

/** One HTTP request on a Unix socket. */
function request(socketPath: string, method: string, p: string, body?: unknown): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = http.request({ socketPath, method, path: p, headers: data ? { 'content-type': 'application/json', 'content-length': data.length } : {} }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(data);
  });
}


describe('workload API with the azure-iot-device SDK', () => {
  let home: string;
  let cleanup: () => void;
  let env: NodeJS.ProcessEnv;
  let daemon: DaemonHandle;

  beforeAll(async () => {
    ({ home, cleanup } = tempHome());
    env = envFor(home);
    writeFileSync(
      path.join(home, 'config.toml'),
      `hostname = "gw.local"\n[provisioning]\nsource = "manual"\nconnection_string = "HostName=hub.example.net;DeviceId=dev-1;SharedAccessKey=${DEVICE_KEY.toString('base64')}"\n[runtime]\n`,
    );
    daemon = await startDaemon(env);
  });
  afterAll(async () => {
    await stopDaemon(daemon);
    cleanup();
  });

  async function register(name: string): Promise<Record<string, string>> {
    const r = await runCli(['module', 'register', name], env);
    expect(r.code, r.stderr).toBe(0);
    const out = await runCli(['module', 'env', name], env);
    expect(out.code, out.stderr).toBe(0);
    return Object.fromEntries(out.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  }

  it('ModuleClient.fromEnvironment gets the trust bundle and a SAS token equal to a direct sign', async () => {
    const modEnv = await register('sdkmod');
    expect(Object.keys(modEnv).sort()).toEqual(
      ['IOTEDGE_APIVERSION', 'IOTEDGE_AUTHSCHEME', 'IOTEDGE_DEVICEID', 'IOTEDGE_GATEWAYHOSTNAME', 'IOTEDGE_IOTHUBHOSTNAME', 'IOTEDGE_MODULEGENERATIONID', 'IOTEDGE_MODULEID', 'IOTEDGE_WORKLOADURI'],
    );
    expect(modEnv).toMatchObject({ IOTEDGE_MODULEID: 'sdkmod', IOTEDGE_DEVICEID: 'dev-1', IOTEDGE_IOTHUBHOSTNAME: 'hub.example.net', IOTEDGE_GATEWAYHOSTNAME: 'gw.local', IOTEDGE_AUTHSCHEME: 'sasToken' });
    const socketPath = modEnv.IOTEDGE_WORKLOADURI!.replace(/^unix:\/\//, '');
    expect(statSync(socketPath).mode & 0o777).toBe(0o600);

    // Only the printed environment: nothing else from the test's own.
    const got = sdkModuleCredentials(modEnv);
    expect(got.moduleId).toBe('sdkmod');

    const bundle = await request(socketPath, 'GET', '/trust-bundle?api-version=2018-06-28');
    expect(got.ca).toBe(bundle.json.certificate);
    expect(got.ca).toContain('-----BEGIN CERTIFICATE-----');

    const m = /^SharedAccessSignature sr=([^&]+)&sig=([^&]+)&se=(\d+)$/.exec(got.token);
    expect(m, got.token).not.toBeNull();
    const [, sr, sig, se] = m!;
    expect(decodeURIComponent(sr!)).toBe('hub.example.net/devices/dev-1/modules/sdkmod');
    const direct = await request(socketPath, 'POST', `/modules/sdkmod/genid/${modEnv.IOTEDGE_MODULEGENERATIONID}/sign?api-version=2018-06-28`, {
      keyId: 'primary',
      algo: 'HMACSHA256',
      data: Buffer.from(`${sr}\n${se}`).toString('base64'),
    });
    expect(direct.status).toBe(200);
    expect(decodeURIComponent(sig!)).toBe(direct.json.digest);
    // And independently: HMAC(HMAC(device key, module id), string-to-sign).
    const moduleKey = createHmac('sha256', DEVICE_KEY).update('sdkmod').digest();
    expect(direct.json.digest).toBe(createHmac('sha256', moduleKey).update(`${sr}\n${se}`).digest('base64'));
  });

  it("module A's socket cannot get module B's identity; a stale generation id gets 403; removal closes the socket", async () => {
    const a = await register('modA');
    const b = await register('modB');
    const sockA = a.IOTEDGE_WORKLOADURI!.replace(/^unix:\/\//, '');
    const sign = (sock: string, name: string, gen: string) =>
      request(sock, 'POST', `/modules/${name}/genid/${gen}/sign?api-version=2018-06-28`, { data: Buffer.from('x').toString('base64') });
    const asB = await sign(sockA, 'modB', b.IOTEDGE_MODULEGENERATIONID!);
    const ghost = await sign(sockA, 'nobody', '1');
    expect(asB).toEqual({ status: 403, json: { message: 'forbidden' } });
    expect(ghost).toEqual(asB); // the answer does not reveal whether B exists
    expect((await request(sockA, 'POST', '/modules/modB/certificate/identity?api-version=2018-06-28', {})).status).toBe(403);
    expect((await sign(sockA, 'modA', a.IOTEDGE_MODULEGENERATIONID!)).status).toBe(200);
    // A new generation makes the old one stale.
    const mgmt = path.join(home, 'run', 'mgmt.sock');
    const renewed = await request(mgmt, 'PUT', '/identities/modA?api-version=2020-07-07', {});
    expect(renewed.status).toBe(200);
    expect(renewed.json.generationId).not.toBe(a.IOTEDGE_MODULEGENERATIONID);
    expect((await sign(sockA, 'modA', a.IOTEDGE_MODULEGENERATIONID!)).status).toBe(403);
    expect((await sign(sockA, 'modA', renewed.json.generationId)).status).toBe(200);
    // Malformed input: 400 with a message, never 500.
    const bad = await request(sockA, 'POST', `/modules/modA/genid/${renewed.json.generationId}/sign?api-version=2018-06-28`, { data: '***' });
    expect(bad.status).toBe(400);
    expect(bad.json.message).toMatch(/invalid parameter: data/);
    const unregister = await runCli(['module', 'unregister', 'modA'], env);
    expect(unregister.code).toBe(0);
    expect(existsSync(sockA)).toBe(false);
    const envGone = await runCli(['module', 'env', 'modA'], env);
    expect(envGone.code).toBe(1);
    expect(envGone.stderr).toContain('not found');
  });

  it('native registrations and their sockets survive a daemon restart', async () => {
    await register('keeper');
    const before = await runCli(['module', 'env', 'keeper'], env);
    expect(await stopDaemon(daemon)).toBe(0);
    daemon = await startDaemon(env);
    const after = await runCli(['module', 'env', 'keeper'], env);
    expect(after.stderr).toBe('');
    expect(after.stdout).toBe(before.stdout);
    // Registrations from the earlier tests too (modA was removed there).
    const list = await request(path.join(home, 'run', 'mgmt.sock'), 'GET', '/identities?api-version=2020-07-07');
    expect(list.json.identities.map((i: { moduleId: string }) => i.moduleId).sort()).toEqual(['keeper', 'modB', 'sdkmod']);
    const sock = /IOTEDGE_WORKLOADURI=unix:\/\/(.*)/.exec(after.stdout)![1]!;
    expect((await request(sock, 'GET', '/trust-bundle?api-version=2020-07-07')).status).toBe(200);
  });
});

describe('workload sockets under load (scenario A7)', () => {
  it("200 connections held open on module A's socket do not slow module B", async () => {
    const { home, cleanup } = tempHome();
    const env = envFor(home);
    writeFileSync(path.join(home, 'config.toml'), '[provisioning]\nsource = "none"\n[runtime]\n');
    const daemon = await startDaemon(env);
    try {
      for (const m of ['noisy', 'quiet']) expect((await runCli(['module', 'register', m], env)).code).toBe(0);
      const sockOf = async (m: string) => /IOTEDGE_WORKLOADURI=unix:\/\/(.*)/.exec((await runCli(['module', 'env', m], env)).stdout)![1]!;
      const noisy = await sockOf('noisy');
      const quiet = await sockOf('quiet');
      const net = await import('node:net');
      const held: import('node:net').Socket[] = [];
      let dropped = 0;
      await Promise.all(
        Array.from({ length: 200 }, () =>
          new Promise<void>((resolve) => {
            const s = net.connect(noisy, () => resolve());
            s.on('close', () => dropped++);
            s.on('error', () => resolve());
            held.push(s);
          }),
        ),
      );
      await new Promise((r) => setTimeout(r, 300));
      const lat: number[] = [];
      for (let i = 0; i < 30; i++) {
        const t = performance.now();
        expect((await request(quiet, 'GET', '/trust-bundle?api-version=2020-07-07')).status).toBe(200);
        lat.push(performance.now() - t);
      }
      lat.sort((a, b) => a - b);
      const p99 = lat[Math.floor(lat.length * 0.99)]!;
      console.log(`[A7] 200 connections on one module socket: ${dropped} dropped by the cap (10 kept); other module p99 ${p99.toFixed(1)} ms`);
      expect(dropped).toBeGreaterThanOrEqual(190);
      expect(p99).toBeLessThan(500);
      for (const s of held) s.destroy();
    } finally {
      await stopDaemon(daemon);
      cleanup();
    }
  });
});
