/**
 * `edgeward:hsm/keys` errors as jco carries them: a WIT `result` error crosses as a thrown Error whose
 * `payload` is the `key-error` variant (`{ tag }` or `{ tag, val }`). The exhaustive switch keeps this
 * mapping in step with `KeyErrorTag` and the WIT variant.
 */
import { KeyError, type KeyErrorTag } from '../../../hsm/keys/index.js';
import type { KeyError as KeyErrorVariant } from './generated/interfaces/edgeward-hsm-keys.js';

/** The WIT `key-error` variant, as jco generates it from wit/hsm/keys.wit. */
export type WitKeyError = KeyErrorVariant;

/** The error a host function throws for jco: `Error` with `payload`. */
export class KeyErrorPayload extends Error {
  constructor(readonly payload: WitKeyError) {
    super(`edgeward:hsm/keys error: ${payload.tag}`);
    this.name = 'KeyErrorPayload';
  }
}

export function witError(tag: KeyErrorTag, message: string): WitKeyError {
  switch (tag) {
    case 'unsupported':
    case 'invalid-argument':
    case 'limit-exceeded':
      return { tag, val: message };
    case 'invalid-handle':
    case 'access-denied':
    case 'not-found':
    case 'already-exists':
    case 'decrypt-failed':
    case 'backend-unavailable':
    case 'internal':
      return { tag };
    default:
      return assertNever(tag);
  }
}

/** Map anything a service call threw to the payload error; non-KeyErrors become `internal` (cause logged by the service). */
export function toPayloadError(err: unknown): KeyErrorPayload {
  if (err instanceof KeyErrorPayload) return err;
  if (err instanceof KeyError) return new KeyErrorPayload(witError(err.tag, err.message));
  return new KeyErrorPayload({ tag: 'internal' });
}

export function limitExceeded(what: string, max: number): KeyErrorPayload {
  return new KeyErrorPayload({ tag: 'limit-exceeded', val: `${what} over ${max} bytes` });
}

export function invalidArgument(why: string): KeyErrorPayload {
  return new KeyErrorPayload({ tag: 'invalid-argument', val: why });
}

function assertNever(x: never): never {
  throw new Error(`unreachable key error tag ${String(x)}`);
}
