// wasi:clocks (wall-clock, monotonic-clock), built inside the sandbox worker for one instance. Only
// `now` and `resolution`: the subscribe-* functions need wasi:io/poll, which Edgeward does not grant,
// so a component importing them is refused at deploy (its import list names wasi:io/poll).
export function imports() {
  const wall = {
    now() {
      const ms = Date.now();
      return { seconds: BigInt(Math.floor(ms / 1000)), nanoseconds: (ms % 1000) * 1_000_000 };
    },
    resolution() {
      return { seconds: 0n, nanoseconds: 1_000_000 };
    },
  };
  const mono = {
    now: () => process.hrtime.bigint(),
    resolution: () => 1n,
  };
  return { 'wasi:clocks/wall-clock': wall, 'wasi:clocks/monotonic-clock': mono };
}
