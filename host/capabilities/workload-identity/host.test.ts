import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHmac, createPublicKey, randomBytes, verify } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { KeyService } from '../../../hsm/keys/index.js';
import { openIdentityServices, type IdentityServices } from '../../../test/helpers/identity-services.js';
import type { InstanceContext } from '../../runtime/capabilities.js';
import { identityFunctions, ModuleCertCaches, type WorkloadIdentityDeps } from './host.js';

const DEVICE_KEY = randomBytes(32);
const DIGEST = `sha256:${'ab'.repeat(32)}`;

const SIGNER = `sha256:${'5e'.repeat(32)}`;

/** The runtime's registrations, as `InstanceContext.current()` compares an instance with them. */
const registrations = new Map([['sensor', { digest: DIGEST, generationId: 'g1', signer: SIGNER }], ['other', { digest: DIGEST, generationId: 'g1', signer: SIGNER }]]);

function instance(module: string, digest = DIGEST, generationId = 'g1', signer = SIGNER): InstanceContext {
  const current = () => {
    const r = registrations.get(module);
    return r !== undefined && r.digest === digest && r.generationId === generationId && r.signer === signer;
  };
  return { module, digest, generationId, signer, instanceId: 1, limits: { memory_mib: 16, call_timeout_ms: 1000, max_value_bytes: 65536 }, log: () => undefined, current };
}

async function payloadOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return (err as { payload?: unknown }).payload;
  }
  throw new Error('call succeeded');
}

