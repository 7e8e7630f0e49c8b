/**
 * Errors that stop the daemon before it serves anything. The CLI prints `message` (no stack) and exits
 * with `exitCode`: 2 for configuration problems the user must fix (bad config, wrong PIN, missing PKCS#11
 * library or token), 1 otherwise.
 */
export class StartupError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = 2,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'StartupError';
  }
}
