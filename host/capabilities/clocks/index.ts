/** Capability `wasi:clocks`: wall and monotonic clocks, served inside the sandbox worker (worker.mjs). */
import type { Capability } from '../../runtime/capabilities.js';

export const clocksCapability: Capability = {
  name: 'wasi:clocks',
  interfaces: ['wasi:clocks/wall-clock', 'wasi:clocks/monotonic-clock'],
  workerModule: 'host/capabilities/clocks/worker.mjs',
};
