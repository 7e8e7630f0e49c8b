/**
 * runaway: a misbehaving module for the sandbox's limits (reliability scenarios G1, G2).
 *   spin  → `while (true) {}`: must be terminated at the call deadline
 *   grow  → allocates 1 MiB blocks until the engine fails: must stop at the memory ceiling
 *   ping  → "pong" (to show the instance answered before it ran away)
 */
/// <reference path="../../types/module.d.ts" />
import { log } from 'edgeward:module/logging@0.1.0';

const hoard: Uint8Array[] = [];

function invoke(method: string, _payload: string): string {
  switch (method) {
    case 'ping':
      return JSON.stringify('pong');
    case 'spin':
      log('warn', 'spinning forever');
      for (;;) {
        // deliberately empty
      }
    case 'grow':
      log('warn', 'growing without bound');
      for (;;) {
        const block = new Uint8Array(1024 * 1024);
        block[block.length - 1] = hoard.length & 0xff; // touch it so it is really committed
        hoard.push(block);
      }
    default:
      throw `unknown method "${method}"`;
  }
}

export const lifecycle = {
  start(_config: string): void {
    log('info', 'runaway started');
  },
  stop(): void {},
  invoke,
};
