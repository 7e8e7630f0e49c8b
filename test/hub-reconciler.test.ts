/**
 * ModuleIdentityReconciler against the IoT Hub fixture, with the real key service (file backend) and the
 * real IdentityService (manual provisioning from a device key the fixture knows): the hub's module
 * identities follow the local modules, their keys verify the SAS tokens IdentityService signs for modules
 * (what the workload API hands out), and offline work is queued, coalesced and converges.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import { EventRing } from '../host/runtime/events.js';
import { ModuleIdentityReconciler, MANAGED_BY, followRuntimeEvents, type ModuleIdentitySource, type ReconcilerOptions } from '../host/cloud/hub/index.js';
import { DEVICE_KEY_ID, encodeURIComponentStrict } from '../host/identity/identity.js';
import { DAEMON_CALLER } from '../hsm/keys/index.js';
import { HubFixture } from './fixtures/cloud/hub.js';
import { openIdentityServices, type IdentityServices } from './helpers/identity-services.js';
import { tempDir } from './helpers/keys.js';

const DEVICE = 'edge-1';
let hub: HubFixture;
let agent: https.Agent;
let stateDir: string;
let services: IdentityServices;
let rec: ModuleIdentityReconciler | undefined;

/**
 * The two IdentityService methods the reconciler needs, over the key service: the device SAS signed with
 * `device-id`, and the module keys as IdentityService derives them (HMAC-SHA256(device key, module id) —
 * the derived key's bytes are that HMAC, computed in the key service by signing the derivation data).
 */
