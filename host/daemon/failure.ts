/**
 * How a start-up failure is told: its exit code (IoT Edge's 153 for a config error, a StartupError's own,
 * else 1) and its message with the hint. The daemon records it for `system restart`; the CLI prints it.
 */
import { ConfigError, CONFIG_EXIT_CODE } from '../config/load.js';
import { StartupError } from '../errors.js';

export function exitCodeFor(err: unknown): number {
  if (err instanceof ConfigError) return CONFIG_EXIT_CODE;
  if (err instanceof StartupError) return err.exitCode;
  return 1;
}

export function describeStartError(err: unknown): string {
  if (err instanceof ConfigError) return err.message;
  if (err instanceof StartupError) return err.message + (err.hint && !err.message.includes(err.hint) ? `\n  hint: ${err.hint}` : '');
  if (err instanceof Error) return err.message;
  return String(err);
}
