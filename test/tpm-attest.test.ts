/**
 * PCRs, quotes, PCR-sealed data and NV counters on swtpm: the quote verifies with the AK public key and the
 * replayed PCR value; sealed data is released with the right PCRs and refused after an extend; a counter
 * survives a simulator restart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { tpm2, type Swtpm } from '../hsm/tpm/testing/swtpm.js';
import { startTpm, stopTpm } from '../hsm/tpm/testing/fixture.js';
import { Tpm } from '../hsm/tpm/tpm.js';
import { SRK_HANDLE } from '../hsm/tpm/identity.js';
import { eccSigningTemplate } from '../hsm/tpm/templates.js';
import { ALG, RH } from '../hsm/tpm/constants.js';
import { TpmError } from '../hsm/tpm/rc.js';
import { parseQuoteAttest, replayPcr, verifyQuote } from '../hsm/tpm/attest.js';
import { readPcrValues, sealToPcrs, trialPcrPolicy, unsealWithPcrs } from '../hsm/tpm/seal.js';
import { NvCounter, NV_COUNTER_BASE } from '../hsm/tpm/nv.js';
import { PolicyDigest } from '../hsm/tpm/session.js';

const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest();

describe('TPM PCRs, quote, sealing, NV (swtpm)', () => {
  let sim: Swtpm;
  let tpm: Tpm;
  beforeAll(async () => {
    ({ sim, tpm } = await startTpm());
  });
  afterAll(() => stopTpm({ sim, tpm }));

  it('extends a PCR to the replayed value (as tpm2_pcrread sees it) and quotes it; the quote verifies', async () => {
    const events = [sha256('boot loader'), sha256('edgeward runtime')];
    const sel = [{ hashAlg: ALG.SHA256, pcrs: [16] }];
    const [before] = await readPcrValues(tpm, sel);
    for (const e of events) await tpm.pcrExtend(16, [{ hashAlg: ALG.SHA256, digest: e }]);
    const replayed = replayPcr(ALG.SHA256, events, before);
    const [after] = await readPcrValues(tpm, sel);
    expect(after!.toString('hex')).toBe(replayed.toString('hex'));
    await tpm.close();
    const tools = (await tpm2(sim, 'tpm2_pcrread', ['sha256:16'])).toString();
    expect(tools.toLowerCase()).toContain(`16: 0x${replayed.toString('hex')}`);

    const ak = await tpm.createPrimary(RH.ENDORSEMENT, eccSigningTemplate({ restricted: true }));
    try {
      const nonce = randomBytes(20);
      const quote = await tpm.quote(ak, nonce, null, sel);
      const attest = parseQuoteAttest(quote.attest);
      expect(attest.qualifiedSigner.length).toBeGreaterThan(0);
      expect(verifyQuote(ak.public, quote, { nonce, selection: sel, pcrValues: [replayed], hashAlg: ALG.SHA256 })).toMatchObject({ ok: true });
      // A verifier replaying a different log, or holding another nonce, or a tampered quote, rejects it.
      const wrongLog = replayPcr(ALG.SHA256, [events[0]!], before);
      expect(verifyQuote(ak.public, quote, { nonce, selection: sel, pcrValues: [wrongLog], hashAlg: ALG.SHA256 })).toEqual({ ok: false, reason: 'pcr-digest' });
      expect(verifyQuote(ak.public, quote, { nonce: randomBytes(20), selection: sel, pcrValues: [replayed], hashAlg: ALG.SHA256 })).toEqual({ ok: false, reason: 'nonce' });
      const tampered = { ...quote, attest: Buffer.from(quote.attest) };
      tampered.attest[tampered.attest.length - 1]! ^= 1;
      expect(verifyQuote(ak.public, tampered, { nonce, selection: sel, pcrValues: [replayed], hashAlg: ALG.SHA256 })).toEqual({ ok: false, reason: 'signature' });
    } finally {
      await tpm.flushContext(ak.handle);
    }
  });

  it('computes the same PolicyPCR digest in software as a trial session', async () => {
    const sel = [{ hashAlg: ALG.SHA256, pcrs: [0, 7, 16] }];
    const soft = new PolicyDigest().policyPcr(sel, await readPcrValues(tpm, sel)).digest;
    expect((await trialPcrPolicy(tpm, sel)).toString('hex')).toBe(soft.toString('hex'));
  });

  it('releases sealed data while the PCRs hold, and refuses it after an extend', async () => {
    const sel = [{ hashAlg: ALG.SHA256, pcrs: [7, 23] }];
    const secret = randomBytes(32);
    const blob = await sealToPcrs(tpm, SRK_HANDLE, secret, sel);
    expect((await unsealWithPcrs(tpm, SRK_HANDLE, blob)).equals(secret)).toBe(true);
    await tpm.pcrExtend(23, [{ hashAlg: ALG.SHA256, digest: sha256('something else ran') }]);
    const err = await unsealWithPcrs(tpm, SRK_HANDLE, blob).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TpmError);
    expect((err as TpmError).code).toBe('TPM_RC_POLICY_FAIL');
    // Sealed to explicitly given (future) values: refused now.
    const future = await sealToPcrs(tpm, SRK_HANDLE, secret, sel, [Buffer.alloc(32), Buffer.alloc(32, 1)]);
    await expect(unsealWithPcrs(tpm, SRK_HANDLE, future)).rejects.toMatchObject({ code: 'TPM_RC_POLICY_FAIL' });
  });

  it('keeps a monotonic NV counter across a simulator restart', async () => {
    const index = NV_COUNTER_BASE + 1;
    const c = await NvCounter.ensure(tpm, index);
    await expect(c.read()).rejects.toMatchObject({ code: 'TPM_RC_NV_UNINITIALIZED' });
    const v1 = await c.increment();
    const v2 = await c.increment();
    expect(v2).toBe(v1 + 1n);
    await tpm.close();
    await sim.restart();
    const c2 = await NvCounter.ensure(tpm, index); // already defined: kept as is
    expect(await c2.read()).toBe(v2);
    expect(await c2.increment()).toBe(v2 + 1n);
    const tools = (await (async () => {
      await tpm.close();
      return tpm2(sim, 'tpm2_nvread', [`0x${index.toString(16)}`, '-C', `0x${index.toString(16)}`, '-s', '8']);
    })());
    expect(tools.readBigUInt64BE(0)).toBe(v2 + 1n);
  });
});
