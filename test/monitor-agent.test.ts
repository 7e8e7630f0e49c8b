/**
 * The sample security extension guests/integrity-agent (built by `npm run build:guests`), signed by a
 * trusted extension signer: it turns a denied call and a tampered component of another module into
 * findings and quarantines that module at its threshold.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { assetPath } from '../host/runtime/assets.js';
import { TrustStore } from '../host/runtime/trust.js';
import { Pki } from './helpers/pki.js';
import { Fixture, rejection, spec, waitFor } from './helpers/runtime.js';
import { monitorRuntime } from './helpers/monitor.js';

let pki: Pki;
let fx: Fixture;
beforeAll(() => {
  pki = new Pki();
  pki.key('vendor', 'ec');
  // Cached by source hash: a no-op when the guest is up to date (~1 min to build when not).
  const r = spawnSync(process.execPath, [assetPath('guests/build.mjs'), 'integrity-agent'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`npm run build:guests -- integrity-agent failed:\n${r.stderr}`);
}, 480_000);
afterAll(() => pki.cleanup());
beforeEach(() => { fx = new Fixture(); });
afterEach(async () => { await fx.cleanup(); });

const AGENT = assetPath('guests/integrity-agent/dist/integrity-agent.wasm');
const GRANTS = ['edgeward:monitor/events', 'edgeward:monitor/findings', 'edgeward:monitor/respond'];

describe('integrity-agent', () => {
  it('a denied call and a tampered component of the victim: two findings, then the victim is quarantined', async () => {
    const trust = { policy: 'optional' as const, store: TrustStore.empty(), extensions: TrustStore.fromPem([readFileSync(pki.file('vendor.pub'), 'utf8')]) };
    const { rt, hub } = await monitorRuntime(fx, { trust, limits: { memory_mib: 64, call_timeout_ms: 10_000, max_value_bytes: 256 * 1024 } });
    const signature = { file: pki.sign('vendor', AGENT, path.join(fx.dir, 'agent.sig')), signer: pki.file('vendor.pub') };
    await rt.create(spec('agent', AGENT, { kind: 'security-extension', capabilities: GRANTS, signature, settings: { threshold: 2 } }));
    const victim = await rt.create(spec('victim', await fx.guest('echo')));

    // A denied call: an update of the victim importing what it is not granted.
    await rejection(rt.update(spec('victim', await fx.guest('hostcall'))));
    // A tampered component: the stored copy changed under the running module, found at its restart.
    const stored = rt.loader.componentPath(victim.config.settings.imageHash as `sha256:${string}`);
    chmodSync(stored, 0o600);
    writeFileSync(stored, Buffer.concat([readFileSync(stored), Buffer.from('tampered')]));
    await rejection(rt.restart('victim'));

    const scan = await rt.invoke('agent', 'scan', null);
    expect(scan).toEqual({ status: 200, payload: { events: 2, findings: 2, quarantined: ['victim'], dropped: '0' } });
    const findings = hub.findings.list().findings;
    expect(findings.map((f) => [f.source, f.ruleId, f.subject])).toEqual([
      ['agent', 'IA-DENIED-CALL', 'victim'],
      ['agent', 'IA-INTEGRITY', 'victim'],
      ['agent', 'edgeward:quarantine', 'victim'],
    ]);
    expect(Object.fromEntries(findings[1]!.evidence)).toMatchObject({ event: 'integrity-violation', expected: victim.config.settings.imageHash });
    expect(hub.findings.quarantined('victim')).toMatchObject({ by: 'agent' });
    await waitFor(async () => (await rt.get('victim')).status.runtimeStatus.status !== 'running');
    expect((await rt.get('victim')).edgeward).toMatchObject({ desiredStatus: 'stopped' });
  }, 60_000);

  it('a call refused at run time (a path out of the data directory) is a denied-call finding of the agent', async () => {
    const trust = { policy: 'optional' as const, store: TrustStore.empty(), extensions: TrustStore.fromPem([readFileSync(pki.file('vendor.pub'), 'utf8')]) };
    const { rt, hub } = await monitorRuntime(fx, { trust, limits: { memory_mib: 64, call_timeout_ms: 10_000, max_value_bytes: 256 * 1024 } });
    const signature = { file: pki.sign('vendor', AGENT, path.join(fx.dir, 'agent.sig')), signer: pki.file('vendor.pub') };
    await rt.create(spec('agent', AGENT, { kind: 'security-extension', capabilities: GRANTS, signature, settings: { threshold: 5 } }));
    await rt.create(spec('reader', await fx.guest('fs'), { capabilities: ['wasi:filesystem/data'] }));
    // Deployed and running: nothing refused yet, so nothing found.
    expect(await rt.invoke('agent', 'scan', null)).toMatchObject({ status: 200, payload: { findings: 0 } });
    // The guest asks for ../outside: the host refuses it (not-permitted) and reports a denied call.
    const refused = await rt.invoke('reader', 'r', '../outside');
    expect(refused.payload).toMatchObject({ message: '31' }); // wasi:filesystem not-permitted
    const scan = await rt.invoke('agent', 'scan', null);
    expect(scan).toMatchObject({ status: 200, payload: { findings: 1, quarantined: [] } });
    const findings = hub.findings.list().findings;
    expect(findings.map((f) => [f.source, f.ruleId, f.subject])).toEqual([['agent', 'IA-DENIED-CALL', 'reader']]);
    expect(Object.fromEntries(findings[0]!.evidence)).toMatchObject({ event: 'denied-call' });
  }, 60_000);
});
