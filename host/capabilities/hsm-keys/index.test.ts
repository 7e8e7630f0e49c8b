/** The WIT host mapping, called directly as jco would (no component needed). */
import { createDecipheriv, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../config/schema.js';
import { openKeyService, type KeyService } from '../../../hsm/keys/index.js';
import { hsmKeysCapability, MAX_SIGN_INPUT_BYTES, prepareHsmKeys, type HsmKeysImports } from './index.js';

let stateDir: string;
let service: KeyService;
let calls = 0;
let alpha: HsmKeysImports;
let beta: HsmKeysImports;

/** The jco payload of a rejected call. */
async function payloadOf(p: Promise<unknown>): Promise<unknown> {
  const err = await p.then(() => { throw new Error('expected the call to fail'); }, (e: unknown) => e);
  expect(err).toBeInstanceOf(Error);
  return (err as { payload?: unknown }).payload;
}

beforeAll(async () => {
  stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'edgeward-hsmcap-'));
  const config = configSchema.parse({
    hostname: 'h', state_dir: stateDir, provisioning: { source: 'none' },
    connect: { management_uri: 'unix:///x/m.sock', workload_uri: 'unix:///x/w.sock' },
    listen: { management_uri: 'unix:///x/m.sock', workload_uri: 'unix:///x/w.sock' },
  });
  const real = await openKeyService({ config, stateDir, logger: pino({ level: 'silent' }) });
  // Count calls that reach the service, to prove oversize inputs are refused before it.
  service = new Proxy(real, { get: (t, k, r) => { const v = Reflect.get(t, k, r); return typeof v === 'function' ? (...a: unknown[]) => { calls++; return v.apply(t, a); } : v; } });
  alpha = prepareHsmKeys(service, 'alpha');
  beta = prepareHsmKeys(service, 'beta');
});

afterAll(async () => {
  await service?.close();
  await fs.rm(stateDir, { recursive: true, force: true });
});

