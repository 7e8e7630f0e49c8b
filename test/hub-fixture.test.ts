/**
 * The IoT Hub fixture checked against the official clients, so it is faithful: azure-iothub's Registry
 * manages module identities on it unchanged (only an https.Agent trusting the fixture's CA and carrying its
 * port), a wrong policy key is refused, and a module token made by azure-iot-common verifies with
 * `verifyModuleSas` against the keys the hub holds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { HubFixture } from './fixtures/cloud/hub.js';

const require = createRequire(import.meta.url);
type Cb = (err?: Error | null, result?: unknown) => void;
interface Registry {
  _restApiClient: { setOptions(o: unknown): void };
  addModule(m: unknown): Promise<{ responseBody: Record<string, unknown> }>;
  getModule(d: string, m: string): Promise<{ responseBody: Record<string, unknown> }>;
  getModulesOnDevice(d: string): Promise<{ responseBody: Array<Record<string, unknown>> }>;
  updateModule(m: unknown, force: boolean): Promise<{ responseBody: Record<string, unknown> }>;
  removeModule(d: string, m: string): Promise<unknown>;
  _cb?: Cb;
}
const { Registry } = require('azure-iothub') as { Registry: { fromConnectionString(cs: string): Registry } };
const { SharedAccessSignature } = require('azure-iot-common') as {
  SharedAccessSignature: { create(sr: string, skn: string | undefined, key: string, se: number): { toString(): string } };
};
const { encodeUriComponentStrict } = require('azure-iot-common/dist/authorization.js') as { encodeUriComponentStrict(s: string): string };

let hub: HubFixture;

/** The Node service SDK cannot put a port in its host string: the fixture's hub name is `localhost`, the port comes from the agent. */
function registry(cs = hub.serviceConnectionString()): Registry {
  const r = Registry.fromConnectionString(cs);
  r._restApiClient.setOptions({ http: { agent: hub.agent() } });
  return r;
}

beforeAll(async () => {
  hub = await HubFixture.start({ hostname: 'localhost' });
  hub.addDevice('edge-1');
  hub.addDevice('leaf-1', { edge: false });
});
afterAll(() => hub?.stop());

describe('IoT Hub fixture vs azure-iothub Registry', () => {
  it('adds, gets, lists, updates and removes module identities', async () => {
    const reg = registry();
    const primaryKey = randomBytes(32).toString('base64');
    const secondaryKey = randomBytes(32).toString('base64');
    const added = (await reg.addModule({ deviceId: 'edge-1', moduleId: 'filter', managedBy: 'edgeward', authentication: { type: 'sas', symmetricKey: { primaryKey, secondaryKey } } })).responseBody;
    expect(added).toMatchObject({ moduleId: 'filter', deviceId: 'edge-1', managedBy: 'edgeward', authentication: { type: 'sas', symmetricKey: { primaryKey, secondaryKey } } });
    expect(added.generationId).toMatch(/^\d+$/);

    const got = (await reg.getModule('edge-1', 'filter')).responseBody;
    expect(got.etag).toBe(added.etag);
    const list = (await reg.getModulesOnDevice('edge-1')).responseBody.map((m) => m.moduleId).sort();
    expect(list).toEqual(['$edgeAgent', '$edgeHub', 'filter']);

    const newKey = randomBytes(32).toString('base64');
    const updated = (await reg.updateModule({ ...got, authentication: { type: 'sas', symmetricKey: { primaryKey: newKey, secondaryKey } } }, false)).responseBody;
    expect(updated.etag).not.toBe(got.etag);
    expect(updated.generationId).toBe(added.generationId);
    expect(hub.module('edge-1', 'filter')?.authentication).toMatchObject({ symmetricKey: { primaryKey: newKey } });

    // A stale etag is refused (412), as IoT Hub's optimistic concurrency.
    await expect(reg.updateModule({ ...got }, false)).rejects.toMatchObject({ name: 'InvalidEtagError' });
    await reg.removeModule('edge-1', 'filter');
    expect(hub.module('edge-1', 'filter')).toBeUndefined();
    await expect(reg.getModule('edge-1', 'filter')).rejects.toMatchObject({ response: { statusCode: 404 } });
  });

  it('answers 409 to a second create and generates keys when none are given', async () => {
    const reg = registry();
    const m = (await reg.addModule({ deviceId: 'edge-1', moduleId: 'twice' })).responseBody as { authentication: { symmetricKey: { primaryKey: string } } };
    expect(Buffer.from(m.authentication.symmetricKey.primaryKey, 'base64')).toHaveLength(32);
    await expect(reg.addModule({ deviceId: 'edge-1', moduleId: 'twice' })).rejects.toMatchObject({ name: 'DeviceAlreadyExistsError' });
  });

  it('refuses a wrong policy key and an unknown device', async () => {
    await expect(registry(hub.serviceConnectionString(randomBytes(32))).getModulesOnDevice('edge-1')).rejects.toMatchObject({ name: 'UnauthorizedError' });
    await expect(registry().getModulesOnDevice('nobody')).rejects.toMatchObject({ name: 'DeviceNotFoundError' });
    expect(hub.requests.at(-2)).toMatchObject({ status: 401, auth: 'none' });
  });
});

describe('verifyModuleSas', () => {
  it('verifies a module token made by azure-iot-common with the module key, and refuses others', async () => {
    const primaryKey = randomBytes(32).toString('base64');
    const secondaryKey = randomBytes(32).toString('base64');
    hub.seedModule('edge-1', { moduleId: 'sensor', authentication: { type: 'sas', symmetricKey: { primaryKey, secondaryKey } } });
    const se = Math.floor(Date.now() / 1000) + 3600;
    const sr = encodeUriComponentStrict('localhost/devices/edge-1/modules/sensor');
    const token = (key: string, uri = sr, expiry = se): string => SharedAccessSignature.create(uri, undefined, key, expiry).toString();

    expect(hub.verifyModuleSas(token(primaryKey))).toEqual({ ok: true, deviceId: 'edge-1', moduleId: 'sensor', key: 'primary' });
    expect(hub.verifyModuleSas(token(secondaryKey))).toMatchObject({ ok: true, key: 'secondary' });
    expect(hub.verifyModuleSas(token(randomBytes(32).toString('base64')))).toMatchObject({ ok: false, reason: expect.stringMatching(/signature/) });
    expect(hub.verifyModuleSas(token(primaryKey, sr, Math.floor(Date.now() / 1000) - 1))).toMatchObject({ ok: false, reason: 'expired' });
    const other = encodeUriComponentStrict('localhost/devices/edge-1/modules/nothere');
    expect(hub.verifyModuleSas(token(primaryKey, other))).toMatchObject({ ok: false });
  });
});
