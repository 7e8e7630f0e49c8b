/**
 * The sample confidential guest (guests/sealer) in a runtime with `edgeward:attest/*` over swtpm, sealed to
 * the device's TPM workload key as a confidential package and deployed with `"kind": "confidential"`. First
 * start seals a fresh secret into /data; a restart unseals it (the same SHA-256 prefix in the log, the secret
 * never logged); the same component sealed again (another package digest) still unseals it, because the
 * seal binds the component's own measurement; a new version of the component (another digest) cannot
 * (`wrong-measurement`, the start refused, the blob kept); its evidence verifies with tpm2_checkquote over
 * the nonce and names the decrypted component's digest.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawnSync } from 'node:child_process';
import { createHash, createPublicKey, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Swtpm } from '../hsm/tpm/testing/swtpm.js';
import { openSharedTpm } from '../hsm/tpm/shared.js';
import { ensureIdentity } from '../hsm/tpm/identity.js';
import type { Tpm } from '../hsm/tpm/tpm.js';
import { TpmTeeBackend } from '../hsm/tee/tpm.js';
import { parseConfigText } from '../host/config/load.js';
import { Measurement } from '../host/measure/service.js';
import { silentLogger } from '../host/log.js';
import { assetPath } from '../host/runtime/assets.js';
import { AttestService, attestCapabilities } from '../host/capabilities/attest/index.js';
import { sealPackage } from '../host/runtime/confidential/package.js';
import type { ComponentRuntime } from '../host/runtime/runtime.js';
import { Fixture, moduleLogLines, spec } from './helpers/runtime.js';

const GRANTS = ['edgeward:attest/seal', 'edgeward:attest/evidence', 'wasi:filesystem/data', 'wasi:cli/stdio', 'wasi:clocks', 'wasi:random'];
const LIMITS = { memory_mib: 64, call_timeout_ms: 10_000, max_value_bytes: 1024 * 1024 };

/** The same component with a custom section appended: the same code, another measurement (a "new version"). */
function newVersion(bytes: Buffer): Buffer {
  const name = Buffer.from('edgeward-test-version');
  const payload = Buffer.concat([Buffer.from([name.length]), name, Buffer.from('2')]);
  return Buffer.concat([bytes, Buffer.from([0, payload.length]), payload]);
}

