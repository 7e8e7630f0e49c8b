import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { EMBEDDED_DEFAULT_TOML } from '../host/config/default.js';
import { EMBEDDED_SOURCE, loadConfig, parseConfigText, redactConfig, REDACTED } from '../host/config/load.js';
import { configProblems } from './helpers/config.js';
import { envFor, runCli, tempHome } from './helpers/cli.js';

const env = { EDGEWARD_HOME: '/tmp/ew-config-test' } as NodeJS.ProcessEnv;

const problems = (text: string) => configProblems(text, env);

describe('config', () => {
  it('the embedded default is valid and needs no file', async () => {
    const { config, source } = await loadConfig(EMBEDDED_SOURCE, env);
    expect(source).toBe(EMBEDDED_SOURCE);
    expect(config.state_dir).toBe('/tmp/ew-config-test/state');
    expect(config.keys.backend).toBe('file');
    expect(config.provisioning).toEqual({ source: 'none' });
    expect(config.connect.management_uri).toBe('unix:///tmp/ew-config-test/run/mgmt.sock');
    expect(config.edge_ca).toEqual({ auto_generated_edge_ca_expiry_days: 90 });
  });

  it('a wrong type names the field and what was expected', () => {
    const p = problems('hostname = 5\n[provisioning]\nsource = "none"\n');
    expect(p).toEqual([{ path: 'hostname', message: expect.stringMatching(/expected string/i) }]);
  });

  it('an unknown provisioning source names the field and the allowed values', () => {
    const p = problems('[provisioning]\nsource = "cloud"\n');
    expect(p).toEqual([{ path: 'provisioning.source', message: 'expected one of "none", "manual", "dps", got "cloud"' }]);
  });

  it('a file without [provisioning] overrides the embedded default one key at a time', () => {
    const { config } = parseConfigText('[runtime]\ndeployment = "file:///srv/deploy.json"\n', 't', env);
    const embedded = parseConfigText(EMBEDDED_DEFAULT_TOML, EMBEDDED_SOURCE, env).config;
    // Only the key given changed: same hostname, no cloud, same sockets, state and key store.
    expect(config).toEqual({ ...embedded, runtime: { ...embedded.runtime, deployment: 'file:///srv/deploy.json' } });
    expect(config.hostname).toBe('edgeward-dev');
    // A socket given in [listen] alone applies to [connect] too, as without the default.
    const sock = parseConfigText('[listen]\nmanagement_uri = "unix:///tmp/m.sock"\n', 't', env).config;
    expect(sock.connect.management_uri).toBe('unix:///tmp/m.sock');
    expect(sock.connect.workload_uri).toBe(embedded.connect.workload_uri);
    // A tagged table is replaced whole: a preloaded Edge CA does not inherit the quickstart expiry.
    const ca = parseConfigText('[edge_ca]\ncert = "file:///c.pem"\npk = "file:///k.pem"\n', 't', env).config;
    expect(ca.edge_ca).toEqual({ cert: 'file:///c.pem', pk: 'file:///k.pem' });
  });

  it('a file with [provisioning] describes the device on its own: no sample deployment, its own hostname', () => {
    const { config } = parseConfigText('hostname = "gw"\n[provisioning]\nsource = "none"\n', 't', env);
    expect(config.runtime.deployment).toBeUndefined();
    expect(config.hostname).toBe('gw');
  });

  it('a missing required field inside a table is named', () => {
    const p = problems('[provisioning]\nsource = "dps"\n[provisioning.attestation]\nmethod = "tpm"\nregistration_id = "r"\n');
    expect(p.map((x) => x.path)).toContain('provisioning.id_scope');
    expect(p.find((x) => x.path === 'provisioning.id_scope')!.message).toMatch(/required/);
  });

  it('a TOML syntax error names the line', () => {
    const p = problems('hostname = "a"\n[provisioning]\nsource = "none"\n[keys\nbackend = "file"\n');
    expect(p[0]!.message).toMatch(/TOML syntax error at line 4/);
  });

  it('unknown keys in Edgeward tables are refused; IoT Edge-only keys are ignored and reported', () => {
    expect(problems('[provisioning]\nsource = "none"\n[keys]\nbackend = "file"\nbakend = "x"\n')[0]).toEqual({ path: 'keys', message: 'unknown key(s) "bakend"' });
    const ok = parseConfigText('[provisioning]\nsource = "none"\n[moby_runtime]\nuri = "unix:///var/run/docker.sock"\n', 't', env);
    expect(ok.ignored).toEqual(['moby_runtime']);
  });

  it('[modules]: signature policy "optional" and no trusted signers by default; signer paths must be absolute', () => {
    const { config } = parseConfigText('[provisioning]\nsource = "none"\n', 't', env);
    expect(config.modules).toEqual({ signature_policy: 'optional', trusted_signers: [] });
    const set = parseConfigText('[provisioning]\nsource = "none"\n[modules]\nsignature_policy = "required"\ntrusted_signers = ["/etc/edgeward/signer.pem", "file:///etc/edgeward/ca.pem"]\n', 't', env);
    expect(set.config.modules.signature_policy).toBe('required');
    expect(problems('[provisioning]\nsource = "none"\n[modules]\ntrusted_signers = ["signer.pem"]\n')).toEqual([{ path: 'modules.trusted_signers.0', message: expect.stringMatching(/absolute path/) }]);
    expect(problems('[provisioning]\nsource = "none"\n[modules]\nsignature_policy = "bogus"\n')[0]!.path).toBe('modules.signature_policy');
  });

  it('IoT Edge manual connection-string provisioning is accepted and its secret redacted', () => {
    const { config } = parseConfigText('[provisioning]\nsource = "manual"\nconnection_string = "HostName=h.azure-devices.net;DeviceId=d;SharedAccessKey=c2VjcmV0"\n', 't', env);
    const shown = JSON.stringify(redactConfig(config));
    expect(shown).not.toContain('c2VjcmV0');
    expect(shown).toContain(REDACTED);
  });

  it('[aziot_keys] pkcs11 settings select the PKCS#11 backend (IoT Edge compatibility)', () => {
    const { config } = parseConfigText(
      '[provisioning]\nsource = "none"\n[aziot_keys]\npkcs11_lib_path = "/usr/lib/softhsm/libsofthsm2.so"\npkcs11_base_slot = "pkcs11:token=Edge?pin-value=1234"\n',
      't',
      env,
    );
    expect(config.keys).toEqual({ backend: 'pkcs11', pkcs11: { library: '/usr/lib/softhsm/libsofthsm2.so', sessions: 8, token_label: 'Edge', pin: '1234' } });
    expect(JSON.stringify(redactConfig(config))).not.toContain('1234');
  });
});

