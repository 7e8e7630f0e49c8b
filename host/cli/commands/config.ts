/** `edgeward config apply|show`. */
import path from 'node:path';
import { promises as fs } from 'node:fs';
import type { Command } from 'commander';
import { configToToml, loadConfig, redactConfig, EMBEDDED_SOURCE } from '../../config/load.js';
import { edgewardHome, homeConfigFile } from '../../config/paths.js';
import { writeFileAtomic } from '../../state/atomic.js';
import { prepareStateDir } from '../../state/dir.js';
import { effectiveConfigPath } from '../../daemon/paths.js';
import type { ReloadResult } from '../../daemon/control.js';
import { NotRunningError } from '../client.js';
import { action } from '../output.js';
import { cliClient, loadCliConfig, type CliContext } from '../context.js';

export function registerConfigCommands(program: Command, ctx: () => CliContext): void {
  const config = program.command('config').description('validate, apply and show the configuration');

  config
    .command('apply')
    .description('validate the config, write the effective config into the state directory and tell a running daemon to reload')
    .option('-c, --config <file>', 'config file to apply (default: <home>/config.toml)')
    .action(
      action(async (opts: { config?: string }) => {
        const file = opts.config ?? ctx().configFile;
        const loaded = file ? await loadConfig(path.resolve(file)) : await loadCliConfig(ctx());
        const { config: cfg } = loaded;
        for (const key of loaded.ignored) process.stdout.write(`note: "${key}" is an IoT Edge setting with no meaning for Edgeward; ignored\n`);
        await prepareStateDir(cfg.state_dir);
        await writeFileAtomic(effectiveConfigPath(cfg.state_dir), configToToml(cfg));
        // A daemon started later without -c picks the applied file up from the Edgeward home.
        if (loaded.source !== EMBEDDED_SOURCE) {
          const target = homeConfigFile(edgewardHome());
          if (path.resolve(loaded.source) !== target) {
            await fs.mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
            await writeFileAtomic(target, await fs.readFile(loaded.source));
          }
        }
        process.stdout.write(`Edgeward has been configured successfully! (effective config: ${effectiveConfigPath(cfg.state_dir)})\n`);
        try {
          const client = await cliClient({ ...ctx(), configFile: file });
          const result = await client.request<ReloadResult>('POST', '/config/reload');
          process.stdout.write(`Daemon reloaded: ${result.message}\n`);
        } catch (err) {
          if (!(err instanceof NotRunningError)) throw err;
          process.stdout.write('The daemon is not running; the config takes effect when it starts.\n');
        }
      }),
    );

  config
    .command('show')
    .description('print the effective config, secrets redacted')
    .option('-c, --config <file>', 'show this file instead of the effective config')
    .option('--json', 'print JSON instead of TOML')
    .action(
      action(async (opts: { config?: string; json?: boolean }) => {
        const file = opts.config ?? ctx().configFile;
        let loaded = await loadCliConfig({ ...ctx(), configFile: file });
        if (!file) {
          // Prefer what the daemon runs on: the effective config in the state directory.
          const eff = effectiveConfigPath(loaded.config.state_dir);
          if (await fs.stat(eff).then(() => true, () => false)) loaded = await loadConfig(eff);
        }
        const redacted = redactConfig(loaded.config);
        if (opts.json) process.stdout.write(JSON.stringify(redacted, null, 2) + '\n');
        else process.stdout.write(`# source: ${loaded.source}\n${configToToml(redacted)}\n`);
      }),
    );
}
