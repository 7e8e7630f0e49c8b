/**
 * Create / Load / Sign / HMAC / VerifySignature on swtpm, with password and HMAC sessions. Every result is
 * checked outside the TPM (node:crypto), and key blobs are exchanged with tpm2-tools in both directions.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { tpm2, type Swtpm } from '../hsm/tpm/testing/swtpm.js';
import { startTpm, stopTpm } from '../hsm/tpm/testing/fixture.js';
import { Tpm } from '../hsm/tpm/tpm.js';
import { SRK_HANDLE } from '../hsm/tpm/identity.js';
import { eccSigningTemplate, hmacTemplate, rsaSigningTemplate } from '../hsm/tpm/templates.js';
import { ALG, SE } from '../hsm/tpm/constants.js';
import { passwordAuth, TpmSessionError } from '../hsm/tpm/session.js';
import { TpmError } from '../hsm/tpm/rc.js';
import { verifyWithPublic } from '../hsm/tpm/pubkey.js';
import type { Signature } from '../hsm/tpm/types.js';

describe('TPM keys (swtpm)', () => {
  let sim: Swtpm;
  let tpm: Tpm;
  beforeAll(async () => {
    ({ sim, tpm } = await startTpm());
  });
  afterAll(() => stopTpm({ sim, tpm }));

  it('signs with an ECDSA P-256 key under the SRK (password and HMAC session); node:crypto verifies', async () => {
    const auth = Buffer.from('key-password');
    const key = await tpm.create(SRK_HANDLE, eccSigningTemplate(), { userAuth: auth });
    const loaded = await tpm.load(SRK_HANDLE, key.privateBytes, key.publicBytes);
    try {
      const msg = Buffer.from('the message');
      const digest = createHash('sha256').update(msg).digest();
      const s1 = await tpm.sign(loaded, digest, null, passwordAuth(auth));
      expect(verifyWithPublic(key.public, msg, s1)).toBe(true);
      expect(verifyWithPublic(key.public, Buffer.from('another message'), s1)).toBe(false);

      const session = await tpm.startAuthSession(SE.HMAC);
      try {
        for (let i = 0; i < 3; i++) {
          const s = await tpm.sign(loaded, digest, null, session.authorize(auth));
          expect(verifyWithPublic(key.public, msg, s)).toBe(true);
        }
        const bad = await tpm.sign(loaded, digest, null, session.authorize(Buffer.from('wrong'))).catch((e: unknown) => e);
        expect((bad as TpmError).code).toBe('TPM_RC_AUTH_FAIL');
        expect((bad as TpmError).subject).toEqual({ kind: 'session', index: 1 });
      } finally {
        await tpm.flushContext(session.handle);
      }

      // TPM2_VerifySignature accepts the real signature and rejects a tampered one.
      const s2 = await tpm.sign(loaded, digest, null, passwordAuth(auth));
      await expect(tpm.verifySignature(loaded, digest, s2)).resolves.toBeTypeOf('number');
      const tampered = { ...s2, s: Buffer.from(s2.sigAlg === ALG.ECDSA ? s2.s.map((b, i) => (i === 0 ? b ^ 1 : b)) : []) } as Signature;
      const err = await tpm.verifySignature(loaded, digest, tampered).catch((e: unknown) => e);
      expect((err as TpmError).code).toBe('TPM_RC_SIGNATURE');
    } finally {
      await tpm.flushContext(loaded.handle);
    }
  });

  it('signs with an RSA 2048 RSASSA key; node:crypto verifies', async () => {
    const key = await tpm.create(SRK_HANDLE, rsaSigningTemplate());
    const loaded = await tpm.load(SRK_HANDLE, key.privateBytes, key.publicBytes);
    try {
      const msg = randomBytes(100);
      const sig = await tpm.sign(loaded, createHash('sha256').update(msg).digest(), null);
      expect(sig.sigAlg).toBe(ALG.RSASSA);
      expect(verifyWithPublic(key.public, msg, sig)).toBe(true);
    } finally {
      await tpm.flushContext(loaded.handle);
    }
  });

  it('HMACs with a key of known bytes (password and HMAC session) equal to node:crypto; rejects a response HMAC forged without the auth', async () => {
    const keyBytes = randomBytes(32);
    const auth = Buffer.from('hmac-key-auth');
    const key = await tpm.create(SRK_HANDLE, hmacTemplate({ external: true }), { userAuth: auth, data: keyBytes });
    const loaded = await tpm.load(SRK_HANDLE, key.privateBytes, key.publicBytes);
    try {
      const data = Buffer.from('myhub.azure-devices.net/devices/dev1\n1700000000');
      const expected = createHmac('sha256', keyBytes).update(data).digest();
      expect((await tpm.hmac(loaded, data, ALG.SHA256, passwordAuth(auth))).equals(expected)).toBe(true);
      const session = await tpm.startAuthSession(SE.HMAC);
      try {
        expect((await tpm.hmac(loaded, data, ALG.SHA256, session.authorize(auth))).equals(expected)).toBe(true);
        // A caller holding the wrong auth value cannot check the TPM's response HMAC either.
        const a = session.authorize(auth);
        const forged = { ...a, checkResponse: (rp: Buffer, n: Buffer, at: number, h: Buffer) => session.authorize(Buffer.from('x')).checkResponse(rp, n, at, h) };
        await expect(tpm.hmac(loaded, data, ALG.SHA256, forged)).rejects.toBeInstanceOf(TpmSessionError);
      } finally {
        await tpm.flushContext(session.handle);
      }
      await expect(tpm.hmac(loaded, Buffer.alloc(1025))).rejects.toThrow(/limited to 1024 bytes/);
    } finally {
      await tpm.flushContext(loaded.handle);
    }
  });

  it('exchanges key blobs with tpm2-tools: loads a tpm2_create HMAC key and tpm2_load takes ours', async () => {
    const dir = sim.stateDir;
    // Ours → tpm2-tools.
    const keyBytes = randomBytes(32);
    const ours = await tpm.create(SRK_HANDLE, hmacTemplate({ external: true }), { data: keyBytes });
    await fs.writeFile(path.join(dir, 'o.pub'), ours.publicBytes);
    await fs.writeFile(path.join(dir, 'o.priv'), ours.privateBytes);
    await fs.writeFile(path.join(dir, 'msg'), 'hello');
    // tpm2-tools → ours.
    await tpm.close();
    await tpm2(sim, 'tpm2_load', ['-C', '0x81000001', '-u', 'o.pub', '-r', 'o.priv', '-c', 'o.ctx'], { cwd: dir });
    const toolsHmac = await tpm2(sim, 'tpm2_hmac', ['-c', 'o.ctx', '-g', 'sha256', 'msg'], { cwd: dir });
    await tpm2(sim, 'tpm2_flushcontext', ['-t']);
    expect(toolsHmac.equals(createHmac('sha256', keyBytes).update('hello').digest())).toBe(true);
    await tpm2(sim, 'tpm2_create', ['-C', '0x81000001', '-G', 'hmac', '-u', 't.pub', '-r', 't.priv'], { cwd: dir });
    const expected = await (async () => {
      await tpm2(sim, 'tpm2_load', ['-C', '0x81000001', '-u', 't.pub', '-r', 't.priv', '-c', 't.ctx'], { cwd: dir });
      const h = await tpm2(sim, 'tpm2_hmac', ['-c', 't.ctx', '-g', 'sha256', 'msg'], { cwd: dir });
      await tpm2(sim, 'tpm2_flushcontext', ['-t']);
      return h;
    })();
    const loaded = await tpm.load(SRK_HANDLE, await fs.readFile(path.join(dir, 't.priv')), await fs.readFile(path.join(dir, 't.pub')));
    try {
      expect((await tpm.hmac(loaded, Buffer.from('hello'))).toString('hex')).toBe(expected.toString('hex'));
    } finally {
      await tpm.flushContext(loaded.handle);
    }
  });
});
