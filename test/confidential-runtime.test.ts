/**
 * Confidential modules end to end on real daemons and swtpm: the device key exported through the daemon
 * with a quote over it; hello and a marker guest sealed to it with `edgeward confidential seal`, deployed as
 * kind confidential, answering invoke; a package as kind module and a plain component as kind confidential
 * refused; a second device (its own swtpm) refusing the package (`not-a-recipient`); after the runtime PCR
 * is extended, the restarted daemon refuses the start with a `policy-mismatch` naming PCR 12 and does not
 * restart it in a loop. Throughout, no plaintext of either component on disk: the whole state directory
 * and os.tmpdir() are searched for the marker, and the state directory for 64 bytes of hello's middle.
 * In process (software key): a start after an in-memory transpile still asks for the key, and is refused
 * (terminal) when it is withheld; the decrypted code is dropped with the module.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { createHash, createPublicKey, randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, componentEmbed, componentNew } from '@bytecodealliance/jco';
import { Swtpm, tpm2 } from '../hsm/tpm/testing/swtpm.js';
import { parseToolsPcrs } from '../host/measure/quote-files.js';
import { ROOT, envFor, modulesStarted, runCli, startDaemon, stopDaemon, tempHome, type DaemonHandle } from './helpers/cli.js';
import { Fixture, rejection, spec } from './helpers/runtime.js';
import { buildTestGuest, core } from '../guests/adversarial/components.js';
import { SoftwareTeeBackend } from '../hsm/tee/software.js';
import { TeeError, type TeeBackend } from '../hsm/tee/port.js';
import { sealPackage } from '../host/runtime/confidential/package.js';
import { DaemonTee } from '../host/runtime/confidential/backend.js';
import { confidentialSchema } from '../host/config/confidential.js';
import type { Config } from '../host/config/schema.js';
import { silentLogger, type Logger } from '../host/log.js';
import { makeConfig } from './helpers/keys.js';

const HELLO = path.join(ROOT, 'guests', 'hello', 'dist', 'hello.wasm');

/** A ~1 KB component whose data segment holds `marker` and whose invoke answers it. */
async function markerGuest(marker: string): Promise<Uint8Array> {
  const wat = core({ extra: `(data (i32.const 256) "${marker}")`, invokeBody: `(call $ok (i32.const 256) (i32.const ${marker.length}))` });
  const wit = readFileSync(path.join(ROOT, 'wit', 'module', 'module.wit'), 'utf8');
  return componentNew(await componentEmbed({ binary: await parse(wat), witSource: wit, world: 'module' }));
}

/** Every regular file under `dir` whose bytes contain `needle` (symlinks and unreadable files skipped). */
function filesContaining(dir: string, needle: Buffer): string[] {
  const found: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (st?.isDirectory()) found.push(...filesContaining(p, needle));
    else if (st?.isFile()) {
      try {
        if (readFileSync(p).includes(needle)) found.push(p);
      } catch { /* gone or unreadable */ }
    }
  }
  return found;
}

/**
 * The files under `dir` written since `since` that contain `text` (find + grep -F: os.tmpdir() holds GBs of
 * other tests' files; plaintext written during this test has a later mtime than its start).
 */
function grepTree(dir: string, text: string, since: Date): Promise<string[]> {
  const script = 'find "$1" -xdev -type f -newermt "$2" -print0 2>/dev/null | xargs -0 -r grep -lsF --binary-files=binary -- "$3"';
  return new Promise((resolve) => {
    execFile('sh', ['-c', script, 'sh', dir, since.toISOString(), text], { timeout: 60_000, maxBuffer: 16 << 20 }, (_err, stdout) => resolve(stdout.split('\n').filter(Boolean)));
  });
}

interface Device { home: string; env: NodeJS.ProcessEnv; sim: Swtpm; cfg: string; daemon?: DaemonHandle; cleanup: () => void }

