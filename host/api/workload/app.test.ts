import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHmac, createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Hono } from 'hono';
import { silentLogger } from '../../log.js';
import type { KeyService } from '../../../hsm/keys/index.js';
import { openIdentityServices, type IdentityServices } from '../../../test/helpers/identity-services.js';
import { workloadApp, type WorkloadDeps } from './app.js';
import { report } from '../../../test/helpers/reliability.js';

const DEVICE_KEY = randomBytes(32);
const V = 'api-version=2018-06-28';

describe('workload API (in memory)', () => {
  let dir: string;
  let keys: KeyService;
  let services: IdentityServices;
  let deps: WorkloadDeps;
  let sensor: Hono;
  let other: Hono;
  const generations = new Map([['sensor', 'g1'], ['other', 'g7']]);

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ew-wl-'));
    services = await openIdentityServices(path.join(dir, 'state'), { hostname: 'gw.local', deviceKey: DEVICE_KEY });
    ({ keys } = services);
    deps = { identity: services.identity, certs: services.certs, keys, logger: silentLogger(), generationOf: (m) => generations.get(m) };
    sensor = workloadApp(deps, 'sensor');
    other = workloadApp(deps, 'other');
  });
  afterAll(async () => {
    await services.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const post = (app: Hono, p: string, body: unknown) =>
    app.request(`${p}?${V}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });

  it('sign: HMAC-SHA256 with the module key derived from the device key, checked with node:crypto', async () => {
    const data = Buffer.from('hub.example%2Fdevices%2Fdev1%2Fmodules%2Fsensor\n1700000000');
    const res = await post(sensor, '/modules/sensor/genid/g1/sign', { keyId: 'primary', algo: 'HMACSHA256', data: data.toString('base64') });
    expect(res.status).toBe(200);
    const moduleKey = createHmac('sha256', DEVICE_KEY).update('sensor').digest();
    expect(await res.json()).toEqual({ digest: createHmac('sha256', moduleKey).update(data).digest('base64') });
  });

  it('another module, a module that does not exist, and a stale generation all get the same 403', async () => {
    const body = { data: Buffer.from('x').toString('base64') };
    const asOther = await post(sensor, '/modules/other/genid/g7/sign', body);
    const missing = await post(sensor, '/modules/ghost/genid/g1/sign', body);
    const stale = await post(sensor, '/modules/sensor/genid/g0/sign', body);
    for (const r of [asOther, missing, stale]) {
      expect(r.status).toBe(403);
      expect(await r.text()).toBe('{"message":"forbidden"}');
    }
    expect((await post(sensor, '/modules/other/certificate/identity', {})).status).toBe(403);
    // The shared socket (no bound module) signs nothing.
    expect((await post(workloadApp(deps, undefined), '/modules/sensor/genid/g1/sign', body)).status).toBe(403);
    // `$` prefixes and percent-encoding are decoded as IoT Edge does.
    expect((await post(sensor, '/modules/%24sensor/genid/g1/sign', body)).status).toBe(200);    report('A1', 'another module, a nonexistent module and a stale generation: 403 with the identical body {"message":"forbidden"}; the shared socket signs nothing');
  });

  it('malformed bodies get 400 with a message, never 500', async () => {
    const cases: [unknown, RegExp][] = [
      ['', /missing parameter: request body/],
      ['{not json', /not valid JSON/],
      ['[1,2]', /must be a JSON object/],
      [{}, /missing parameter: data/],
      [{ data: 'not base64!' }, /invalid parameter: data/],
      [{ data: 12 }, /invalid parameter: data/],
      [{ data: Buffer.alloc(20_000).toString('base64') }, /larger than/],
    ];
    for (const [body, msg] of cases) {
      const r = await post(sensor, '/modules/sensor/genid/g1/sign', body);
      expect(r.status, JSON.stringify(body).slice(0, 40)).toBe(400);
      expect(((await r.json()) as { message: string }).message).toMatch(msg);
    }
    const junk = ['null', '"s"', '{"commonName":5}', '{"commonName":"a b"}', '{"ciphertext":"AAAA","initializationVector":"AA=="}', '{"plaintext":[],"initializationVector":"x"}'];
    for (const route of ['sign', 'encrypt', 'decrypt', 'certificate/server']) {
      for (const j of junk) {
        const r = await post(sensor, `/modules/sensor/genid/g1/${route}`, j);
        expect(r.status, `${route} ${j}`).toBeGreaterThanOrEqual(400);
        expect(r.status, `${route} ${j}`).toBeLessThan(500);
      }
    }
    expect((await sensor.request('/trust-bundle')).status).toBe(400);
    expect((await sensor.request('/trust-bundle?api-version=2021-05-11')).status).toBe(400);
  });

  it('encrypt/decrypt round-trip, bound to the module, generation and IV', async () => {
    const iv = randomBytes(16).toString('base64');
    const plaintext = Buffer.from('secret telemetry').toString('base64');
    const enc = (await (await post(sensor, '/modules/sensor/genid/g1/encrypt', { plaintext, initializationVector: iv })).json()) as { ciphertext: string };
    const dec = await post(sensor, '/modules/sensor/genid/g1/decrypt', { ciphertext: enc.ciphertext, initializationVector: iv });
    expect(await dec.json()).toEqual({ plaintext });
    const wrongIv = await post(sensor, '/modules/sensor/genid/g1/decrypt', { ciphertext: enc.ciphertext, initializationVector: randomBytes(16).toString('base64') });
    expect(wrongIv.status).toBe(400);
    const byOther = await post(other, '/modules/other/genid/g7/decrypt', { ciphertext: enc.ciphertext, initializationVector: iv });
    expect(byOther.status).toBe(400);
  });

  it('server and identity certificates: 201, PEM key matching the leaf, verified by openssl against the trust bundle', async () => {
    const bundle = (await (await sensor.request(`/trust-bundle?${V}`)).json()) as { certificate: string };
    writeFileSync(path.join(dir, 'bundle.pem'), bundle.certificate);
    for (const [p, body, purpose] of [
      ['/modules/sensor/genid/g1/certificate/server', { commonName: 'gw.local', expiration: '2099-01-01T00:00:00Z' }, 'sslserver'],
      ['/modules/sensor/certificate/identity', {}, 'sslclient'],
    ] as const) {
      const r = await post(sensor, p, body);
      expect(r.status).toBe(201);
      const j = (await r.json()) as { privateKey: { type: string; bytes: string }; certificate: string; expiration: string };
      expect(j.privateKey.type).toBe('key');
      expect(j.expiration).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
      const leafPem = j.certificate.split(/(?<=-----END CERTIFICATE-----\n)/)[0]!;
      const leafFile = path.join(dir, `${purpose}.pem`);
      writeFileSync(leafFile, leafPem);
      expect(execFileSync('openssl', ['verify', '-purpose', purpose, '-CAfile', path.join(dir, 'bundle.pem'), leafFile], { encoding: 'utf8' })).toContain(': OK');
      const certKey = createPublicKey(leafPem).export({ type: 'spki', format: 'der' });
      expect(createPublicKey(createPrivateKey(j.privateKey.bytes)).export({ type: 'spki', format: 'der' }).equals(certKey)).toBe(true);
    }
    expect((await (await sensor.request(`/manifest-trust-bundle?${V}`)).json())).toEqual({ certificate: '' });
  });
});
