/**
 * Renewable security (issue 15): a signed component's security version (its `edgeward.security-version`
 * custom section, covered by the signature) may not go below the highest that ran for its signer and
 * module. On swtpm the floor is a TPM NV monotonic counter: it holds across a runtime restart and a
 * restore of an old copy of the state directory. Without a TPM a state file holds it (and a restore
 * undoes it, as documented). Versions from unsigned components or manifest fields never count.
 */
import { cpSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildTestGuest } from '../guests/adversarial/components.js';
import { startTpm, stopTpm, type TpmFixture } from '../hsm/tpm/testing/fixture.js';
import { Tpm } from '../hsm/tpm/tpm.js';
import { Swtpm } from '../hsm/tpm/testing/swtpm.js';
import { parseManifest } from '../host/runtime/manifest.js';
import { pairKey, readSecurityVersion, RollbackError, withSecurityVersion } from '../host/runtime/rollback.js';
import { ROLLBACK_NV_BASE, TpmVersionFloors } from '../host/runtime/rollback-tpm.js';
import { TrustStore } from '../host/runtime/trust.js';
import type { ComponentRuntime } from '../host/runtime/runtime.js';
import { envFor, runCli, startDaemon, stopDaemon, tempHome, type DaemonHandle } from './helpers/cli.js';
import { Pki } from './helpers/pki.js';
import { Fixture, rejection, spec, waitFor } from './helpers/runtime.js';

let pki: Pki;
let fx: Fixture;
let echo: Uint8Array;

beforeAll(async () => {
  pki = new Pki();
  pki.key('pub', 'ec');
  echo = await buildTestGuest('echo');
});
afterAll(() => pki.cleanup());
beforeEach(() => { fx = new Fixture(); });
afterEach(async () => { await fx.cleanup(); });

const trust = () => ({ policy: 'optional' as const, store: TrustStore.fromPem([pki.read('pub.pub')]) });

/** The echo guest carrying security version `v` (undefined: no section), signed by "pub" unless `unsigned`. */
function release(name: string, v: number | undefined, unsigned = false) {
  const file = path.join(fx.dir, `${name}.wasm`);
  writeFileSync(file, v === undefined ? echo : withSecurityVersion(echo, v));
  if (unsigned) return spec('app', file);
  const sig = pki.sign('pub', file, `${file}.sig`);
  return spec('app', file, { signature: { file: sig, signer: pki.file('pub.pub') } });
}

async function refusedRollback(p: Promise<unknown>): Promise<RollbackError> {
  const err = await rejection(p);
  expect(err).toBeInstanceOf(RollbackError);
  expect(err.code).toBe('denied');
  return err as RollbackError;
}

describe('the security version section', () => {
  it('is read from the component bytes, and refused when malformed or repeated', () => {
    expect(readSecurityVersion(echo)).toBeUndefined();
    expect(readSecurityVersion(withSecurityVersion(echo, 7))).toBe(7);
    expect(() => readSecurityVersion(withSecurityVersion(withSecurityVersion(echo, 1), 2))).toThrow(/more than one/);
    expect(() => withSecurityVersion(echo, 5000)).toThrow(/0\.\.1023/);
  });

  it('a manifest cannot claim a version: the field is refused', () => {
    expect(() => parseManifest({ modules: { app: { settings: { image: '/x.wasm' }, securityVersion: 9 } } })).toThrow(/securityVersion/);
  });
});

