/**
 * Capability `wasi:cli/exit`: `exit` ends THIS instance with its code (never the daemon's process).
 * Linked for every module (implicit). worker.mjs unwinds the guest inside the sandbox.
 */
import type { Capability } from '../../runtime/capabilities.js';

export const exitCapability: Capability = {
  name: 'wasi:cli/exit',
  interfaces: ['wasi:cli/exit'],
  implicit: true,
  workerModule: 'host/capabilities/exit/worker.mjs',
};
