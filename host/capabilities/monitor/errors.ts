/**
 * `edgeward:monitor/*` errors as jco carries them: a WIT `result` error crosses as a thrown Error whose
 * `payload` is the interface's error variant (`{ tag }` or `{ tag, val }`).
 */

/** The error a monitor host function throws for jco: `Error` with `payload`. */
export class MonitorErrorPayload<P extends { tag: string } = { tag: string }> extends Error {
  constructor(readonly payload: P) {
    super(`edgeward:monitor error: ${payload.tag}`);
    this.name = 'MonitorErrorPayload';
  }
}

export const invalidArgument = (why: string) => new MonitorErrorPayload({ tag: 'invalid-argument', val: why });
export const limitExceeded = (why: string) => new MonitorErrorPayload({ tag: 'limit-exceeded', val: why });
export const invalidHandle = () => new MonitorErrorPayload({ tag: 'invalid-handle' });

/** A guest string: a JS string of at most `max` UTF-8 bytes, else `invalid-argument`/`limit-exceeded` naming `what`. */
export function guestString(v: unknown, what: string, max: number): string {
  if (typeof v !== 'string') throw invalidArgument(`${what}: not a string`);
  if (Buffer.byteLength(v, 'utf8') > max) throw limitExceeded(`${what} over ${max} bytes`);
  return v;
}

/** A guest u32/u64 as a non-negative safe integer (bigints too), else `invalid-argument`. */
export function guestCount(v: unknown, what: string): number {
  const n = typeof v === 'bigint' ? (v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : Number.NaN) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw invalidArgument(`${what}: not a count`);
  return n;
}
