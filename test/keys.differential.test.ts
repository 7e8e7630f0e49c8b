/**
 * Reliability scenario W5 as a differential (Parsec cross.rs): one scripted run of key service operations on
 * the file backend, SoftHSM2 and swtpm, each step reduced to its result tag (`ok` or the KeyError tag).
 * Mismatches between backends = 0, except the differences a backend declares — each of which must be exactly
 * `unsupported`. Deterministic outputs (HMAC with the same imported key, derived keys) are byte-equal on all
 * three and equal to node:crypto; every signature verifies with node:crypto.
 */
import { constants, createHmac, createPublicKey, publicEncrypt, verify as cryptoVerify } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAEMON_CALLER, KeyError, type KeyService } from '../hsm/keys/index.js';
import { fileBackend, pkcs11Backend, tpmBackend, type Backend } from './helpers/keys.js';
import { report } from './helpers/reliability.js';

const SECRET = Buffer.alloc(32, 0x5a);
const LONG = Buffer.alloc(2000, 0x61); // longer than one TPM2_HMAC buffer
const MSG = Buffer.from('differential message');
const beta = { kind: 'module', module: 'beta' } as const;

type Outcome = { tag: string; out?: Buffer };
type Step = readonly [name: string, expected: string, run: (k: KeyService, h: Map<string, string>) => Promise<unknown>];

const handle = (h: Map<string, string>, id: string): string => h.get(id) ?? 'missing-handle';
const keep = (h: Map<string, string>, id: string) => (x: string): string => (h.set(id, x), x);

