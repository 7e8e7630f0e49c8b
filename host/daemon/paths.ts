/** Files the daemon keeps in its state directory (kept apart so the CLI can name them cheaply). */
import path from 'node:path';

/** The effective config, written at start and by `edgeward config apply`; reloads read it. */
export const EFFECTIVE_CONFIG_FILE = 'effective-config.toml';
/** Daemon log file inside `<state_dir>/logs/`. */
export const DAEMON_LOG_FILE = 'edgeward.log';

export function effectiveConfigPath(stateDir: string): string {
  return path.join(stateDir, EFFECTIVE_CONFIG_FILE);
}

export function daemonLogPath(stateDir: string): string {
  return path.join(stateDir, 'logs', DAEMON_LOG_FILE);
}
