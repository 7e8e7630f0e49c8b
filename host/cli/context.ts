/** What every CLI command can ask for: the config it should use and a client for the daemon's socket. */
import { promises as fs } from 'node:fs';
import { loadConfig, resolveConfigSource, type LoadedConfig } from '../config/load.js';
import { socketPathOf } from '../config/paths.js';
import { daemonRecordPath, type DaemonRecord } from '../daemon/paths.js';
import { createMgmtClient, type MgmtClient } from './client.js';

export interface CliContext {
  /** `-c FILE` as given on the command line, if any. */
  configFile?: string;
  /** `-H unix:///…` as given, if any. */
  host?: string;
}

export async function loadCliConfig(ctx: CliContext): Promise<LoadedConfig> {
  return loadConfig(await resolveConfigSource(ctx.configFile));
}

/**
 * Socket: `-H` > `$EDGEWARD_HOST` > the config's `[connect] management_uri`. With `running`, a daemon
 * whose state directory says it listens elsewhere (a config applied but not restarted into yet) is asked
 * where it is: `config apply` and `system restart` talk to the daemon that runs, not to the next one.
 */
export async function cliClient(ctx: CliContext, opts: { running?: boolean } = {}): Promise<MgmtClient> {
  const explicit = ctx.host ?? process.env.EDGEWARD_HOST;
  let uri = explicit;
  if (uri === undefined) {
    const { config } = await loadCliConfig(ctx);
    uri = config.connect.management_uri;
    if (opts.running) uri = (await runningDaemon(config.state_dir))?.managementUri ?? uri;
  }
  if (!uri.startsWith('unix://')) throw new Error(`unsupported management URI "${uri}": expected unix:///path, e.g. -H unix:///run/edgeward/mgmt.sock`);
  return createMgmtClient(socketPathOf(uri));
}

/** The record a daemon keeps in its state directory while it runs, if that process is alive. */
export async function runningDaemon(stateDir: string): Promise<DaemonRecord | undefined> {
  const text = await fs.readFile(daemonRecordPath(stateDir), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const record = JSON.parse(text) as DaemonRecord;
    return typeof record.pid === 'number' && typeof record.managementUri === 'string' && isAlive(record.pid) ? record : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
