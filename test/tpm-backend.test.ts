/** The TPM key backend on swtpm: wrapped blobs in a state dir, results checked with node:crypto. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { constants, createHash, createHmac, createPublicKey, publicEncrypt, randomBytes, verify } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Swtpm } from '../hsm/tpm/testing/swtpm.js';
import { Tpm } from '../hsm/tpm/tpm.js';
import { TpmKeyBackend, TpmKeyError } from '../hsm/tpm/backend.js';
import { ALG } from '../hsm/tpm/constants.js';
import { TpmError } from '../hsm/tpm/rc.js';
import { openTransport } from '../hsm/tpm/transport.js';
import { Tap } from '../hsm/tpm/testing/tap.js';

const digest = (m: string | Buffer): Buffer => createHash('sha256').update(m).digest();

describe('TpmKeyBackend (swtpm)', () => {
  let sim: Swtpm;
  let tpm: Tpm;
  let backend: TpmKeyBackend;
  let dir: string;
  let tap: Tap;
  beforeAll(async () => {
    sim = await Swtpm.start();
    dir = path.join(sim.stateDir, 'keys');
    tap = new Tap(await openTransport(sim.tcti));
    tpm = new Tpm(tap);
    backend = await TpmKeyBackend.open(tpm, dir);
  });
  afterAll(async () => {
    await backend?.close();
    await tpm?.close();
    await sim?.stop();
  });

  it('creates EC, RSA and HMAC keys whose results node:crypto verifies, cycling more keys than loaded slots', async () => {
    await backend.createKey('edgeward/m1/ec', 'ec-p256');
    await backend.createKey('edgeward/m1/rsa', 'rsa-2048');
    tap.wire = [];
    await backend.importHmacKey('edgeward/m1/sas', Buffer.alloc(32, 7));
    expect(tap.saw(Buffer.alloc(32, 7))).toBe(false); // went in through an SRK-salted, encrypted session
    const ecPub = createPublicKey({ key: await backend.publicKeyDer('edgeward/m1/ec'), format: 'der', type: 'spki' });
    const rsaPub = createPublicKey({ key: await backend.publicKeyDer('edgeward/m1/rsa'), format: 'der', type: 'spki' });
    for (let round = 0; round < 2; round++) {
      const msg = `round ${round}`;
      expect(verify('sha256', Buffer.from(msg), ecPub, await backend.sign('edgeward/m1/ec', digest(msg)))).toBe(true);
      expect(verify('sha256', Buffer.from(msg), rsaPub, await backend.sign('edgeward/m1/rsa', digest(msg)))).toBe(true);
      const pss = await backend.sign('edgeward/m1/rsa', digest(msg), 'rsapss-sha256');
      expect(verify('sha256', Buffer.from(msg), { key: rsaPub, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, pss)).toBe(true);
      expect((await backend.hmac('edgeward/m1/sas', Buffer.from(msg))).equals(createHmac('sha256', Buffer.alloc(32, 7)).update(msg).digest())).toBe(true);
    }
    const secret = randomBytes(32);
    const ct = publicEncrypt({ key: rsaPub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, secret);
    expect((await backend.decrypt('edgeward/m1/rsa', ct)).equals(secret)).toBe(true);
    await expect(backend.hmac('edgeward/m1/ec', Buffer.from('x'))).rejects.toMatchObject({ kind: 'wrong-type' });
    await expect(backend.createKey('edgeward/m1/ec', 'ec-p256')).rejects.toMatchObject({ kind: 'already-exists' });
    await expect(backend.sign('edgeward/m1/nope', digest('x'))).rejects.toBeInstanceOf(TpmKeyError);
  });

  it('stores only wrapped blobs, 0600, and the keys work after a TPM power cycle and a new backend', async () => {
    const names = await fs.readdir(dir);
    expect(names.filter((n) => n.endsWith('.json'))).toHaveLength(3);
    for (const n of names) expect((await fs.stat(path.join(dir, n))).mode & 0o777).toBe(0o600);
    const before = await backend.hmac('edgeward/m1/sas', Buffer.from('y'));
    await backend.close();
    await tpm.close();
    await sim.restart();
    backend = await TpmKeyBackend.open(tpm, dir);
    expect((await backend.hmac('edgeward/m1/sas', Buffer.from('y'))).equals(before)).toBe(true);
    expect((await backend.list('edgeward/m1/')).map((k) => k.label)).toEqual(['edgeward/m1/ec', 'edgeward/m1/rsa', 'edgeward/m1/sas']);
    expect(await backend.delete('edgeward/m1/ec')).toBe(true);
    expect(await backend.describe('edgeward/m1/ec')).toBeUndefined();
  });

  it('seals to PCRs: released while they hold, refused after an extend', async () => {
    const sel = [{ hashAlg: ALG.SHA256, pcrs: [23] }];
    const content = randomBytes(32);
    tap.wire = [];
    await backend.seal('edgeward/confidential/content-key', content, sel);
    expect((await backend.unseal('edgeward/confidential/content-key')).equals(content)).toBe(true);
    expect(tap.saw(content)).toBe(false);
    await tpm.pcrExtend(23, [{ hashAlg: ALG.SHA256, digest: digest('unexpected code') }]);
    const err = await backend.unseal('edgeward/confidential/content-key').catch((e: unknown) => e);
    expect((err as TpmError).code).toBe('TPM_RC_POLICY_FAIL');
  });
});
