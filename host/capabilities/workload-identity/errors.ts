/**
 * `edgeward:workload/identity` errors as jco carries them: a thrown Error whose `payload` is the
 * `identity-error` variant. Service failures are coarse here (`unavailable`/`internal`); causes are logged
 * by the services.
 */
import { KeyError } from '../../../hsm/keys/index.js';
import { WorkloadIdentityError } from '../../identity/workload.js';
import type { IdentityError } from './generated/interfaces/edgeward-workload-identity.js';

/** The WIT `identity-error` variant, as jco generates it from wit/workload/identity.wit. */
export type WitIdentityError = IdentityError;

export class IdentityErrorPayload extends Error {
  constructor(readonly payload: WitIdentityError) {
    super(`edgeward:workload/identity error: ${payload.tag}`);
    this.name = 'IdentityErrorPayload';
  }
}

export function toIdentityError(err: unknown): IdentityErrorPayload {
  if (err instanceof IdentityErrorPayload) return err;
  if (err instanceof WorkloadIdentityError) return new IdentityErrorPayload({ tag: err.tag, val: err.message });
  if (err instanceof KeyError) {
    if (err.tag === 'backend-unavailable') return new IdentityErrorPayload({ tag: 'unavailable' });
    if (err.tag === 'limit-exceeded') return new IdentityErrorPayload({ tag: 'limit-exceeded', val: err.message });
  }
  return new IdentityErrorPayload({ tag: 'internal' });
}
