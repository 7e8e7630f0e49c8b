/**
 * A security extension never gets another module's keys or identity (issue 15): `edgeward:hsm/keys` and
 * `edgeward:workload/identity` serve the calling instance's own namespace and identity, and nothing an
 * extension can pass names another module. Real file-backend key service and identity services.
 */
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { edgewardCapabilities } from '../host/capabilities/index.js';
import { FindingsStore, MonitorHub } from '../host/capabilities/monitor/index.js';
import type { Capability } from '../host/runtime/capabilities.js';
import { openIdentityServices, type IdentityServices } from './helpers/identity-services.js';
import { instanceOf, witError } from './helpers/monitor.js';

let dir: string;
let services: IdentityServices;
let caps: Capability[];
beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'ew-mscope-'));
  services = await openIdentityServices(path.join(dir, 'state'));
  const monitor = new MonitorHub(await FindingsStore.open(path.join(dir, 'state')));
  caps = edgewardCapabilities({ keys: services.keys, identity: services.identity, certs: services.certs, monitor });
});
afterAll(async () => {
  await services.close();
  rmSync(dir, { recursive: true, force: true });
});

const fns = (iface: string, module: string) => caps.find((c) => c.name === iface)!.prepare!(instanceOf(module))[iface]!;

describe('an extension and another module\'s secrets', () => {
  it('the monitor grants are listed with the daemon\'s services, each kept to security extensions', () => {
    const monitor = caps.filter((c) => c.name.startsWith('edgeward:monitor/'));
    expect(monitor.map((c) => c.name)).toEqual(['inventory', 'events', 'measurements', 'findings', 'respond'].map((i) => `edgeward:monitor/${i}`));
    expect(monitor.every((c) => c.kinds?.length === 1 && c.kinds[0] === 'security-extension')).toBe(true);
  });

  it('hsm/keys: the extension cannot load, use or list the victim\'s key', async () => {
    const victim = fns('edgeward:hsm/keys', 'victim');
    const agent = fns('edgeward:hsm/keys', 'agent');
    const handle = await victim.createKeyPair!('k', 'ec-p256') as string;
    expect(await witError(agent.loadKey!('k'))).toEqual({ tag: 'not-found' });
    expect(['invalid-handle', 'access-denied']).toContain((await witError(agent.sign!(handle, 'ecdsa-sha256', new Uint8Array(4)))).tag);
    expect(['invalid-handle', 'access-denied']).toContain((await witError(agent.getPublicKey!(handle))).tag);
    expect(await agent.listKeys!()).toEqual([]);
  });

  it('workload/identity: the extension signs with its own module key only, whatever audience it names', async () => {
    const agent = fns('edgeward:workload/identity', 'agent');
    const victim = fns('edgeward:workload/identity', 'victim');
    const data = new TextEncoder().encode('hub.example/devices/dev1/modules/victim\n1700000000');
    const mine = Buffer.from(await agent.sign!(data) as Uint8Array);
    expect(Buffer.from(await agent.sign!(data) as Uint8Array)).toEqual(mine);
    expect(Buffer.from(await victim.sign!(data) as Uint8Array)).not.toEqual(mine);
    // A token for the victim's audience is still signed with the agent's key: IoT Hub refuses it for the victim.
    const token = String(await agent.sasToken!('hub.example/devices/dev1/modules/victim', 60));
    const victimToken = String(await victim.sasToken!('hub.example/devices/dev1/modules/victim', 60));
    const sigOf = (t: string) => /sig=([^&]+)/.exec(t)![1];
    const se = (t: string) => /se=(\d+)/.exec(t)![1];
    if (se(token) === se(victimToken)) expect(sigOf(token)).not.toBe(sigOf(victimToken));
  });
});
