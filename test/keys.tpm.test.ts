/**
 * `[keys] backend = "tpm"` through `openKeyService` on swtpm: where keys live, what is `unsupported`, and the
 * TPM's startup errors. The shared operations are in keys.conformance.test.ts; crash safety of key creation
 * (kill -9 rounds) is in test/reliability/hsm-crash.test.ts.
 */
import { createHash, createHmac, createPublicKey, randomBytes, verify as cryptoVerify } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StartupError } from '../host/errors.js';
import { silentLogger } from '../host/log.js';
import { DAEMON_CALLER, KeyError, keyServiceOverStore, openKeyService, tpmKeysDir, type KeyService } from '../hsm/keys/index.js';
import { TpmKeyBackend } from '../hsm/tpm/backend.js';
import { SRK_HANDLE } from '../hsm/tpm/identity.js';
import { tpmKeyStoreOver } from '../hsm/tpm/keystore.js';
import { Swtpm, tpm2 } from '../hsm/tpm/testing/swtpm.js';
import { Tap } from '../hsm/tpm/testing/tap.js';
import { Tpm } from '../hsm/tpm/tpm.js';
import { openTransport } from '../hsm/tpm/transport.js';
import { makeConfig, tempDir, tpmBackend, type Backend } from './helpers/keys.js';
import { closedPort } from './helpers/net.js';

const MSG = Buffer.from('tpm-backed message');

async function rejects(p: Promise<unknown>, tag: string): Promise<KeyError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(KeyError);
  expect((err as KeyError).tag).toBe(tag);
  return err as KeyError;
}

async function blobNames(stateDir: string): Promise<string[]> {
  return (await fs.readdir(tpmKeysDir(stateDir))).sort();
}

describe('[keys] backend = "tpm" on swtpm', () => {
  let backend: Backend;
  let keys: KeyService;
  beforeAll(async () => {
    backend = await tpmBackend();
    keys = await backend.open();
  });
  afterAll(async () => {
    await keys?.close();
    await backend?.cleanup();
  });

  it('keys are SRK-wrapped blobs, one 0600 file each in <state>/keys/tpm (0700), that load under the persisted SRK', async () => {
    expect(keys.backend).toBe('tpm');
    const h = await keys.createKeyPair(DAEMON_CALLER, { id: 'blob' }, 'ec-p256');
    const dir = tpmKeysDir(backend.stateDir);
    expect((await fs.stat(dir)).mode & 0o777).toBe(0o700);
    const names = await blobNames(backend.stateDir);
    expect(names).toEqual([`${createHash('sha256').update('edgeward/edgeward/blob').digest('hex')}.json`]);
    expect((await fs.stat(path.join(dir, names[0]!))).mode & 0o777).toBe(0o600);
    const blob = JSON.parse(await fs.readFile(path.join(dir, names[0]!), 'utf8')) as { label: string; kind: string; public: string; private: string };
    expect(blob).toMatchObject({ label: 'edgeward/edgeward/blob', kind: 'ec-p256' });
    const spki = await keys.getPublicKey(DAEMON_CALLER, h);

    // With the service closed, another client loads the blob under the SRK the store persisted.
    await keys.close();
    const tpm = await Tpm.open(backend.sim!.tcti);
    try {
      const loaded = await tpm.load(SRK_HANDLE, Buffer.from(blob.private, 'base64'), Buffer.from(blob.public, 'base64'));
      await tpm.flushContext(loaded.handle);
    } finally {
      await tpm.close();
    }
    keys = await backend.open();
    const sig = await keys.sign(DAEMON_CALLER, await keys.loadKey(DAEMON_CALLER, { id: 'blob' }), 'ecdsa-sha256', MSG);
    expect(cryptoVerify('sha256', MSG, createPublicKey({ key: spki, format: 'der', type: 'spki' }), sig)).toBe(true);
  });

  it('what the TPM cannot do is `unsupported`, and leaves no blob behind', async () => {
    const before = await blobNames(backend.stateDir);
    await rejects(keys.createKeyPair(DAEMON_CALLER, { id: 'p384' }, 'ec-p384'), 'unsupported');
    await rejects(keys.createKeyPair(DAEMON_CALLER, { id: 'r3072' }, 'rsa-3072'), 'unsupported');
    await rejects(keys.createSecretKey(DAEMON_CALLER, { id: 'aes' }, 'aes-256-gcm'), 'unsupported');
    await rejects(keys.importSecretKey(DAEMON_CALLER, { id: 'aes' }, 'aes-256-gcm', randomBytes(32)), 'unsupported');
    await rejects(keys.loadKeyByUri(DAEMON_CALLER, 'pkcs11:token=x;object=y'), 'unsupported');
    expect(await blobNames(backend.stateDir)).toEqual(before);
  });

  it('HMAC of any allowed length runs in the TPM: one TPM2_HMAC up to 1024 bytes, an HMAC sequence beyond', async () => {
    const secret = randomBytes(32);
    const h = await keys.importSecretKey(DAEMON_CALLER, { id: 'sas' }, 'hmac-sha256', secret);
    // Other keys loaded too, so the sequence object has to find a slot.
    const ec = await keys.createKeyPair(DAEMON_CALLER, { id: 'busy-1' }, 'ec-p256');
    const rsa = await keys.createKeyPair(DAEMON_CALLER, { id: 'busy-2' }, 'rsa-2048');
    for (const n of [0, 1, 1023, 1024, 1025, 2048, 5000, 1024 * 1024]) {
      await keys.sign(DAEMON_CALLER, ec, 'ecdsa-sha256', MSG);
      await keys.sign(DAEMON_CALLER, rsa, 'rsa-pkcs1-sha256', MSG);
      const m = randomBytes(n);
      expect(await keys.sign(DAEMON_CALLER, h, 'hmac-sha256', m)).toEqual(createHmac('sha256', secret).update(m).digest());
    }
    await rejects(keys.sign(DAEMON_CALLER, h, 'hmac-sha256', randomBytes(1024 * 1024 + 1)), 'limit-exceeded'); // the service's limit, as on every backend
  });

  it('an unreachable TPM is a StartupError (exit 2) naming the tcti, with hsm/tpm\'s hint', async () => {
    const port = await closedPort();
    const stateDir = await tempDir('edgeward-keys-tpm-down-');
    try {
      const tcti = `swtpm:host=127.0.0.1,port=${port}`;
      const err = await openKeyService({ config: makeConfig(stateDir, { backend: 'tpm' }, [], { tcti }), stateDir, logger: silentLogger() }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StartupError);
      expect((err as StartupError).exitCode).toBe(2);
      expect((err as Error).message).toContain(`[keys] backend = "tpm": cannot use the TPM at "${tcti}": TPM simulator not answering at 127.0.0.1:${port}`);
      expect((err as Error).message).toContain('hint: start it');
    } finally {
      await fs.rm(stateDir, { recursive: true, force: true });
    }
  });

  it('owner hierarchy auth set: a StartupError (exit 2) that says so; with [tpm.hierarchy_authorization] the SRK is created', async () => {
    const sim = await Swtpm.start();
    const stateDir = await tempDir('edgeward-keys-tpm-auth-');
    try {
      await tpm2(sim, 'tpm2_changeauth', ['-c', 'o', 'ownerpw']);
      const open = (tpm: Record<string, unknown>) => openKeyService({ config: makeConfig(stateDir, { backend: 'tpm' }, [], { tcti: sim.tcti, ...tpm }), stateDir, logger: silentLogger() });
      const err = await open({}).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StartupError);
      expect((err as StartupError).exitCode).toBe(2);
      expect((err as Error).message).toContain('the TPM owner hierarchy has an authorization value set');
      const keys = await open({ hierarchy_authorization: { owner: 'ownerpw' } });
      try {
        const h = await keys.createKeyPair(DAEMON_CALLER, { id: 'k' }, 'ec-p256');
        const spki = createPublicKey({ key: await keys.getPublicKey(DAEMON_CALLER, h), format: 'der', type: 'spki' });
        expect(cryptoVerify('sha256', MSG, spki, await keys.sign(DAEMON_CALLER, h, 'ecdsa-sha256', MSG))).toBe(true);
      } finally {
        await keys.close();
      }
    } finally {
      await sim.stop();
      await fs.rm(stateDir, { recursive: true, force: true });
    }
  });

  it('a missing TPM device is a StartupError (exit 2) with the firmware/simulator hint', async () => {
    const stateDir = await tempDir('edgeward-keys-tpm-nodev-');
    try {
      const tcti = 'device:/dev/edgeward-no-such-tpm';
      const err = await openKeyService({ config: makeConfig(stateDir, { backend: 'tpm' }, [], { tcti }), stateDir, logger: silentLogger() }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StartupError);
      expect((err as StartupError).exitCode).toBe(2);
      expect((err as Error).message).toContain(`cannot use the TPM at "${tcti}": no TPM device at /dev/edgeward-no-such-tpm (ENOENT)`);
    } finally {
      await fs.rm(stateDir, { recursive: true, force: true });
    }
  });
});

