#!/usr/bin/env node
/**
 * `edgeward`: one CLI for the daemon and its management API. Subcommands live one file per area in
 * commands/; this file only composes them.
 */
import 'reflect-metadata'; // @peculiar/x509 (tsyringe) needs it before its first (lazy) import
import { Command } from 'commander';
import { EDGEWARD_VERSION } from '../version.js';
import type { CliContext } from './context.js';
import { registerDaemonCommand } from './commands/daemon.js';
import { registerConfigCommands } from './commands/config.js';
import { registerSystemCommands } from './commands/system.js';
import { registerCheckCommand } from './commands/check.js';
import { registerTpmCommands } from './commands/tpm.js';
import { registerConfidentialCommands } from './commands/confidential.js';
import { registerKeysCommands } from './commands/keys.js';
import { registerModuleCommands } from './commands/modules.js';
import { registerNativeModuleCommands } from './commands/module.js';
import { registerNewCommand } from './commands/new.js';
import { registerFindingsCommand } from './commands/findings.js';
import { registerEventsCommand } from './commands/events.js';
import { registerAttestCommands } from './commands/attest.js';
import { cliClient, loadCliConfig } from './context.js';

const program = new Command();
program
  .name('edgeward')
  .description('Edgeward: security manager and WASI component runtime for edge devices')
  .version(EDGEWARD_VERSION, '-V, --version')
  .option('-H, --host <uri>', 'management socket, e.g. unix:///run/edgeward/mgmt.sock (env EDGEWARD_HOST)')
  .option('-c, --config <file>', 'config file (env EDGEWARD_CONFIG)')
  .showHelpAfterError()
  .configureOutput({ outputError: (str, write) => write(str) })
  .exitOverride((err) => {
    // Usage errors exit 2 like other Unix tools; --help/--version exit 0.
    process.exit(err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help' ? 0 : 2);
  });

const ctx = (): CliContext => {
  const o = program.opts<{ host?: string; config?: string }>();
  return { host: o.host, configFile: o.config };
};

registerDaemonCommand(program, ctx);
registerConfigCommands(program, ctx);
registerSystemCommands(program, ctx);
registerModuleCommands(program, () => cliClient(ctx()));
registerCheckCommand(program, ctx);
registerKeysCommands(program, () => cliClient(ctx()));
registerNativeModuleCommands(program, () => cliClient(ctx()));
registerNewCommand(program);
registerFindingsCommand(program, () => cliClient(ctx()));
registerEventsCommand(program, () => cliClient(ctx()));
registerAttestCommands(program, () => cliClient(ctx()));
registerTpmCommands(program, async () => (await loadCliConfig(ctx())).config);
registerConfidentialCommands(program, async () => (await loadCliConfig(ctx())).config, () => cliClient(ctx()));

await program.parseAsync(process.argv);
