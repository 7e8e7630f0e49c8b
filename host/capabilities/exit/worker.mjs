// wasi:cli/exit inside the sandbox worker: unwinds the guest and ends THIS instance with exited(code).
// preview2-shim's exit calls process.exit(); here it never reaches the process.
export function imports(ctx) {
  return {
    'wasi:cli/exit': {
      exit(status) {
        ctx.exit(status && status.tag === 'err' ? 1 : 0);
      },
      exitWithCode(code) {
        ctx.exit(Number(code) & 0xff);
      },
    },
  };
}
