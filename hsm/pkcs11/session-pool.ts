/**
 * A fixed pool of PKCS#11 sessions. A session runs one cryptographic operation at a time (PKCS#11 v2.40
 * §5.2; a second C_SignInit gives CKR_OPERATION_ACTIVE), so each operation borrows a session for its whole
 * Init…Final sequence and gives it back in `finally` — also when the operation throws.
 */
import type * as P from 'pkcs11js';
import { KeyError } from '../keys/types.js';
import type { Handle } from './library.js';

export interface PoolStats {
  readonly size: number;
  readonly idle: number;
  readonly waiting: number;
  /** Most sessions ever in use at once. */
  readonly highWater: number;
}

/** Callers waiting for a session beyond this are refused with `limit-exceeded` rather than queued forever. */
export const MAX_SESSION_WAITERS = 100_000;
/**
 * Longest run of back-to-back session handoffs before the pool yields to the event loop. Inline operations
 * are synchronous, and handing a released session to the next waiter is a microtask, so a burst of queued
 * calls would otherwise run to the end without letting I/O in (reliability H2 reports the event-loop delay).
 */
export const MAX_HANDOFF_RUN_MS = 2;

export class SessionPool {
  private readonly idle: Handle[];
  private readonly waiters: Array<(s: Handle) => void> = [];
  private highWater = 0;
  private closed = false;
  private runStarted = 0;
  private yielding = false;

  constructor(
    private readonly module: P.PKCS11,
    private readonly sessions: readonly Handle[],
  ) {
    this.idle = [...sessions];
  }

  /** Run `fn` with a session of its own; `lane` is the session's index in the pool (stable per session). */
  use<T>(fn: (session: Handle, lane: number) => T | Promise<T>): Promise<T> {
    // Fast path without a queue hop: an idle session is taken at once.
    const idle = this.closed ? undefined : this.idle.pop();
    if (idle) {
      this.highWater = Math.max(this.highWater, this.sessions.length - this.idle.length);
      return this.runOn(idle, fn);
    }
    return this.acquire().then((s) => this.runOn(s, fn));
  }

  private async runOn<T>(session: Handle, fn: (session: Handle, lane: number) => T | Promise<T>): Promise<T> {
    try {
      return await fn(session, this.sessions.indexOf(session));
    } finally {
      this.release(session);
    }
  }

  stats(): PoolStats {
    return { size: this.sessions.length, idle: this.idle.length, waiting: this.waiters.length, highWater: this.highWater };
  }

  /** Close every session (idle or not); later `use` calls fail with `backend-unavailable`. */
  close(): void {
    this.closed = true;
    for (const s of this.sessions) {
      try {
        this.module.C_CloseSession(s);
      } catch {
        // already closed or token gone: nothing left to release
      }
    }
    this.idle.length = 0;
  }

  private acquire(): Promise<Handle> {
    if (this.closed) return Promise.reject(new KeyError('backend-unavailable', 'the PKCS#11 session pool is closed'));
    const s = this.idle.pop();
    if (s) {
      this.highWater = Math.max(this.highWater, this.sessions.length - this.idle.length);
      return Promise.resolve(s);
    }
    if (this.waiters.length >= MAX_SESSION_WAITERS) return Promise.reject(new KeyError('limit-exceeded', 'too many waiting HSM operations'));
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private release(session: Handle): void {
    if (this.closed) return;
    const next = this.waiters.shift();
    if (!next) {
      this.idle.push(session);
      return;
    }
    if (!this.yielding) {
      const now = performance.now();
      if (this.runStarted === 0) this.runStarted = now;
      if (now - this.runStarted < MAX_HANDOFF_RUN_MS) return next(session);
      // Over the budget: every handoff until the loop has turned goes through setImmediate.
      this.yielding = true;
      setImmediate(() => {
        this.yielding = false;
        this.runStarted = 0;
      });
    }
    setImmediate(() => next(session));
  }
}
