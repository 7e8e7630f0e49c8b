/** `edgeward system status|logs|set-log-level|restart` and `edgeward version`. */
import type { Command } from 'commander';
import { logLevelSchema } from '../../config/schema.js';
import type { DaemonStatus } from '../../daemon/control.js';
import { EDGEWARD_VERSION } from '../../version.js';
import { NotRunningError } from '../client.js';
import { action, table } from '../output.js';
import { cliClient, type CliContext } from '../context.js';

export function registerSystemCommands(program: Command, ctx: () => CliContext): void {
  const system = program.command('system').description('the Edgeward daemon itself');

  system
    .command('status')
    .description('is the daemon running, and how are its services')
    .option('--json', 'machine-readable output')
    .action(action((opts: { json?: boolean }) => printStatus(ctx(), opts.json === true)));

  system
    .command('logs')
    .description("print the daemon's log")
    .option('-f, --follow', 'keep printing new lines')
    .option('--tail <n>', 'lines from the end', '200')
    .action(
      action(async (opts: { follow?: boolean; tail: string }) => {
        const client = await cliClient(ctx());
        await client.stream(`/system/logs?tail=${encodeURIComponent(opts.tail)}${opts.follow ? '&follow=true' : ''}`, (c) => process.stdout.write(c));
      }),
    );

  system
    .command('set-log-level')
    .description('change the log level of the running daemon (until it restarts; set [log] level in the config to keep it)')
    .argument('<level>', logLevelSchema.options.join('|'))
    .action(
      action(async (level: string) => {
        const parsed = logLevelSchema.safeParse(level);
        if (!parsed.success) throw new Error(`invalid level "${level}": expected one of ${logLevelSchema.options.join(', ')}`);
        await (await cliClient(ctx())).request('PUT', '/system/log-level', { level: parsed.data });
        process.stdout.write(`Set log level to ${parsed.data}.\n`);
      }),
    );

  system
    .command('restart')
    .description('restart the daemon in place (modules stop and start again, sockets are re-created)')
    .action(action(() => restartDaemon(ctx())));

  program
    .command('version')
    .description('print the version')
    .action(() => {
      const sha = process.env.EDGEWARD_BUILD_SOURCEVERSION;
      process.stdout.write(`edgeward ${EDGEWARD_VERSION}${sha ? ` (${sha})` : ''}\n`);
    });
}

/** `system status`: the daemon's services, or "Down" with exit 1 when it does not answer. */
async function printStatus(ctx: CliContext, json: boolean): Promise<number | undefined> {
  const client = await cliClient(ctx);
  let status: DaemonStatus;
  try {
    status = await client.request<DaemonStatus>('GET', '/system/status');
  } catch (err) {
    if (!(err instanceof NotRunningError)) throw err;
    if (json) process.stdout.write(JSON.stringify({ running: false, message: err.message }) + '\n');
    else process.stdout.write(`System services:\n    edgeward        Down - ${err.message}\n\nStart it with 'edgeward daemon'.\n`);
    return 1;
  }
  if (json) {
    process.stdout.write(JSON.stringify({ running: true, ...status }, null, 2) + '\n');
    return;
  }
  const rows = status.services.map((s) => [`    ${s.name}`, `${capitalize(s.status)} - ${s.detail}`]);
  process.stdout.write(
    `System services:\n${table(rows, 20)}\n\n` +
      `Version ${status.version}, pid ${status.pid}, up ${status.uptimeSeconds} s, log level ${status.logLevel}\n` +
      `State: ${status.stateDir}\nConfig: ${status.configSource}\nModules: ${status.modules.running} running of ${status.modules.total}${status.modules.starting ? ' (deployment being applied)' : ''}\n` +
      `Faults survived: ${faultLine(status.faults)}\n\n` +
      "Use 'edgeward system logs' to check for non-fatal errors.\nUse 'edgeward check' to diagnose configuration issues.\n",
  );
  return undefined;
}

/** `system restart`: ask for it, then wait until the daemon answers again (30 s). */
async function restartDaemon(ctx: CliContext): Promise<void> {
  const client = await cliClient(ctx);
  await client.request('POST', '/system/restart');
  // Wait until the daemon answers again.
  const deadline = Date.now() + 30_000;
  await new Promise((r) => setTimeout(r, 300));
  for (;;) {
    try {
      await client.request('GET', '/system/status');
      break;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`the daemon did not come back within 30 s: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  process.stdout.write('Restarted edgeward.\n');
}

/** The last-resort counts (daemon/last-resort.ts); an older daemon does not report them. */
function faultLine(f: DaemonStatus['faults'] | undefined): string {
  if (!f) return 'not reported';
  const last = f.last ? `, last ${f.last.kind} (${f.last.name}) at ${f.last.time}` : '';
  return `${f.uncaughtExceptions} uncaught exception(s), ${f.unhandledRejections} unhandled rejection(s)${last}; more than ${f.maxPerMinute} a minute stops the daemon`;
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
