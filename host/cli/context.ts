/** What every CLI command can ask for: the config it should use and a client for the daemon's socket. */
import { loadConfig, resolveConfigSource, type LoadedConfig } from '../config/load.js';
import { socketPathOf } from '../config/paths.js';
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

/** Socket: `-H` > `$EDGEWARD_HOST` > the config's `[connect] management_uri`. */
export async function cliClient(ctx: CliContext): Promise<MgmtClient> {
  const uri = ctx.host ?? process.env.EDGEWARD_HOST ?? (await loadCliConfig(ctx)).config.connect.management_uri;
  if (!uri.startsWith('unix://')) throw new Error(`unsupported management URI "${uri}": expected unix:///path`);
  return createMgmtClient(socketPathOf(uri));
}