/** The script; `expected` is the tag on the file backend, the reference. */
const STEPS: readonly Step[] = [
  ['create ec-p256', 'ok', (k, h) => k.createKeyPair(DAEMON_CALLER, { id: 'e' }, 'ec-p256').then(keep(h, 'e'))],
  ['create ec-p384', 'ok', (k) => k.createKeyPair(DAEMON_CALLER, { id: 'e384' }, 'ec-p384')],
  ['create rsa-2048', 'ok', (k, h) => k.createKeyPair(DAEMON_CALLER, { id: 'r' }, 'rsa-2048').then(keep(h, 'r'))],
  ['create rsa-3072', 'ok', (k) => k.createKeyPair(DAEMON_CALLER, { id: 'r3072' }, 'rsa-3072')],
  ['create hmac-sha256', 'ok', (k, h) => k.createSecretKey(DAEMON_CALLER, { id: 'h' }, 'hmac-sha256').then(keep(h, 'h'))],
  ['create aes-256-gcm', 'ok', (k) => k.createSecretKey(DAEMON_CALLER, { id: 'a' }, 'aes-256-gcm')],
  ['import hmac-sha256', 'ok', (k, h) => k.importSecretKey(DAEMON_CALLER, { id: 'm' }, 'hmac-sha256', SECRET).then(keep(h, 'm'))],
  ['import aes-256-gcm', 'ok', (k) => k.importSecretKey(DAEMON_CALLER, { id: 'ai' }, 'aes-256-gcm', SECRET)],
  ['import over an existing key', 'already-exists', (k) => k.importSecretKey(DAEMON_CALLER, { id: 'm' }, 'hmac-sha256', SECRET)],
  ['create an existing id as another type', 'already-exists', (k) => k.createKeyPair(DAEMON_CALLER, { id: 'e' }, 'rsa-2048')],
  ['load a missing key', 'not-found', (k) => k.loadKey(DAEMON_CALLER, { id: 'never' })],
  ['create with a bad id', 'invalid-argument', (k) => k.createKeyPair(DAEMON_CALLER, { id: '../x' }, 'ec-p256')],
  ['sign ecdsa-sha256', 'ok', (k, h) => k.sign(DAEMON_CALLER, handle(h, 'e'), 'ecdsa-sha256', MSG)],
  ['sign an EC key with rsa-pss', 'invalid-argument', (k, h) => k.sign(DAEMON_CALLER, handle(h, 'e'), 'rsa-pss-sha256', MSG)],
  ['sign rsa-pss-sha256', 'ok', (k, h) => k.sign(DAEMON_CALLER, handle(h, 'r'), 'rsa-pss-sha256', MSG)],
  ['sign rsa-pkcs1-sha256', 'ok', (k, h) => k.sign(DAEMON_CALLER, handle(h, 'r'), 'rsa-pkcs1-sha256', MSG)],
  ['hmac with the imported key', 'ok', (k, h) => k.sign(DAEMON_CALLER, handle(h, 'm'), 'hmac-sha256', LONG)],
  ['derive from the imported key', 'ok', (k, h) => k.deriveKey(DAEMON_CALLER, handle(h, 'm'), Buffer.from('module.alpha')).then(keep(h, 'd'))],
  ['hmac with the derived key', 'ok', (k, h) => k.sign(DAEMON_CALLER, handle(h, 'd'), 'hmac-sha256', MSG)],
  ['derive from a derived key', 'unsupported', (k, h) => k.deriveKey(DAEMON_CALLER, handle(h, 'd'), Buffer.from('x'))],
  ['derive from an EC key', 'unsupported', (k, h) => k.deriveKey(DAEMON_CALLER, handle(h, 'e'), Buffer.from('x'))],
  ['public key of an HMAC key', 'unsupported', (k, h) => k.getPublicKey(DAEMON_CALLER, handle(h, 'h'))],
  ['decrypt a corrupted rsa-oaep-sha1 ciphertext', 'decrypt-failed', (k, h) => oaep(k, handle(h, 'r'), 'sha1', true)],
  ['decrypt rsa-oaep-sha1', 'ok', (k, h) => oaep(k, handle(h, 'r'), 'sha1', false)],
  ['decrypt rsa-oaep-sha256', 'ok', (k, h) => oaep(k, handle(h, 'r'), 'sha256', false)],
  ['encrypt aes-256-gcm with an EC key', 'invalid-argument', (k, h) => k.encrypt(DAEMON_CALLER, handle(h, 'e'), 'aes-256-gcm', MSG)],
  ['random 32 bytes', 'ok', (k) => k.randomBytes(DAEMON_CALLER, 32)],
  ['random over the limit', 'limit-exceeded', (k) => k.randomBytes(DAEMON_CALLER, 1024 * 1024)],
  ['sign with a garbage handle', 'invalid-handle', (k) => k.sign(DAEMON_CALLER, 'garbage', 'ecdsa-sha256', MSG)],
  ['a module signs with a daemon key', 'access-denied', (k, h) => k.sign(beta, handle(h, 'e'), 'ecdsa-sha256', MSG)],
  ['delete a key', 'ok', (k, h) => k.deleteKey(DAEMON_CALLER, handle(h, 'h'))],
  ['use a deleted key', 'not-found', (k, h) => k.sign(DAEMON_CALLER, handle(h, 'h'), 'hmac-sha256', MSG)],
];

/** What each backend declares it cannot do; each must answer exactly `unsupported`. */
const DECLARED: Record<Backend['name'], readonly string[]> = {
  file: [],
  pkcs11: ['decrypt rsa-oaep-sha256'], // SoftHSM2 2.6: OAEP with SHA-1 only
  'pkcs11-threads': ['decrypt rsa-oaep-sha256'],
  tpm: ['create ec-p384', 'create rsa-3072', 'create aes-256-gcm', 'import aes-256-gcm'],
};

/** Encrypt with node:crypto on the exported public key, decrypt through the service (optionally corrupted). */
async function oaep(k: KeyService, h: string, hash: 'sha1' | 'sha256', corrupt: boolean): Promise<Buffer> {
  const pub = createPublicKey({ key: await k.getPublicKey(DAEMON_CALLER, h), format: 'der', type: 'spki' });
  const ct = publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, MSG);
  if (corrupt) ct[7]! ^= 1;
  const pt = await k.decrypt(DAEMON_CALLER, h, hash === 'sha1' ? 'rsa-oaep-sha1' : 'rsa-oaep-sha256', Buffer.alloc(0), ct);
  if (!pt.equals(MSG)) throw new Error('OAEP round trip gave other bytes');
  return pt;
}

