/**
 * EK/SRK identity and registration id against swtpm, cross-checked with tpm2-tools on the same state:
 * the script of Microsoft's "provision devices at scale with TPM" guide must print the same registration
 * id and endorsement key as Edgeward, whichever of the two provisioned the TPM first.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { Swtpm, tpm2 } from '../hsm/tpm/testing/swtpm.js';
import { Tpm } from '../hsm/tpm/tpm.js';
import { EK_HANDLE, SRK_HANDLE, ensureIdentity } from '../hsm/tpm/identity.js';
import { ekEccTemplate, ekRsaTemplate, srkRsaTemplate } from '../hsm/tpm/templates.js';
import { RH } from '../hsm/tpm/constants.js';
import { TpmError } from '../hsm/tpm/rc.js';
import { Reader } from '../hsm/tpm/marshal.js';
import { objectName, parseTpm2bPublic, readPublic, tpm2bPublic } from '../hsm/tpm/types.js';
import { passwordAuth } from '../hsm/tpm/session.js';

/** The guide's script, verbatim apart from sudo and the output file location. */
const GUIDE_SCRIPT = `
tpm2_readpublic -Q -c 0x81010001 -o ek.pub 2> /dev/null
if [ $? -gt 0 ]; then
    tpm2_createek -c 0x81010001 -G rsa -u ek.pub
    tpm2_createprimary -Q -C o -c srk.ctx > /dev/null
    tpm2_evictcontrol -c srk.ctx 0x81000001 > /dev/null
    tpm2_flushcontext -t > /dev/null
fi
printf "%s\\n%s\\n" $(sha256sum -b ek.pub | cut -d' ' -f1 | sed -e 's/[^[:alnum:]]//g') $(base64 -w0 ek.pub)
`;

async function guide(sim: Swtpm): Promise<{ registrationId: string; endorsementKey: string }> {
  const out = (await tpm2(sim, 'bash', ['-c', GUIDE_SCRIPT], { cwd: sim.stateDir })).toString().trim().split('\n');
  return { registrationId: out[0]!, endorsementKey: out[1]! };
}

describe('TPM identity (swtpm + tpm2-tools)', () => {
  let sim: Swtpm;
  let tpm: Tpm;
  beforeEach(async () => {
    sim = await Swtpm.start();
    tpm = await Tpm.open(sim.tcti);
  });
  afterEach(async () => {
    await tpm?.close();
    await sim?.stop();
  });

  it('creates and persists EK and SRK; the guide script then prints the same registration id', async () => {
    const id = await ensureIdentity(tpm);
    expect(id.created).toEqual({ ek: true, srk: true });
    expect(id.registrationId).toMatch(/^[0-9a-f]{64}$/);
    await tpm.close(); // swtpm serves one connection at a time
    const g = await guide(sim);
    expect(g.registrationId).toBe(id.registrationId);
    expect(g.endorsementKey).toBe(id.endorsementKey);
    // The script found the EK (it did not create one): the ek.pub it wrote is the TPM2B_PUBLIC we hashed.
    const ekPub = await fs.readFile(path.join(sim.stateDir, 'ek.pub'));
    expect(ekPub.toString('base64')).toBe(id.endorsementKey);
    expect(createHash('sha256').update(ekPub).digest('hex')).toBe(id.registrationId);
  });

  it('reads the EK and SRK the guide script created, and creates the very same keys from its own templates', async () => {
    await tpm.close();
    const g = await guide(sim);
    const id = await ensureIdentity(tpm);
    expect(id.created).toEqual({ ek: false, srk: false });
    expect(id.registrationId).toBe(g.registrationId);
    expect(id.endorsementKey).toBe(g.endorsementKey);
    // Same seed + same template => same key: our EK and SRK templates are the ones tpm2-tools uses.
    const ek = await tpm.createPrimary(RH.ENDORSEMENT, ekRsaTemplate());
    await tpm.flushContext(ek.handle);
    expect(ek.publicBytes.equals(id.ek.publicBytes)).toBe(true);
    const srk = await tpm.createPrimary(RH.OWNER, srkRsaTemplate());
    await tpm.flushContext(srk.handle);
    expect(srk.publicBytes.equals(id.srk.publicBytes)).toBe(true);
  });

  it('builds the ECC P-256 EK exactly as tpm2_createek -G ecc does', async () => {
    await tpm.close();
    await tpm2(sim, 'tpm2_createek', ['-c', '0x81010002', '-G', 'ecc', '-u', 'ekecc.pub'], { cwd: sim.stateDir });
    const fromTools = await fs.readFile(path.join(sim.stateDir, 'ekecc.pub'));
    const ek = await tpm.createPrimary(RH.ENDORSEMENT, ekEccTemplate());
    await tpm.flushContext(ek.handle);
    expect(ek.publicBytes.toString('hex')).toBe(fromTools.toString('hex'));
    expect(ekEccTemplate().authPolicy.toString('hex')).toBe('837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa');
  });

  it('parses and re-marshals tpm2_readpublic -o bytes exactly, and computes the same name', async () => {
    await ensureIdentity(tpm);
    await tpm.close();
    for (const h of [EK_HANDLE, SRK_HANDLE]) {
      const text = (await tpm2(sim, 'tpm2_readpublic', ['-c', `0x${h.toString(16)}`, '-o', `pub-${h}.bin`], { cwd: sim.stateDir })).toString();
      const bytes = await fs.readFile(path.join(sim.stateDir, `pub-${h}.bin`));
      const parsed = parseTpm2bPublic(bytes);
      expect(tpm2bPublic(parsed).equals(bytes)).toBe(true);
      const name = /^name: ([0-9a-f]+)$/m.exec(text)?.[1];
      expect(objectName(readPublic(Reader.of(bytes.subarray(2)))).toString('hex')).toBe(name);
    }
  });

  it('decodes real TPM errors: a missing handle, and a wrong hierarchy password', async () => {
    const missing = await tpm.readPublic(0x81000042).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(TpmError);
    expect((missing as TpmError).code).toBe('TPM_RC_HANDLE');
    expect((missing as TpmError).subject).toEqual({ kind: 'handle', index: 1 });
    await tpm.close();
    await tpm2(sim, 'tpm2_changeauth', ['-c', 'o', 'ownerpw']);
    const err = await tpm.createPrimary(RH.OWNER, srkRsaTemplate(), { hierarchyAuth: passwordAuth(Buffer.from('wrong')) }).catch((e: unknown) => e);
    expect((err as TpmError).code).toBe('TPM_RC_BAD_AUTH');
    expect((err as TpmError).subject).toEqual({ kind: 'session', index: 1 });
    const id = await ensureIdentity(tpm).catch((e: unknown) => e);
    expect((id as Error).name).toBe('HierarchyAuthError');
    expect((id as Error).message).toMatch(/owner hierarchy has an authorization value set \(TPM_RC_BAD_AUTH\)/);
    // With the hierarchy auth configured, provisioning goes through.
    const ok = await ensureIdentity(tpm, { hierarchyAuth: { owner: 'ownerpw' } });
    expect(ok.created.srk).toBe(true);
  });
});
