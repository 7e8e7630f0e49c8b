/** `edgeward system status|logs|set-log-level|restart|reprovision` and `edgeward version`. */
import type { Command } from 'commander';
import { logLevelSchema } from '../../config/schema.js';
import type { DaemonStatus } from '../../api/management/control.js';
import type { MemoryBudget, ModuleMemory } from '../../status.js';
import { EDGEWARD_VERSION } from '../../version.js';
import { promises as fs } from 'node:fs';
import { ConfigError, CONFIG_EXIT_CODE, loadConfig, type LoadedConfig } from '../../config/load.js';
import { socketPathOf } from '../../config/paths.js';
import { preflight } from '../../daemon/preflight.js';
import { effectiveConfigPath, startErrorPath, type DaemonRecord, type StartFailure } from '../../daemon/paths.js';
import { StartupError } from '../../errors.js';
import { createMgmtClient, NotRunningError } from '../client.js';
import { action, table } from '../output.js';
import { cliClient, loadCliConfig, runningDaemon, type CliContext } from '../context.js';

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
    .option('--format <format>', 'pretty (the default on a terminal) or json (the daemon\'s own lines, the default otherwise)')
    .action(
      action(async (opts: { follow?: boolean; tail: string; format?: string }) => {
        const format = opts.format ?? (process.stdout.isTTY ? 'pretty' : 'json');
        if (format !== 'pretty' && format !== 'json') throw new Error(`invalid --format "${format}": expected pretty or json`);
        const client = await cliClient(ctx());
        const out = format === 'pretty' ? prettyLines((l) => process.stdout.write(l)) : (c: string) => process.stdout.write(c);
        await client.stream(`/system/logs?tail=${encodeURIComponent(opts.tail)}${opts.follow ? '&follow=true' : ''}`, out);
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

  system
    .command('reprovision')
    .description('provision the device again with DPS, then restart the daemon onto the new assignment')
    .action(action(() => reprovisionDevice(ctx())));

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
  let status: DaemonStatus & { memory?: MemoryBudget };
  try {
    status = await client.request<DaemonStatus & { memory?: MemoryBudget }>('GET', '/system/status');
  } catch (err) {
    if (!(err instanceof NotRunningError)) throw err;
    const message = await whyDown(ctx, err);
    if (json) process.stdout.write(JSON.stringify({ running: false, message }) + '\n');
    else process.stdout.write(`System services:\n    edgeward        Down - ${message}\n\nStart it with 'edgeward daemon'.\n`);
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
      (status.memory ? `${memoryLines(status.memory)}\n\n` : '') +
      "Use 'edgeward system logs' to check for non-fatal errors.\nUse 'edgeward check' to diagnose configuration issues.\n",
  );
  return undefined;
}

/** "Not running", or: it runs, but on another socket than [connect] names (applied, not restarted into). */
async function whyDown(ctx: CliContext, err: NotRunningError): Promise<string> {
  if (ctx.host ?? process.env.EDGEWARD_HOST) return err.message;
  const { config } = await loadCliConfig(ctx);
  const running = await runningDaemon(config.state_dir);
  if (!running || running.managementUri === config.connect.management_uri) return err.message;
  return socketMoved(running, config.connect.management_uri);
}

/** A daemon that listens elsewhere than [connect]: what to do about it. */
export function socketMoved(running: DaemonRecord, connect: string): string {
  return `the daemon (pid ${running.pid}) listens on ${running.managementUri}, not on [connect] management_uri ${connect}: run "edgeward system restart" so it moves to the applied sockets`;
}

/** How long `system restart` waits for the daemon to answer again. */
const RESTART_WAIT_MS = 30_000;

/**
 * `system restart`: the config the daemon restarts onto (the effective config in its state directory)
 * passes the daemon's own preflight first, else nothing restarts; then ask the running daemon, and wait
 * until the daemon answers on its new socket, or report the start-up error it recorded.
 */
async function restartDaemon(ctx: CliContext): Promise<number | undefined> {
  const loaded = await loadCliConfig(ctx);
  const eff = effectiveConfigPath(loaded.config.state_dir);
  const next = (await fs.stat(eff).then(() => true, () => false)) ? await loadConfig(eff) : loaded;
  try {
    await preflight(next, { services: true });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`error: ${err.message}\nThe daemon was not restarted and keeps running on its current config: fix the fields above and run "edgeward config apply".\n`);
    return CONFIG_EXIT_CODE;
  }
  const asked = Date.now();
  await (await cliClient(ctx, { running: true })).request('POST', '/system/restart');
  await waitForRestart(ctx, next, asked);
  process.stdout.write('Restarted edgeward.\n');
  return undefined;
}

/**
 * `system reprovision` (as `iotedge system reprovision`): the daemon registers with DPS again, keeps the
 * new assignment as its backup, and restarts onto it; a DPS refusal is printed with its fix.
 */
async function reprovisionDevice(ctx: CliContext): Promise<number | undefined> {
  const loaded = await loadCliConfig(ctx);
  const asked = Date.now();
  await (await cliClient(ctx, { running: true })).request('POST', '/device/reprovision');
  process.stdout.write('Successfully reprovisioned with IoT Hub.\n');
  await waitForRestart(ctx, loaded, asked);
  process.stdout.write('Restarted edgeward.\n');
  return undefined;
}

/** Wait until the daemon answers again after a restart asked at `asked`, or report its start-up error. */
async function waitForRestart(ctx: CliContext, next: LoadedConfig, asked: number): Promise<void> {
  const uri = ctx.host ?? process.env.EDGEWARD_HOST ?? next.config.connect.management_uri;
  const client = createMgmtClient(socketPathOf(uri));
  const deadline = asked + RESTART_WAIT_MS;
  await sleep(300);
  for (;;) {
    try {
      await client.request('GET', '/system/status');
      break;
    } catch (err) {
      const failure = await startFailureSince(next.config.state_dir, asked);
      if (failure) throw new StartupError(`the daemon stopped: its restart failed:\n${failure.message}`, failure.exitCode, 'fix the config, run "edgeward config apply", then start it with "edgeward daemon"');
      if (Date.now() > deadline) throw new Error(`the daemon did not come back within ${RESTART_WAIT_MS / 1000} s: ${(err as Error).message}; see "edgeward system logs"`);
      await sleep(200);
    }
  }
}

/** The start-up error the daemon recorded, if it is from this restart. */
async function startFailureSince(stateDir: string, since: number): Promise<StartFailure | undefined> {
  const text = await fs.readFile(startErrorPath(stateDir), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const f = JSON.parse(text) as StartFailure;
    return Date.parse(f.time) >= since - 1000 ? f : undefined;
  } catch {
    return undefined;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const QUIET_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'msg']);

/**
 * The daemon's JSON log lines as the module logs read: `time LEVEL message key=value…`. A chunk may end
 * mid-line: the rest waits for the next one. A line that is not JSON is printed as it is.
 */
export function prettyLines(write: (line: string) => void): (chunk: string) => void {
  let partial = '';
  return (chunk) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line) write(prettyLine(line) + '\n');
  };
}

