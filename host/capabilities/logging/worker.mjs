// edgeward:module/logging, inside the sandbox worker: lines go to the host, which owns the module log.
// Always linked: a module can only ever write to its own log.
export const MAX_LOG_LINE_BYTES = 8 * 1024;
/** @import { WorkerContext } from '../../runtime/sandbox/worker-api.js' */

/** @param {Pick<WorkerContext, 'log'>} ctx */
export function imports(ctx) {
  return {
    'edgeward:module/logging': {
      /** @param {Parameters<WorkerContext['log']>[0]} level @param {string} message */
      log(level, message) {
        const text = String(message);
        ctx.log(level, text.length > MAX_LOG_LINE_BYTES ? `${text.slice(0, MAX_LOG_LINE_BYTES)}… (truncated)` : text);
      },
    },
  };
}
