/** Capability `wasi:random`: node:crypto's bytes inside the sandbox worker, capped per call (worker.mjs). */
import type { Capability } from '../../runtime/capabilities.js';

export const randomCapability: Capability = {
  name: 'wasi:random',
  interfaces: ['wasi:random/random', 'wasi:random/insecure', 'wasi:random/insecure-seed'],
  workerModule: 'host/capabilities/random/worker.mjs',
};
