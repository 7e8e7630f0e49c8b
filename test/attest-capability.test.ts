/**
 * `edgeward:attest/*` on swtpm, driven through each capability's prepare(instance) with an instance
 * context (the runtime that runs `kind: confidential` packages is built elsewhere): seal/unseal round trip
 * for measurement A, B refused with `wrong-measurement`; the seal secret is a TPM object sealed with
 * PolicyPCR over the runtime PCR (tpm2_unseal -p pcr:sha256:12 releases it, and it opens A's blob); after the
 * runtime PCR is extended, unseal refuses `policy-mismatch` naming PCR 12 (the cached secret re-checked, and
 * the TPM itself for a fresh one); evidence verifies with tpm2_checkquote over the nonce; a plain module
 * asking for a grant is refused at deploy. The OP-TEE (emulator) and software backends keep the secret too.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Swtpm, tpm2 } from '../hsm/tpm/testing/swtpm.js';
import { openSharedTpm } from '../hsm/tpm/shared.js';
import { ensureIdentity } from '../hsm/tpm/identity.js';
import { ALG } from '../hsm/tpm/constants.js';
import type { Tpm } from '../hsm/tpm/tpm.js';
import { TpmTeeBackend } from '../hsm/tee/tpm.js';
import { OpteeTeeBackend } from '../hsm/tee/optee.js';
import { TaEmulator } from '../hsm/tee/emulator.js';
import { SoftwareTeeBackend } from '../hsm/tee/software.js';
import type { TeeBackend } from '../hsm/tee/port.js';
import { parseConfigText } from '../host/config/load.js';
import { Measurement } from '../host/measure/service.js';
import { silentLogger } from '../host/log.js';
import { AttestService, EVIDENCE_BURST, EVIDENCE_INTERFACE, MASTER_FILE, SEAL_INTERFACE, attestCapabilities } from '../host/capabilities/attest/index.js';
import { openData } from '../host/capabilities/attest/sealed.js';
import type { Capability, HostFunction } from '../host/runtime/capabilities.js';
import { instanceOf, witError } from './helpers/monitor.js';
import { Fixture, rejection, spec } from './helpers/runtime.js';

const A = `sha256:${createHash('sha256').update('component A').digest('hex')}`;
const B = `sha256:${createHash('sha256').update('component B').digest('hex')}`;

function fns(caps: readonly Capability[], iface: string, digest: string, over: { max_value_bytes?: number } = {}): Record<string, HostFunction> {
  const base = instanceOf('sealer');
  const instance = { ...base, digest, limits: { ...base.limits, max_value_bytes: over.max_value_bytes ?? 4 * 1024 * 1024 } };
  return caps.find((c) => c.name === iface)!.prepare!(instance)[iface]!;
}

const u8 = (b: Buffer | string) => new Uint8Array(Buffer.from(b));

function tool(cmd: string, args: string[], cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout: 30_000 }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` }));
  });
}

describe('edgeward:attest on swtpm (prepare(instance) with a real TPM)', () => {
  let sim: Swtpm;
  let tpm: Tpm;
  let measurement: Measurement;
  let backend: TpmTeeBackend;
  let dir: string;
  let caps: Capability[];
  const service = (stateDir = path.join(dir, 'state'), tee: () => Promise<TeeBackend | undefined> = async () => backend) =>
    new AttestService({ stateDir, tee, evidence: measurement, logger: silentLogger() });

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ew-attest-cap-'));
    sim = await Swtpm.start();
    tpm = await openSharedTpm(sim.tcti);
    await ensureIdentity(tpm);
    const { config } = parseConfigText(`[provisioning]\nsource = "none"\n\n[tpm]\ntcti = "${sim.tcti}"\n`, 'test.toml', { EDGEWARD_HOME: dir });
    // As on a device: the daemon measures itself into PCR 12, then the TEE key is bound to that value.
    measurement = (await Measurement.start({ ...config, state_dir: path.join(dir, 'state') }, silentLogger()))!;
    backend = await TpmTeeBackend.create(tpm, path.join(dir, 'workload-key.json'), { pcr: 12 });
    caps = attestCapabilities(service());
  }, 60_000);
  afterAll(async () => {
    await measurement?.close();
    await tpm?.close();
    await sim?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('seals for A and unseals for A; B gets wrong-measurement; damaged or foreign blobs are invalid-blob', async () => {
    const secret = randomBytes(100);
    const a = fns(caps, SEAL_INTERFACE, A);
    const blob = (await a.seal!(u8(secret))) as Uint8Array;
    expect(blob.byteLength).toBe(secret.length + 76);
    expect(Buffer.from(blob).includes(secret.subarray(0, 16))).toBe(false);
    expect(Buffer.from((await a.unseal!(blob)) as Uint8Array).equals(secret)).toBe(true);

    const b = fns(caps, SEAL_INTERFACE, B);
    expect(await witError(b.unseal!(blob))).toEqual({ tag: 'wrong-measurement' });
    // B rewriting the header to A's measurement still cannot open it: its key is derived from B.
    const forged = Buffer.from(blob);
    Buffer.from(B.slice(7), 'hex').copy(forged, 8);
    expect(await witError(b.unseal!(u8(forged)))).toMatchObject({ tag: 'invalid-blob', val: expect.stringMatching(/damaged/) });
    const flipped = Buffer.from(blob);
    flipped[70]! ^= 1;
    expect(await witError(a.unseal!(u8(flipped)))).toMatchObject({ tag: 'invalid-blob' });
    expect(await witError(a.unseal!(u8('not a blob at all, not a blob at all, not a blob at all, not a blob at all!!')))).toMatchObject({ tag: 'invalid-blob' });
    expect(await witError(a.seal!(new Uint8Array(0)))).toMatchObject({ tag: 'invalid-argument' });

    // The seal secret survives a daemon restart: a new service over the same state directory opens A's blob.
    const again = attestCapabilities(service());
    expect(Buffer.from((await fns(again, SEAL_INTERFACE, A).unseal!(blob)) as Uint8Array).equals(secret)).toBe(true);
    // Under another seal secret (another device, or a wiped state directory) the blob is refused as such.
    const other = attestCapabilities(service(path.join(dir, 'other-state')));
    expect(await witError(fns(other, SEAL_INTERFACE, A).unseal!(blob))).toMatchObject({ tag: 'invalid-blob', val: expect.stringMatching(/another seal secret/) });
  });

  it('caps arguments: seal data over 1 MiB is limit-exceeded in the worker (argumentLimits) and in the host', async () => {
    const seal = caps.find((c) => c.name === SEAL_INTERFACE)!;
    expect(seal.kinds).toEqual(['confidential']);
    expect(seal.argumentLimits?.[SEAL_INTERFACE]?.seal?.refusal).toMatchObject({ tag: 'limit-exceeded' });
    expect(await witError(fns(caps, SEAL_INTERFACE, A).seal!(new Uint8Array(1024 * 1024 + 1)))).toMatchObject({ tag: 'limit-exceeded' });
  });

  it('evidence: a quote over PCRs 12 and 13 with the nonce that tpm2_checkquote accepts, with the log, the AK and the caller\'s measurement', { timeout: 60_000 }, async () => {
    const nonce = randomBytes(20);
    const ev = fns(caps, EVIDENCE_INTERFACE, A);
    const r = (await ev.evidence!(u8(nonce))) as { quote: Uint8Array; signature: Uint8Array; pcrs: Uint8Array; eventLog: Uint8Array; akPublicPem: string; measurement: string; runtimePcr: number; modulesPcr: number };
    expect(r).toMatchObject({ measurement: A, runtimePcr: 12, modulesPcr: 13 });
    const q = path.join(dir, 'quote');
    rmSync(q, { recursive: true, force: true });
    (await import('node:fs')).mkdirSync(q);
    writeFileSync(path.join(q, 'quote.msg'), r.quote);
    writeFileSync(path.join(q, 'quote.sig'), r.signature);
    writeFileSync(path.join(q, 'quote.pcrs'), r.pcrs);
    writeFileSync(path.join(q, 'eventlog.bin'), r.eventLog);
    writeFileSync(path.join(q, 'ak.pub.pem'), r.akPublicPem);
    const check = (n: string) => tool('tpm2_checkquote', ['-u', 'ak.pub.pem', '-m', 'quote.msg', '-s', 'quote.sig', '-f', 'quote.pcrs', '-g', 'sha256', '-q', n, '-e', 'eventlog.bin'], q);
    const ok = await check(nonce.toString('hex'));
    expect(ok.out).toContain('pcrs:');
    expect(ok.code).toBe(0);
    expect((await check(randomBytes(20).toString('hex'))).code).not.toBe(0);
    // Refusals: the nonce's size, and evidence larger than the module's answers may be.
    expect(await witError(ev.evidence!(new Uint8Array(0)))).toMatchObject({ tag: 'invalid-argument' });
    expect(await witError(ev.evidence!(new Uint8Array(65)))).toMatchObject({ tag: 'limit-exceeded' });
    expect(await witError(fns(caps, EVIDENCE_INTERFACE, A, { max_value_bytes: 2048 }).evidence!(u8(nonce)))).toMatchObject({ tag: 'limit-exceeded', val: expect.stringMatching(/max_value_bytes/) });
    // Quotes are rate-limited per module: a burst, then refused (each is a TPM signature).
    const burst = attestCapabilities(service());
    const quoter = fns(burst, EVIDENCE_INTERFACE, A);
    for (let i = 0; i < EVIDENCE_BURST; i++) await quoter.evidence!(u8(nonce));
    expect(await witError(quoter.evidence!(u8(nonce)))).toMatchObject({ tag: 'limit-exceeded', val: expect.stringMatching(/burst/) });
    // Without measured launch there is nothing to quote.
    const off = attestCapabilities(new AttestService({ stateDir: path.join(dir, 'off'), tee: async () => backend, logger: silentLogger() }));
    expect(await witError(fns(off, EVIDENCE_INTERFACE, A).evidence!(u8(nonce)))).toMatchObject({ tag: 'unavailable' });
  });

  it('the seal secret is sealed by the TPM under PolicyPCR(sha256:12): tpm2_unseal releases it only with that policy, and it opens A\'s blob', { timeout: 60_000 }, async () => {
    const data = randomBytes(48);
    const blob = Buffer.from((await fns(caps, SEAL_INTERFACE, A).seal!(u8(data))) as Uint8Array);
    const file = path.join(dir, 'state', MASTER_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const stored = JSON.parse(readFileSync(file, 'utf8')) as { format: string; pcr: number; privateBytes: string; publicBytes: string };
    expect(stored).toMatchObject({ format: 'edgeward-tpm-sealed-master', pcr: 12 });
    writeFileSync(path.join(dir, 'm.pub'), Buffer.from(stored.publicBytes, 'base64'));
    writeFileSync(path.join(dir, 'm.priv'), Buffer.from(stored.privateBytes, 'base64'));
    // swtpm serves one connection: release ours (the last reference closes it) while tpm2-tools run.
    await measurement.close();
    await tpm.close();
    await tpm2(sim, 'tpm2_load', ['-C', '0x81000001', '-u', path.join(dir, 'm.pub'), '-r', path.join(dir, 'm.priv'), '-c', path.join(dir, 'm.ctx')]);
    await tpm2(sim, 'tpm2_flushcontext', ['-t']);
    await expect(tpm2(sim, 'tpm2_unseal', ['-c', path.join(dir, 'm.ctx'), '-o', path.join(dir, 'nopolicy.bin')])).rejects.toThrow();
    await tpm2(sim, 'tpm2_flushcontext', ['-t']);
    await tpm2(sim, 'tpm2_unseal', ['-c', path.join(dir, 'm.ctx'), '-p', 'pcr:sha256:12', '-o', path.join(dir, 'master.bin')]);
    await tpm2(sim, 'tpm2_flushcontext', ['-t']);
    const master = readFileSync(path.join(dir, 'master.bin'));
    expect(master.length).toBe(32);
    expect(openData(master, A, blob).equals(data)).toBe(true);
    // Reconnect for the tests after this one (the same daemon, as if nothing happened).
    tpm = await openSharedTpm(sim.tcti);
    measurement = (await Measurement.start({ ...parseConfigText(`[provisioning]\nsource = "none"\n\n[tpm]\ntcti = "${sim.tcti}"\n`, 'test.toml', { EDGEWARD_HOME: dir }).config, state_dir: path.join(dir, 'state') }, silentLogger()))!;
    backend = await TpmTeeBackend.open(tpm, path.join(dir, 'workload-key.json'));
  });

  it('after the runtime PCR is extended, seal and unseal refuse policy-mismatch naming PCR 12 (cached secret and fresh TPM unseal)', { timeout: 60_000 }, async () => {
    const data = randomBytes(32);
    const live = attestCapabilities(service());
    const blob = (await fns(live, SEAL_INTERFACE, A).seal!(u8(data))) as Uint8Array;
    await tpm.pcrExtend(12, [{ hashAlg: ALG.SHA256, digest: createHash('sha256').update('another runtime').digest() }]);
    // The service that holds the secret in memory re-checks the policy before using it.
    const cached = await witError(fns(live, SEAL_INTERFACE, A).unseal!(blob));
    expect(cached).toMatchObject({ tag: 'policy-mismatch', val: expect.stringMatching(/PCR 12/) });
    expect(await witError(fns(live, SEAL_INTERFACE, A).seal!(u8(data)))).toMatchObject({ tag: 'policy-mismatch' });
    // A fresh service (a daemon restarted on the changed runtime): the TPM itself refuses the secret.
    const fresh = await witError(fns(attestCapabilities(service()), SEAL_INTERFACE, A).unseal!(blob));
    expect(fresh).toMatchObject({ tag: 'policy-mismatch', val: expect.stringMatching(/PCR 12 \(sha256\) = [0-9a-f]{64}, it is [0-9a-f]{64} now/) });
  });
});

describe('who may hold edgeward:attest grants', () => {
  let fx: Fixture;
  beforeEach(() => { fx = new Fixture(); });
  afterEach(async () => { await fx.cleanup(); });

  it('a plain module asking for edgeward:attest/seal or /evidence is refused at deploy, naming the kind', async () => {
    const svc = new AttestService({ stateDir: path.join(fx.dir, 'state'), tee: async () => undefined, logger: silentLogger() });
    const rt = await fx.runtime({ capabilities: attestCapabilities(svc) });
    const file = await fx.guest('echo');
    for (const grant of [SEAL_INTERFACE, EVIDENCE_INTERFACE]) {
      const err = await rejection(rt.create(spec('plain', file, { capabilities: [grant] })));
      expect(err.code).toBe('denied');
      expect(err.message).toBe(`module "plain" is of kind "module" and asks for "${grant}", which only a component of kind "confidential" may be granted`);
      expect(rt.registration('plain')).toBeUndefined();
    }
    // Without a TEE backend a confidential module's seal is unavailable, with what to configure.
    const f = fns(attestCapabilities(svc), SEAL_INTERFACE, A);
    expect(await witError(f.seal!(u8('x')))).toMatchObject({ tag: 'unavailable', val: expect.stringMatching(/no TEE backend/) });
  });
});

describe('the seal secret on the other TEE backends', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(path.join(os.tmpdir(), 'ew-attest-tee-')); });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function roundTrip(tee: TeeBackend): Promise<void> {
    const caps = attestCapabilities(new AttestService({ stateDir: dir, tee: async () => tee, logger: silentLogger() }));
    const data = randomBytes(64);
    const blob = (await fns(caps, SEAL_INTERFACE, A).seal!(u8(data))) as Uint8Array;
    const reopened = attestCapabilities(new AttestService({ stateDir: dir, tee: async () => tee, logger: silentLogger() }));
    expect(Buffer.from((await fns(reopened, SEAL_INTERFACE, A).unseal!(blob)) as Uint8Array).equals(data)).toBe(true);
    expect(await witError(fns(reopened, SEAL_INTERFACE, B).unseal!(blob))).toEqual({ tag: 'wrong-measurement' });
  }

  it('OP-TEE (emulated TA): SEAL_MASTER keeps the secret in the TA, the state directory holds only its id; another TA refuses it', async () => {
    const ta = new TaEmulator();
    await roundTrip(OpteeTeeBackend.open(ta));
    expect(readFileSync(path.join(dir, MASTER_FILE)).length).toBe(4 + 16);
    const other = OpteeTeeBackend.open(new TaEmulator());
    await expect(other.unsealMaster(readFileSync(path.join(dir, MASTER_FILE)))).rejects.toMatchObject({ reason: 'unwrap-failed' });
  });

  it('software (development flag): wrapped under its key file; another key file refuses it', async () => {
    const warn = () => undefined;
    await roundTrip(await SoftwareTeeBackend.open(path.join(dir, 'k.pem'), { insecureDevelopment: true, warn }));
    const other = await SoftwareTeeBackend.open(path.join(dir, 'k2.pem'), { insecureDevelopment: true, warn });
    await expect(other.unsealMaster(readFileSync(path.join(dir, MASTER_FILE)))).rejects.toMatchObject({ reason: 'unwrap-failed' });
  });
});
