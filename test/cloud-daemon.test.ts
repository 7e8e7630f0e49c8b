/**
 * Issue 17 acceptance, the whole cloud identity path through the real daemon: provisioned by the DPS
 * fixture (symmetric key) onto the IoT Hub fixture, the daemon creates a module identity in the hub for each
 * module (component and native) with the keys the key service derives, so the SAS token the official SDK
 * obtains through the workload API is one the hub accepts; a module removed locally is removed in the hub.
 * Then `system reprovision` moves the device to a second hub, and its identities follow.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildTestGuest } from '../guests/adversarial/components.js';
import { daemonHomePerTest, moduleEnvOf, modulesStarted, runCli, startDaemon, waitUntil } from './helpers/cli.js';
import { sdkModuleCredentials } from './helpers/sdk-module.js';
import { CloudCa } from './fixtures/cloud/ca.js';
import { DpsFixture } from './fixtures/cloud/dps.js';
import { HubFixture } from './fixtures/cloud/hub.js';

let ca: CloudCa;
let dps: DpsFixture;
let hubA: HubFixture;
let hubB: HubFixture;

beforeAll(async () => {
  ca = new CloudCa();
  dps = await DpsFixture.start({ ca });
  hubA = await HubFixture.start();
  hubB = await HubFixture.start();
});
afterAll(async () => {
  await Promise.all([dps?.stop(), hubA?.stop(), hubB?.stop()]);
  ca?.cleanup();
});


describe('DPS → IoT Hub module identities, end to end', () => {
  const t = daemonHomePerTest('ew-cloud-');

  it('every module gets a hub identity whose keys verify the SDK token; removal and reprovisioning follow', async () => {
    const key = randomBytes(32);
    dps.enrollSymmetric('gw-cloud', key, { hub: hubA.hostname, deviceId: 'gw-cloud-1' });
    hubA.addDevice('gw-cloud-1', { primaryKey: key });
    hubB.addDevice('gw-cloud-1', { primaryKey: key });
    writeFileSync(path.join(t.home, 'echo.wasm'), await buildTestGuest('echo'));
    const manifest = path.join(t.home, 'deploy.json');
    writeFileSync(manifest, JSON.stringify({ modules: { echo: { settings: { image: './echo.wasm' } } } }));
    writeFileSync(path.join(t.home, 'config.toml'), [
      'hostname = "gw1"', 'cloud_timeout_sec = 5', 'cloud_retries = 0',
      '[provisioning]', 'source = "dps"', `global_endpoint = "${dps.endpoint}"`, `id_scope = "${dps.idScope}"`,
      '[provisioning.attestation]', 'method = "symmetric_key"', 'registration_id = "gw-cloud"', `symmetric_key = { value = "${key.toString('base64')}" }`,
      '[runtime]', `deployment = "${manifest}"`, '',
    ].join('\n'));
    const trust = path.join(t.home, 'cloud-cas.pem');
    writeFileSync(trust, [ca.caFile, hubA.caFile, hubB.caFile].map((f) => readFileSync(f, 'utf8')).join('\n'));
    t.env.NODE_EXTRA_CA_CERTS = trust;

    t.daemon = await startDaemon(t.env);
    expect(await modulesStarted(t.env)).toEqual(['echo']);
    expect((await runCli(['module', 'register', 'sensor'], t.env)).code).toBe(0);
    const names = (h: HubFixture) => h.modules('gw-cloud-1').filter((m) => m.managedBy === 'edgeward').map((m) => m.moduleId).sort();
    await waitUntil('echo and sensor in hub A', () => names(hubA).join() === 'echo,sensor');
    // Every call to the hub authenticated as the device, with its DPS key signed in the key service (a 404
    // is the reconciler asking whether an identity exists before creating it).
    expect(hubA.requests.filter((r) => r.auth !== 'device' || r.status === 401 || r.status === 403)).toEqual([]);

    const env = await moduleEnvOf(t.env, 'sensor');
    expect(env).toMatchObject({ IOTEDGE_IOTHUBHOSTNAME: hubA.hostname, IOTEDGE_DEVICEID: 'gw-cloud-1' });
    const creds = sdkModuleCredentials(env);
    expect(hubA.verifyModuleSas(creds.token)).toMatchObject({ ok: true, deviceId: 'gw-cloud-1', moduleId: 'sensor' });

    expect((await runCli(['module', 'unregister', 'sensor'], t.env)).code).toBe(0);
    await waitUntil('sensor gone from hub A', () => names(hubA).join() === 'echo');
    const info = await runCli(['system', 'status', '--json'], t.env);
    expect(info.stdout).toContain('hub-identities');

    // DPS now assigns hub B: reprovisioning moves the device; the daemon restarts onto it, identities follow.
    dps.reassign('gw-cloud', hubB.hostname, 'deviceDataMigrated');
    const re = await runCli(['system', 'reprovision'], t.env, 60_000);
    expect(re.code, re.stdout + re.stderr).toBe(0);
    expect(re.stdout).toContain('Successfully reprovisioned with IoT Hub.');
    await waitUntil('echo in hub B', () => names(hubB).join() === 'echo').catch((err: Error) => {
      throw new Error(`${err.message}; hub B saw ${JSON.stringify(hubB.requests)}; daemon:\n${t.daemon!.output().split('\n').slice(-25).join('\n')}`);
    });
    expect((await runCli(['system', 'status', '--json'], t.env)).stdout).toContain(`device gw-cloud-1 on ${hubB.hostname}`);
    expect(t.daemon.output()).not.toContain(key.toString('base64'));
  }, 180_000);
});