describe('[keys] backend = "tpm": secrets on the TPM bus (recording transport)', () => {
  let sim: Swtpm;
  let tap: Tap;
  let keys: KeyService;
  let stateDir: string;
  beforeAll(async () => {
    sim = await Swtpm.start();
    stateDir = await tempDir('edgeward-keys-tpm-tap-');
    tap = new Tap(await openTransport(sim.tcti));
    const tpm = new Tpm(tap);
    const store = tpmKeyStoreOver(tpm, await TpmKeyBackend.open(tpm, tpmKeysDir(stateDir)));
    keys = await keyServiceOverStore(store, { config: makeConfig(stateDir, { backend: 'tpm' }, [], { tcti: sim.tcti }), stateDir, logger: silentLogger() });
  });
  afterAll(async () => {
    await keys?.close();
    await sim?.stop();
    if (stateDir) await fs.rm(stateDir, { recursive: true, force: true });
  });

  it('derive: HMAC(base, data) by TPM2_HMAC on the base key; neither the base nor the derived key crosses the bus in clear', async () => {
    const secret = randomBytes(32);
    tap.wire = [];
    const base = await keys.importSecretKey(DAEMON_CALLER, { id: 'master' }, 'hmac-sha256', secret);
    const data = Buffer.from('module.alpha');
    const derivedKey = createHmac('sha256', secret).update(data).digest();
    const d = await keys.deriveKey(DAEMON_CALLER, base, data);
    for (let i = 0; i < 3; i++) {
      const msg = Buffer.from(`sas string ${i}`);
      expect(await keys.sign(DAEMON_CALLER, d, 'hmac-sha256', msg)).toEqual(createHmac('sha256', derivedKey).update(msg).digest());
    }
    expect(tap.wire.some((b) => b.includes(data))).toBe(true); // the recording does see the HMAC commands
    expect(tap.saw(secret)).toBe(false);
    expect(tap.saw(derivedKey)).toBe(false);
  });
});
