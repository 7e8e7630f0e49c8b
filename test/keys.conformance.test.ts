/**
 * The same suite on the file backend, SoftHSM2 and swtpm (reliability scenario W5): every operation, with
 * signatures and ciphertexts checked by node:crypto on the exported public key or the known secret,
 * never by the code that produced them. Where a backend cannot do an operation the test asserts the
 * `unsupported` tag it answers instead (and that nothing was left behind) — no silent skips.
 */
import {
  constants, createCipheriv, createDecipheriv, createHmac, createPublicKey, publicEncrypt, randomBytes, verify as cryptoVerify,
} from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAEMON_CALLER, KeyError, type Caller, type KeyService, type KeyType } from '../hsm/keys/index.js';
import { fileBackend, pkcs11Backend, tpmBackend, type Backend } from './helpers/keys.js';
import { report } from './helpers/reliability.js';

const MSG = Buffer.from('the quick brown fox jumps over the lazy dog');
const modA: Caller = { kind: 'module', module: 'alpha' };
const modB: Caller = { kind: 'module', module: 'beta' };

async function rejects(p: Promise<unknown>, tag: string): Promise<KeyError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(KeyError);
  expect((err as KeyError).tag).toBe(tag);
  return err as KeyError;
}

/**
 * What the TPM backend answers `unsupported` (hsm/tpm/keystore.ts): no P-384 or RSA-3072 keys on the TPM
 * profile we target, and no AES-GCM (TPM2_EncryptDecrypt has no GCM mode).
 */
const TPM_UNSUPPORTED_TYPES: readonly KeyType[] = ['ec-p384', 'rsa-3072', 'aes-256-gcm'];

