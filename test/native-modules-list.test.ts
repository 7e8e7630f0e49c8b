/**
 * Native modules (registered through /identities, run outside Edgeward) in `edgeward list` and `logs`,
 * through a real daemon and the CLI: listed with type native, status unknown and their generation id;
 * `logs`, `start` and `invoke` answer what Edgeward cannot do for them and where to look instead, not
 * "not found"; a deployment does not count them as modules to remove; unregistered, they leave the list.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { envFor, runCli, startDaemon, stopDaemon, tempHome, type DaemonHandle } from './helpers/cli.js';
import type { ModuleDetails } from '../host/runtime/types.js';

describe('native modules in list and logs', () => {
  let home: string;
  let cleanup: () => void;
  let env: NodeJS.ProcessEnv;
  let daemon: DaemonHandle;

  beforeAll(async () => {
    ({ home, cleanup } = tempHome());
    env = envFor(home);
    const key = randomBytes(32).toString('base64');
    // No deployment: the only modules are the native ones this test registers.
    writeFileSync(path.join(home, 'config.toml'), `hostname = "gw.local"\n[provisioning]\nsource = "manual"\nconnection_string = "HostName=hub.example.net;DeviceId=dev-1;SharedAccessKey=${key}"\n`);
    daemon = await startDaemon(env);
  }, 60_000);
  afterAll(async () => {
    if (daemon) await stopDaemon(daemon);
    cleanup();
  });

  it('lists a registered native module, refuses logs/start/invoke with where to look, and drops it once unregistered', async () => {
    const reg = await runCli(['module', 'register', 'sensor'], env);
    expect(reg.code, reg.stderr).toBe(0);
    const generation = /generation (\d+)/.exec(reg.stdout)?.[1];
    expect(generation).toMatch(/^\d+$/);

    const json = await runCli(['list', '--json'], env);
    expect(json.code, json.stderr).toBe(0);
    const modules = JSON.parse(json.stdout) as ModuleDetails[];
    const sensor = modules.find((m) => m.name === 'sensor');
    expect(sensor).toMatchObject({
      name: 'sensor',
      type: 'native',
      status: { runtimeStatus: { status: 'unknown', description: expect.stringContaining('does not run or watch its process') } },
      edgeward: { kind: 'native', generationId: generation, workloadUri: expect.stringMatching(/^unix:\/\/.*\/sensor\.sock$/) },
    });

    const list = await runCli(['list'], env);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`^sensor\\s+unknown\\s+Native, not run by Edgeward; registered .+ ago\\s+-\\s+-\\s+native \\(generation ${generation}\\)$`, 'm'));

    const logs = await runCli(['logs', 'sensor'], env);
    expect(logs.code).toBe(1);
    expect(logs.stderr).toContain('module "sensor" is a native module: Edgeward does not run it and does not capture its output; read its logs where it runs (journalctl -u <its unit>, docker logs <its container>, or its own log files)');
    expect(logs.stderr).not.toMatch(/not found/);

    for (const args of [['start', 'sensor'], ['invoke', 'sensor', 'ping']]) {
      const r = await runCli(args, env);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`(409): module "sensor" is a native module: Edgeward does not run it, so it cannot ${args[0]} it;`);
      expect(r.stderr).toContain('edgeward module unregister sensor');
    }
    // A module that is neither is still "not found".
    expect((await runCli(['logs', 'nobody'], env)).stderr).toMatch(/\(404\): module "nobody" not found/);

    // An (empty) deployment is the whole set of *component* modules: it does not announce removing sensor.
    const manifest = path.join(home, 'empty.json');
    writeFileSync(manifest, JSON.stringify({ modules: {} }));
    const deploy = await runCli(['deploy', manifest], env);
    expect(deploy.code, deploy.stderr).toBe(0);
    expect(deploy.stdout).not.toMatch(/removing/);
    expect((await runCli(['list'], env)).stdout).toMatch(/^sensor\s+unknown/m);

    expect((await runCli(['module', 'unregister', 'sensor'], env)).code).toBe(0);
    const after = JSON.parse((await runCli(['list', '--json'], env)).stdout) as ModuleDetails[];
    expect(after.some((m) => m.name === 'sensor')).toBe(false);
    expect((await runCli(['logs', 'sensor'], env)).stderr).toMatch(/\(404\)/);
  }, 60_000);
});
