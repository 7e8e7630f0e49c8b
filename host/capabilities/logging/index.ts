/**
 * Capability `edgeward:module/logging`: a module's lines go to its own log (host/runtime/log-store.ts).
 * Linked for every module (implicit): a module can only ever write to its own log.
 *
 * configure — nothing to check; prepare — worker.mjs, inside the sandbox, tags each line with the level.
 */
import type { Capability } from '../../runtime/capabilities.js';

export const loggingCapability: Capability = {
  name: 'edgeward:module/logging',
  interfaces: ['edgeward:module/logging'],
  implicit: true,
  workerModule: 'host/capabilities/logging/worker.mjs',
};
