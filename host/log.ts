/**
 * Structured logging (pino). One root logger per process; the daemon writes JSON lines to stdout and to
 * `<state_dir>/logs/edgeward.log` (read by `edgeward system logs`). The level can change at run time.
 */
import pino, { type Logger } from 'pino';
import type { LogLevel } from './config/schema.js';

export type { Logger };

/** Fields that must never reach a log line (PINs, keys, connection strings). */
export const REDACT_PATHS = ['pin', '*.pin', 'password', '*.password', 'connection_string', '*.connection_string', 'key', '*.key', 'secret', '*.secret'];

export function createLogger(level: LogLevel, destinations: pino.DestinationStream[] = [pino.destination(1)]): Logger {
  const streams = destinations.map((stream) => ({ stream, level: 'trace' as const }));
  return pino(
    { level, base: { pid: process.pid }, redact: { paths: REDACT_PATHS, censor: '<redacted>' }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.multistream(streams),
  );
}

/** A logger that drops everything; for library code under test. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
