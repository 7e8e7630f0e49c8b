/**
 * The DPS fixture checked by the official Azure IoT provisioning client (azure-iot-provisioning-device with
 * the HTTP transport, symmetric-key and X.509 security clients), unchanged, pointed at the fixture through
 * an https.Agent carrying the fixture's CA and port. It must register them, and refuse a wrong key and a
 * certificate from another CA.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import https from 'node:https';
import { createHmac, randomBytes } from 'node:crypto';
import { ProvisioningDeviceClient, type RegistrationResult } from 'azure-iot-provisioning-device';
import { Http } from 'azure-iot-provisioning-device-http';
import { Http as HttpBase } from 'azure-iot-http-base';
import { SymmetricKeySecurityClient } from 'azure-iot-security-symmetric-key';
import { X509Security } from 'azure-iot-security-x509';
import { CloudCa } from './fixtures/cloud/ca.js';
import { DpsFixture } from './fixtures/cloud/dps.js';

let ca: CloudCa;
let dps: DpsFixture;

function transport(): Http {
  const agent = new https.Agent({ ca: ca.caPem });
  (agent as unknown as { defaultPort: number }).defaultPort = dps.port;
  const base = new HttpBase();
  base.setOptions({ http: { agent } });
  const t = new Http(base as unknown as ConstructorParameters<typeof Http>[0]);
  t.setTransportOptions({ pollingInterval: 10 });
  return t;
}

function register(security: SymmetricKeySecurityClient | X509Security): Promise<RegistrationResult> {
  // The SDK packages each bundle their own azure-iot-common: the types differ, the objects are the same.
  const client = ProvisioningDeviceClient.create('127.0.0.1', dps.idScope, transport(), security as unknown as Parameters<typeof ProvisioningDeviceClient.create>[3]);
  return new Promise((resolve, reject) => client.register((err, result) => (err ? reject(err) : resolve(result!))));
}

describe('DPS fixture with the official provisioning client', () => {
  beforeAll(async () => {
    ca = new CloudCa();
    dps = await DpsFixture.start({ ca });
  });
  afterAll(async () => {
    await dps?.stop();
    ca?.cleanup();
  });

  it('registers an individual symmetric-key enrollment (SAS over the SDK\'s raw sr)', async () => {
    const key = randomBytes(32);
    dps.enrollSymmetric('sdk-sym-1', key, { hub: 'hub-a.fixture.test' });
    dps.assigningPolls = 2;
    const r = await register(new SymmetricKeySecurityClient('sdk-sym-1', key.toString('base64')));
    dps.assigningPolls = 0;
    expect(r).toMatchObject({ registrationId: 'sdk-sym-1', assignedHub: 'hub-a.fixture.test', deviceId: 'sdk-sym-1', status: 'assigned', substatus: 'initialAssignment' });
    const mine = dps.requests.filter((q) => q.path.includes('sdk-sym-1'));
    expect(mine.map((q) => `${q.method} ${q.status} ${q.auth}`)).toEqual(['PUT 202 sas', 'GET 202 sas', 'GET 202 sas', 'GET 200 sas']);
    expect(mine[0]!.apiVersion).toBe('2019-03-31');
  });

  it('registers a device of a symmetric-key group with its derived key', async () => {
    const group = randomBytes(64);
    dps.enrollGroup('g1', group);
    const derived = createHmac('sha256', group).update('sdk-grp-dev', 'utf8').digest();
    const r = await register(new SymmetricKeySecurityClient('sdk-grp-dev', derived.toString('base64')));
    expect(r).toMatchObject({ deviceId: 'sdk-grp-dev', status: 'assigned' });
  });

  it('refuses a wrong symmetric key with 401', async () => {
    dps.enrollSymmetric('sdk-sym-2', randomBytes(32));
    const err = await register(new SymmetricKeySecurityClient('sdk-sym-2', randomBytes(32).toString('base64'))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(dps.requests.filter((q) => q.path.includes('sdk-sym-2')).map((q) => q.status)).toEqual([401]);
    expect(dps.registrations.has('sdk-sym-2')).toBe(false);
  });

  it('registers an X.509 device whose certificate chains to the enrollment group CA (registration id = CN)', async () => {
    const groupCa = ca.enrollmentCa('fleet-ca');
    dps.enrollX509Ca('fleet', groupCa.cert, { hub: 'hub-x.fixture.test' });
    const dev = ca.device('sdk-x509-dev', 'sdk-x509-dev', 'fleet-ca');
    const r = await register(new X509Security('sdk-x509-dev', { cert: dev.cert, key: dev.key }));
    expect(r).toMatchObject({ deviceId: 'sdk-x509-dev', assignedHub: 'hub-x.fixture.test', status: 'assigned' });
    expect(dps.requests.filter((q) => q.path.includes('sdk-x509-dev')).every((q) => q.auth === 'x509')).toBe(true);
  });

  it('refuses a certificate from another CA, and a CN that is not the registration id', async () => {
    ca.enrollmentCa('rogue-ca');
    const rogue = ca.device('sdk-x509-rogue', 'sdk-x509-rogue', 'rogue-ca');
    const e1 = await register(new X509Security('sdk-x509-rogue', { cert: rogue.cert, key: rogue.key })).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(Error);
    expect(dps.requests.filter((q) => q.path.includes('sdk-x509-rogue')).map((q) => q.status)).toEqual([401]);
    const other = ca.device('sdk-x509-cn', 'someone-else', 'fleet-ca');
    const e2 = await register(new X509Security('sdk-x509-cn', { cert: other.cert, key: other.key })).catch((e: unknown) => e);
    expect(e2).toBeInstanceOf(Error);
    expect(dps.requests.filter((q) => q.path.includes('sdk-x509-cn')).map((q) => q.status)).toEqual([401]);
  });

  it('answers a scripted 429 with Retry-After, which the SDK reads as throttling; the next attempt registers', async () => {
    const key = randomBytes(32);
    dps.enrollSymmetric('sdk-sym-3', key);
    dps.faults.push({ status: 429, retryAfter: '3', on: 'register' });
    const security = new SymmetricKeySecurityClient('sdk-sym-3', key.toString('base64'));
    const err = await register(security).catch((e: unknown) => e);
    expect((err as Error).name).toBe('ThrottlingError');
    expect((await register(security)).status).toBe('assigned');
    expect(dps.requests.filter((q) => q.path.includes('sdk-sym-3')).map((q) => q.status)).toEqual([429, 202, 200]);
  });
});
