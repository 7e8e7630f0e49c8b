#!/usr/bin/env node
/**
 * `edgeward`: one CLI for the daemon and its management API. Subcommands live one file per area in
 * commands/; this file only composes them. Only the area of the command being run is loaded (each
 * area's imports cost start time and resident memory, the daemon's most of all); help, no command or an
 * unknown one load them all, so commander lists and suggests every command.
 */
import './v8-flags.js'; // first: V8 flags must be set before the rest is loaded
import { Command } from 'commander';
import { EDGEWARD_VERSION } from '../version.js';
import type { CliContext } from './context.js';
import type { MgmtClient } from './client.js';
import type { Config } from '../config/schema.js';

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
const client = async (): Promise<MgmtClient> => (await import('./context.js')).cliClient(ctx());
const config = async (): Promise<Config> => (await (await import('./context.js')).loadCliConfig(ctx())).config;

/** Each area: the top-level commands it registers, and how to load and register it (in help order). */
const AREAS: { commands: readonly string[]; register: () => Promise<void> }[] = [
  { commands: ['daemon'], register: async () => (await import('./commands/daemon.js')).registerDaemonCommand(program, ctx) },
  { commands: ['config'], register: async () => (await import('./commands/config.js')).registerConfigCommands(program, ctx) },
  { commands: ['system', 'version'], register: async () => (await import('./commands/system.js')).registerSystemCommands(program, ctx) },
  { commands: ['deploy', 'list', 'logs', 'start', 'stop', 'restart', 'remove', 'invoke'], register: async () => (await import('./commands/modules.js')).registerModuleCommands(program, client) },
  { commands: ['check'], register: async () => (await import('./commands/check.js')).registerCheckCommand(program, ctx) },
  { commands: ['keys'], register: async () => (await import('./commands/keys.js')).registerKeysCommands(program, client) },
  { commands: ['module'], register: async () => (await import('./commands/module.js')).registerNativeModuleCommands(program, client) },
  { commands: ['new'], register: async () => (await import('./commands/new.js')).registerNewCommand(program) },
  { commands: ['findings'], register: async () => (await import('./commands/findings.js')).registerFindingsCommand(program, client) },
  { commands: ['events'], register: async () => (await import('./commands/events.js')).registerEventsCommand(program, client) },
  { commands: ['attest'], register: async () => (await import('./commands/attest.js')).registerAttestCommands(program, client) },
  { commands: ['tpm'], register: async () => (await import('./commands/tpm.js')).registerTpmCommands(program, config) },
  { commands: ['confidential'], register: async () => (await import('./commands/confidential.js')).registerConfidentialCommands(program, config, client) },
];

/** The global options that take a value (their value is not the command). */
const VALUED = new Set(['-H', '--host', '-c', '--config']);

/** The first operand of `argv` (the command), skipping the global options and their values. */
function commandOf(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') return argv[i + 1];
    if (VALUED.has(a)) i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

const name = commandOf(process.argv.slice(2));
const area = AREAS.find((a) => name !== undefined && a.commands.includes(name));
for (const a of area ? [area] : AREAS) await a.register();

await program.parseAsync(process.argv);