function prettyLine(line: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  if (!o || typeof o !== 'object') return line;
  const time = typeof o.time === 'number' ? new Date(o.time).toISOString() : String(o.time ?? '');
  const level = (LEVELS[Number(o.level)] ?? String(o.level)).padEnd(5);
  const extra = Object.entries(o).filter(([k]) => !QUIET_FIELDS.has(k)).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  return [time, level, String(o.msg ?? ''), ...extra].join(' ').trimEnd();
}

/**
 * The memory budget: the daemon process (its RSS includes every module's worker), then each running
 * module's share; `busy` where its worker was in a guest call and did not answer in time.
 */
export function memoryLines(m: MemoryBudget): string {
  const d = m.daemon;
  const head = `Memory: daemon RSS ${mib(d.rss)} (JS heap ${mib(d.heapUsed)} of ${mib(d.heapTotal)}, external ${mib(d.external)}, array buffers ${mib(d.arrayBuffers)})`;
  if (m.modules.length === 0) return `${head}\n    no module running`;
  const rows = [['    MODULE', 'LINEAR MEMORY', 'WORKER HEAP', 'OFF-HEAP', 'SHARED CODE'], ...m.modules.map(moduleRow)];
  const busy = m.modules.some((x) => x.state === 'busy') ? `\n    busy: in a guest call, no answer within ${m.probeTimeoutMs} ms` : '';
  return `${head}\n${table(rows)}${busy}`;
}

function moduleRow(x: ModuleMemory): string[] {
  const heap = x.heapUsedBytes === null || x.heapTotalBytes === null ? 'busy' : `${mib(x.heapUsedBytes)} of ${mib(x.heapTotalBytes)}`;
  const code = `${mib(x.codeBytes)}${x.codeSharedBy > 1 ? ` (shared by ${x.codeSharedBy})` : ''}`;
  return [`    ${x.name}`, x.linearBytes === null ? 'busy' : mib(x.linearBytes), heap, x.externalBytes === null ? 'busy' : mib(x.externalBytes), code];
}

/** Bytes as MiB with one decimal (KiB below one MiB). */
function mib(bytes: number): string {
  return bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1048576).toFixed(1)} MiB`;
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
