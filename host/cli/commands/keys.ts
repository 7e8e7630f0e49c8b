/** `edgeward keys list|create|public`: the daemon's own keys, through the management API. */
import type { Command } from 'commander';
import type { MgmtClient } from '../client.js';
import { action, table } from '../output.js';

/** The `--type` values the CLI offers (the API also takes the long names). */
export const CLI_KEY_TYPES = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072', 'hmac', 'aes'] as const;

interface KeyRow {
  id: string;
  type: string;
}

export function registerKeysCommands(program: Command, getClient: () => Promise<MgmtClient>): void {
  const keys = program.command('keys').description("the daemon's own keys (namespace edgeward); key material never leaves the key store");

  keys
    .command('list')
    .description('list the daemon\'s keys')
    .action(
      action(async () => {
        const res = await (await getClient()).request<{ keys: KeyRow[] }>('GET', '/keys');
        if (res.keys.length === 0) {
          process.stdout.write('no keys\n');
          return;
        }
        process.stdout.write(table([['ID', 'TYPE'], ...res.keys.map((k) => [k.id, k.type])]) + '\n');
      }),
    );

  keys
    .command('create')
    .description('create a key if it does not exist')
    .argument('<id>', 'key id ([A-Za-z0-9._-], up to 128 characters)')
    .requiredOption('--type <type>', `one of ${CLI_KEY_TYPES.join(', ')}`)
    .action(
      action(async (id: string, opts: { type: string }) => {
        if (!(CLI_KEY_TYPES as readonly string[]).includes(opts.type)) {
          process.stderr.write(`error: --type must be one of ${CLI_KEY_TYPES.join(', ')}\n`);
          return 2;
        }
        const res = await (await getClient()).request<KeyRow>('POST', '/keys', { id, type: opts.type });
        process.stdout.write(`${id}: ${res.type}\n`);
      }),
    );

  keys
    .command('public')
    .description('print the public key of a key pair (PEM)')
    .argument('<id>', 'key id')
    .action(
      action(async (id: string) => {
        const res = await (await getClient()).request<{ pem: string }>('GET', `/keys/${encodeURIComponent(id)}/public`);
        process.stdout.write(res.pem.endsWith('\n') ? res.pem : res.pem + '\n');
      }),
    );
}