describe('edgeward:workload/identity host functions', () => {
  let dir: string;
  let keys: KeyService;
  let services: IdentityServices;
  let deps: WorkloadIdentityDeps;
  let clock = new Date();

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ew-wid-'));
    services = await openIdentityServices(path.join(dir, 'state'), { deviceKey: DEVICE_KEY, now: () => clock });
    ({ keys } = services);
    deps = { identity: services.identity, certs: services.certs, keys, now: () => clock };
  });
  afterAll(async () => {
    await services.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sign and sas-token use the module key derived from the device key (checked with node:crypto)', async () => {
    const fns = identityFunctions(deps, instance('sensor'));
    const moduleKey = createHmac('sha256', DEVICE_KEY).update('sensor').digest();
    const data = Buffer.from('hello');
    expect(Buffer.from(await fns.sign(data))).toEqual(createHmac('sha256', moduleKey).update(data).digest());
    const token = await fns.sasToken('hub.example/devices/dev1/modules/sensor', 3600);
    const m = /^SharedAccessSignature sr=([^&]+)&sig=([^&]+)&se=(\d+)$/.exec(token)!;
    expect(m[1]).toBe('hub.example%2Fdevices%2Fdev1%2Fmodules%2Fsensor');
    expect(Number(m[3]) - Math.floor(clock.getTime() / 1000)).toBe(3600);
    expect(decodeURIComponent(m[2]!)).toBe(createHmac('sha256', moduleKey).update(`${m[1]}\n${m[3]}`).digest('base64'));
  });

  it('server certificate: key stays in the module namespace, chain verifies, cached until renewal', async () => {
    const fns = identityFunctions(deps, instance('sensor'));
    const cert = await fns.serverCertificate('sensor.local', ['10.1.2.3']);
    const leaf = cert.chain.split(/(?<=-----END CERTIFICATE-----\n)/)[0]!;
    writeFileSync(path.join(dir, 'leaf.pem'), leaf);
    writeFileSync(path.join(dir, 'bundle.pem'), await fns.trustBundle());
    expect(execFileSync('openssl', ['verify', '-purpose', 'sslserver', '-CAfile', path.join(dir, 'bundle.pem'), path.join(dir, 'leaf.pem')], { encoding: 'utf8' })).toContain(': OK');
    // The handle signs (through the key service, as the module) for the certificate's public key.
    const msg = Buffer.from('tls transcript');
    const sig = await keys.sign({ kind: 'module', module: 'sensor' }, cert.keyHandle, 'ecdsa-sha256', msg);
    expect(verify('sha256', msg, createPublicKey(leaf), sig)).toBe(true);
    // Another module cannot use it.
    await expect(keys.sign({ kind: 'module', module: 'other' }, cert.keyHandle, 'ecdsa-sha256', msg)).rejects.toMatchObject({ tag: expect.stringMatching(/invalid-handle|access-denied/) });
    // Cached until 80% of its life, then reissued.
    expect((await fns.serverCertificate('sensor.local', ['10.1.2.3'])).chain).toBe(cert.chain);
    const life = Number(cert.notAfter) * 1000 - clock.getTime();
    clock = new Date(clock.getTime() + life * 0.85);
    const renewed = await fns.serverCertificate('sensor.local', ['10.1.2.3']);
    expect(renewed.chain).not.toBe(cert.chain);
  });

  it('a restarted instance of the same generation gets its certificates back; a new generation gets new ones', async () => {
    const caches = new ModuleCertCaches();
    const first = identityFunctions(deps, instance('sensor'), caches.for(instance('sensor')));
    const cert = await first.serverCertificate('restart.local', []);
    const again = identityFunctions(deps, instance('sensor'), caches.for(instance('sensor')));
    expect((await again.serverCertificate('restart.local', [])).chain).toBe(cert.chain);
    // Served from the cache only after the measurement check: a stale generation is refused, not served.
    const stale = identityFunctions(deps, instance('sensor', DIGEST, 'g0'), caches.for(instance('sensor', DIGEST, 'g0')));
    expect(await payloadOf(stale.serverCertificate('restart.local', []))).toEqual({ tag: 'measurement-mismatch' });
    // A new generation starts from an empty cache.
    registrations.set('sensor', { digest: DIGEST, generationId: 'g2', signer: SIGNER });
    try {
      const next = identityFunctions(deps, instance('sensor', DIGEST, 'g2'), caches.for(instance('sensor', DIGEST, 'g2')));
      expect((await next.serverCertificate('restart.local', [])).chain).not.toBe(cert.chain);
    } finally {
      registrations.set('sensor', { digest: DIGEST, generationId: 'g1', signer: SIGNER });
    }
  });

  it('identity certificate for the calling module only', async () => {
    const fns = identityFunctions(deps, instance('other'));
    const cert = await fns.identityCertificate();
    writeFileSync(path.join(dir, 'id.pem'), cert.chain.split(/(?<=-----END CERTIFICATE-----\n)/)[0]!);
    expect(execFileSync('openssl', ['x509', '-in', path.join(dir, 'id.pem'), '-noout', '-subject', '-ext', 'subjectAltName'], { encoding: 'utf8' })).toMatch(/CN\s*=\s*other[\s\S]*modules\/other/);
  });

  it('a mismatched measurement or signer gets measurement-mismatch, never a fallback', async () => {
    const changedBytes = identityFunctions(deps, instance('sensor', `sha256:${'cd'.repeat(32)}`));
    const staleGen = identityFunctions(deps, instance('sensor', DIGEST, 'g0'));
    const unregistered = identityFunctions(deps, instance('ghost'));
    // Same bytes and generation, but verified as signed by someone other than the registration's signer.
    const otherSigner = identityFunctions(deps, instance('sensor', DIGEST, 'g1', 'unsigned'));
    for (const fns of [changedBytes, staleGen, unregistered, otherSigner]) {
      expect(await payloadOf(fns.sign(Buffer.from('x')))).toEqual({ tag: 'measurement-mismatch' });
      expect(await payloadOf(fns.serverCertificate('a.local', []))).toEqual({ tag: 'measurement-mismatch' });
      expect(await payloadOf(fns.trustBundle())).toEqual({ tag: 'measurement-mismatch' });
    }
  });

  it('bad arguments are typed errors, checked before any work', async () => {
    const fns = identityFunctions(deps, instance('sensor'));
    expect(await payloadOf(fns.sign(new Uint8Array(20_000)))).toMatchObject({ tag: 'limit-exceeded' });
    expect(await payloadOf(fns.serverCertificate('bad name', []))).toMatchObject({ tag: 'invalid-argument' });
    expect(await payloadOf(fns.serverCertificate('ok.local', Array.from({ length: 50 }, (_, i) => `h${i}.local`)))).toMatchObject({ tag: 'limit-exceeded' });
    expect(await payloadOf(fns.sasToken('aud', 0))).toMatchObject({ tag: 'invalid-argument' });
    expect(await payloadOf(fns.sasToken('aud', 10 ** 9))).toMatchObject({ tag: 'invalid-argument' });
  });
});
