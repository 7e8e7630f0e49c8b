/**
 * `edgeward config import`: an IoT Edge 1.5 `/etc/aziot/config.toml` in, an Edgeward config out, one line
 * per key (kept / mapped / ignored / unsupported), run through the real CLI on real files.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseConfigText } from '../host/config/load.js';
import { envFor, runCli, tempHome } from './helpers/cli.js';

/** The reference's realistic IoT Edge 1.5 super-config: DPS + TPM, EST-issued Edge CA, Docker agent. */
const DPS_EST = `hostname = "gw-line3.contoso.local"
trust_bundle_cert = "file:///var/secrets/contoso-root-ca.pem"
auto_reprovisioning_mode = "Dynamic"
allow_elevated_docker_permissions = false
[provisioning]
source = "dps"
global_endpoint = "https://global.azure-devices-provisioning.net"
id_scope = "0ne00ABCDEF"
[provisioning.attestation]
method = "tpm"
registration_id = "gw-line3"
[tpm]
tcti = "device:/dev/tpmrm0"
[cert_issuance.est]
trusted_certs = ["file:///var/secrets/est-server-ca.pem"]
[edge_ca]
method = "est"
common_name = "gw-line3 Edge CA"
[agent]
name = "edgeAgent"
type = "docker"
[agent.config]
image = "mcr.microsoft.com/azureiotedge-agent:1.5"
[connect]
workload_uri = "unix:///var/run/iotedge/workload.sock"
management_uri = "unix:///var/run/iotedge/mgmt.sock"
[listen]
workload_uri = "fd://aziot-edged.workload.socket"
management_uri = "fd://aziot-edged.mgmt.socket"
[moby_runtime]
uri = "unix:///var/run/docker.sock"
network = "azure-iot-edge"
`;

/** A manual connection-string device as `iotedge config mp` writes it, with IoT Edge's sockets. */
const MANUAL = `hostname = "gw1"
[provisioning]
source = "manual"
connection_string = "HostName=hub.azure-devices.net;DeviceId=gw1;SharedAccessKey=c2VjcmV0"
[aziot_keys]
homedir_path = "/var/lib/aziot/keyd"
[edge_ca]
auto_generated_edge_ca_expiry_days = 30
[agent]
name = "edgeAgent"
[connect]
workload_uri = "unix:///var/run/iotedge/workload.sock"
management_uri = "unix:///var/run/iotedge/mgmt.sock"
[listen]
workload_uri = "fd://aziot-edged.workload.socket"
management_uri = "fd://aziot-edged.mgmt.socket"
[watchdog]
max_retries = "infinite"
`;

async function inHome(fn: (home: string, env: NodeJS.ProcessEnv, write: (name: string, text: string) => string) => Promise<void>): Promise<void> {
  const { home, cleanup } = tempHome('ew-imp-');
  try {
    await fn(home, envFor(home), (name, text) => {
      const f = path.join(home, name);
      writeFileSync(f, text);
      return f;
    });
  } finally {
    cleanup();
  }
}

