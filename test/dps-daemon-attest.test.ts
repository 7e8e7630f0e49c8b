/**
 * Issue 17 acceptance for the other two attestations, through the real daemon from an empty state
 * directory: TPM (swtpm; the same TPM then also holds the measured-launch PCRs, on one shared connection)
 * and X.509 (a file key). Each is provisioned by the DPS fixture onto the IoT Hub fixture, which receives
 * the module identity of a native module — authenticated by a TPM-signed SAS, or by the TLS client
 * certificate — whose keys verify the token the official SDK obtains through the workload API.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Swtpm } from '../hsm/tpm/testing/swtpm.js';
import { daemonHomePerTest, moduleEnvOf, runCli, startDaemon, waitUntil } from './helpers/cli.js';
import { sdkModuleCredentials } from './helpers/sdk-module.js';
import { CloudCa } from './fixtures/cloud/ca.js';
import { DpsFixture } from './fixtures/cloud/dps.js';
import { HubFixture } from './fixtures/cloud/hub.js';
import { TpmChallenger } from './fixtures/cloud/tpm-challenge.js';

let ca: CloudCa;
let dps: DpsFixture;
let hub: HubFixture;
let challenger: TpmChallenger;
let tpm: Swtpm;

beforeAll(async () => {
  ca = new CloudCa();
  [challenger, tpm, hub] = await Promise.all([TpmChallenger.start(), Swtpm.start(), HubFixture.start()]);
  dps = await DpsFixture.start({ ca, tpm: challenger, hub: hub.hostname });
});
afterAll(async () => {
  await Promise.all([dps?.stop(), hub?.stop(), challenger?.stop(), tpm?.stop()]);
  ca?.cleanup();
});


describe('daemon provisioned by DPS with TPM and X.509 attestation, onto the hub', () => {
  const t = daemonHomePerTest('ew-dpsatt-');

  function configure(lines: string[]): void {
    // OnErrorOnly: the hub learns the device only once DPS assigned it; its first 401s must not reprovision.
    writeFileSync(path.join(t.home, 'config.toml'), ['hostname = "gw1"', 'cloud_timeout_sec = 10', 'cloud_retries = 0', 'auto_reprovisioning_mode = "OnErrorOnly"', '[provisioning]', 'source = "dps"', `global_endpoint = "${dps.endpoint}"`, `id_scope = "${dps.idScope}"`, ...lines, ''].join('\n'));
    const trust = path.join(t.home, 'cloud-cas.pem');
    writeFileSync(trust, [ca.caFile, hub.caFile].map((f) => readFileSync(f, 'utf8')).join('\n'));
    t.env.NODE_EXTRA_CA_CERTS = trust;
  }

  async function sensorIdentityVerifies(deviceId: string): Promise<void> {
    expect((await runCli(['module', 'register', 'sensor'], t.env)).code).toBe(0);
    await waitUntil(`sensor's identity in the hub for ${deviceId}`, () => hub.module(deviceId, 'sensor'));
    const env = await moduleEnvOf(t.env, 'sensor');
    expect(env).toMatchObject({ IOTEDGE_IOTHUBHOSTNAME: hub.hostname, IOTEDGE_DEVICEID: deviceId });
    expect(hub.verifyModuleSas(sdkModuleCredentials(env).token)).toMatchObject({ ok: true, deviceId, moduleId: 'sensor' });
  }

  it('TPM: challenge, TPM-signed SAS, assigned; the hub takes the TPM-signed device SAS; PCRs measured on the same TPM', async () => {
    dps.enrollTpm('tpm-gw');
    configure(['[provisioning.attestation]', 'method = "tpm"', 'registration_id = "tpm-gw"', '[tpm]', `tcti = "${tpm.tcti}"`]);
    t.daemon = await startDaemon(t.env);
    const key = await waitUntil('the DPS key of tpm-gw', () => dps.tpmKeyOf('tpm-gw'));
    hub.addDevice('tpm-gw', { primaryKey: key });
    await sensorIdentityVerifies('tpm-gw');
    expect(hub.requests.filter((r) => r.path.includes('/devices/tpm-gw/') && r.status < 400).every((r) => r.auth === 'device')).toBe(true);
    const status = (await runCli(['system', 'status', '--json'], t.env)).stdout;
    expect(status).toContain('provisioned by DPS (tpm, tpm-gw)');
    const services = (JSON.parse(status) as { services: { name: string; status: string }[] }).services;
    expect(services.find((s) => s.name === 'measurement')?.status).toBe('running');
  }, 120_000);

  it('X.509 (file key): registered by its certificate; the hub takes the same certificate as the device', async () => {
    const fleetCa = ca.enrollmentCa('fleet');
    dps.enrollX509Ca('fleet', fleetCa.cert, { hub: hub.hostname });
    const dev = ca.device('x-gw', 'x509-gw', 'fleet');
    hub.addDevice('x509-gw', { x509Thumbprints: [new X509Certificate(dev.cert).fingerprint256] });
    configure(['[provisioning.attestation]', 'method = "x509"', `identity_cert = "file://${dev.certFile}"`, `identity_pk = "file://${dev.keyFile}"`]);
    t.daemon = await startDaemon(t.env);
    await sensorIdentityVerifies('x509-gw');
    expect(hub.requests.filter((r) => r.path.includes('/devices/x509-gw/')).every((r) => r.auth === 'device-x509')).toBe(true);
  }, 120_000);
});