/** `pkcs11-threads`: the same token, with sign/encrypt/decrypt on worker threads (`worker_threads = 2`). */
describe.each([['file'], ['pkcs11'], ['pkcs11-threads'], ['tpm']] as const)('key service on the %s backend', (name) => {
  let backend: Backend;
  let keys: KeyService;

  /** On a backend that cannot create `type`: assert the typed refusal, that no key was left, and return true. */
  async function refusedAsUnsupported(type: KeyType, create: () => Promise<unknown>, id: string): Promise<boolean> {
    if (name !== 'tpm' || !TPM_UNSUPPORTED_TYPES.includes(type)) return false;
    await rejects(create(), 'unsupported');
    await rejects(keys.loadKey(DAEMON_CALLER, { id }), 'not-found');
    expect((await keys.listKeys(DAEMON_CALLER)).map((k) => k.id)).not.toContain(id);
    return true;
  }

  beforeAll(async () => {
    backend =
      name === 'file' ? await fileBackend()
      : name === 'pkcs11' ? await pkcs11Backend()
      : name === 'pkcs11-threads' ? await pkcs11Backend(undefined, 'edgeward-threads', 2)
      : await tpmBackend();
    keys = await backend.open([{ name: 'alpha-reads-ca', module: 'alpha', keys: ['shared-*'] }]);
  });
  afterAll(async () => {
    await keys?.close();
    await backend?.cleanup();
  });

  it.each([
    ['ec-p256', 'ecdsa-sha256', 'sha256'],
    ['ec-p384', 'ecdsa-sha384', 'sha384'],
  ] as const)('%s: %s signature (DER) verifies with node:crypto on the exported SPKI', async (type, alg, hash) => {
    if (await refusedAsUnsupported(type, () => keys.createKeyPair(DAEMON_CALLER, { id: `ec-${type}` }, type), `ec-${type}`)) return;
    const h = await keys.createKeyPair(DAEMON_CALLER, { id: `ec-${type}` }, type);
    const spki = createPublicKey({ key: await keys.getPublicKey(DAEMON_CALLER, h), format: 'der', type: 'spki' });
    expect(spki.asymmetricKeyDetails?.namedCurve).toBe(type === 'ec-p256' ? 'prime256v1' : 'secp384r1');
    const sig = await keys.sign(DAEMON_CALLER, h, alg, MSG);
    expect(sig[0]).toBe(0x30); // DER SEQUENCE
    expect(cryptoVerify(hash, MSG, spki, sig)).toBe(true);
    expect(cryptoVerify(hash, Buffer.from('other'), spki, sig)).toBe(false);
    expect(await keys.verify(DAEMON_CALLER, h, alg, MSG, sig)).toBe(true);
    expect(await keys.verify(DAEMON_CALLER, h, alg, Buffer.from('other'), sig)).toBe(false);
  });

  it.each(['rsa-2048', 'rsa-3072'] as const)('%s: PSS and PKCS#1 v1.5 signatures verify; OAEP round-trips', async (type) => {
    if (await refusedAsUnsupported(type, () => keys.createKeyPair(DAEMON_CALLER, { id: `rsa-${type}` }, type), `rsa-${type}`)) return;
    const h = await keys.createKeyPair(DAEMON_CALLER, { id: `rsa-${type}` }, type);
    const pub = createPublicKey({ key: await keys.getPublicKey(DAEMON_CALLER, h), format: 'der', type: 'spki' });
    expect(pub.asymmetricKeyDetails?.modulusLength).toBe(type === 'rsa-2048' ? 2048 : 3072);
    const pss = await keys.sign(DAEMON_CALLER, h, 'rsa-pss-sha256', MSG);
    expect(cryptoVerify('sha256', MSG, { key: pub, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, pss)).toBe(true);
    const v15 = await keys.sign(DAEMON_CALLER, h, 'rsa-pkcs1-sha256', MSG);
    expect(cryptoVerify('sha256', MSG, pub, v15)).toBe(true);
    expect(cryptoVerify('sha256', MSG, { key: pub, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, v15)).toBe(false);
    // Encrypt independently with node:crypto, decrypt through the service.
    for (const [alg, hash] of [['rsa-oaep-sha1', 'sha1'], ['rsa-oaep-sha256', 'sha256']] as const) {
      const ct = publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, MSG);
      if (name.startsWith('pkcs11') && alg === 'rsa-oaep-sha256') {
        // SoftHSM2 2.6 implements OAEP with SHA-1 only; the service says so instead of failing vaguely.
        await rejects(keys.decrypt(DAEMON_CALLER, h, alg, Buffer.alloc(0), ct), 'unsupported');
        continue;
      }
      expect(await keys.decrypt(DAEMON_CALLER, h, alg, Buffer.alloc(0), ct)).toEqual(MSG);
      const enc = await keys.encrypt(DAEMON_CALLER, h, alg, MSG);
      expect(await keys.decrypt(DAEMON_CALLER, h, alg, enc.iv, enc.ciphertext)).toEqual(MSG);
      const bad = Buffer.from(ct);
      bad[5]! ^= 1;
      await rejects(keys.decrypt(DAEMON_CALLER, h, alg, Buffer.alloc(0), bad), 'decrypt-failed');
    }
  });

  it('create-or-load returns a handle to the same key; a different type is refused', async () => {
    const h1 = await keys.createKeyPair(DAEMON_CALLER, { id: 'same' }, 'ec-p256');
    const h2 = await keys.createKeyPair(DAEMON_CALLER, { id: 'same' }, 'ec-p256');
    expect(h1).not.toBe(h2); // fresh nonce per handle
    expect(await keys.getPublicKey(DAEMON_CALLER, h2)).toEqual(await keys.getPublicKey(DAEMON_CALLER, h1));
    await rejects(keys.createKeyPair(DAEMON_CALLER, { id: 'same' }, 'rsa-2048'), 'already-exists');
    const loaded = await keys.loadKey(DAEMON_CALLER, { id: 'same' });
    expect(await keys.getPublicKey(DAEMON_CALLER, loaded)).toEqual(await keys.getPublicKey(DAEMON_CALLER, h1));
    await rejects(keys.loadKey(DAEMON_CALLER, { id: 'never-made' }), 'not-found');
  });

  it('HMAC: imported key signs exactly as node:crypto HMAC; derived keys match HMAC(HMAC(base, data), msg)', async () => {
    const secret = randomBytes(32);
    const h = await keys.importSecretKey(DAEMON_CALLER, { id: 'master' }, 'hmac-sha256', secret);
    expect(await keys.sign(DAEMON_CALLER, h, 'hmac-sha256', MSG)).toEqual(createHmac('sha256', secret).update(MSG).digest());
    const data = Buffer.from('module-x');
    const d = await keys.deriveKey(DAEMON_CALLER, h, data);
    const derivedKey = createHmac('sha256', secret).update(data).digest();
    const mac = await keys.sign(DAEMON_CALLER, d, 'hmac-sha256', MSG);
    expect(mac).toEqual(createHmac('sha256', derivedKey).update(MSG).digest());
    expect(await keys.verify(DAEMON_CALLER, d, 'hmac-sha256', MSG, mac)).toBe(true);
    expect(await keys.verify(DAEMON_CALLER, d, 'hmac-sha256', MSG, Buffer.alloc(32))).toBe(false);
    await rejects(keys.deriveKey(DAEMON_CALLER, d, data), 'unsupported'); // no nesting
    await rejects(keys.importSecretKey(DAEMON_CALLER, { id: 'master' }, 'hmac-sha256', secret), 'already-exists');
  });

  it('HMAC: a generated key signs and verifies; the key bytes are never returned', async () => {
    const h = await keys.createSecretKey(DAEMON_CALLER, { id: 'gen-hmac' }, 'hmac-sha256');
    const mac = await keys.sign(DAEMON_CALLER, h, 'hmac-sha256', MSG);
    expect(mac).toHaveLength(32);
    expect(await keys.verify(DAEMON_CALLER, h, 'hmac-sha256', MSG, mac)).toBe(true);
    await rejects(keys.getPublicKey(DAEMON_CALLER, h), 'unsupported');
  });

  it('AES-256-GCM: imported key interoperates with node:crypto both ways; a flipped bit fails', async () => {
    const secret = randomBytes(32);
    if (await refusedAsUnsupported('aes-256-gcm', () => keys.importSecretKey(DAEMON_CALLER, { id: 'aes-imported' }, 'aes-256-gcm', secret), 'aes-imported')) return;
    const h = await keys.importSecretKey(DAEMON_CALLER, { id: 'aes-imported' }, 'aes-256-gcm', secret);
    const aad = Buffer.from('header');
    const enc = await keys.encrypt(DAEMON_CALLER, h, 'aes-256-gcm', MSG, aad);
    expect(enc.iv).toHaveLength(12);
    const d = createDecipheriv('aes-256-gcm', secret, enc.iv);
    d.setAAD(aad);
    d.setAuthTag(enc.ciphertext.subarray(-16));
    expect(Buffer.concat([d.update(enc.ciphertext.subarray(0, -16)), d.final()])).toEqual(MSG);

    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', secret, iv);
    c.setAAD(aad);
    const ct = Buffer.concat([c.update(MSG), c.final(), c.getAuthTag()]);
    expect(await keys.decrypt(DAEMON_CALLER, h, 'aes-256-gcm', iv, ct, aad)).toEqual(MSG);
    const bad = Buffer.from(ct);
    bad[0]! ^= 1;
    await rejects(keys.decrypt(DAEMON_CALLER, h, 'aes-256-gcm', iv, bad, aad), 'decrypt-failed');
    await rejects(keys.decrypt(DAEMON_CALLER, h, 'aes-256-gcm', iv, ct, Buffer.from('other aad')), 'decrypt-failed');
  });

  it('AES-256-GCM: a generated key round-trips and uses a fresh IV each time', async () => {
    if (await refusedAsUnsupported('aes-256-gcm', () => keys.createSecretKey(DAEMON_CALLER, { id: 'aes-gen' }, 'aes-256-gcm'), 'aes-gen')) return;
    const h = await keys.createSecretKey(DAEMON_CALLER, { id: 'aes-gen' }, 'aes-256-gcm');
    const a = await keys.encrypt(DAEMON_CALLER, h, 'aes-256-gcm', MSG);
    const b = await keys.encrypt(DAEMON_CALLER, h, 'aes-256-gcm', MSG);
    expect(a.iv.equals(b.iv)).toBe(false);
    expect(await keys.decrypt(DAEMON_CALLER, h, 'aes-256-gcm', a.iv, a.ciphertext)).toEqual(MSG);
  });

  it('an algorithm that does not fit the key is refused', async () => {
    const h = await keys.createKeyPair(DAEMON_CALLER, { id: 'fit' }, 'ec-p256');
    await rejects(keys.sign(DAEMON_CALLER, h, 'rsa-pss-sha256', MSG), 'invalid-argument');
    await rejects(keys.encrypt(DAEMON_CALLER, h, 'aes-256-gcm', MSG), 'invalid-argument');
  });

  it('random bytes: right length, not constant, bounded', async () => {
    const a = await keys.randomBytes(DAEMON_CALLER, 32);
    const b = await keys.randomBytes(DAEMON_CALLER, 32);
    expect(a).toHaveLength(32);
    expect(a.equals(b)).toBe(false);
    await rejects(keys.randomBytes(DAEMON_CALLER, 1024 * 1024), 'limit-exceeded');
  });

  it('delete removes the key; its handles then answer not-found; list reflects it', async () => {
    const h = await keys.createKeyPair(DAEMON_CALLER, { id: 'doomed' }, 'ec-p256');
    expect((await keys.listKeys(DAEMON_CALLER)).map((k) => k.id)).toContain('doomed');
    await keys.deleteKey(DAEMON_CALLER, h);
    await rejects(keys.sign(DAEMON_CALLER, h, 'ecdsa-sha256', MSG), 'not-found');
    expect((await keys.listKeys(DAEMON_CALLER)).map((k) => k.id)).not.toContain('doomed');
    await keys.deleteKey(DAEMON_CALLER, h); // idempotent
  });

  it('namespaces: a module cannot use another module\'s handle; same id coexists (Parsec multitenancy H10)', async () => {
    const ha = await keys.createKeyPair(modA, { id: 'k' }, 'ec-p256');
    const hb = await keys.createKeyPair(modB, { id: 'k' }, 'ec-p256');
    expect(await keys.getPublicKey(modA, ha)).not.toEqual(await keys.getPublicKey(modB, hb));
    await rejects(keys.sign(modB, ha, 'ecdsa-sha256', MSG), 'access-denied');
    await rejects(keys.deleteKey(modB, ha), 'access-denied');
    await rejects(keys.getPublicKey(modB, ha), 'access-denied');
    await rejects(keys.listKeys(modB, 'module.alpha'), 'access-denied');
    await rejects(keys.loadKey(modB, { id: 'k', namespace: 'module.alpha' }), 'access-denied');
    expect((await keys.listKeys(modB)).map((k) => k.id)).toEqual(['k']);
    // A module cannot reach the daemon's keys unless a principal grants the id.
    const daemonKey = await keys.createKeyPair(DAEMON_CALLER, { id: 'device-id' }, 'ec-p256');
    await rejects(keys.sign(modA, daemonKey, 'ecdsa-sha256', MSG), 'access-denied');
    await rejects(keys.loadKey(modA, { id: 'device-id', namespace: 'edgeward' }), 'access-denied');
    const shared = await keys.createKeyPair(DAEMON_CALLER, { id: 'shared-ca' }, 'ec-p256');
    expect(await keys.sign(modA, shared, 'ecdsa-sha256', MSG)).toBeInstanceOf(Buffer);
    await rejects(keys.sign(modB, shared, 'ecdsa-sha256', MSG), 'access-denied');
    await rejects(keys.deleteKey(modA, shared), 'access-denied');
    report('H10', `${name} backend: A and B each see only their own "k", both coexist; 5 cross-namespace calls refused access-denied`);
  });

  it('a tampered or forged handle gets the one answer "invalid handle"', async () => {
    const h = await keys.createKeyPair(modA, { id: 'tamper' }, 'ec-p256');
    const [pre, body, sig] = h.split('.') as [string, string, string];
    const payload = JSON.parse(Buffer.from(body, 'base64url').toString()) as Record<string, unknown>;
    const retargeted = Buffer.from(JSON.stringify({ ...payload, ns: 'module.beta' })).toString('base64url');
    const flipped = sig.slice(0, -2) + (sig.at(-2) === 'A' ? 'B' : 'A') + sig.at(-1);
    for (const bad of [`${pre}.${retargeted}.${sig}`, `${pre}.${body}.${flipped}`, 'garbage', '', `${pre}.${body}`, h + 'x']) {
      const err = await rejects(keys.sign(modB, bad, 'ecdsa-sha256', MSG), 'invalid-handle');
      expect(err.message).toBe('invalid handle');
      await rejects(keys.sign(modA, bad, 'ecdsa-sha256', MSG), 'invalid-handle');
    }
  });

  it('limits: oversized sign input and bad key ids are typed errors', async () => {
    const h = await keys.createKeyPair(DAEMON_CALLER, { id: 'limits' }, 'ec-p256');
    await rejects(keys.sign(DAEMON_CALLER, h, 'ecdsa-sha256', Buffer.alloc(1024 * 1024 + 1)), 'limit-exceeded');
    await rejects(keys.createKeyPair(DAEMON_CALLER, { id: '../etc/passwd' }, 'ec-p256'), 'invalid-argument');
    await rejects(keys.createKeyPair(DAEMON_CALLER, { id: 'x'.repeat(129) }, 'ec-p256'), 'invalid-argument');
  });

  it('keys and handles survive a close and reopen (H5)', async () => {
    const h = await keys.createKeyPair(DAEMON_CALLER, { id: 'persist' }, 'ec-p256');
    const pub = await keys.getPublicKey(DAEMON_CALLER, h);
    await keys.close();
    keys = await backend.open([{ name: 'alpha-reads-ca', module: 'alpha', keys: ['shared-*'] }]);
    expect(await keys.getPublicKey(DAEMON_CALLER, h)).toEqual(pub);
    const sig = await keys.sign(DAEMON_CALLER, h, 'ecdsa-sha256', MSG);
    expect(cryptoVerify('sha256', MSG, createPublicKey({ key: pub, format: 'der', type: 'spki' }), sig)).toBe(true);
    report('H5', `${name} backend: keys before = after a close and reopen; the old handle still signs`);
  });
});