describe('anti-rollback on a TPM NV counter (swtpm)', () => {
  let t: TpmFixture;
  const conns: Tpm[] = [];
  beforeAll(async () => { t = await startTpm({ identity: false }); await t.tpm.close(); });
  afterAll(async () => { await Promise.all(conns.map((c) => c.close().catch(() => undefined))); await stopTpm({ sim: t.sim }); });

  /** A runtime whose floors are NV counters on a fresh connection to the same swtpm (a daemon start). */
  async function tpmRuntime(): Promise<ComponentRuntime> {
    const tpm = await Tpm.open(t.sim.tcti);
    conns.push(tpm);
    return fx.runtime({ trust: trust(), versionFloors: new TpmVersionFloors(tpm) });
  }

  async function restart(rt: ComponentRuntime): Promise<ComponentRuntime> {
    await rt.close();
    await conns.pop()!.close();
    const next = await tpmRuntime();
    await next.startAll();
    return next;
  }

  it('deploy v2 then v1: refused; after a restart and after restoring an old state directory, still refused', async () => {
    let rt = await tpmRuntime();
    expect((await rt.create(release('v1', 1))).status.runtimeStatus.status).toBe('running');
    expect(rt.registration('app')?.securityVersion).toBe(1);
    const state = path.join(fx.dir, 'state');
    const oldState = path.join(fx.dir, 'state-v1');
    await rt.close();
    cpSync(state, oldState, { recursive: true }); // a copy of the state directory while v1 was deployed
    rt = await restart(rt);
    expect((await rt.update(release('v2', 2))).status.runtimeStatus.status).toBe('running');
    // The counter for (signer, module) is at 2, in the TPM.
    const err = await refusedRollback(rt.update(release('v1b', 1)));
    expect(err.message).toMatch(/security version 1 is below 2.*TPM NV counter.*deploy version 2 or later/);
    expect(rt.events('app').some((e) => e.kind === 'rollback')).toBe(true);
    expect(rt.registration('app')?.securityVersion).toBe(2); // v2 stays registered and running
    expect(await rt.invoke('app', 'say', 'still v2')).toEqual({ status: 200, payload: 'still v2' });

    rt = await restart(rt);
    await refusedRollback(rt.update(release('v1c', 1)));
    // A component with no version section counts as version 0 for a signer+module that has a floor.
    await refusedRollback(rt.update(release('none', undefined)));

    // Restore the old state directory: its registry has v1 registered (stored bytes, signature valid).
    await rt.close();
    await conns.pop()!.close();
    rmSync(state, { recursive: true, force: true });
    cpSync(oldState, state, { recursive: true });
    rt = await tpmRuntime();
    expect(rt.registration('app')?.securityVersion).toBe(1);
    await rt.startAll();
    const d = await waitFor(async () => { const x = await rt.get('app'); return x.status.runtimeStatus.status === 'dead' ? x : undefined; });
    expect(d!.status.runtimeStatus.description).toMatch(/security version 1 is below 2/);
    expect(rt.events('app').some((e) => e.kind === 'rollback')).toBe(true);
    expect(rt.events('app').some((e) => e.kind === 'started')).toBe(false);
    // v3 runs and raises the floor.
    expect((await rt.update(release('v3', 3))).status.runtimeStatus.status).toBe('running');
    expect(await new TpmVersionFloors(conns[conns.length - 1]!).floor(pairKey(rt.registration('app')!.signer, 'app'))).toBe(3);
  });

  it('keeps each counter in the TPM at an index derived from signer and module, tagged by its auth value', async () => {
    // swtpm serves one connection at a time: the previous test's goes first.
    while (conns.length > 0) await conns.pop()!.close();
    const tpm = await Tpm.open(t.sim.tcti);
    conns.push(tpm);
    const floors = new TpmVersionFloors(tpm);
    const a = pairKey('sha256:aa', 'm1');
    const b = pairKey('sha256:bb', 'm1');
    expect(await floors.floor(a)).toBe(0);
    expect(await floors.advance(a, 4)).toBe(4);
    expect(await floors.floor(b)).toBe(0); // another signer: its own counter
    expect(await new TpmVersionFloors(tpm).floor(a)).toBe(4); // found again without any state
    // The counter is a real TPM NV index in Edgeward's range (tpm2-tools would list it too).
    const index = ROLLBACK_NV_BASE + a.readUInt16BE(0);
    await expect(tpm.nvRead(index, 8)).rejects.toThrow(/AUTH|auth/); // another auth value: not this pair's
  });
});