describe('confidential modules on the daemon (swtpm)', () => {
  const devices: Device[] = [];
  const MARKER = `EW-CONFIDENTIAL-MARKER-${randomBytes(12).toString('hex')}`;

  async function device(): Promise<Device> {
    const { home, cleanup } = tempHome('ew-conf-');
    const sim = await Swtpm.start();
    const cfg = path.join(home, 'config.toml');
    writeFileSync(cfg, `[provisioning]\nsource = "none"\n\n[tpm]\ntcti = "${sim.tcti}"\n\n[confidential]\nbackend = "tpm"\n`);
    const d: Device = { home, env: envFor(home), sim, cfg, cleanup };
    devices.push(d);
    d.daemon = await startDaemon(d.env, ['-c', cfg]);
    return d;
  }

  beforeEach(() => { devices.length = 0; });
  afterEach(async () => {
    for (const d of devices) {
      if (d.daemon) await stopDaemon(d.daemon, 'SIGKILL');
      await d.sim.stop();
      d.cleanup();
    }
  });

  it('runs sealed modules, refuses another device and a changed runtime, and never writes plaintext', { timeout: 150_000 }, async () => {
    const since = new Date(Date.now() - 2000);
    const a = await device();
    // The device key through the daemon (created on first use, bound to PCR 12 as measured), with a quote over it.
    const keyDir = path.join(a.home, 'device-a');
    const dk = await runCli(['confidential', 'device-key', '--out', keyDir], a.env);
    expect(dk.code, dk.stderr).toBe(0);
    const pem = readFileSync(path.join(keyDir, 'device-key.pem'));
    const policy = JSON.parse(readFileSync(path.join(keyDir, 'policy.json'), 'utf8')) as { policy: { pcrs: { index: number; value: string }[] } };
    const nonce = createHash('sha256').update(pem).digest('hex');
    const verified = await runCli(['attest', 'verify', path.join(keyDir, 'quote'), '--nonce', nonce], a.env);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    const quoted = parseToolsPcrs(readFileSync(path.join(keyDir, 'quote', 'quote.pcrs'))).values[0]!.toString('hex');
    expect(policy.policy.pcrs[0]).toEqual({ index: 12, bank: 'sha256', value: quoted });

    // Sealed on the publisher side; the marker guest's plaintext is removed once sealed.
    const plainDir = path.join(a.home, 'publisher');
    const markerWasm = path.join(plainDir, 'marker.wasm');
    mkdirSync(plainDir);
    writeFileSync(markerWasm, await markerGuest(MARKER));
    for (const [inp, out] of [[HELLO, 'hello.cwasm'], [markerWasm, 'marker.cwasm']] as const) {
      const s = await runCli(['confidential', 'seal', '--device-key', keyDir, '--in', inp, '--out', path.join(a.home, out)], a.env);
      expect(s.code, s.stderr).toBe(0);
    }
    rmSync(plainDir, { recursive: true });
    writeFileSync(path.join(a.home, 'plain.wasm'), await markerGuest('not-secret'));
    const manifest = path.join(a.home, 'manifest.json');
    writeFileSync(manifest, JSON.stringify({ modules: {
      hello: { kind: 'confidential', settings: { image: './hello.cwasm' }, capabilities: ['edgeward:workload/identity'], restartPolicy: 'always' },
      marker: { kind: 'confidential', settings: { image: './marker.cwasm' } },
      wrongkind: { settings: { image: './marker.cwasm' } },
      plain: { kind: 'confidential', settings: { image: './plain.wasm' } },
    } }));
    const dep = await runCli(['deploy', manifest], a.env, 90_000);
    expect(dep.stdout, dep.stderr).toMatch(/created: (hello, marker|marker, hello)/);
    expect(dep.stderr).toMatch(/failed: wrongkind: .*is a confidential package \(\.cwasm\), not a component: deploy it with "kind": "confidential"/);
    expect(dep.stderr).toMatch(/failed: plain: .*is not a confidential package \(\.cwasm\): seal it with `edgeward confidential seal`/);
    const hi = await runCli(['invoke', 'hello', 'hello', '{"name":"Ada"}'], a.env);
    expect(hi.stdout.trim(), hi.stderr).toBe('{"message":"Hello, Ada!","count":1}');
    const m = await runCli(['invoke', 'marker', 'x'], a.env);
    expect(m.stdout.trim(), m.stderr).toBe(MARKER);

    // No plaintext on disk: not in the state directory (marker, and 64 bytes of hello's middle), not in os.tmpdir().
    const helloBytes = readFileSync(HELLO);
    const slice = helloBytes.subarray(helloBytes.length >> 1, (helloBytes.length >> 1) + 64);
    expect(new Set(slice).size).toBeGreaterThan(8); // a distinctive run, not padding
    expect(filesContaining(a.home, Buffer.from(MARKER))).toEqual([]);
    expect(filesContaining(a.home, slice)).toEqual([]);
    expect(await grepTree(os.tmpdir(), MARKER, since)).toEqual([]);
    // The search can find: the package's own store holds ciphertext, the plain module's plaintext is found.
    expect(filesContaining(a.home, Buffer.from('not-secret')).length).toBeGreaterThan(0);
    expect((await grepTree(os.tmpdir(), 'not-secret', since)).length).toBeGreaterThan(0);

    // A second device (its own TPM): the package is not sealed to its key.
    const b = await device();
    writeFileSync(path.join(b.home, 'hello.cwasm'), readFileSync(path.join(a.home, 'hello.cwasm')));
    const bManifest = path.join(b.home, 'manifest.json');
    writeFileSync(bManifest, JSON.stringify({ modules: { hello: { kind: 'confidential', settings: { image: './hello.cwasm' }, capabilities: ['edgeward:workload/identity'] } } }));
    const other = await runCli(['deploy', bManifest], b.env);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/failed: hello: .*\(not-a-recipient\): this package is not sealed to this device's key/);
    await stopDaemon(b.daemon!);
    b.daemon = undefined;

    // The runtime changes (PCR 12 extended while the daemon is down): the restarted daemon refuses the start.
    await stopDaemon(a.daemon!);
    a.daemon = undefined;
    await tpm2(a.sim, 'tpm2_pcrextend', [`12:sha256=${randomBytes(32).toString('hex')}`]);
    a.daemon = await startDaemon(a.env, ['-c', a.cfg]);
    await modulesStarted(a.env);
    const logs = await runCli(['logs', 'hello'], a.env);
    expect(logs.stdout).toMatch(/\[edgeward\] policy-mismatch: module "hello": confidential package refused \(policy-mismatch PCR 12\): the TPM refuses the workload-decryption key: PCR 12 \(sha256\) is [0-9a-f]{64}, the key is bound to [0-9a-f]{64}/);
    const start = await runCli(['start', 'hello'], a.env);
    expect(start.code).not.toBe(0);
    expect(start.stderr).toContain('policy-mismatch PCR 12');
    // Terminal, not a restart loop (restartPolicy always): dead, no restart counted after a while.
    await new Promise((r) => setTimeout(r, 1500));
    const list = JSON.parse((await runCli(['list', '--json'], a.env)).stdout) as { name: string }[];
    expect(list.find((x) => x.name === 'hello'), JSON.stringify(list)).toMatchObject({ edgeward: { restartCount: 0 }, status: { runtimeStatus: { status: 'dead' } } });
    expect((await runCli(['logs', 'hello'], a.env)).stdout.match(/policy-mismatch: /g)?.length).toBe(2);
    expect(filesContaining(a.home, Buffer.from(MARKER))).toEqual([]);
  });
});

