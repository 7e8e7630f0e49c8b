/**
 * Measured launch end to end on swtpm: the daemon measures itself and each module start; `edgeward attest
 * quote` writes files tpm2_checkquote -e accepts and tpm2_eventlog parses; `edgeward attest verify` replays
 * the log with each event's data, prints what ran, and catches an edited event that tpm2_checkquote accepts.
 * The runtime PCR is the same after a daemon restart and after a reboot (TPM reset) of an unchanged device.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { buildTestGuest } from '../guests/adversarial/components.js';
import { Swtpm } from '../hsm/tpm/testing/swtpm.js';
import { parseToolsPcrs } from '../host/measure/quote-files.js';
import { envFor, modulesStarted, runCli, startDaemon, stopDaemon, tempHome, type DaemonHandle } from './helpers/cli.js';

/** Run a tool; resolve its exit code and output (never reject on a non-zero exit). */
function tool(cmd: string, args: string[], cwd: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout: 30_000 }, (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` }));
  });
}

const checkquote = (dir: string, nonce: string) =>
  tool('tpm2_checkquote', ['-u', 'ak.pub.pem', '-m', 'quote.msg', '-s', 'quote.sig', '-f', 'quote.pcrs', '-g', 'sha256', '-q', nonce, '-e', 'eventlog.bin'], dir);

describe('measured launch and attestation (swtpm, daemon, tpm2-tools)', () => {
  let home: string;
  let cleanup: () => void;
  let env: NodeJS.ProcessEnv;
  let daemon: DaemonHandle | undefined;
  let sim: Swtpm | undefined;

  beforeEach(() => {
    ({ home, cleanup } = tempHome());
    env = envFor(home);
  });
  afterEach(async () => {
    if (daemon) await stopDaemon(daemon, 'SIGKILL');
    daemon = undefined;
    await sim?.stop();
    sim = undefined;
    cleanup();
  });

  async function quote(name: string): Promise<{ dir: string; nonce: string; pcrs: Buffer[] }> {
    const nonce = randomBytes(16).toString('hex');
    const dir = path.join(home, name);
    const q = await runCli(['attest', 'quote', '--nonce', nonce, '--out', dir], env);
    expect(q.code, q.stderr).toBe(0);
    return { dir, nonce, pcrs: parseToolsPcrs(readFileSync(path.join(dir, 'quote.pcrs'))).values };
  }

  it('quotes what ran; tpm2_checkquote -e accepts; attest verify also checks event data', { timeout: 120_000 }, async () => {
    sim = await Swtpm.start();
    writeFileSync(path.join(home, 'echo.wasm'), await buildTestGuest('echo'));
    const manifest = path.join(home, 'manifest.json');
    writeFileSync(manifest, JSON.stringify({ modules: { echo: { settings: { image: './echo.wasm' } } } }));
    const cfg = path.join(home, 'config.toml');
    writeFileSync(cfg, `[provisioning]\nsource = "none"\n\n[tpm]\ntcti = "${sim.tcti}"\n\n[runtime]\ndeployment = "${manifest}"\n`);
    daemon = await startDaemon(env, ['-c', cfg]);
    expect(await modulesStarted(env)).toEqual(['echo']);
    const status = await runCli(['system', 'status'], env);
    expect(status.stdout).toMatch(/measurement.*PCR 12 \(runtime\), PCR 13 \(modules\); 3 event\(s\) in the log \(new\)/);

    const first = await quote('q1');
    const ok = await checkquote(first.dir, first.nonce);
    expect(ok.out).toContain('pcrs:');
    expect(ok.code).toBe(0);
    expect((await tool('tpm2_eventlog', ['eventlog.bin'], first.dir)).out).toMatch(/EV_EVENT_TAG[\s\S]*EV_EVENT_TAG[\s\S]*EV_EVENT_TAG/);
    const verified = await runCli(['attest', 'verify', first.dir, '--nonce', first.nonce], env);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toMatch(/^PCR 12  daemon code     edgeward \S+ sha256:[0-9a-f]{64}$/m);
    expect(verified.stdout).toMatch(/^PCR 12  daemon config   sha256:[0-9a-f]{64}$/m);
    expect(verified.stdout).toMatch(/^PCR 13  module start    echo sha256:[0-9a-f]{64} signer unsigned grants \[/m);
    expect(verified.stdout).toContain('verified:');
    // The AK is in the TPM of this EK: a credential made offline for ek.pub and the AK's name is answered.
    const secret = randomBytes(16);
    writeFileSync(path.join(first.dir, 'secret.bin'), secret);
    const made = await tool('tpm2_makecredential', ['-T', 'none', '-u', 'ek.pub', '-s', 'secret.bin', '-n', readFileSync(path.join(first.dir, 'ak.name'), 'utf8'), '-o', 'cred.bin'], first.dir);
    expect(made.code, made.out).toBe(0);
    const act = await runCli(['attest', 'activate', '--credential', path.join(first.dir, 'cred.bin'), '--out', path.join(first.dir, 'recovered.bin')], env);
    expect(act.code, act.stderr).toBe(0);
    expect(readFileSync(path.join(first.dir, 'recovered.bin'))).toEqual(secret);
    const otherName = readFileSync(path.join(first.dir, 'ak.name'), 'utf8').replace(/.$/, (c) => (c === '0' ? '1' : '0'));
    expect((await tool('tpm2_makecredential', ['-T', 'none', '-u', 'ek.pub', '-s', 'secret.bin', '-n', otherName, '-o', 'other.bin'], first.dir)).code).toBe(0);
    const refused = await runCli(['attest', 'activate', '--credential', path.join(first.dir, 'other.bin'), '--out', path.join(first.dir, 'no.bin')], env);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("it was not made for this device's EK and AK");

    // Another verifier's nonce is refused by both.
    expect((await checkquote(first.dir, 'abcd')).code).not.toBe(0);
    expect((await runCli(['attest', 'verify', first.dir, '--nonce', 'abcd'], env)).stderr).toContain('not over the given nonce');

    // One event's data edited, its digest left alone: tpm2_checkquote (digests only) still accepts.
    const tampered = path.join(home, 'tampered');
    cpSync(first.dir, tampered, { recursive: true });
    const log = readFileSync(path.join(tampered, 'eventlog.bin'));
    log.write('ECHO', log.indexOf('"module":"echo"') + 10);
    writeFileSync(path.join(tampered, 'eventlog.bin'), log);
    expect((await checkquote(tampered, first.nonce)).code).toBe(0);
    const caught = await runCli(['attest', 'verify', tampered, '--nonce', first.nonce], env);
    expect(caught.code).toBe(1);
    expect(caught.stderr).toMatch(/event 3 \(PCR 13; EventNum as tpm2_eventlog numbers it\): its data does not hash to its digest/);

    // Daemon restart, same boot: the log continues, the runtime PCR is unchanged, the module start is measured again.
    expect(await stopDaemon(daemon)).toBe(0);
    daemon = await startDaemon(env, ['-c', cfg]);
    expect(await modulesStarted(env)).toEqual(['echo']);
    const second = await quote('q2');
    expect((await checkquote(second.dir, second.nonce)).code).toBe(0);
    expect(second.pcrs[0]).toEqual(first.pcrs[0]);
    expect(second.pcrs[1]).not.toEqual(first.pcrs[1]);
    expect((await runCli(['attest', 'verify', second.dir, '--nonce', second.nonce], env)).stdout.match(/module start {4}echo/g)).toHaveLength(2);

    // Reboot (TPM reset): a new log, and the same runtime PCR value for the unchanged device.
    expect(await stopDaemon(daemon)).toBe(0);
    await sim.restart();
    daemon = await startDaemon(env, ['-c', cfg]);
    expect(await modulesStarted(env)).toEqual(['echo']);
    const third = await quote('q3');
    expect((await checkquote(third.dir, third.nonce)).code).toBe(0);
    expect(third.pcrs).toEqual(first.pcrs);
  });

  it('without [tpm], measurement is off: system status says so and attest quote explains', { timeout: 60_000 }, async () => {
    const cfg = path.join(home, 'config.toml');
    writeFileSync(cfg, '[provisioning]\nsource = "none"\n\n[runtime]\n');
    daemon = await startDaemon(env, ['-c', cfg]);
    expect((await runCli(['system', 'status'], env)).stdout).toMatch(/measurement.*off: no \[tpm\] configured/);
    const q = await runCli(['attest', 'quote', '--nonce', '00', '--out', path.join(home, 'q')], env);
    expect(q.code).not.toBe(0);
    expect(q.stderr).toContain('measurement is off');
  });
});
