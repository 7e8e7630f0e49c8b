/**
 * Deployments persist (issue 13): a daemon restart restores what was deployed instead of re-applying its
 * configured deployment over it. The embedded default deploys `hello` only on a state directory where
 * nothing was ever deployed; a configured manifest file is re-applied only when it changed.
 */
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildTestGuest } from '../guests/adversarial/components.js';
import { daemonHomePerTest, moduleNames, modulesStarted, runCli, startDaemon, stopDaemon } from './helpers/cli.js';

describe('a deployment survives a daemon restart', () => {
  const t = daemonHomePerTest();

  const names = () => moduleNames(t.env);
  const started = () => modulesStarted(t.env);

  it('embedded default: deploy replaces hello; system restart and a new daemon process keep the deployment', async () => {
    writeFileSync(path.join(t.home, 'echo.wasm'), await buildTestGuest('echo'));
    const manifest = path.join(t.home, 'manifest.json');
    writeFileSync(manifest, JSON.stringify({ modules: { echo: { settings: { image: './echo.wasm' } } } }));

    t.daemon = await startDaemon(t.env); // no config file: the embedded default, which deploys hello
    expect(await started()).toEqual(['hello']);
    const deployed = await runCli(['deploy', manifest], t.env, 60_000);
    expect(deployed.code, deployed.stderr).toBe(0);
    // The manifest is the whole set: what it removes is said before it is applied, and after.
    expect(deployed.stdout).toContain('removing (not in the manifest, which is the whole set): hello\n');
    expect(deployed.stdout).toContain('created: echo\nremoved: hello\n');
    expect(await names()).toEqual(['echo']);

    const restarted = await runCli(['system', 'restart'], t.env, 60_000);
    expect(restarted.code, restarted.stderr).toBe(0);
    expect(await started()).toEqual(['echo']);
    expect(t.daemon.output()).toContain('deployment not re-applied: a deployment was applied here before (last from management API)');

    await stopDaemon(t.daemon);
    t.daemon = await startDaemon(t.env);
    expect(await started()).toEqual(['echo']);
    expect((await runCli(['invoke', 'echo', 'say', '{"x":1}'], t.env)).stdout).toBe('{"x":1}\n');
  }, 120_000);

  it('a configured manifest file is applied when new or changed, not over a later deploy when unchanged', async () => {
    writeFileSync(path.join(t.home, 'echo.wasm'), await buildTestGuest('echo'));
    const configured = path.join(t.home, 'configured.json');
    const write = (modules: Record<string, unknown>) => writeFileSync(configured, JSON.stringify({ modules }));
    write({ first: { settings: { image: './echo.wasm' } } });
    writeFileSync(path.join(t.home, 'config.toml'), `[provisioning]\nsource = "none"\n[runtime]\ndeployment = "${configured}"\n`);
    const other = path.join(t.home, 'other.json');
    writeFileSync(other, JSON.stringify({ modules: { second: { settings: { image: './echo.wasm' } } } }));

    t.daemon = await startDaemon(t.env);
    expect(await started()).toEqual(['first']);
    expect((await runCli(['deploy', other], t.env, 60_000)).code).toBe(0);
    expect(await names()).toEqual(['second']);

    // Unchanged file: the later deploy stands.
    await stopDaemon(t.daemon);
    t.daemon = await startDaemon(t.env);
    expect(await started()).toEqual(['second']);
    expect(t.daemon.output()).toContain(`deployment not re-applied: ${configured} is unchanged since it was applied`);

    // Changed file: it is the newer intent and is applied.
    write({ first: { settings: { image: './echo.wasm' }, env: { V: { value: '2' } } } });
    await stopDaemon(t.daemon);
    t.daemon = await startDaemon(t.env);
    expect(await started()).toEqual(['first']);
  }, 120_000);
});
