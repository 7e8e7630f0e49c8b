/** Crash-safe writes live below both layers (hsm/support/atomic.ts): the roots of trust use them too. */
export * from '../../hsm/support/atomic.js';
