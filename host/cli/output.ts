/** CLI error reporting: one clear line (no stack trace), and the exit code the error calls for. */
import { describeStartError, exitCodeFor } from '../daemon/failure.js';
import { ApiError, NotRunningError } from './client.js';

export { exitCodeFor };

export function describeError(err: unknown): string {
  if (err instanceof NotRunningError) return err.message;
  if (err instanceof ApiError) return `the daemon refused the request (${err.status}): ${err.message}`;
  return describeStartError(err);
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
