/**
 * Salted sessions and parameter encryption on swtpm: secrets (a key's bytes going in, unsealed data and
 * HMAC results coming out) must not cross the wire in clear — checked on the bytes a tap on the transport
 * saw, with the unencrypted path as the control that shows the tap would see them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHmac, randomBytes } from 'node:crypto';
import { Swtpm } from '../hsm/tpm/testing/swtpm.js';
import { Tpm } from '../hsm/tpm/tpm.js';
import { SRK_HANDLE, ensureIdentity, type TpmIdentity } from '../hsm/tpm/identity.js';
import { hmacTemplate, sealedTemplate } from '../hsm/tpm/templates.js';
import { ALG, SE } from '../hsm/tpm/constants.js';
import { PolicyDigest, TpmSessionError, passwordAuth } from '../hsm/tpm/session.js';
import { openTransport } from '../hsm/tpm/transport.js';
import { Tap } from '../hsm/tpm/testing/tap.js';
import { readPcrValues } from '../hsm/tpm/seal.js';

describe('salted sessions and parameter encryption (swtpm)', () => {
  let sim: Swtpm;
  let tap: Tap;
  let tpm: Tpm;
  let id: TpmIdentity;
  beforeAll(async () => {
    sim = await Swtpm.start();
    tap = new Tap(await openTransport(sim.tcti));
    tpm = new Tpm(tap);
    id = await ensureIdentity(tpm);
  });
  afterAll(async () => {
    await tpm?.close();
    await sim?.stop();
  });

  it('imports HMAC key bytes and HMACs without the key, the data or the result in clear on the wire', async () => {
    const salted = await tpm.startAuthSession(SE.HMAC, ALG.SHA256, { saltKey: { handle: SRK_HANDLE, public: id.srk.public } });
    const keyBytes = randomBytes(32);
    const data = randomBytes(64);
    try {
      tap.wire = [];
      const k = await tpm.create(SRK_HANDLE, hmacTemplate({ external: true }), { data: keyBytes, parentAuth: salted.authorize(Buffer.alloc(0), { decrypt: true }) });
      const l = await tpm.load(SRK_HANDLE, k.privateBytes, k.publicBytes);
      const mac = await tpm.hmac(l, data, ALG.SHA256, salted.authorize(Buffer.alloc(0), { decrypt: true, encrypt: true }));
      await tpm.flushContext(l.handle);
      expect(mac.equals(createHmac('sha256', keyBytes).update(data).digest())).toBe(true);
      expect(tap.saw(keyBytes)).toBe(false);
      expect(tap.saw(data)).toBe(false);
      expect(tap.saw(mac)).toBe(false);

      // Control: the same operations without encryption put all three on the wire.
      tap.wire = [];
      const k2 = await tpm.create(SRK_HANDLE, hmacTemplate({ external: true }), { data: keyBytes });
      const l2 = await tpm.load(SRK_HANDLE, k2.privateBytes, k2.publicBytes);
      const mac2 = await tpm.hmac(l2, data, ALG.SHA256, salted.authorize());
      await tpm.flushContext(l2.handle);
      expect([tap.saw(keyBytes), tap.saw(data), tap.saw(mac2)]).toEqual([true, true, true]);
    } finally {
      await tpm.flushContext(salted.handle);
    }
  });

  it('unseals through a salted policy session with the secret encrypted on the wire', async () => {
    const sel = [{ hashAlg: ALG.SHA256, pcrs: [23] }];
    const policy = new PolicyDigest().policyPcr(sel, await readPcrValues(tpm, sel)).digest;
    const secret = randomBytes(48);
    const obj = await tpm.create(SRK_HANDLE, sealedTemplate(policy), { data: secret });
    const loaded = await tpm.load(SRK_HANDLE, obj.privateBytes, obj.publicBytes);
    const s = await tpm.startAuthSession(SE.POLICY, ALG.SHA256, { saltKey: { handle: SRK_HANDLE, public: id.srk.public } });
    try {
      await tpm.policyPcr(s, sel);
      tap.wire = [];
      const out = await tpm.unseal(loaded, s.authorize(Buffer.alloc(0), { encrypt: true }));
      expect(out.equals(secret)).toBe(true);
      expect(tap.saw(secret)).toBe(false);
    } finally {
      await tpm.flushContext(s.handle);
      await tpm.flushContext(loaded.handle);
    }
  });

  it('refuses parameter encryption on an unsalted session', async () => {
    const s = await tpm.startAuthSession(SE.HMAC);
    try {
      expect(() => s.authorize(Buffer.alloc(0), { encrypt: true })).toThrow(TpmSessionError);
      expect((await tpm.getRandom(4)).length).toBe(4);
      await expect(tpm.hmac(SRK_HANDLE, Buffer.from('x'), ALG.SHA256, passwordAuth())).rejects.toThrow(/TPM2_HMAC failed/);
    } finally {
      await tpm.flushContext(s.handle);
    }
  });
});
