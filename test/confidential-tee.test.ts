/**
 * TEE backends: the TPM workload-decryption key on swtpm (PolicyPCR over the runtime PCR: unwraps while the
 * PCR holds, after a clean restart too, refuses with a typed policy-mismatch naming the PCR after an extend;
 * the policy digest cross-checked with tpm2_createpolicy), and the OP-TEE backend against the in-process
 * emulator of its trusted application's protocol.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tpm2, type Swtpm } from '../hsm/tpm/testing/swtpm.js';
import { startTpm, stopTpm } from '../hsm/tpm/testing/fixture.js';
import type { Tpm } from '../hsm/tpm/tpm.js';
import { ALG } from '../hsm/tpm/constants.js';
import { TpmTeeBackend } from '../hsm/tee/tpm.js';
import { TeeError, type TeeBackend } from '../hsm/tee/port.js';
import { sealPackage, openPackage } from '../host/runtime/confidential/package.js';
import { parsePackage } from '../host/runtime/confidential/format.js';
import { readDeviceKeyDir } from '../host/runtime/confidential/device-key.js';
import { constants, createPublicKey, publicEncrypt } from 'node:crypto';
import { envFor, runCli } from './helpers/cli.js';
import { CMD_GET_PUBKEY, CMD_UNWRAP, OpteeTeeBackend, TEEC } from '../hsm/tee/optee.js';
import { TaEmulator } from '../hsm/tee/emulator.js';
import { loadLibteec } from '../hsm/tee/libteec.js';
import { SoftwareTeeBackend } from '../hsm/tee/software.js';
import { writeFileSync } from 'node:fs';
import { confidentialRoutes } from '../host/api/management/confidential.js';

const MARKER = 'TEE-PLAINTEXT-MARKER-51c2';
const plaintext = Buffer.concat([Buffer.from(MARKER), randomBytes(2048)]);

async function sealFor(backend: TeeBackend): Promise<Buffer> {
  const k = await backend.deviceKey();
  return sealPackage({ plaintext, recipients: [{ publicKey: createPublicKey(k.publicPem), policy: k.policy }] });
}

async function open(backend: TeeBackend, bytes: Buffer): Promise<Buffer> {
  const k = await backend.deviceKey();
  return openPackage(parsePackage(bytes), k.keyId, (w, p) => backend.unwrap(w, p));
}

async function refusal(p: Promise<unknown>): Promise<TeeError | string> {
  return p.then(() => 'accepted', (e: unknown) => (e instanceof TeeError ? e : String(e)));
}

describe('TPM TEE backend (swtpm)', () => {
  let sim: Swtpm;
  let tpm: Tpm;
  let dir: string;
  beforeAll(async () => {
    ({ sim, tpm } = await startTpm());
    dir = mkdtempSync(path.join(os.tmpdir(), 'ew-ctee-'));
  });
  afterAll(async () => {
    await stopTpm({ sim, tpm });
    rmSync(dir, { recursive: true, force: true });
  });

  it('binds the key to PCR 12 (policy = tpm2_createpolicy --policy-pcr); unwraps while it holds and after a clean restart; refuses after an extend, naming PCR 12', async () => {
    const file = path.join(dir, 'key.json');
    const backend = await TpmTeeBackend.create(tpm, file, { pcr: 12 });
    const info = await backend.deviceKey();
    expect(info.policy).toMatchObject({ kind: 'tpm-pcr', pcrs: [{ index: 12, bank: 'sha256' }] });
    await tpm.close();
    await tpm2(sim, 'tpm2_createpolicy', ['--policy-pcr', '-l', 'sha256:12', '-L', path.join(dir, 'policy.bin')]);
    expect(readFileSync(path.join(dir, 'policy.bin')).toString('hex')).toBe(info.policy.policyDigest);

    const bytes = await sealFor(backend);
    expect((await open(backend, bytes)).equals(plaintext)).toBe(true);
    // Independent check with tpm2-tools: the stored blobs load under the SRK and tpm2_rsadecrypt unwraps
    // under its own PolicyPCR session (-p pcr:sha256:12).
    const stored = JSON.parse(readFileSync(file, 'utf8')) as { privateBytes: string; publicBytes: string };
    writeFileSync(path.join(dir, 'key.pub'), Buffer.from(stored.publicBytes, 'base64'));
    writeFileSync(path.join(dir, 'key.priv'), Buffer.from(stored.privateBytes, 'base64'));
    const secret = randomBytes(32);
    writeFileSync(path.join(dir, 'wrapped.bin'), publicEncrypt({ key: info.publicPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, secret));
    await tpm.close();
    await tpm2(sim, 'tpm2_load', ['-C', '0x81000001', '-u', path.join(dir, 'key.pub'), '-r', path.join(dir, 'key.priv'), '-c', path.join(dir, 'key.ctx')]);
    await tpm2(sim, 'tpm2_flushcontext', ['-t']);
    await tpm2(sim, 'tpm2_rsadecrypt', ['-c', path.join(dir, 'key.ctx'), '-p', 'pcr:sha256:12', '-s', 'oaep', '-o', path.join(dir, 'out.bin'), path.join(dir, 'wrapped.bin')]);
    await tpm2(sim, 'tpm2_flushcontext', ['-t']);
    expect(readFileSync(path.join(dir, 'out.bin')).equals(secret)).toBe(true);
    // Without the policy session (a plain password authorization) the TPM refuses the key.
    await expect(tpm2(sim, 'tpm2_rsadecrypt', ['-c', path.join(dir, 'key.ctx'), '-s', 'oaep', '-o', path.join(dir, 'out2.bin'), path.join(dir, 'wrapped.bin')])).rejects.toThrow(/0x12F|not available/i);
    await tpm2(sim, 'tpm2_flushcontext', ['-t']);

    // A clean reboot: PCRs reset, the runtime measures the same → the same value → the key is released.
    await tpm.close();
    await sim.restart();
    const again = await TpmTeeBackend.open(tpm, file);
    expect((await open(again, bytes)).equals(plaintext)).toBe(true);

    await tpm.pcrExtend(12, [{ hashAlg: ALG.SHA256, digest: createHash('sha256').update('another runtime').digest() }]);
    const err = await refusal(open(again, bytes));
    expect(err).toBeInstanceOf(TeeError);
    expect(err).toMatchObject({ reason: 'policy-mismatch', pcr: 12 });
    expect((err as TeeError).message).toMatch(/PCR 12/);
  });

  it('refuses a package sealed to another policy before asking the TPM, and one sealed to another device key', async () => {
    const a = await TpmTeeBackend.create(tpm, path.join(dir, 'a.json'), { pcr: 16 });
    const b = await TpmTeeBackend.create(tpm, path.join(dir, 'b.json'), { pcr: 16, pcrValue: Buffer.alloc(32, 7) });
    const bytes = await sealFor(a);
    expect((await open(a, bytes)).equals(plaintext)).toBe(true);
    await expect(open(b, bytes)).rejects.toMatchObject({ reason: 'not-a-recipient' });
    const wrapped = Buffer.from(parsePackage(bytes).header.recipients[0]!.wrappedKey, 'base64');
    await expect(b.unwrap(wrapped, (await a.deviceKey()).policy)).rejects.toMatchObject({ reason: 'policy-mismatch' });
    // Without the early check the TPM itself refuses b's key (bound to a value PCR 16 does not have).
    await expect(b.unwrap(wrapped)).rejects.toMatchObject({ reason: 'policy-mismatch', pcr: 16 });
    // A hand-edited key file claiming another PCR value is refused (the TPM object's authPolicy decides).
    const edited = JSON.parse(readFileSync(path.join(dir, 'b.json'), 'utf8')) as { pcrValue: string };
    writeFileSync(path.join(dir, 'b2.json'), JSON.stringify({ ...edited, pcrValue: 'ab'.repeat(32) }));
    await expect(TpmTeeBackend.open(tpm, path.join(dir, 'b2.json'))).rejects.toMatchObject({ reason: 'protocol' });
  });

  it('edgeward confidential device-key exports the key and its PCR policy straight from the TPM', async () => {
    await tpm.close();
    const out = path.join(dir, 'export');
    const keyFile = path.join(dir, 'cli-key.json');
    const r = await runCli(['confidential', 'device-key', '--out', out, '--tcti', sim.tcti, '--key-file', keyFile, '--pcr', '12'], envFor(dir));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const other = await runCli(['confidential', 'device-key', '--out', out, '--tcti', sim.tcti, '--key-file', keyFile, '--pcr', '16'], envFor(dir));
    expect(other.code).toBe(1);
    expect(other.stderr).toContain('bound to PCR 12');
    const exported = await readDeviceKeyDir(out);
    expect(exported.policy).toMatchObject({ kind: 'tpm-pcr', pcrs: [{ index: 12 }] });
    const backend = await TpmTeeBackend.open(tpm, keyFile);
    expect((await backend.deviceKey()).keyId).toBe(exported.keyId);
    const bytes = sealPackage({ plaintext, recipients: [{ publicKey: exported.publicKey, policy: exported.policy! }] });
    // PCR 12 was extended in the first test: this key was made over today's value, so it opens.
    expect((await open(backend, bytes)).equals(plaintext)).toBe(true);
  }, 30_000);
});

describe('OP-TEE TEE backend against the TA protocol emulator (OP-TEE itself: built, not run here)', () => {
  it('gets the TA public key over GET_PUBKEY and unwraps a package over UNWRAP with the protocol parameter types', async () => {
    const ta = new TaEmulator();
    const backend = OpteeTeeBackend.open(ta);
    const info = await backend.deviceKey();
    expect(info.policy.kind).toBe('optee-ta');
    expect(info.policy.description).toMatch(/not to a measurement/);
    const bytes = await sealFor(backend);
    expect(bytes.includes(Buffer.from(MARKER))).toBe(false);
    expect((await open(backend, bytes)).equals(plaintext)).toBe(true);
    expect(ta.calls).toEqual([
      { commandId: CMD_GET_PUBKEY, types: 'memref-output,value-output,none,none' },
      { commandId: CMD_UNWRAP, types: 'memref-input,memref-output,none,none' },
    ]);
    // Another device's TA (another key) cannot open it; a TPM-sealed policy is refused before the TA is asked.
    const other = OpteeTeeBackend.open(new TaEmulator());
    const wrapped = Buffer.from(parsePackage(bytes).header.recipients[0]!.wrappedKey, 'base64');
    await expect(other.unwrap(wrapped)).rejects.toMatchObject({ reason: 'unwrap-failed' });
    await expect(backend.unwrap(wrapped, { kind: 'tpm-pcr', description: 'x' })).rejects.toMatchObject({ reason: 'policy-mismatch' });
    await backend.close();
    await other.close();
  });

  it('maps TEE client errors to typed refusals: TA not installed, protocol errors, no /dev/tee0', async () => {
    expect(() => OpteeTeeBackend.open(new TaEmulator({ taInstalled: false }))).toThrow(/not installed/);
    const stale = {
      ...new TaEmulator(),
      initializeContext: () => ({ returnCode: TEEC.SUCCESS, context: 1 }),
      openSession: () => ({ returnCode: TEEC.SUCCESS, origin: 4, params: [], session: 1 }),
      invokeCommand: () => ({ returnCode: TEEC.ERROR_NOT_SUPPORTED, origin: 4, params: [] }),
      closeSession: () => undefined, finalizeContext: () => undefined,
    };
    await expect(OpteeTeeBackend.open(stale).deviceKey()).rejects.toMatchObject({ reason: 'protocol' });
    const bogus = { ...stale, invokeCommand: () => ({ returnCode: TEEC.SUCCESS, origin: 4, params: [{ buffer: Buffer.alloc(256) }, { a: 65537 }] }) };
    await expect(OpteeTeeBackend.open(bogus).deviceKey()).rejects.toMatchObject({ reason: 'protocol' });
    await expect(loadLibteec({ device: '/nonexistent/tee0' })).rejects.toMatchObject({ reason: 'unavailable' });
  });
});

describe('software key backend (development only)', () => {
  it('refuses without the development flag; with it, warns and unwraps', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ew-csoft-'));
    try {
      const file = path.join(dir, 'workload-key.pem');
      await expect(SoftwareTeeBackend.open(file)).rejects.toMatchObject({ reason: 'unavailable' });
      const warnings: string[] = [];
      const soft = await SoftwareTeeBackend.open(file, { insecureDevelopment: true, warn: (m) => warnings.push(m) });
      expect(warnings.join()).toMatch(/INSECURE/);
      const bytes = await sealFor(soft);
      expect((await open(soft, bytes)).equals(plaintext)).toBe(true);
      expect(parsePackage(bytes).header.recipients[0]!.policy?.kind).toBe('software');
      // The (unmounted) management route serves the same key and policy; 503 without a backend.
      const res = await confidentialRoutes(async () => soft).request('/device-key');
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ backend: 'software', keyId: (await soft.deviceKey()).keyId, policy: { kind: 'software' } });
      expect((await confidentialRoutes(async () => undefined).request('/device-key')).status).toBe(503);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
