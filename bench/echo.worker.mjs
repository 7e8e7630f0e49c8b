// Bench only: the `edgeward:test/echo` capability served inside the sandbox worker (no broker hop), so
// bench/runtime.ts can split a brokered call into jco's glue (this path) and the cross-thread round trip.
export function imports() {
  return { 'edgeward:test/echo': { echo: (x) => x + 1 } };
}
