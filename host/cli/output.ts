/** CLI error reporting: one clear line (no stack trace), and the exit code the error calls for. */
import { ConfigError, CONFIG_EXIT_CODE } from '../config/load.js';
import { StartupError } from '../errors.js';
import { ApiError, NotRunningError } from './client.js';

export function exitCodeFor(err: unknown): number {
  if (err instanceof ConfigError) return CONFIG_EXIT_CODE;
  if (err instanceof StartupError) return err.exitCode;
  return 1;
}

export function describeError(err: unknown): string {
  if (err instanceof ConfigError || err instanceof NotRunningError) return err.message;
  if (err instanceof StartupError) return err.message + (err.hint && !err.message.includes(err.hint) ? `\n  hint: ${err.hint}` : '');
  if (err instanceof ApiError) return `the daemon refused the request (${err.status}): ${err.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Wrap a command action: errors print as `error: …` on stderr and set the exit code. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void | number>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      const code = await fn(...args);
      if (typeof code === 'number') process.exitCode = code;
    } catch (err) {
      process.stderr.write(`error: ${describeError(err)}\n`);
      if (process.env.EDGEWARD_DEBUG && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
      process.exitCode = exitCodeFor(err);
    }
  };
}

/** Left-aligned columns, tab-separated like `iotedge list` (minimum width 15). */
export function table(rows: string[][], minWidth = 15): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? minWidth, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? minWidth))).join('   ').trimEnd()).join('\n');
}