function identitySource(): ModuleIdentitySource {
  const { keys } = services;
  const deviceKey = (): Promise<string> => keys.loadKey(DAEMON_CALLER, { id: DEVICE_KEY_ID });
  return {
    hubHostname: hub.hostname,
    deviceId: DEVICE,
    agent,
    async deviceSasToken(audience, ttl) {
      const se = Math.floor(Date.now() / 1000) + ttl;
      const sr = encodeURIComponentStrict(audience.toLowerCase());
      const sig = await keys.sign(DAEMON_CALLER, await deviceKey(), 'hmac-sha256', Buffer.from(`${sr}\n${se}`));
      return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponentStrict(sig.toString('base64'))}&se=${se}`;
    },
    async moduleSasKeys(module) {
      const base = await deviceKey();
      const primary = await keys.sign(DAEMON_CALLER, base, 'hmac-sha256', Buffer.from(module));
      const secondary = await keys.sign(DAEMON_CALLER, base, 'hmac-sha256', Buffer.from(`${module}:secondary`));
      return { primary, secondary };
    },
  };
}

function reconciler(over: Partial<ReconcilerOptions> = {}): ModuleIdentityReconciler {
  rec = new ModuleIdentityReconciler({ ...identitySource(), backoff: { initialMs: 60_000, maxMs: 60_000 }, ...over });
  return rec;
}

const hubIds = (): string[] => hub.modules(DEVICE).map((m) => m.moduleId).sort();
const moduleToken = (m: string): Promise<string> => services.identity.sasToken(m, services.identity.moduleAudience(m), 3600);

beforeAll(async () => {
  hub = await HubFixture.start();
  agent = new https.Agent({ ca: hub.ca });
});
afterAll(async () => {
  agent?.destroy();
  await hub?.stop();
});
beforeEach(async () => {
  stateDir = await tempDir('ew-hub-rec-');
  const deviceKey = hub.addDevice(DEVICE).primaryKey; // fresh device: only $edgeAgent and $edgeHub
  services = await openIdentityServices(stateDir, { hub: hub.hostname, deviceId: DEVICE, deviceKey });
  hub.mode = 'up';
  hub.setDown(false);
});
afterEach(async () => {
  await rec?.close();
  rec = undefined;
  await services.close();
  await fs.rm(stateDir, { recursive: true, force: true });
});

describe('ModuleIdentityReconciler', () => {
  it('creates missing identities in one PUT whose keys verify the module tokens IdentityService signs', async () => {
    const r = reconciler();
    const before = hub.requests.length;
    await r.reconcile(['filter', 'sensor', '$edgeAgent']);
    expect(hubIds()).toEqual(['$edgeAgent', '$edgeHub', 'filter', 'sensor']);
    expect(hub.module(DEVICE, 'filter')).toMatchObject({ managedBy: MANAGED_BY, authentication: { type: 'sas' } });
    expect(hub.module(DEVICE, '$edgeAgent')?.managedBy).toBeUndefined();
    const puts = hub.requests.slice(before).filter((q) => q.method === 'PUT');
    expect(puts.map((q) => [q.path, q.ifMatch, q.auth, q.status])).toEqual([
      ['/devices/edge-1/modules/filter', undefined, 'device', 200],
      ['/devices/edge-1/modules/sensor', undefined, 'device', 200],
    ]);
    for (const m of ['filter', 'sensor']) expect(hub.verifyModuleSas(await moduleToken(m))).toMatchObject({ ok: true, moduleId: m, key: 'primary' });
    // a token signed for one module does not pass as another's
    const filterToken = await services.identity.sasToken('filter', services.identity.moduleAudience('sensor'), 3600);
    expect(hub.verifyModuleSas(filterToken).ok).toBe(false);
    expect(r.status()).toMatchObject({ pending: [], fullSyncPending: false, failedAttempts: 0, lastSuccess: expect.any(String) });
    // a second reconcile changes nothing
    const n = hub.requests.length;
    await r.reconcile(['filter', 'sensor']);
    expect(hub.requests.slice(n).map((q) => q.method)).toEqual(['GET']);
  });

  it('updates keys that differ, deletes only its own stale identities, keeps the others', async () => {
    const wrong = { type: 'sas' as const, symmetricKey: { primaryKey: randomBytes(32).toString('base64'), secondaryKey: randomBytes(32).toString('base64') } };
    hub.seedModule(DEVICE, { moduleId: 'filter', managedBy: MANAGED_BY, authentication: wrong });
    hub.seedModule(DEVICE, { moduleId: 'portal-made', authentication: wrong });
    hub.seedModule(DEVICE, { moduleId: 'adopted', authentication: wrong });
    hub.seedModule(DEVICE, { moduleId: 'stale', managedBy: MANAGED_BY });
    await reconciler().reconcile(['filter', 'adopted']);
    expect(hubIds()).toEqual(['$edgeAgent', '$edgeHub', 'adopted', 'filter', 'portal-made']);
    expect(hub.verifyModuleSas(await moduleToken('filter')).ok).toBe(true);
    expect(hub.verifyModuleSas(await moduleToken('adopted')).ok).toBe(true);
    expect(hub.module(DEVICE, 'adopted')?.managedBy ?? undefined).toBeUndefined(); // not taken over: never deleted later
    expect(hub.module(DEVICE, 'portal-made')?.authentication).toEqual(wrong);
  });

  it('follows moduleAdded and moduleRemoved; a removed module it did not create stays', async () => {
    const r = reconciler();
    await r.reconcile([]);
    await r.moduleAdded('late');
    expect(hub.verifyModuleSas(await moduleToken('late')).ok).toBe(true);
    await r.moduleRemoved('late');
    expect(hubIds()).toEqual(['$edgeAgent', '$edgeHub']);
    hub.seedModule(DEVICE, { moduleId: 'foreign' });
    await r.moduleRemoved('foreign');
    await r.moduleRemoved('$edgeHub');
    expect(hubIds()).toEqual(['$edgeAgent', '$edgeHub', 'foreign']);
  });

  it('follows the runtime events: created adds, removed deletes, updated keeps', async () => {
    const r = reconciler();
    await r.reconcile([]);
    const ring = new EventRing();
    const stop = followRuntimeEvents(r, (l) => ring.subscribe(l));
    ring.push({ module: 'comp', kind: 'created', message: 'registered' });
    ring.push({ module: 'comp', kind: 'updated', message: 'registered' });
    ring.push({ module: 'comp', kind: 'started', message: 'started' });
    await r.flush();
    expect(hubIds()).toContain('comp');
    expect(hub.verifyModuleSas(await moduleToken('comp')).ok).toBe(true);
    ring.push({ module: 'comp', kind: 'removed', message: 'module removed' });
    await r.flush();
    expect(hubIds()).not.toContain('comp');
    stop();
    ring.push({ module: 'after', kind: 'created', message: 'registered' });
    await r.flush();
    expect(hubIds()).not.toContain('after');
  });

  it('queues while the hub is down (coalesced per module) and converges when it is back', async () => {
    const r = reconciler();
    await r.reconcile(['a']);
    hub.setDown(true);
    await r.moduleAdded('b');
    await r.moduleAdded('c');
    await r.moduleRemoved('c'); // coalesced: c never reaches the hub
    await r.moduleRemoved('a');
    const s = r.status();
    expect(s).toMatchObject({ pending: ['a', 'b', 'c'], failedAttempts: 1, lastError: { kind: 'not-connected' }, nextRetryAt: expect.any(String) });
    expect(hubIds()).toEqual(['$edgeAgent', '$edgeHub', 'a']);
    expect(r.serviceStatus()).toMatchObject({ status: 'degraded', detail: expect.stringMatching(/^3 module\(s\) waiting for localhost:\d+ \(device edge-1\): IoT Hub .*check the network; next retry /) });
    hub.setDown(false);
    await r.flush();
    expect(hubIds()).toEqual(['$edgeAgent', '$edgeHub', 'b']);
    expect(r.status()).toMatchObject({ pending: [], failedAttempts: 0 });
    expect(r.status().nextRetryAt).toBeUndefined();
    expect(r.serviceStatus()).toMatchObject({ status: 'running', detail: expect.stringMatching(/^module identities in sync with/) });
  });

  it('retries by itself with back-off, and a start-up reconcile while down converges', async () => {
    hub.setDown(true);
    const r = reconciler({ backoff: { initialMs: 40, maxMs: 80 } });
    await r.reconcile(['x', 'y']);
    expect(r.status()).toMatchObject({ fullSyncPending: true, lastError: { kind: 'not-connected' } });
    await new Promise((res) => setTimeout(res, 150));
    expect(r.status().failedAttempts).toBeGreaterThanOrEqual(2);
    hub.setDown(false);
    const deadline = Date.now() + 2000;
    while (r.status().fullSyncPending && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
    expect(hubIds()).toEqual(['$edgeAgent', '$edgeHub', 'x', 'y']);
  });

  it('treats a hub 500 as not-connected and keeps the work', async () => {
    hub.mode = 'fail500';
    const r = reconciler();
    await r.reconcile(['m']);
    expect(r.status()).toMatchObject({ fullSyncPending: true, lastError: { kind: 'not-connected' } });
    hub.mode = 'up';
    await r.flush();
    expect(hubIds()).toContain('m');
  });

  it('moves to the new hub after reprovisioning (setDevice) and resyncs there', async () => {
    const hub2 = await HubFixture.start();
    const both = new https.Agent({ ca: [hub.ca, hub2.ca] });
    try {
      hub2.addDevice('edge-9', { primaryKey: services.deviceKey });
      const r = reconciler({ agent: both });
      await r.reconcile(['a', 'b']);
      await r.setDevice(hub2.hostname, 'edge-9');
      expect(hub2.modules('edge-9').map((m) => m.moduleId).sort()).toEqual(['$edgeAgent', '$edgeHub', 'a', 'b']);
      expect(r.status()).toMatchObject({ hub: hub2.hostname, deviceId: 'edge-9', pending: [], fullSyncPending: false });
    } finally {
      both.destroy();
      await hub2.stop();
    }
  });

  it('calls onDeviceUnauthorized once per failure streak on 401', async () => {
    let calls = 0;
    hub.mode = 'deviceUnauthorized';
    const r = reconciler({ onDeviceUnauthorized: () => void calls++ });
    await r.reconcile(['m']);
    await r.flush();
    await r.flush();
    expect(calls).toBe(1);
    expect(r.status()).toMatchObject({ failedAttempts: 3, lastError: { kind: 'unauthorized' } });
    hub.mode = 'up';
    await r.flush();
    expect(hubIds()).toContain('m');
    hub.mode = 'deviceUnauthorized';
    await r.moduleAdded('n');
    expect(calls).toBe(2);
  });
});
