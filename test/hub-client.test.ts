/**
 * host/cloud/hub HubClient against the IoT Hub fixture: module CRUD with a device SAS, aziot's path
 * encoding, and each failure mapped to its typed error (401, 403, 404, 409, 500 → not-connected, reset,
 * untrusted certificate, timeout), with no token in any message; X.509 device authentication (TLS client
 * certificate, no header); and the daemon's way of trusting the hub (NODE_EXTRA_CA_CERTS) in a child process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X509Certificate, createHmac, randomBytes } from 'node:crypto';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { HubClient, HubError, encodePathSegment, type HubClientOptions } from '../host/cloud/hub/index.js';
import { encodeURIComponentStrict } from '../host/identity/identity.js';
import { HubFixture } from './fixtures/cloud/hub.js';

const execFileAsync = promisify(execFile);
let hub: HubFixture;
let agent: https.Agent;
let edgeKey: Buffer;
let tokens: string[] = [];

/** A device SAS as aziot makes it: `sr` = encoded lower-case `{hub}/devices/{device}`. */
function deviceSas(device: string, key: Buffer, ttl = 60): string {
  const se = Math.floor(Date.now() / 1000) + ttl;
  const sr = encodeURIComponentStrict(`${hub.hostname}/devices/${device}`.toLowerCase());
  const sig = createHmac('sha256', key).update(`${sr}\n${se}`).digest('base64');
  const t = `SharedAccessSignature sr=${sr}&sig=${encodeURIComponentStrict(sig)}&se=${se}`;
  tokens.push(t);
  return t;
}

function client(over: Partial<HubClientOptions> = {}, device = 'edge-1', key = edgeKey): HubClient {
  return new HubClient({ hubHostname: hub.hostname, deviceId: device, authorization: async () => deviceSas(device, key), agent, ...over });
}

async function failure(p: Promise<unknown>): Promise<HubError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(HubError);
  for (const t of tokens) expect((err as Error).message).not.toContain(t.split('sig=')[1]!.split('&')[0]);
  return err as HubError;
}

beforeAll(async () => {
  hub = await HubFixture.start();
  agent = new https.Agent({ ca: hub.ca });
  edgeKey = hub.addDevice('edge-1').primaryKey;
  hub.addDevice('edge-2');
  hub.addDevice('leaf', { edge: false });
});
afterAll(async () => {
  agent?.destroy();
  await hub?.stop();
});

describe('HubClient', () => {
  it('encodes path segments with aziot set', () => {
    expect(encodePathSegment('$edgeAgent')).toBe('$edgeAgent');
    expect(encodePathSegment('a=b c/d%?#')).toBe('a%3Db%20c%2Fd%25%3F%23');
    expect(encodePathSegment('ü')).toBe('%C3%BC');
    expect(encodePathSegment('a.b-c_d~')).toBe('a.b-c_d~');
  });

  it('creates, gets, lists, updates and deletes a module identity with the device SAS', async () => {
    const c = client();
    const key = (n: number): string => Buffer.alloc(32, n).toString('base64');
    const created = await c.createModule({ moduleId: 'a=b c', managedBy: 'edgeward', authentication: { type: 'sas', symmetricKey: { primaryKey: key(1), secondaryKey: key(2) } } });
    expect(created).toMatchObject({ moduleId: 'a=b c', deviceId: 'edge-1', managedBy: 'edgeward' });
    expect(hub.requests.at(-1)).toMatchObject({ method: 'PUT', path: '/devices/edge-1/modules/a%3Db%20c', auth: 'device', status: 200 });
    expect(hub.requests.at(-1)?.ifMatch).toBeUndefined();

    expect((await c.getModule('a=b c'))?.etag).toBe(created.etag);
    expect((await c.listModules()).map((m) => m.moduleId).sort()).toEqual(['$edgeAgent', '$edgeHub', 'a=b c']);
    const updated = await c.updateModule({ moduleId: 'a=b c', authentication: { type: 'sas', symmetricKey: { primaryKey: key(3), secondaryKey: key(4) } } });
    expect(updated.generationId).toBe(created.generationId);
    expect(hub.module('edge-1', 'a=b c')?.authentication).toEqual({ type: 'sas', symmetricKey: { primaryKey: key(3), secondaryKey: key(4) } });
    expect(hub.requests.at(-1)?.ifMatch).toBe('*');

    expect(await c.deleteModule('a=b c')).toBe(true);
    expect(await c.getModule('a=b c')).toBeUndefined();
    expect(await c.deleteModule('a=b c')).toBe(false);
    expect((await failure(c.updateModule({ moduleId: 'nothere' }))).kind).toBe('not-found');
  });

  it('maps 409 on a second create to conflict', async () => {
    const c = client();
    await c.createModule({ moduleId: 'dup' });
    const err = await failure(c.createModule({ moduleId: 'dup' }));
    expect(err).toMatchObject({ kind: 'conflict', status: 409, code: 'ModuleAlreadyExistsOnDevice' });
  });

  it('refuses a wrong device key (401), another device and a non-edge device (403)', async () => {
    const bad = await failure(client({}, 'edge-1', randomBytes(32)).listModules());
    expect(bad).toMatchObject({ kind: 'unauthorized', status: 401 });
    expect(bad.message).toMatch(/device credentials/);
    const other = client({ authorization: async () => deviceSas('edge-2', edgeKey) }, 'edge-1');
    expect((await failure(other.listModules())).kind).toBe('unauthorized');
    // edge-1's genuine token used on edge-2's modules
    const cross = client({ authorization: async () => deviceSas('edge-1', edgeKey) }, 'edge-2');
    expect((await failure(cross.listModules())).kind).toBe('forbidden');
    const leafKey = hub.addDevice('leaf2', { edge: false }).primaryKey;
    expect((await failure(client({}, 'leaf2', leafKey).listModules())).kind).toBe('forbidden');
  });

  it('maps 500 and a reset connection to not-connected', async () => {
    hub.mode = 'fail500';
    try {
      expect(await failure(client().listModules())).toMatchObject({ kind: 'not-connected', status: 500 });
    } finally {
      hub.mode = 'up';
    }
    hub.setDown(true);
    try {
      expect(await failure(client().listModules())).toMatchObject({ kind: 'not-connected', status: undefined });
    } finally {
      hub.setDown(false);
    }
    expect(await client().listModules()).toBeInstanceOf(Array);
  });

  it('reports an untrusted hub certificate as tls and a slow hub as timeout', async () => {
    const untrusted = await failure(client({ agent: new https.Agent() }).listModules());
    expect(untrusted.kind).toBe('tls');
    expect(untrusted.message).toMatch(/NODE_EXTRA_CA_CERTS/);
    hub.latencyMs = 400;
    try {
      const t0 = Date.now();
      expect((await failure(client({ timeoutMs: 100 }).listModules())).kind).toBe('timeout');
      expect(Date.now() - t0).toBeLessThan(350);
    } finally {
      hub.latencyMs = 0;
    }
  });
});