describe('guests/sealer sealed as a confidential package (swtpm)', () => {
  let fx: Fixture;
  let sim: Swtpm;
  let tpm: Tpm;
  let measurement: Measurement;
  let rt: ComponentRuntime;
  let backend: TpmTeeBackend;
  const image = () => assetPath('guests/sealer/dist/sealer.wasm');
  /** `component` sealed to this device's workload key, written as `name`.cwasm. */
  const sealed = async (component: Buffer, name: string): Promise<string> => {
    const k = await backend.deviceKey();
    const file = path.join(fx.dir, `${name}.cwasm`);
    writeFileSync(file, sealPackage({ plaintext: component, recipients: [{ publicKey: createPublicKey(k.publicPem), policy: k.policy }] }));
    return file;
  };

  beforeAll(async () => {
    const r = spawnSync(process.execPath, [assetPath('guests/build.mjs'), 'sealer'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`npm run build:guests -- sealer failed:\n${r.stderr}`);
    fx = new Fixture();
    sim = await Swtpm.start();
    tpm = await openSharedTpm(sim.tcti);
    await ensureIdentity(tpm);
    const { config } = parseConfigText(`[provisioning]\nsource = "none"\n\n[tpm]\ntcti = "${sim.tcti}"\n`, 'test.toml', { EDGEWARD_HOME: fx.dir });
    measurement = (await Measurement.start({ ...config, state_dir: path.join(fx.dir, 'state') }, silentLogger()))!;
    backend = await TpmTeeBackend.create(tpm, path.join(fx.dir, 'workload-key.json'), { pcr: 12 });
    const service = new AttestService({ stateDir: path.join(fx.dir, 'state'), tee: async () => backend, evidence: measurement, logger: silentLogger() });
    rt = await fx.runtime({ limits: LIMITS, capabilities: attestCapabilities(service), tee: async () => backend });
  }, 480_000);
  afterAll(async () => {
    await fx?.cleanup();
    await measurement?.close();
    await tpm?.close();
    await sim?.stop();
  });

  it('seals a secret on first start, unseals it after a restart; a new version of the component cannot', { timeout: 120_000 }, async () => {
    await rt.create(spec('sealer', await sealed(readFileSync(image()), 'sealer'), { kind: 'confidential', capabilities: GRANTS }));
    const first = await rt.invoke('sealer', 'status', null);
    expect(first).toMatchObject({ status: 200, payload: { firstStart: true, blobBytes: 32 + 76 } });
    const prefix = (first.payload as { sha256Prefix: string }).sha256Prefix;
    expect(prefix).toMatch(/^[0-9a-f]{16}$/);
    const stored = readFileSync(path.join(fx.dir, 'state', 'modules', 'sealer', 'data', 'secret.sealed'));
    expect(stored.subarray(0, 6).toString()).toBe('EWSEAL');

    await rt.restart('sealer');
    expect(await rt.invoke('sealer', 'status', null)).toEqual({ status: 200, payload: { firstStart: false, sha256Prefix: prefix, blobBytes: stored.length } });
    const lines = await moduleLogLines(rt, 'sealer');
    expect(lines.some((l) => l.includes(`first start: sealed a new secret (sha256 ${prefix}…)`))).toBe(true);
    expect(lines.some((l) => l.includes(`unsealed the secret sealed on first start: 32 bytes, sha256 ${prefix}…`))).toBe(true);

    // The same component sealed again: another package (another content key, another package digest), the
    // same measurement: it unseals what the first package sealed.
    const again = await sealed(readFileSync(image()), 'sealer-again');
    await rt.update(spec('sealer', again, { kind: 'confidential', capabilities: GRANTS }));
    expect(rt.registration('sealer')!.digest).not.toBe(rt.registration('sealer')!.plaintextDigest);
    expect(await rt.invoke('sealer', 'status', null)).toEqual({ status: 200, payload: { firstStart: false, sha256Prefix: prefix, blobBytes: stored.length } });

    // Another measurement of the same code: the start is refused with wrong-measurement, the blob kept.
    const v2 = await sealed(newVersion(readFileSync(image())), 'sealer-v2');
    await rt.update(spec('sealer', v2, { kind: 'confidential', capabilities: GRANTS })).catch(() => undefined);
    const after = await moduleLogLines(rt, 'sealer');
    expect(after.join('\n')).toMatch(/unseal: wrong-measurement/);
    expect(readFileSync(path.join(fx.dir, 'state', 'modules', 'sealer', 'data', 'secret.sealed')).equals(stored)).toBe(true);
  });

  it('its evidence verifies with tpm2_checkquote over the nonce and names its own measurement', { timeout: 60_000 }, async () => {
    await rt.create(spec('witness', await sealed(readFileSync(image()), 'witness'), { kind: 'confidential', capabilities: GRANTS }));
    const nonce = randomBytes(16).toString('hex');
    const res = await rt.invoke('witness', 'evidence', { nonce });
    expect(res.status).toBe(200);
    const ev = res.payload as Record<string, string>;
    // The decrypted component's digest, not the package's.
    expect(ev.measurement).toBe(`sha256:${createHash('sha256').update(readFileSync(image())).digest('hex')}`);
    expect(ev.measurement).toBe(rt.registration('witness')!.plaintextDigest);
    const dir = path.join(fx.dir, 'evidence');
    mkdirSync(dir, { recursive: true });
    for (const [file, key] of [['quote.msg', 'quote'], ['quote.sig', 'signature'], ['quote.pcrs', 'pcrs'], ['eventlog.bin', 'eventLog']] as const) writeFileSync(path.join(dir, file), Buffer.from(ev[key]!, 'hex'));
    writeFileSync(path.join(dir, 'ak.pub.pem'), ev.akPublicPem!);
    const out = await new Promise<{ code: number; text: string }>((resolve) => {
      execFile('tpm2_checkquote', ['-u', 'ak.pub.pem', '-m', 'quote.msg', '-s', 'quote.sig', '-f', 'quote.pcrs', '-g', 'sha256', '-q', nonce, '-e', 'eventlog.bin'], { cwd: dir, timeout: 30_000 },
        (err, stdout, stderr) => resolve({ code: err ? 1 : 0, text: `${stdout}${stderr}` }));
    });
    expect(out.text).toContain('pcrs:');
    expect(out.code).toBe(0);
  });
});