describe('confidential modules in the runtime (software key, development flag)', () => {
  it('an in-memory transpile never skips the key release: a start while the key is withheld is refused, terminal; none on disk; dropped on remove', { timeout: 30_000 }, async () => {
    const f = new Fixture();
    try {
      const soft = await SoftwareTeeBackend.open(path.join(f.dir, 'soft.pem'), { insecureDevelopment: true, warn: () => undefined });
      // The real backend, except that it can be made to refuse as a TPM does when the runtime PCR changed.
      let withheld = false;
      const tee: TeeBackend = {
        name: soft.name,
        deviceKey: () => soft.deviceKey(),
        unwrap: (w, p) => (withheld ? Promise.reject(new TeeError('policy-mismatch', 'PCR 12 (sha256) differs', 12)) : soft.unwrap(w, p)),
        sealMaster: (secret) => soft.sealMaster(secret),
        unsealMaster: (blob) => soft.unsealMaster(blob),
        checkMaster: () => soft.checkMaster(),
        close: async () => undefined,
      };
      const k = await soft.deviceKey();
      const file = path.join(f.dir, 'echo.cwasm');
      writeFileSync(file, sealPackage({ plaintext: Buffer.from(await buildTestGuest('echo')), recipients: [{ publicKey: createPublicKey(k.publicPem), policy: k.policy }] }));
      const rt = await f.runtime({ tee: async () => tee });
      const details = await rt.create(spec('c', file, { kind: 'confidential' }));
      expect(details.status.runtimeStatus.status).toBe('running');
      expect(await rt.invoke('c', 'echo', 'x')).toEqual({ status: 200, payload: 'x' });
      expect(rt.loader.stats.transpiles).toBe(1);
      expect(readdirSync(path.join(f.dir, 'state')).includes('cache')).toBe(false);
      expect(readdirSync(path.join(f.dir, 'state', 'components'))).toEqual([`${rt.registration('c')!.digest.slice(7)}.wasm`]);

      withheld = true;
      const refused = await rejection(rt.restart('c'));
      expect(refused.code).toBe('denied');
      expect(refused.message).toContain('(policy-mismatch PCR 12)');
      expect(rt.events('c').filter((e) => e.kind === 'policy-mismatch')).toHaveLength(1);
      expect(rt.loader.stats.transpiles).toBe(1); // the transpile was in memory, the key was asked for anyway
      expect((await rt.get('c')).status.runtimeStatus.status).toBe('dead');
      expect(rt.isActive('c')).toBe(false); // no restart scheduled

      withheld = false;
      await rt.start('c'); // the policy holds again: an operator's start runs it
      expect(await rt.invoke('c', 'echo', 'y')).toEqual({ status: 200, payload: 'y' });
      await rt.remove('c');
      await rt.create(spec('c', file, { kind: 'confidential' }));
      expect(rt.loader.stats.transpiles).toBe(2); // the decrypted code was dropped with the module
    } finally {
      await f.cleanup();
    }
  });
});

