/**
 * The runtime's typed failures. A leaf: every runtime file may import it without an import circle
 * (types.ts re-exports RuntimeError for the API and the identity code).
 */

/** What went wrong, as the management API maps it onto an HTTP status (host/api/errors.ts). */
export type RuntimeErrorCode = 'not-found' | 'conflict' | 'invalid' | 'integrity-mismatch' | 'type-mismatch' | 'denied' | 'timeout' | 'failed' | 'guest-error';

/** A typed runtime failure; the API maps `code` onto an HTTP status. */
export class RuntimeError extends Error {
  constructor(
    readonly code: RuntimeErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'RuntimeError';
  }
}

/**
 * The module ended in the middle of a call: a WebAssembly trap (`unreachable`, out of bounds…) or its own
 * `exit`. Code `failed`, but its message is the module's reason, never a host cause, so the API shows it.
 */
export class TrapError extends RuntimeError {
  constructor(message: string) {
    super('failed', message);
  }
}

/**
 * Bytes that are not the ones registered or pinned (`integrity-mismatch`), with the digest measured as data
 * for the integrity event; absent when there were no bytes to measure (a stored copy missing).
 */
export class IntegrityError extends RuntimeError {
  constructor(
    message: string,
    readonly measured?: string,
  ) {
    super('integrity-mismatch', message);
  }
}
