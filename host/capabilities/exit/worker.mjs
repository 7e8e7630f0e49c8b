// wasi:cli/exit inside the sandbox worker: unwinds the guest and ends THIS instance with exited(code).
// preview2-shim's exit calls process.exit(); here it never reaches the process.
/** @import { WorkerContext } from '../../runtime/sandbox/worker-api.js' */

/** @param {Pick<WorkerContext, 'exit'>} ctx */
export function imports(ctx) {
  return {
    'wasi:cli/exit': {
      /** @param {{ tag: 'ok' | 'err' } | undefined} status the WIT result<_, _> */
      exit(status) {
        ctx.exit(status && status.tag === 'err' ? 1 : 0);
      },
      /** @param {number} code a u8 */
      exitWithCode(code) {
        ctx.exit(Number(code) & 0xff);
      },
    },
  };
}