describe('edgeward:hsm/keys host functions', () => {
  it('ECDSA and RSA through WIT names; signatures verify with node:crypto', async () => {
    const ec = await alpha.createKeyPair('ec', 'ec-p256');
    const pub = createPublicKey({ key: Buffer.from(await alpha.getPublicKey(ec)), format: 'der', type: 'spki' });
    const msg = new TextEncoder().encode('hello');
    const sig = await alpha.sign(ec, 'ecdsa-sha256', msg);
    expect(sig).toBeInstanceOf(Uint8Array);
    expect(cryptoVerify('sha256', msg, pub, sig)).toBe(true);
    expect(await alpha.verify(ec, 'ecdsa-sha256', msg, sig)).toBe(true);
    const rsa = await alpha.createKeyPair('rsa', 'rsa2048');
    const rpub = createPublicKey({ key: Buffer.from(await alpha.getPublicKey(rsa)), format: 'der', type: 'spki' });
    expect(cryptoVerify('sha256', msg, rpub, await alpha.sign(rsa, 'rsa-pkcs1-sha256', msg))).toBe(true);
    expect((await alpha.listKeys()).sort((a, b) => a.id.localeCompare(b.id))).toEqual([{ id: 'ec', kind: 'ec-p256' }, { id: 'rsa', kind: 'rsa2048' }]);
  });

  it('AES-256-GCM: encrypt returns { iv, data }; an imported key decrypts it independently', async () => {
    const secret = new Uint8Array(32).fill(7);
    const k = await alpha.importSecretKey('aes', 'aes256-gcm', secret);
    const ct = await alpha.encrypt(k, 'aes256-gcm', new TextEncoder().encode('secret'), new Uint8Array());
    const d = createDecipheriv('aes-256-gcm', secret, ct.iv);
    d.setAuthTag(ct.data.subarray(-16));
    expect(Buffer.concat([d.update(ct.data.subarray(0, -16)), d.final()]).toString()).toBe('secret');
    expect(new TextDecoder().decode(await alpha.decrypt(k, 'aes256-gcm', ct.iv, ct.data, new Uint8Array()))).toBe('secret');
    expect(await payloadOf(alpha.decrypt(k, 'aes256-gcm', ct.iv, ct.data, new Uint8Array([1])))).toEqual({ tag: 'decrypt-failed' });
  });

  it('W2: another module\'s handle is access-denied; forged handles are invalid-handle', async () => {
    const h = await alpha.createKeyPair('mine', 'ec-p256');
    expect(await payloadOf(beta.sign(h, 'ecdsa-sha256', new Uint8Array([1])))).toEqual({ tag: 'access-denied' });
    expect(await payloadOf(beta.getPublicKey(h))).toEqual({ tag: 'access-denied' });
    expect(await payloadOf(beta.deleteKey(h))).toEqual({ tag: 'access-denied' });
    expect(await payloadOf(beta.loadKey('mine'))).toEqual({ tag: 'not-found' }); // beta's own namespace has no "mine"
    for (const forged of ['42', h.slice(0, -1) + (h.endsWith('A') ? 'B' : 'A'), 'x'.repeat(10_000)]) {
      expect(await payloadOf(beta.sign(forged, 'ecdsa-sha256', new Uint8Array([1])))).toEqual({ tag: 'invalid-handle' });
    }
    expect(await payloadOf(beta.sign(42 as unknown as string, 'ecdsa-sha256', new Uint8Array([1])))).toEqual({ tag: 'invalid-handle' });
  });

  it('G4: oversize inputs are refused before the service sees them', async () => {
    const h = await alpha.createKeyPair('limits', 'ec-p256');
    const before = calls;
    const big = new Uint8Array(64 * 1024 * 1024);
    const t0 = performance.now();
    expect(await payloadOf(alpha.sign(h, 'ecdsa-sha256', big))).toEqual({ tag: 'limit-exceeded', val: `sign input over ${MAX_SIGN_INPUT_BYTES} bytes` });
    expect(performance.now() - t0).toBeLessThan(50);
    expect(await payloadOf(alpha.randomBytes(1 << 30))).toMatchObject({ tag: 'limit-exceeded' });
    expect(await payloadOf(alpha.importSecretKey('k', 'hmac-sha256', new Uint8Array(65)))).toMatchObject({ tag: 'limit-exceeded' });
    expect(await payloadOf(alpha.createKeyPair('x'.repeat(200), 'ec-p256'))).toMatchObject({ tag: 'limit-exceeded' });
    expect(calls).toBe(before);
  });

  it('unknown enum values and bad ids are invalid-argument', async () => {
    expect(await payloadOf(alpha.createKeyPair('k', 'rsa-2048' as never))).toMatchObject({ tag: 'invalid-argument' });
    expect(await payloadOf(alpha.createKeyPair('../k', 'ec-p256'))).toMatchObject({ tag: 'invalid-argument' });
    const h = await alpha.createSecretKey('mac', 'hmac-sha256');
    expect(await payloadOf(alpha.sign(h, 'ecdsa-sha256', new Uint8Array()))).toMatchObject({ tag: 'invalid-argument' });
    expect(await payloadOf(alpha.getPublicKey(h))).toMatchObject({ tag: 'unsupported' });
  });

  it('derive, random and delete', async () => {
    const base = await alpha.createSecretKey('base', 'hmac-sha256');
    const d = await alpha.deriveKey(base, new Uint8Array([1, 2]));
    const mac = await alpha.sign(d, 'hmac-sha256', new Uint8Array([3]));
    expect(await alpha.verify(d, 'hmac-sha256', new Uint8Array([3]), mac)).toBe(true);
    expect(await alpha.randomBytes(16)).toHaveLength(16);
    await alpha.deleteKey(base);
    expect(await payloadOf(alpha.sign(d, 'hmac-sha256', new Uint8Array([3])))).toEqual({ tag: 'not-found' });
  });

  it('the capability entry prepares functions bound to the instance\'s module', async () => {
    const cap = hsmKeysCapability(service);
    expect(cap.name).toBe('edgeward:hsm/keys');
    const fns = cap.prepare!({ module: 'gamma', generationId: 'g', digest: 'sha256:0', signer: 'unsigned', instanceId: 1, limits: { memory_mib: 16, call_timeout_ms: 1000, max_value_bytes: 65536 }, log: () => undefined, current: () => true })['edgeward:hsm/keys']!;
    const h = (await fns.createKeyPair!('k', 'ec-p256')) as string;
    expect(await payloadOf(alpha.sign(h, 'ecdsa-sha256', new Uint8Array()))).toEqual({ tag: 'access-denied' });
    expect(() => prepareHsmKeys(service, '../evil')).toThrow(/invalid module name/);
  });
});
