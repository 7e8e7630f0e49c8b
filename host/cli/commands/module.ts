/**
 * `edgeward module …`: native modules (processes or containers using an Azure IoT SDK) — register one,
 * print the IOTEDGE_* environment it needs, remove it.
 */
import type { Command } from 'commander';
import type { MgmtClient } from '../client.js';
import type { IdentityJson } from '../../api/native-modules.js';
import { action, table } from '../output.js';

export function registerNativeModuleCommands(program: Command, getClient: () => Promise<MgmtClient>): void {
  const mod = program.command('module').description('native modules: register, environment, remove');

  mod
    .command('register')
    .description('register a native module (kind "native"): it gets its own workload socket and identity')
    .argument('<name>', 'module id')
    .option('--uid <uid>', 'owner of the module\'s workload socket (when the daemon runs as root)')
    .action(
      action(async (name: string, opts: { uid?: string }) => {
        const uid = opts.uid === undefined ? undefined : Number(opts.uid);
        if (uid !== undefined && (!Number.isInteger(uid) || uid < 0)) throw new Error(`invalid --uid "${opts.uid}"`);
        const id = await (await getClient()).request<IdentityJson>('POST', '/identities', { moduleId: name, kind: 'native', ...(uid !== undefined ? { uid } : {}) });
        process.stdout.write(`Registered native module ${id.moduleId} (generation ${id.generationId}).\nIts environment: edgeward module env ${id.moduleId}\n`);
      }),
    );

  mod
    .command('env')
    .description('print the IOTEDGE_* environment of a native module (KEY=VALUE lines, usable as a systemd EnvironmentFile)')
    .argument('<name>', 'module id')
    .option('--json', 'print JSON')
    .action(
      action(async (name: string, opts: { json?: boolean }) => {
        const { env } = await (await getClient()).request<{ env: Record<string, string> }>('GET', `/identities/${encodeURIComponent(name)}/env`);
        if (opts.json) process.stdout.write(JSON.stringify(env, null, 2) + '\n');
        else process.stdout.write(Object.entries(env).map(([k, v]) => `${k}=${v}`).join('\n') + '\n');
      }),
    );

  mod
    .command('identities')
    .description('module identities: native and component')
    .action(
      action(async () => {
        const { identities } = await (await getClient()).request<{ identities: IdentityJson[] }>('GET', '/identities');
        process.stdout.write(table([['NAME', 'KIND', 'GENERATION'], ...identities.map((i) => [i.moduleId, i.kind, i.generationId])]) + '\n');
      }),
    );

  mod
    .command('unregister')
    .description('remove a native module: its socket closes and its identity ends')
    .argument('<name>', 'module id')
    .action(
      action(async (name: string) => {
        await (await getClient()).request('DELETE', `/identities/${encodeURIComponent(name)}`);
        process.stdout.write(`Removed native module ${name}.\n`);
      }),
    );
}
