/**
 * End to end: the real daemon (CLI) on an empty state directory with `source = "dps"` and a symmetric key,
 * trusting the DPS fixture's private CA through NODE_EXTRA_CA_CERTS, registers and shows the assigned hub
 * and device id (system status, module env); with the fixture stopped, a restart comes up from the
 * provisioning backup and its modules run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildTestGuest } from '../guests/adversarial/components.js';
import { spawn } from 'node:child_process';
import { CLI, daemonHomePerTest, runCli, startDaemon, stopDaemon } from './helpers/cli.js';
import { CloudCa } from './fixtures/cloud/ca.js';
import { DpsFixture } from './fixtures/cloud/dps.js';

let ca: CloudCa;
let dps: DpsFixture;

beforeAll(async () => {
  ca = new CloudCa();
  dps = await DpsFixture.start({ ca });
});
afterAll(async () => {
  await dps?.stop();
  ca?.cleanup();
});

describe('daemon provisioned by DPS', () => {
  const t = daemonHomePerTest('ew-dpsd-');

  /** Wait until the start-up deployment is done; the running modules' names. */
  async function running(): Promise<string[]> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const st = JSON.parse((await runCli(['system', 'status', '--json'], t.env)).stdout) as { modules?: { starting?: boolean } };
      if (st.modules && !st.modules.starting) break;
      if (Date.now() > deadline) throw new Error('the start-up deployment did not finish within 60 s');
      await new Promise((r) => setTimeout(r, 200));
    }
    const list = JSON.parse((await runCli(['list', '--json'], t.env)).stdout) as { name: string; status: { runtimeStatus: { status: string } } }[];
    return list.filter((m) => m.status.runtimeStatus.status === 'running').map((m) => m.name);
  }

  async function moduleEnv(name: string): Promise<Record<string, string>> {
    await runCli(['module', 'register', name], t.env);
    const out = await runCli(['module', 'env', name], t.env);
    expect(out.code, out.stderr).toBe(0);
    return Object.fromEntries(out.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  }

  it('registers from an empty state dir, shows the assigned hub; restarts with DPS down from the backup, modules run', async () => {
    const key = randomBytes(32);
    dps.enrollSymmetric('edge-gw-1', key, { hub: 'hub-e2e.fixture.test', deviceId: 'gw-assigned-1' });
    writeFileSync(path.join(t.home, 'echo.wasm'), await buildTestGuest('echo'));
    const manifest = path.join(t.home, 'deploy.json');
    writeFileSync(manifest, JSON.stringify({ modules: { echo: { settings: { image: './echo.wasm' } } } }));
    writeFileSync(path.join(t.home, 'config.toml'), [
      'hostname = "gw1"', 'cloud_timeout_sec = 3', 'cloud_retries = 0',
      '[provisioning]', 'source = "dps"', `global_endpoint = "${dps.endpoint}"`, `id_scope = "${dps.idScope}"`,
      '[provisioning.attestation]', 'method = "symmetric_key"', 'registration_id = "edge-gw-1"', `symmetric_key = { value = "${key.toString('base64')}" }`,
      '[runtime]', `deployment = "${manifest}"`, '',
    ].join('\n'));
    t.env.NODE_EXTRA_CA_CERTS = ca.caFile;

    t.daemon = await startDaemon(t.env);
    expect(await running()).toEqual(['echo']);
    const status = await runCli(['system', 'status', '--json'], t.env);
    expect(status.stdout).toContain('device gw-assigned-1 on hub-e2e.fixture.test');
    const env1 = await moduleEnv('probe');
    expect(env1).toMatchObject({ IOTEDGE_IOTHUBHOSTNAME: 'hub-e2e.fixture.test', IOTEDGE_DEVICEID: 'gw-assigned-1', IOTEDGE_GATEWAYHOSTNAME: 'gw1' });
    expect(dps.requests.filter((q) => q.path.includes('edge-gw-1')).map((q) => q.status)).toEqual([202, 200]);
    expect(t.daemon.output()).not.toContain(key.toString('base64'));
    expect(existsSync(path.join(t.home, 'state', 'provisioning.json'))).toBe(true);

    expect(await stopDaemon(t.daemon)).toBe(0);
    await dps.stop();
    t.daemon = await startDaemon(t.env);
    expect(t.daemon.output()).toContain('provisioned from the DPS backup');
    expect(await running()).toEqual(['echo']);
    expect(await moduleEnv('probe')).toMatchObject({ IOTEDGE_IOTHUBHOSTNAME: 'hub-e2e.fixture.test', IOTEDGE_DEVICEID: 'gw-assigned-1' });
  });

  it('killed (SIGKILL) while DPS is still assigning: no backup is left, and the restart provisions and starts', async () => {
    const dps = await DpsFixture.start({ ca }); // the shared one is stopped by the first test
    const key = randomBytes(32);
    dps.enrollSymmetric('edge-gw-3', key, { hub: 'hub-kill.fixture.test' });
    writeFileSync(path.join(t.home, 'config.toml'), [
      'cloud_timeout_sec = 20', 'cloud_retries = 0',
      '[provisioning]', 'source = "dps"', `global_endpoint = "${dps.endpoint}"`, `id_scope = "${dps.idScope}"`,
      '[provisioning.attestation]', 'method = "symmetric_key"', 'registration_id = "edge-gw-3"', `symmetric_key = { value = "${key.toString('base64')}" }`,
      '[runtime]', '',
    ].join('\n'));
    t.env.NODE_EXTRA_CA_CERTS = ca.caFile;
    dps.assigningPolls = 1000;
    dps.retryAfter = '0.2';
    const child = spawn(process.execPath, [CLI, 'daemon'], { env: t.env, stdio: 'ignore' });
    try {
      const deadline = Date.now() + 20_000;
      while (dps.requests.filter((q) => q.path.includes('edge-gw-3') && q.method === 'GET').length < 2) {
        if (Date.now() > deadline) throw new Error('the daemon never polled DPS');
        await new Promise((r) => setTimeout(r, 50));
      }
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    } finally {
      dps.assigningPolls = 0;
      dps.retryAfter = '0';
    }
    expect(existsSync(path.join(t.home, 'state', 'provisioning.json'))).toBe(false);
    t.daemon = await startDaemon(t.env);
    expect((await runCli(['system', 'status', '--json'], t.env)).stdout).toContain('device edge-gw-3 on hub-kill.fixture.test');
    await dps.stop();
  });

  it('an empty state dir with DPS unreachable: the daemon refuses to start with the DPS error and its fix', async () => {
    const down = await DpsFixture.start({ ca });
    await down.stop();
    writeFileSync(path.join(t.home, 'config.toml'), [
      'cloud_timeout_sec = 2', 'cloud_retries = 0',
      '[provisioning]', 'source = "dps"', `global_endpoint = "${down.endpoint}"`, `id_scope = "${down.idScope}"`,
      '[provisioning.attestation]', 'method = "symmetric_key"', 'registration_id = "edge-gw-2"', `symmetric_key = { value = "${randomBytes(32).toString('base64')}" }`,
      '[runtime]', '',
    ].join('\n'));
    const err = await startDaemon(t.env, [], undefined, 20_000).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/daemon exited with 1/);
    expect((err as Error).message).toContain('DPS provisioning of edge-gw-2 failed');
    expect((err as Error).message).toContain('check the network, DNS and trust of global_endpoint');
  });
});
