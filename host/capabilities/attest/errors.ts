/**
 * `edgeward:attest/*` errors as jco carries them: a WIT `result` error crosses as a thrown Error whose
 * `payload` is the interface's error variant (`{ tag }` or `{ tag, val }`). AttestError is what the service
 * throws; `sealPayload`/`evidencePayload` map it (and TEE refusals) onto each interface's variant. Messages
 * never carry a secret: they name the PCR, the backend and what to do.
 */
import { TeeError } from '../../../hsm/tee/port.js';
import type { EvidenceError } from './generated/interfaces/edgeward-attest-evidence.js';
import type { SealError } from './generated/interfaces/edgeward-attest-seal.js';
import { SealedBlobError } from './sealed.js';

export type AttestErrorTag = SealError['tag'] | EvidenceError['tag'];

/** A refusal of the attest service, with the WIT tag it becomes. */
export class AttestError extends Error {
  constructor(readonly tag: AttestErrorTag, message: string, readonly pcr?: number) {
    super(message);
    this.name = 'AttestError';
  }
}

/** The error a host function throws for jco: `Error` with `payload`. */
export class AttestErrorPayload<P extends { tag: string } = SealError | EvidenceError> extends Error {
  constructor(readonly payload: P) {
    super(`edgeward:attest error: ${payload.tag}`);
    this.name = 'AttestErrorPayload';
  }
}

/** A TEE refusal as the service's error: a policy that does not hold is `policy-mismatch`, anything else `unavailable`. */
export function fromTee(err: TeeError): AttestError {
  if (err.reason === 'policy-mismatch') return new AttestError('policy-mismatch', err.message, err.pcr);
  return new AttestError('unavailable', `the TEE backend cannot release the seal secret: ${err.message}`);
}

function toAttestError(err: unknown): AttestError | undefined {
  if (err instanceof AttestError) return err;
  if (err instanceof TeeError) return fromTee(err);
  if (err instanceof SealedBlobError) return new AttestError('invalid-blob', err.message);
  return undefined;
}

/** Map what a seal/unseal call threw onto `seal-error`; anything unknown is rethrown (an internal trap, logged). */
export function sealPayload(err: unknown): never {
  if (err instanceof SealedBlobError && err.reason === 'wrong-measurement') throw new AttestErrorPayload<SealError>({ tag: 'wrong-measurement' });
  const e = toAttestError(err);
  if (!e) throw err;
  switch (e.tag) {
    case 'wrong-measurement':
      throw new AttestErrorPayload<SealError>({ tag: 'wrong-measurement' });
    case 'policy-mismatch':
    case 'unavailable':
    case 'invalid-blob':
    case 'limit-exceeded':
    case 'invalid-argument':
      throw new AttestErrorPayload<SealError>({ tag: e.tag, val: e.message });
    default:
      return assertNever(e.tag);
  }
}

/** Map what an evidence call threw onto `evidence-error`. */
export function evidencePayload(err: unknown): never {
  const e = toAttestError(err);
  if (!e) throw err;
  if (e.tag === 'limit-exceeded' || e.tag === 'invalid-argument') throw new AttestErrorPayload<EvidenceError>({ tag: e.tag, val: e.message });
  throw new AttestErrorPayload<EvidenceError>({ tag: 'unavailable', val: e.message });
}

function assertNever(x: never): never {
  throw new Error(`unreachable attest error tag ${String(x)}`);
}
