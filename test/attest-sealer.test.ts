/**
 * The sample confidential guest (guests/sealer) in a runtime with `edgeward:attest/*` over swtpm: built as a
 * plain component and deployed with `"kind": "confidential"` (what today's runtime admits; once confidential
 * packages run, this becomes a sealed-package test). First start seals a fresh secret into /data; a restart
 * unseals it (the same SHA-256 prefix in the log, the secret never logged); a new version of the component
 * (another digest) cannot unseal it (`wrong-measurement`, the start refused, the blob kept); its evidence
 * verifies with tpm2_checkquote over the nonce.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
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

describe('guests/sealer as kind confidential (swtpm)', () => {
  let fx: Fixture;
  let sim: Swtpm;
  let tpm: Tpm;
  let measurement: Measurement;
  let rt: ComponentRuntime;
  const image = () => assetPath('guests/sealer/dist/sealer.wasm');

  beforeAll(async () => {
    const r = spawnSync(process.execPath, [assetPath('guests/build.mjs'), 'sealer'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`npm run build:guests -- sealer failed:\n${r.stderr}`);
    fx = new Fixture();
    sim = await Swtpm.start();
    tpm = await openSharedTpm(sim.tcti);
    await ensureIdentity(tpm);
    const { config } = parseConfigText(`[provisioning]\nsource = "none"\n\n[tpm]\ntcti = "${sim.tcti}"\n`, 'test.toml', { EDGEWARD_HOME: fx.dir });
    measurement = (await Measurement.start({ ...config, state_dir: path.join(fx.dir, 'state') }, silentLogger()))!;
    const backend = await TpmTeeBackend.create(tpm, path.join(fx.dir, 'workload-key.json'), { pcr: 12 });
    const service = new AttestService({ stateDir: path.join(fx.dir, 'state'), tee: async () => backend, evidence: measurement, logger: silentLogger() });
    rt = await fx.runtime({ limits: LIMITS, capabilities: attestCapabilities(service) });
  }, 480_000);
  afterAll(async () => {
    await fx?.cleanup();
    await measurement?.close();
    await tpm?.close();
    await sim?.stop();
  });

  it('seals a secret on first start, unseals it after a restart; a new version of the component cannot', { timeout: 120_000 }, async () => {
    await rt.create(spec('sealer', image(), { kind: 'confidential', capabilities: GRANTS }));
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

    // Another measurement of the same code: the start is refused with wrong-measurement, the blob kept.
    const v2 = path.join(fx.dir, 'sealer-v2.wasm');
    writeFileSync(v2, newVersion(readFileSync(image())));
    await rt.update(spec('sealer', v2, { kind: 'confidential', capabilities: GRANTS })).catch(() => undefined);
    const after = await moduleLogLines(rt, 'sealer');
    expect(after.join('\n')).toMatch(/unseal: wrong-measurement/);
    expect(readFileSync(path.join(fx.dir, 'state', 'modules', 'sealer', 'data', 'secret.sealed')).equals(stored)).toBe(true);
  });

  it('its evidence verifies with tpm2_checkquote over the nonce and names its own measurement', { timeout: 60_000 }, async () => {
    await rt.create(spec('witness', image(), { kind: 'confidential', capabilities: GRANTS }));
    const nonce = randomBytes(16).toString('hex');
    const res = await rt.invoke('witness', 'evidence', { nonce });
    expect(res.status).toBe(200);
    const ev = res.payload as Record<string, string>;
    expect(ev.measurement).toBe(rt.registration('witness')!.digest);
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