describe('the daemon TEE backend from [confidential]', () => {
  const withTable = (stateDir: string, confidential?: unknown, tpm?: unknown): Config => ({ ...makeConfig(stateDir, { backend: 'file' }, [], tpm), ...(confidential ? { confidential: confidentialSchema.parse(confidential) } : {}) });

  it('none without [tpm] or a table; software refused without the development flag, loud with it; tpm needs [tpm]', async () => {
    const dir = tempHome('ew-conf-cfg-');
    const warnings: string[] = [];
    const logger = { ...silentLogger(), warn: (m: unknown) => void warnings.push(String(m)) } as unknown as Logger;
    try {
      expect(await new DaemonTee(withTable(dir.home), logger).get()).toBeUndefined();
      const refused = await new DaemonTee(withTable(dir.home, { backend: 'software' }), logger).get().catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(TeeError);
      expect((refused as TeeError).message).toContain('need a TPM (or OP-TEE) key backend');
      const soft = await new DaemonTee(withTable(dir.home, { backend: 'software', insecure_development: true }), logger).get();
      expect((await soft!.deviceKey()).policy.kind).toBe('software');
      expect(warnings.join('\n')).toContain('INSECURE software key backend');
      const noTpm = await new DaemonTee(withTable(dir.home, { backend: 'tpm' }), logger).get().catch((e: unknown) => e);
      expect((noTpm as TeeError).message).toContain('needs a [tpm] table');
    } finally {
      dir.cleanup();
    }
  });
});
