import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Command } from 'commander';
import { registerTpmCommands } from '../host/cli/commands/tpm.js';
import { Swtpm, tpm2 } from '../hsm/tpm/testing/swtpm.js';
import { tpmSchema, type Config } from '../host/config/schema.js';

async function run(args: string[], tcti: string, tpmConfig: Record<string, unknown> = {}): Promise<{ out: string; err: string; code: number }> {
  const program = new Command().exitOverride();
  registerTpmCommands(program, async () => ({ tpm: tpmSchema.parse({ tcti, ...tpmConfig }) }) as unknown as Config);
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((err += String(s)), true));
  process.exitCode = 0;
  try {
    await program.parseAsync(['node', 'edgeward', ...args]);
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return { out, err, code };
}

describe('edgeward tpm registration-id', () => {
  let sim: Swtpm;
  beforeAll(async () => {
    sim = await Swtpm.start();
  });
  afterAll(async () => {
    await sim?.stop();
  });

  it('prints the registration id and endorsement key from the configured TPM, matching tpm2-tools', async () => {
    const r = await run(['tpm', 'registration-id'], sim.tcti);
    expect(r.code).toBe(0);
    const m = /^Registration Id:\n([0-9a-f]{64})\n\nEndorsement Key:\n([A-Za-z0-9+/=]+)\n$/.exec(r.out);
    expect(m).not.toBeNull();
    expect(r.err).toMatch(/created and persisted the EK at 0x81010001 and the SRK at 0x81000001/);
    await tpm2(sim, 'tpm2_readpublic', ['-c', '0x81010001', '-o', 'ek.pub'], { cwd: sim.stateDir });
    const sha = (await tpm2(undefined, 'sha256sum', [`${sim.stateDir}/ek.pub`])).toString().split(' ')[0];
    expect(m![1]).toBe(sha);
    const again = await run(['tpm', 'registration-id', '--json'], sim.tcti);
    expect(JSON.parse(again.out)).toMatchObject({ registrationId: sha, endorsementKey: m![2], created: { ek: false, srk: false } });
  });

  it('tpm status shows vendor, lockout and hierarchy-auth state and which keys are persisted', async () => {
    const r = await run(['tpm', 'status'], sim.tcti);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^TPM: +IBM firmware [0-9a-f]{8}\.[0-9a-f]{8}\n/);
    expect(r.out).toContain('Lockout:         no (0 of ');
    expect(r.out).toContain('Hierarchy auth:  owner not set, endorsement not set, lockout not set');
    expect(r.out).toContain('EK  0x81010001: present'); // created by the test above
    expect(r.out).toContain('Auth key 0x81000100: absent');
    await tpm2(sim, 'tpm2_changeauth', ['-c', 'e', 'endorsementpw']);
    const j = await run(['tpm', 'status', '--json'], sim.tcti);
    expect(JSON.parse(j.out)).toMatchObject({ endorsementAuthSet: true, ownerAuthSet: false, persistent: ['0x81000001', '0x81010001'] });
    expect(j.err).toBe('');
    const t = await run(['tpm', 'status'], sim.tcti);
    expect(t.err).toMatch(/a hierarchy auth value is set/);
    await tpm2(sim, 'tpm2_changeauth', ['-c', 'e', '-p', 'endorsementpw']);
  });

  it('uses [tpm.hierarchy_authorization] when the owner hierarchy has a password, and explains when it is missing', async () => {
    const fresh = await Swtpm.start();
    try {
      await tpm2(fresh, 'tpm2_changeauth', ['-c', 'o', 'ownerpw']);
      const denied = await run(['tpm', 'registration-id'], fresh.tcti);
      expect(denied.code).toBe(2);
      expect(denied.err).toMatch(/^error: the TPM owner hierarchy has an authorization value set \(TPM_RC_BAD_AUTH\)/);
      const ok = await run(['tpm', 'registration-id', '--json'], fresh.tcti, { hierarchy_authorization: { owner: 'ownerpw' } });
      expect(ok.code).toBe(0);
      expect(JSON.parse(ok.out).created).toEqual({ ek: true, srk: true });
      expect(() => tpmSchema.parse({ hierarchy_authorization: { owner: 'x', platform: 'y' } })).toThrow();
    } finally {
      await fresh.stop();
    }
  });

  it('fails with exit 2 and a hint when there is no TPM device', async () => {
    const r = await run(['tpm', 'registration-id', '--tcti', 'device:/nonexistent/tpmrm0'], sim.tcti);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^error: no TPM device at \/nonexistent\/tpmrm0 \(ENOENT\)\n  hint: /);
  });

  it('fails with exit 1 when the simulator does not answer', async () => {
    const r = await run(['tpm', 'registration-id'], 'swtpm:host=127.0.0.1,port=1');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error: TPM simulator not answering at 127.0.0.1:1 \(ECONNREFUSED\)/);
  });
});