describe('edgeward config import', () => {
  it('a manual IoT Edge config: every key reported, fd:// listen mapped to [connect], the file loads and applies', async () => {
    await inHome(async (home, env, write) => {
      const src = write('aziot.toml', MANUAL);
      const out = path.join(home, 'imported.toml');
      const r = await runCli(['config', 'import', src, '-o', out], env);
      expect(r.code).toBe(0);
      expect(r.stdout.split('\n')).toEqual([
        'hostname: kept',
        'provisioning: kept (source = "manual")',
        "aziot_keys.homedir_path: ignored (a setting of aziot-keyd; Edgeward's key store is configured in [keys])",
        'edge_ca: kept (quickstart)',
        'agent: ignored (Docker settings: Edgeward runs WASI components, not containers; deploy modules with "edgeward deploy")',
        'watchdog: ignored (the daemon supervises and restarts its modules itself)',
        'listen.management_uri: mapped ("fd://aziot-edged.mgmt.socket" (systemd socket activation) → "unix:///var/run/iotedge/mgmt.sock": the daemon binds its own socket, where [connect] points)',
        'listen.workload_uri: mapped ("fd://aziot-edged.workload.socket" (systemd socket activation) → "unix:///var/run/iotedge/workload.sock": the daemon binds its own socket, where [connect] points)',
        'connect: kept',
        'listen: kept',
        `Wrote ${out}. Next: "edgeward config apply -c ${out}".`,
        '',
      ]);
      const { config } = parseConfigText(readFileSync(out, 'utf8'), out, env);
      expect(config.listen).toEqual(config.connect);
      expect(config.connect.management_uri).toBe('unix:///var/run/iotedge/mgmt.sock');
      expect(config.edge_ca).toEqual({ auto_generated_edge_ca_expiry_days: 30 });
      const applied = await runCli(['config', 'apply', '-c', out], env);
      expect(applied.code).toBe(0);
      expect(applied.stdout).toContain('Edgeward has been configured successfully!');
    });
  });

  it('DPS is kept; EST settings are unsupported with what to use instead; the file keeps them commented out; exit 2', async () => {
    await inHome(async (home, env, write) => {
      const src = write('aziot.toml', DPS_EST);
      const out = path.join(home, 'out.toml');
      const r = await runCli(['config', 'import', src, '-o', out], env);
      expect(r.code).toBe(2);
      expect(r.stdout).toContain('provisioning: kept (source = "dps")');
      expect(r.stdout).toContain('edge_ca: unsupported (method = "est" (an Edge CA issued by an EST server: EST is not supported yet): leave [edge_ca] without method for a quickstart Edge CA');
      expect(r.stdout).toContain('cert_issuance: unsupported (EST and local-CA certificate issuance are not supported yet: use a quickstart Edge CA (no [edge_ca] method) or certificate files (cert/pk))');
      expect(r.stdout).toContain('auto_reprovisioning_mode: kept');
      expect(r.stdout).toContain('moby_runtime: ignored (Docker settings');
      expect(r.stdout).toContain('tpm: kept');
      expect(r.stdout).toContain(`Wrote ${out} with 2 unsupported setting(s) commented out: edit it as the lines above say, then run "edgeward config apply -c ${out}".`);
      const text = readFileSync(out, 'utf8');
      expect(text).toMatch(/^\[provisioning\]\nsource = "dps"/m);
      expect(text).toContain('# [edge_ca]\n# method = "est"');
    });
  });

  it('parent_hostname (nested edge) is unsupported, not silently ignored', async () => {
    await inHome(async (home, env, write) => {
      const src = write('aziot.toml', 'parent_hostname = "parent.local"\n' + MANUAL);
      const r = await runCli(['config', 'import', src, '-o', path.join(home, 'o.toml')], env);
      expect(r.code).toBe(2);
      expect(r.stdout).toContain('parent_hostname: unsupported (nested edge (a parent gateway) is not supported yet: the device connects to IoT Hub directly; remove parent_hostname)');
    });
  });

  it('refuses to overwrite without -f; -f overwrites; the default output is <home>/config.toml', async () => {
    await inHome(async (home, env, write) => {
      const src = write('aziot.toml', MANUAL);
      const target = path.join(home, 'config.toml');
      expect((await runCli(['config', 'import', src], env)).code).toBe(0);
      writeFileSync(target, '# mine\n');
      const again = await runCli(['config', 'import', src], env);
      expect(again.code).toBe(2);
      expect(again.stderr).toBe(`error: ${target} already exists: pass -f to overwrite it, or -o to write elsewhere\n`);
      expect(readFileSync(target, 'utf8')).toBe('# mine\n');
      expect((await runCli(['config', 'import', src, '-f'], env)).code).toBe(0);
      expect(readFileSync(target, 'utf8')).toContain('[provisioning]');
    });
  });

  it('a missing input file says which file to give', async () => {
    await inHome(async (home, env) => {
      const r = await runCli(['config', 'import', path.join(home, 'nope.toml')], env);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('file not found: give the IoT Edge config to import, e.g. "edgeward config import /etc/aziot/config.toml"');
    });
  });
});