describe('anti-rollback without a TPM (state file)', () => {
  it('refuses v1 after v2 across a restart; a restored state directory undoes it (documented limit)', async () => {
    let rt = await fx.runtime({ trust: trust() });
    await rt.create(release('v1', 1));
    await rt.close();
    const state = path.join(fx.dir, 'state');
    cpSync(state, path.join(fx.dir, 'old'), { recursive: true });
    rt = await fx.runtime({ trust: trust() });
    await rt.startAll();
    await rt.update(release('v2', 2));
    await rt.close();
    rt = await fx.runtime({ trust: trust() });
    await refusedRollback(rt.update(release('v1b', 1)));
    await rt.close();
    rmSync(state, { recursive: true, force: true });
    cpSync(path.join(fx.dir, 'old'), state, { recursive: true });
    rt = await fx.runtime({ trust: trust() });
    expect((await rt.update(release('v1c', 1))).status.runtimeStatus.status).toBe('running');
  });

  it('an unsigned component\'s version claim is ignored: it neither counts nor raises a floor', async () => {
    const rt = await fx.runtime({ trust: trust() });
    const d = await rt.create(release('u9', 9, true));
    expect(d.status.runtimeStatus.status).toBe('running');
    expect(rt.registration('app')?.securityVersion).toBeUndefined();
    // The signed v1 still runs: nothing unsigned moved the floor.
    expect((await rt.update(release('v1', 1))).status.runtimeStatus.status).toBe('running');
    expect(rt.registration('app')?.securityVersion).toBe(1);
  });
});

describe('the daemon with [tpm]: anti-rollback across daemon restarts and a state restore (swtpm)', () => {
  it('deploy v2, v1 refused; restarted daemon still refuses it; a restored old state directory cannot run it', { timeout: 120_000 }, async () => {
    const { home, cleanup } = tempHome();
    const sim = await Swtpm.start();
    let daemon: DaemonHandle | undefined;
    try {
      const env = envFor(home);
      const cfg = path.join(home, 'config.toml');
      writeFileSync(cfg, `[provisioning]\nsource = "none"\n\n[tpm]\ntcti = "${sim.tcti}"\n\n[modules]\ntrusted_signers = ["${pki.file('pub.pub')}"]\n\n[runtime]\n`);
      const manifest = (v: number) => {
        const file = path.join(home, `v${v}.wasm`);
        writeFileSync(file, withSecurityVersion(echo, v));
        pki.sign('pub', file, `${file}.sig`);
        const m = path.join(home, `deploy-v${v}.json`);
        writeFileSync(m, JSON.stringify({ modules: { app: { settings: { image: file }, restartPolicy: 'never', signature: { file: `${file}.sig`, signer: pki.file('pub.pub') } } } }));
        return m;
      };
      const state = path.join(home, 'state');
      daemon = await startDaemon(env, ['-c', cfg]);
      expect((await runCli(['deploy', manifest(1)], env)).code).toBe(0);
      expect(await stopDaemon(daemon)).toBe(0);
      cpSync(state, path.join(home, 'state-v1'), { recursive: true });

      daemon = await startDaemon(env, ['-c', cfg]);
      expect((await runCli(['deploy', manifest(2)], env)).code).toBe(0);
      let r = await runCli(['deploy', manifest(1)], env);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/failed: app: .*security version 1 is below 2.*TPM NV counter/);
      expect(await stopDaemon(daemon)).toBe(0);

      daemon = await startDaemon(env, ['-c', cfg]);
      r = await runCli(['deploy', manifest(1)], env);
      expect(r.stderr).toMatch(/security version 1 is below 2/);
      expect(await stopDaemon(daemon)).toBe(0);

      rmSync(state, { recursive: true, force: true });
      cpSync(path.join(home, 'state-v1'), state, { recursive: true });
      daemon = await startDaemon(env, ['-c', cfg]);
      type Listed = { name: string; status: { runtimeStatus: { status: string; description?: string } } };
      let app: Listed | undefined;
      for (let i = 0; i < 50 && app?.status.runtimeStatus.status !== 'dead'; i++) {
        if (i > 0) await new Promise((res) => setTimeout(res, 200));
        app = (JSON.parse((await runCli(['list', '--json'], env)).stdout) as Listed[]).find((m) => m.name === 'app');
      }
      expect(app?.status.runtimeStatus.status).toBe('dead');
      expect(app!.status.runtimeStatus.description).toMatch(/security version 1 is below 2/);
    } finally {
      if (daemon) await stopDaemon(daemon, 'SIGKILL');
      await sim.stop();
      cleanup();
    }
  });
});
