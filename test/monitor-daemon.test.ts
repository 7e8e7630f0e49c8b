/**
 * Security extensions through the daemon (issue 15): `[security_extensions] trusted_signers` in the
 * config, a signed extension deployed from a manifest, a finding it submits listed by `edgeward findings`
 * (table and --json); a plain module asking for a monitor grant is refused by the same deploy.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { daemonHomePerTest, runCli, startDaemon } from './helpers/cli.js';
import { buildMonitorGuest } from './helpers/monitor.js';
import { Pki } from './helpers/pki.js';

let pki: Pki;
beforeAll(() => { pki = new Pki(); pki.key('vendor', 'ec'); });
afterAll(() => pki.cleanup());

describe('edgeward findings', () => {
  const t = daemonHomePerTest('ew-mon-');

  it('a trusted extension deployed from a manifest reports a finding that `edgeward findings` lists; a plain module cannot ask for monitor grants', async () => {
    writeFileSync(path.join(t.home, 'config.toml'), `[provisioning]\nsource = "none"\n[runtime]\n[security_extensions]\ntrusted_signers = ["${pki.file('vendor.pub')}"]\n`);
    const wasm = path.join(t.home, 'reporter.wasm');
    writeFileSync(wasm, await buildMonitorGuest('reporter'));
    const sig = pki.sign('vendor', wasm, path.join(t.home, 'reporter.sig'));
    const extension = { settings: { image: wasm }, kind: 'security-extension', capabilities: ['edgeward:monitor/findings'], signature: { file: sig, signer: pki.file('vendor.pub') } };
    const manifest = path.join(t.home, 'manifest.json');
    writeFileSync(manifest, JSON.stringify({ modules: { reporter: extension, sneaky: { ...extension, kind: 'module' } } }));
    t.daemon = await startDaemon(t.env);

    const deployed = await runCli(['deploy', manifest], t.env, 60_000);
    expect(deployed.stdout + deployed.stderr).toContain('created: reporter');
    expect(deployed.stdout + deployed.stderr).toContain('only a component of kind "security-extension" may be granted');
    expect((await runCli(['findings'], t.env)).stdout).toBe('no findings\n');
    const invoked = await runCli(['invoke', 'reporter', 'report', '"module x tampered"'], t.env);
    expect(invoked.stdout).toBe('ok\n');

    const listed = await runCli(['findings'], t.env);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^ID +TIME +SEVERITY +SOURCE +RULE +SUBJECT +SUMMARY\nf-1 +\S+ +high +reporter +EW-TEST +- +module x tampered\n$/);
    const json = JSON.parse((await runCli(['findings', '--json'], t.env)).stdout) as { findings: { source: string; ruleId: string }[]; dropped: number };
    expect(json.findings).toEqual([expect.objectContaining({ source: 'reporter', ruleId: 'EW-TEST' })]);
    expect(json.dropped).toBe(0);
  }, 90_000);
});
