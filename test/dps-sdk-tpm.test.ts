/**
 * The DPS fixture's TPM flow checked by the official TPM security client: azure-iot-security-tpm (installed
 * apart in test/sdk-tpm, over tss.js) reaches swtpm through the Microsoft-simulator framing shim, reads the
 * EK/SRK Edgeward's TPM layer made, and registers with the official provisioning client against the fixture:
 * the SDK activates the fixture's authenticationKey (tpm2-tools' makecredential + duplicate) in the TPM and
 * signs the SAS the fixture verifies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import https from 'node:https';
import { createRequire } from 'node:module';
import path from 'node:path';
import { ProvisioningDeviceClient, type RegistrationResult } from 'azure-iot-provisioning-device';
import { Http } from 'azure-iot-provisioning-device-http';
import { Http as HttpBase } from 'azure-iot-http-base';
import { Swtpm } from '../hsm/tpm/testing/swtpm.js';
import { Tpm } from '../hsm/tpm/tpm.js';
import { ensureIdentity } from '../hsm/tpm/identity.js';
import { CloudCa } from './fixtures/cloud/ca.js';
import { DpsFixture } from './fixtures/cloud/dps.js';
import { TpmChallenger } from './fixtures/cloud/tpm-challenge.js';
import { MssimShim } from './fixtures/cloud/mssim-shim.js';
import { ROOT } from './helpers/cli.js';

const sdkRequire = createRequire(path.join(ROOT, 'test', 'sdk-tpm', 'package.json'));
type Cb<T> = (err: Error | null | undefined, v?: T) => void;
interface SdkTpmClient {
  getEndorsementKey(cb: Cb<Buffer>): void;
  getStorageRootKey(cb: Cb<Buffer>): void;
}
const { TpmSecurityClient } = sdkRequire('azure-iot-security-tpm') as { TpmSecurityClient: new (regId: string, tpm: unknown) => SdkTpmClient };
const { Tpm: TssTpm } = sdkRequire('tss.js') as { Tpm: new (sim: boolean, host: string, port: number) => unknown };

let ca: CloudCa;
let dps: DpsFixture;
let challenger: TpmChallenger;
let device: Swtpm;
let shim: MssimShim;
let ours: { endorsementKey: string; storageRootKey: string };

beforeAll(async () => {
  ca = new CloudCa();
  [challenger, device] = await Promise.all([TpmChallenger.start(), Swtpm.start()]);
  const tpm = await Tpm.open(device.tcti);
  ours = await ensureIdentity(tpm);
  await tpm.close();
  shim = await MssimShim.start(device.port);
  dps = await DpsFixture.start({ ca, tpm: challenger });
});
afterAll(async () => {
  await dps?.stop();
  await shim?.stop();
  await Promise.all([challenger?.stop(), device?.stop()]);
  ca?.cleanup();
});

const call = <T>(fn: (cb: Cb<T>) => void): Promise<T> => new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))));

describe('DPS fixture with the official TPM security client (through the mssim shim)', () => {
  it('reads the EK and SRK Edgeward made, and registers against the fixture (SDK activation of the fixture\'s key)', async () => {
    const security = new TpmSecurityClient('sdk-tpm-1', new TssTpm(true, '127.0.0.1', shim.port));
    const ek = await call<Buffer>((cb) => security.getEndorsementKey(cb));
    const srk = await call<Buffer>((cb) => security.getStorageRootKey(cb));
    expect(ek.toString('base64')).toBe(ours.endorsementKey);
    expect(srk.toString('base64')).toBe(ours.storageRootKey);

    dps.enrollTpm('sdk-tpm-1', { ekPub: ours.endorsementKey, hub: 'hub-sdktpm.fixture.test' });
    const agent = new https.Agent({ ca: ca.caPem });
    (agent as unknown as { defaultPort: number }).defaultPort = dps.port;
    const base = new HttpBase();
    base.setOptions({ http: { agent } });
    const transport = new Http(base as unknown as ConstructorParameters<typeof Http>[0]);
    transport.setTransportOptions({ pollingInterval: 10 });
    const client = ProvisioningDeviceClient.create('127.0.0.1', dps.idScope, transport, security as unknown as Parameters<typeof ProvisioningDeviceClient.create>[3]);
    const r = await new Promise<RegistrationResult>((resolve, reject) => client.register((err, res) => (err ? reject(err) : resolve(res!))));
    // The SDK's TPM registration answers the whole operation (it activated the assigned key in the TPM too).
    expect(r).toMatchObject({ status: 'assigned', registrationState: { deviceId: 'sdk-tpm-1', assignedHub: 'hub-sdktpm.fixture.test' } });
    expect(dps.requests.filter((q) => q.path.includes('sdk-tpm-1')).map((q) => `${q.method} ${q.status} ${q.auth}`)).toEqual(['PUT 401 tpm', 'PUT 202 sas', 'GET 200 sas']);
  });
});
