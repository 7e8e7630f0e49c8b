/**
 * Issue 13 ("the first hour"): what a config gets back. Every schema problem of a file in one message,
 * IoT Edge settings this build does not have answered with what to use instead, [connect] and [listen]
 * kept consistent, and `config apply` / `check` refusing (exit 2) what the daemon would refuse at start.
 */
import { describe, expect, it } from 'vitest';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseConfigText } from '../host/config/load.js';
import { configProblems } from './helpers/config.js';
import { envFor, runCli, tempHome } from './helpers/cli.js';

const env = { EDGEWARD_HOME: '/tmp/ew-config-problems' } as NodeJS.ProcessEnv;

const problems = (text: string) => configProblems(text, env);

async function withHome(fn: (home: string, file: (name: string, text: string) => string) => Promise<void>): Promise<void> {
  const { home, cleanup } = tempHome('ew-cfgp-');
  try {
    await fn(home, (name, text) => {
      const f = path.join(home, name);
      writeFileSync(f, text);
      return f;
    });
  } finally {
    cleanup();
  }
}

describe('config problems, all at once', () => {
  it('a config with three mistakes reports all three in one message', () => {
    const p = problems('hostname = 5\n[provisioning]\nsource = "cloud"\n[keys]\nbakend = "file"\n');
    expect(p).toEqual([
      { path: 'provisioning.source', message: 'expected one of "none", "manual", "dps", got "cloud"' },
      { path: 'hostname', message: expect.stringMatching(/expected string/i) },
      { path: 'keys', message: 'unknown key(s) "bakend"' },
    ]);
  });

  it('[edge_ca] method = "est": EST is not supported yet, use quickstart or cert/pk files (not "unknown key")', () => {
    const p = problems('[provisioning]\nsource = "none"\n[edge_ca]\nmethod = "est"\ncommon_name = "gw Edge CA"\n[edge_ca.auto_renew]\nthreshold = "80%"\n');
    expect(p).toEqual([
      {
        path: 'edge_ca',
        message:
          'method = "est" (an Edge CA issued by an EST server: EST is not supported yet): leave [edge_ca] without method for a quickstart Edge CA generated on the device, or give cert = "file:///…" and pk = "file:///…" for an Edge CA issued elsewhere',
      },
    ]);
  });

  it('fd:// [listen] URIs (systemd socket activation) are accepted beside a [connect] path', () => {
    const { config } = parseConfigText('[provisioning]\nsource = "none"\n[connect]\nmanagement_uri = "unix:///run/iotedge/mgmt.sock"\nworkload_uri = "unix:///run/iotedge/workload.sock"\n[listen]\nmanagement_uri = "fd://aziot-edged.mgmt.socket"\nworkload_uri = "fd://aziot-edged.workload.socket"\n', 't', {});
    expect(config.listen).toEqual({ management_uri: 'fd://aziot-edged.mgmt.socket', workload_uri: 'fd://aziot-edged.workload.socket' });
    expect(config.connect.management_uri).toBe('unix:///run/iotedge/mgmt.sock');
  });

  it('[connect] alone sets [listen] too; a [connect] that differs from [listen] is refused naming both', () => {
    const { config } = parseConfigText('[provisioning]\nsource = "none"\n[connect]\nmanagement_uri = "unix:///tmp/x/m.sock"\n', 't', env);
    expect(config.listen.management_uri).toBe('unix:///tmp/x/m.sock');
    expect(config.connect.workload_uri).toBe(config.listen.workload_uri);
    const p = problems('[provisioning]\nsource = "none"\n[connect]\nmanagement_uri = "unix:///tmp/a.sock"\n[listen]\nmanagement_uri = "unix:///tmp/b.sock"\n');
    expect(p).toEqual([
      { path: 'connect.management_uri', message: '"unix:///tmp/a.sock" differs from listen.management_uri "unix:///tmp/b.sock": the CLI connects where the daemon listens, so give both the same URI (or leave it out of [connect])' },
    ]);
  });
});

describe('config apply and check run the daemon start-up preflight', () => {
  it('a missing DPS payload file and a missing trust_bundle_cert: apply and check exit 2 naming both in one message, nothing is applied', async () => {
    await withHome(async (home, file) => {
      const missing = path.join(home, 'root-ca.pem');
      const payload = path.join(home, 'payload.json');
      const cfg = file('dps.toml', `trust_bundle_cert = "file://${missing}"\n[provisioning]\nsource = "dps"\nid_scope = "0ne00ABCDEF"\npayload = { uri = "file://${payload}" }\n[provisioning.attestation]\nmethod = "symmetric_key"\nregistration_id = "gw"\nsymmetric_key = { value = "AAAA" }\n`);
      const r = await runCli(['config', 'apply', '-c', cfg], envFor(home));
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`error: invalid config ${cfg}:\n`);
      expect(r.stderr).toContain(`  provisioning.payload: cannot read ${payload} (ENOENT): put the file there or fix the URI`);
      expect(r.stderr).toContain(`  trust_bundle_cert: cannot read ${missing} (ENOENT): put the file there or fix the URI`);
      expect(existsSync(path.join(home, 'state', 'effective-config.toml'))).toBe(false);
      expect(existsSync(path.join(home, 'config.toml'))).toBe(false);
      const check = await runCli(['-c', cfg, 'check'], envFor(home));
      expect(check.code).toBe(2);
      expect(check.stdout).toContain('× config file is well-formed - Error');
      expect(check.stdout).toContain('trust_bundle_cert: cannot read');
      expect(check.stdout).toContain('fix: fix the fields named above, then run "edgeward config apply"');
    });
  });

  it('a trust_bundle_cert that is not a certificate, and a missing PKCS#11 library: exit 2 with what to do', async () => {
    await withHome(async (home, file) => {
      const notPem = file('ca.pem', 'hello\n');
      const cfg = file('p.toml', `trust_bundle_cert = "file://${notPem}"\n[provisioning]\nsource = "none"\n[keys]\nbackend = "pkcs11"\n[keys.pkcs11]\nlibrary = "/nonexistent/libp11.so"\ntoken_label = "t"\npin = "1234"\n`);
      const r = await runCli(['config', 'apply', '-c', cfg], envFor(home));
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`trust_bundle_cert: ${notPem} holds no PEM certificate ("-----BEGIN CERTIFICATE-----"): give the certificate file in PEM form`);
      expect(r.stderr).toContain('keys.pkcs11.library: PKCS#11 library not found: /nonexistent/libp11.so: install the vendor library or fix the path');
      expect(r.stderr).not.toContain('1234');
      const check = await runCli(['-c', cfg, 'check'], envFor(home));
      expect(check.code).toBe(2);
      expect(check.stdout).toContain('× key store is reachable - Error');
      expect(check.stdout).toContain('fix: the daemon refuses to start until this is fixed');
    });
  });

  it('an IoT Edge [edge_ca] method = "est" is refused by apply with exit 2 and what to use', async () => {
    await withHome(async (home, file) => {
      const cfg = file('est.toml', '[provisioning]\nsource = "none"\n[edge_ca]\nmethod = "est"\n');
      const r = await runCli(['config', 'apply', '-c', cfg], envFor(home));
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('edge_ca: method = "est" (an Edge CA issued by an EST server: EST is not supported yet)');
      expect(r.stderr).not.toContain('unknown key');
    });
  });
});
