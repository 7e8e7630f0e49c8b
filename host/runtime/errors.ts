/**
 * The runtime's typed failures. A leaf: every runtime file may import it without an import circle
 * (types.ts re-exports RuntimeError for the API and the identity code).
 */

/** What went wrong, as the management API maps it onto an HTTP status (host/api/errors.ts). */
export type RuntimeErrorCode = 'not-found' | 'conflict' | 'invalid' | 'integrity-mismatch' | 'type-mismatch' | 'denied' | 'timeout' | 'failed';

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