describe('config refused by the CLI', () => {
  const cases: [string, string, RegExp][] = [
    ['wrong type', 'hostname = 5\n[provisioning]\nsource = "none"\n', /hostname: .*expected string/i],
    ['unknown provisioning source', '[provisioning]\nsource = "cloud"\n', /provisioning\.source: expected one of/],
    ['missing required field', '[provisioning]\nsource = "manual"\niothub_hostname = "h"\n', /provisioning\.(device_id|authentication): required/],
    ['TOML syntax error', '[provisioning\nsource = "none"\n', /line 1/],
    ['unknown signature policy', '[provisioning]\nsource = "none"\n[modules]\nsignature_policy = "bogus"\n', /modules\.signature_policy: .*optional.*required/],
  ];
  for (const [name, text, pattern] of cases) {
    it(`${name}: exit 2, the file and field named, no stack trace`, async () => {
      const { home, cleanup } = tempHome();
      try {
        const file = path.join(home, 'bad.toml');
        writeFileSync(file, text);
        const r = await runCli(['daemon', '-c', file], envFor(home));
        expect(r.code).toBe(2);
        expect(r.stderr).toContain(file);
        expect(r.stderr).toMatch(pattern);
        expect(r.stderr).not.toMatch(/\n\s+at /);
        const check = await runCli(['config', 'apply', '-c', file], envFor(home));
        expect(check.code).toBe(2);
      } finally {
        cleanup();
      }
    });
  }

  it('an unreadable [modules] trusted signer: the daemon exits 2 naming the entry', async () => {
    const { home, cleanup } = tempHome();
    try {
      const file = path.join(home, 'signers.toml');
      writeFileSync(file, `[provisioning]\nsource = "none"\n[runtime]\n[modules]\ntrusted_signers = ["${path.join(home, 'missing.pem')}"]\n`);
      const r = await runCli(['daemon', '-c', file], envFor(home));
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(file);
      expect(r.stderr).toMatch(/modules\.trusted_signers\.0: .*missing\.pem: cannot read \(ENOENT\)/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    } finally {
      cleanup();
    }
  });

  it('config show redacts the TPM hierarchy passwords', () => {
    const { config } = parseConfigText('[provisioning]\nsource = "none"\n[tpm]\ntcti = "swtpm:port=2321"\n[tpm.hierarchy_authorization]\nowner = "own-secret"\nendorsement = "endo-secret"\n', 't', env);
    const shown = JSON.stringify(redactConfig(config));
    expect(shown).not.toContain('own-secret');
    expect(shown).not.toContain('endo-secret');
    expect(shown).toContain('swtpm:port=2321');
  });
});