describe('HubClient with X.509 device credentials', () => {
  it('authenticates with the TLS client certificate registered for the device, and only that one', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ew-hub-x509-'));
    try {
      const cert = (name: string): { key: Buffer; cert: Buffer; sha256: string } => {
        execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=edge-x509', '-keyout', `${name}.key`, '-out', `${name}.pem`], { cwd: dir, stdio: 'ignore' });
        const pem = readFileSync(path.join(dir, `${name}.pem`));
        return { key: readFileSync(path.join(dir, `${name}.key`)), cert: pem, sha256: new X509Certificate(pem).fingerprint256 };
      };
      const good = cert('good');
      const other = cert('other');
      hub.addDevice('edge-x509', { x509Thumbprints: [good.sha256] });
      const x509 = (c: { key: Buffer; cert: Buffer }): HubClient =>
        new HubClient({ hubHostname: hub.hostname, deviceId: 'edge-x509', authorization: async () => undefined, agent: new https.Agent({ ca: hub.ca, key: c.key, cert: c.cert }) });
      await x509(good).createModule({ moduleId: 'm' });
      expect(hub.requests.at(-1)).toMatchObject({ auth: 'device-x509', status: 200 });
      expect((await failure(x509(other).listModules())).kind).toBe('unauthorized');
      expect((await failure(client({ authorization: async () => undefined }).listModules())).kind).toBe('unauthorized');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('HubClient in a process trusting the hub through NODE_EXTRA_CA_CERTS (as the daemon)', () => {
  // async: the fixture answers from this very process
  const run = async (env: NodeJS.ProcessEnv): Promise<string> => {
    const url = pathToFileURL(path.resolve('dist/host/cloud/hub/client.js')).href;
    const script = `const { HubClient } = await import(${JSON.stringify(url)});
      const c = new HubClient({ hubHostname: process.env.HUB, deviceId: 'edge-1', authorization: async () => process.env.SAS });
      try { console.log((await c.listModules()).length); } catch (e) { console.log(e.kind); }`;
    const { stdout } = await execFileAsync(process.execPath, ['--input-type=module', '-e', script], { env: { PATH: process.env.PATH, HUB: hub.hostname, SAS: deviceSas('edge-1', edgeKey), ...env }, encoding: 'utf8', timeout: 20_000 });
    return stdout.trim();
  };
  it('lists modules with the CA in NODE_EXTRA_CA_CERTS, and says tls without it', async () => {
    expect(await run({ NODE_EXTRA_CA_CERTS: hub.caFile })).toMatch(/^\d+$/);
    expect(await run({})).toBe('tls');
  });
});