async function runScript(keys: KeyService): Promise<{ outcomes: Map<string, Outcome>; spki: Map<string, Buffer> }> {
  const handles = new Map<string, string>();
  const outcomes = new Map<string, Outcome>();
  for (const [name, , run] of STEPS) {
    try {
      const out = await run(keys, handles);
      outcomes.set(name, { tag: 'ok', out: Buffer.isBuffer(out) ? out : undefined });
    } catch (err) {
      outcomes.set(name, { tag: err instanceof KeyError ? err.tag : `not a KeyError: ${String(err)}` });
    }
  }
  const spki = new Map<string, Buffer>();
  for (const id of ['e', 'r']) spki.set(id, await keys.getPublicKey(DAEMON_CALLER, handles.get(id)!));
  return { outcomes, spki };
}

describe('W5 differential: file, SoftHSM2, swtpm', () => {
  const backends: Backend[] = [];
  const runs = new Map<Backend['name'], Awaited<ReturnType<typeof runScript>>>();

  beforeAll(async () => {
    backends.push(await fileBackend(), await pkcs11Backend(undefined, 'edgeward-w5'), await tpmBackend());
    for (const b of backends) {
      const keys = await b.open();
      try {
        runs.set(b.name, await runScript(keys));
      } finally {
        await keys.close();
      }
    }
  }, 120_000);
  afterAll(async () => {
    for (const b of backends) await b.cleanup();
  });

  it('the reference (file) gives the expected tag at every step', () => {
    const file = runs.get('file')!;
    expect(STEPS.map(([name]) => [name, file.outcomes.get(name)!.tag])).toEqual(STEPS.map(([name, expected]) => [name, expected]));
  });

  it.each(['pkcs11', 'tpm'] as const)('%s: same tags as the reference; its declared differences are exactly `unsupported`', (name) => {
    const tags = runs.get(name)!.outcomes;
    const want = STEPS.map(([step, expected]) => [step, DECLARED[name].includes(step) ? 'unsupported' : expected]);
    expect(STEPS.map(([step]) => [step, tags.get(step)!.tag])).toEqual(want);
    report('W5', `${STEPS.length} steps on file, SoftHSM2 and swtpm: 0 tag mismatches beyond the declared unsupported ones (last compared: ${name})`);
  });

  it('HMAC with the same imported key and the derived key are byte-equal on every backend and to node:crypto', () => {
    const mac = createHmac('sha256', SECRET).update(LONG).digest();
    const derived = createHmac('sha256', createHmac('sha256', SECRET).update('module.alpha').digest()).update(MSG).digest();
    for (const [name, run] of runs) {
      expect([name, run.outcomes.get('hmac with the imported key')!.out]).toEqual([name, mac]);
      expect([name, run.outcomes.get('hmac with the derived key')!.out]).toEqual([name, derived]);
    }
  });

  it('every backend\'s signatures verify with node:crypto on its exported key, and not on another backend\'s', () => {
    for (const [name, run] of runs) {
      const ec = createPublicKey({ key: run.spki.get('e')!, format: 'der', type: 'spki' });
      const rsa = createPublicKey({ key: run.spki.get('r')!, format: 'der', type: 'spki' });
      expect([name, cryptoVerify('sha256', MSG, ec, run.outcomes.get('sign ecdsa-sha256')!.out!)]).toEqual([name, true]);
      expect([name, cryptoVerify('sha256', MSG, rsa, run.outcomes.get('sign rsa-pkcs1-sha256')!.out!)]).toEqual([name, true]);
      const pss = { key: rsa, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
      expect([name, cryptoVerify('sha256', MSG, pss, run.outcomes.get('sign rsa-pss-sha256')!.out!)]).toEqual([name, true]);
      for (const [other, o] of runs) {
        if (other === name) continue;
        expect([name, other, cryptoVerify('sha256', MSG, ec, o.outcomes.get('sign ecdsa-sha256')!.out!)]).toEqual([name, other, false]);
      }
    }
  });
});
