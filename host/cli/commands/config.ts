/** `edgeward config apply|show`. */
import path from 'node:path';
import { promises as fs } from 'node:fs';
import type { Command } from 'commander';
import { ConfigError, CONFIG_EXIT_CODE, configToToml, loadConfig, parseConfigText, redactConfig, EMBEDDED_SOURCE } from '../../config/load.js';
import { importSuperConfig } from '../../config/import.js';
import { edgewardHome, homeConfigFile } from '../../config/paths.js';
import { writeFileAtomic } from '../../state/atomic.js';
import { prepareStateDir } from '../../state/dir.js';
import { effectiveConfigPath } from '../../daemon/paths.js';
import type { ReloadResult } from '../../api/management/control.js';
import { NotRunningError } from '../client.js';
import { action } from '../output.js';
import { cliClient, loadCliConfig, type CliContext } from '../context.js';
import { preflight } from '../../daemon/preflight.js';

export function registerConfigCommands(program: Command, ctx: () => CliContext): void {
  const config = program.command('config').description('validate, apply and show the configuration');

  config
    .command('apply')
    .description('validate the config, write the effective config into the state directory and tell a running daemon to reload')
    .option('-c, --config <file>', 'config file to apply (default: <home>/config.toml)')
    .action(action((opts: { config?: string }) => applyConfig(ctx(), opts.config)));

  config
    .command('import')
    .description('convert an IoT Edge super-config (/etc/aziot/config.toml) into an Edgeward config, saying what happened to each key')
    .argument('[file]', 'the IoT Edge config', '/etc/aziot/config.toml')
    .option('-o, --output <file>', 'where to write the Edgeward config (default: <home>/config.toml)')
    .option('-f, --force', 'overwrite the output file if it exists')
    .action(action((file: string, opts: { output?: string; force?: boolean }) => importConfig(file, opts)));

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

/** `config apply`: load, preflight, write the effective config, and reload the daemon if one runs. */
async function applyConfig(context: CliContext, configOption: string | undefined): Promise<void> {
  const file = configOption ?? context.configFile;
  const loaded = file ? await loadConfig(path.resolve(file)) : await loadCliConfig(context);
  await preflight(loaded, { services: true });
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
    // The daemon that runs now, even if the applied [connect] names a socket it moves to only at restart.
    const client = await cliClient({ ...context, configFile: file }, { running: true });
    const result = await client.request<ReloadResult>('POST', '/config/reload');
    process.stdout.write(`Daemon reloaded: ${result.message}\n`);
  } catch (err) {
    if (!(err instanceof NotRunningError)) throw err;
    process.stdout.write('The daemon is not running; the config takes effect when it starts.\n');
  }
}

/** `config import`: one line per key, the file written (0600), then whether it loads as it is. */
async function importConfig(file: string, opts: { output?: string; force?: boolean }): Promise<number> {
  const source = path.resolve(file);
  const text = await fs.readFile(source, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new ConfigError(source, [{ path: '', message: err.code === 'ENOENT' ? 'file not found: give the IoT Edge config to import, e.g. "edgeward config import /etc/aziot/config.toml"' : `cannot read file (${err.code}): run as a user who can read it (IoT Edge keeps it root-only)` }]);
  });
  const result = importSuperConfig(text, source);
  const target = path.resolve(opts.output ?? homeConfigFile(edgewardHome()));
  if (!opts.force && (await fs.stat(target).then(() => true, () => false))) {
    process.stderr.write(`error: ${target} already exists: pass -f to overwrite it, or -o to write elsewhere\n`);
    return CONFIG_EXIT_CODE;
  }
  for (const l of result.lines) process.stdout.write(`${l.key}: ${l.verdict}${l.detail ? ` (${l.detail})` : ''}\n`);
  await fs.mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
  await writeFileAtomic(target, result.toml);
  const unsupported = result.lines.filter((l) => l.verdict === 'unsupported').length;
  if (result.incomplete) {
    process.stdout.write(`Wrote ${target} with ${unsupported} unsupported setting(s) commented out: edit it as the lines above say, then run "edgeward config apply -c ${target}".\n`);
    return CONFIG_EXIT_CODE;
  }
  try {
    parseConfigText(result.toml, target);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stdout.write(`Wrote ${target}, but it does not load yet:\n${err.message}\nFix these fields, then run "edgeward config apply -c ${target}".\n`);
    return CONFIG_EXIT_CODE;
  }
  process.stdout.write(`Wrote ${target}. Next: "edgeward config apply -c ${target}".\n`);
  return 0;
}
