/**
 * The first hour (issue 13), played end to end through the CLI as each newcomer would, in a temporary home:
 * - a module author: `edgeward new module` → build → deploy → daemon restart → still deployed, answering;
 * - an IoT Edge user: `config import` of their config.toml → `config apply` → `check` → the daemon starts
 *   on it, provisioned as the file says.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { assetPath } from '../host/runtime/assets.js';
import { daemonHomePerTest, modulesStarted, runCli, startDaemon, stopDaemon } from './helpers/cli.js';

const work = mkdtempSync(path.join(os.tmpdir(), 'ew-persona-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('personas, end to end', () => {
  const t = daemonHomePerTest('ew-persona-home-');

  it('module author: scaffold, build, deploy, restart the daemon: the module is still there and answers', async () => {
    const made = await runCli(['new', 'module', 'greeter', '--dir', work], t.env);
    expect(made.code, made.stderr).toBe(0);
    const dir = path.join(work, 'greeter');
    expect(made.stdout).toMatch(/next: node guests\/build\.mjs \S*greeter && npx vitest run --root \S*greeter/);
    const built = spawnSync(process.execPath, [assetPath('guests/build.mjs'), dir], { encoding: 'utf8' });
    expect(built.status, built.stderr).toBe(0);

    t.daemon = await startDaemon(t.env); // no config file: the embedded default and its hello
    expect(await modulesStarted(t.env)).toEqual(['hello']);
    const deployed = await runCli(['deploy', path.join(dir, 'manifest.json')], t.env, 120_000);
    expect(deployed.code, deployed.stderr).toBe(0);
    expect(deployed.stdout).toContain('removing (not in the manifest, which is the whole set): hello');
    expect((await runCli(['invoke', 'greeter', 'ping'], t.env)).stdout).toBe('{"pong":"greeter"}\n');

    await stopDaemon(t.daemon);
    t.daemon = await startDaemon(t.env);
    expect(await modulesStarted(t.env, 120_000)).toEqual(['greeter']);
    expect((await runCli(['invoke', 'greeter', 'ping'], t.env)).stdout).toBe('{"pong":"greeter"}\n');
  }, 600_000);

  it('IoT Edge user: import their config.toml, apply, check, and the daemon starts provisioned as it says', async () => {
    const aziot = path.join(work, 'aziot-config.toml');
    writeFileSync(aziot, [
      'hostname = "gw-line3"',
      '[provisioning]',
      'source = "manual"',
      'connection_string = "HostName=contoso.azure-devices.net;DeviceId=gw-line3;SharedAccessKey=c2VjcmV0LWtleS1vZi10aGUtZGV2aWNl"',
      '[agent]',
      'name = "edgeAgent"',
      'type = "docker"',
      '[connect]',
      `workload_uri = "unix://${t.home}/run/workload.sock"`,
      `management_uri = "unix://${t.home}/run/mgmt.sock"`,
      '[listen]',
      'workload_uri = "fd://aziot-edged.workload.socket"',
      'management_uri = "fd://aziot-edged.mgmt.socket"',
      '[moby_runtime]',
      'uri = "unix:///var/run/docker.sock"',
      '',
    ].join('\n'));
    const imported = path.join(work, 'edgeward.toml');
    const imp = await runCli(['config', 'import', aziot, '-o', imported], t.env);
    expect(imp.code, imp.stdout + imp.stderr).toBe(0);
    expect(imp.stdout).toContain(`Next: "edgeward config apply -c ${imported}"`);
    const applied = await runCli(['config', 'apply', '-c', imported], t.env);
    expect(applied.code, applied.stdout + applied.stderr).toBe(0);
    const checked = await runCli(['check'], t.env);
    expect(checked.stdout).not.toMatch(/×/); // no error; the daemon is not running yet: a warning at most
    expect(checked.code, checked.stdout).toBe(0);

    t.daemon = await startDaemon(t.env);
    const status = JSON.parse((await runCli(['system', 'status', '--json'], t.env)).stdout) as { services: { name: string; detail: string }[] };
    expect(status.services.find((s) => s.name === 'identity')?.detail).toBe('device gw-line3 on contoso.azure-devices.net (sas)');
    expect(await modulesStarted(t.env)).toEqual([]); // a device config deploys no sample
    const env = await runCli(['module', 'register', 'sensor'], t.env);
    expect(env.code, env.stderr).toBe(0);
    expect((await runCli(['module', 'env', 'sensor'], t.env)).stdout).toContain('IOTEDGE_IOTHUBHOSTNAME=contoso.azure-devices.net');
  }, 120_000);
});
