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

/** Where the running daemon listens (`DaemonRecord`): written once its management API answers, removed at stop. */
export const DAEMON_RECORD_FILE = 'daemon.json';
/** Why the last (re)start failed (`StartFailure`), for `edgeward system restart`; removed by a successful start. */
export const START_ERROR_FILE = 'last-start-error.json';

/** What a running daemon says about itself in its state directory. */
export interface DaemonRecord {
  pid: number;
  managementUri: string;
}

/** A failed (re)start, as the daemon recorded it before stopping. */
export interface StartFailure {
  time: string;
  message: string;
  exitCode: number;
}

export function daemonRecordPath(stateDir: string): string {
  return path.join(stateDir, DAEMON_RECORD_FILE);
}

export function startErrorPath(stateDir: string): string {
  return path.join(stateDir, START_ERROR_FILE);
}
