/**
 * `edgeward:workload/identity` errors as jco carries them: a thrown Error whose `payload` is the
 * `identity-error` variant. Service failures are coarse here (`unavailable`/`internal`); causes are logged
 * by the services.
 */
import { KeyError } from '../../../hsm/keys/index.js';

export type WitIdentityError =
  | { tag: 'measurement-mismatch' }
  | { tag: 'invalid-argument'; val: string }
  | { tag: 'limit-exceeded'; val: string }
  | { tag: 'unavailable' }
  | { tag: 'internal' };

export class IdentityErrorPayload extends Error {
  constructor(readonly payload: WitIdentityError) {
    super(`edgeward:workload/identity error: ${payload.tag}`);
    this.name = 'IdentityErrorPayload';
  }
}

export function toIdentityError(err: unknown): IdentityErrorPayload {
  if (err instanceof IdentityErrorPayload) return err;
  if (err instanceof KeyError) {
    if (err.tag === 'backend-unavailable') return new IdentityErrorPayload({ tag: 'unavailable' });
    if (err.tag === 'limit-exceeded') return new IdentityErrorPayload({ tag: 'limit-exceeded', val: err.message });
  }
  return new IdentityErrorPayload({ tag: 'internal' });
}
