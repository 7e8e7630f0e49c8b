/**
 * What every TPM transport shares: the interface `Tpm` sends commands through, its one error type, the
 * response-size bound, the check of a response's header against what arrived, and the time bound.
 */

/** The largest response we accept (TPM responses are at most a few KiB; Part 2 MAX_RESPONSE_SIZE is 4096 on most TPMs). */
export const MAX_RESPONSE_BYTES = 16 * 1024;
/** Default bound on one command; RSA key generation on a slow TPM can take tens of seconds. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 120_000;

export interface TpmTransport {
  /** Send one command, resolve with the whole response. Callers serialise; a transport sees one at a time. */
  transmit(command: Buffer): Promise<Buffer>;
  close(): Promise<void>;
  /** For messages: "device /dev/tpmrm0", "swtpm 127.0.0.1:2321". */
  readonly description: string;
  /**
   * Connections (or device opens) made so far. A new one may face a TPM that lost every transient object
   * and session (a restarted simulator, a reopened /dev/tpmrm0): `Tpm` treats a change as a possible reset.
   */
  readonly generation?: number;
  /** False when the next command will open a new connection (after a drop, a timeout or `close()`). */
  readonly connected?: boolean;
}

/** The TPM could not be reached (no device, permission, simulator down, timeout, malformed framing). */
export class TpmTransportError extends Error {
  constructor(
    message: string,
    readonly reason: 'no-device' | 'permission' | 'busy' | 'not-answering' | 'protocol',
    readonly hint?: string,
  ) {
    super(hint ? `${message}\n  hint: ${hint}` : message);
    this.name = 'TpmTransportError';
  }
}

/** Check a response's header size field against what arrived. */
export function checkFraming(rsp: Buffer, who: string): Buffer {
  if (rsp.length < 10) throw new TpmTransportError(`short TPM response from ${who} (${rsp.length} bytes)`, 'protocol');
  const size = rsp.readUInt32BE(2);
  if (size !== rsp.length) throw new TpmTransportError(`TPM response from ${who} says ${size} bytes, got ${rsp.length}`, 'protocol');
  return rsp;
}

/** `p`, or a `not-answering` TpmTransportError after `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, who: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TpmTransportError(`${who} did not answer within ${ms} ms`, 'not-answering')), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
