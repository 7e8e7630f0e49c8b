/**
 * Capabilities `edgeward:attest/evidence` and `edgeward:attest/seal`, one per interface so each is a
 * separate grant, both for modules of kind `confidential` only (`kinds`: admission refuses any other kind
 * that asks for them or imports them, at deploy). Served from one AttestService (service.ts) the daemon
 * opens with its TEE backend and measured launch.
 *
 * prepare — the functions for one instance: the caller's measurement is the instance's own (the digest of
 *           the component it runs, decrypted for a confidential module), never an argument, so a guest can seal and unseal only as itself.
 */
import type { Capability, HostFunction, InstanceContext } from '../../runtime/capabilities.js';
import { AttestError, evidencePayload, sealPayload } from './errors.js';
import type { AttestService, EvidenceReport } from './service.js';
import { MAX_SEAL_DATA_BYTES, SEAL_OVERHEAD } from './sealed.js';

export { AttestService, MASTER_FILE, type AttestServiceOptions, type EvidenceSource, type EvidenceReport } from './service.js';
export { AttestError, AttestErrorPayload } from './errors.js';
export { MAX_SEAL_DATA_BYTES } from './sealed.js';

export const EVIDENCE_INTERFACE = 'edgeward:attest/evidence';
export const SEAL_INTERFACE = 'edgeward:attest/seal';
export const ATTEST_KINDS = ['confidential'] as const;
/** A TPM2B_DATA (qualifyingData) holds at most 64 bytes. */
export const MAX_NONCE_BYTES = 64;
/** What the broker counts for the small rest of a call's arguments. */
const SLACK = 4096;
/** An answer's room for what is not bytes (record members, the PEM, the measurement). */
const ANSWER_SLACK = 4096;

const bytes = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

function guestBytes(v: unknown, what: string, max: number): Buffer {
  if (!(v instanceof Uint8Array)) throw new AttestError('invalid-argument', `${what}: not a list<u8>`);
  if (v.byteLength === 0) throw new AttestError('invalid-argument', `${what} is empty`);
  if (v.byteLength > max) throw new AttestError('limit-exceeded', `${what} over ${max} bytes`);
  return bytes(v);
}

/** The evidence, refused as `limit-exceeded` if it would not fit in the module's answer (`max_value_bytes`). */
function fitting(report: EvidenceReport, instance: InstanceContext): EvidenceReport {
  const r = report;
  const size = r.quote.byteLength + r.signature.byteLength + r.pcrs.byteLength + r.eventLog.byteLength + r.akPublicPem.length + r.measurement.length + ANSWER_SLACK;
  const max = instance.limits.max_value_bytes;
  if (size > max) throw new AttestError('limit-exceeded', `the evidence is ${size} bytes (event log ${report.eventLog.byteLength}), more than this module's max_value_bytes ${max}: raise its limits.max_value_bytes`);
  return report;
}

/** Quotes per module: a burst of EVIDENCE_BURST, then one per EVIDENCE_REFILL_MS (each is a TPM signature). */
export const EVIDENCE_BURST = 10;
export const EVIDENCE_REFILL_MS = 1000;

/** A token bucket per module, so one guest cannot keep the TPM busy quoting. */
export class EvidenceRate {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  constructor(private readonly now: () => number = Date.now) {}

  take(module: string): void {
    const t = this.now();
    const b = this.buckets.get(module) ?? { tokens: EVIDENCE_BURST, at: t };
    b.tokens = Math.min(EVIDENCE_BURST, b.tokens + (t - b.at) / EVIDENCE_REFILL_MS);
    b.at = t;
    this.buckets.set(module, b);
    if (b.tokens < 1) throw new AttestError('limit-exceeded', `more than ${EVIDENCE_BURST} evidence calls in a burst: at most one per ${EVIDENCE_REFILL_MS} ms after it`);
    b.tokens -= 1;
  }

  forget(module: string): void {
    this.buckets.delete(module);
  }
}

export function evidenceFunctions(service: AttestService, instance: InstanceContext, rate = new EvidenceRate()): Record<string, HostFunction> {
  return {
    evidence: async (nonce: unknown) => {
      try {
        const n = guestBytes(nonce, 'nonce', MAX_NONCE_BYTES);
        rate.take(instance.module);
        return fitting(await service.evidence(n, (instance.measurement ?? instance.digest)), instance);
      } catch (err) {
        return evidencePayload(err);
      }
    },
  };
}

export function sealFunctions(service: AttestService, instance: InstanceContext): Record<string, HostFunction> {
  return {
    seal: async (data: unknown) => {
      try {
        return await service.seal((instance.measurement ?? instance.digest), guestBytes(data, 'data', MAX_SEAL_DATA_BYTES));
      } catch (err) {
        return sealPayload(err);
      }
    },
    unseal: async (blob: unknown) => {
      try {
        return await service.unseal((instance.measurement ?? instance.digest), guestBytes(blob, 'blob', MAX_SEAL_DATA_BYTES + SEAL_OVERHEAD));
      } catch (err) {
        return sealPayload(err);
      }
    },
  };
}

const limit = (fn: string, max: number) => ({ bytes: max + SLACK, refusal: { tag: 'limit-exceeded', val: `arguments of ${fn} larger than ${max + SLACK} bytes` } });

/** The two capabilities over `service` (listed in host/capabilities/index.ts when the daemon has one). */
export function attestCapabilities(service: AttestService): Capability[] {
  const rate = new EvidenceRate();
  return [
    {
      name: EVIDENCE_INTERFACE,
      interfaces: [EVIDENCE_INTERFACE],
      kinds: ATTEST_KINDS,
      argumentLimits: { [EVIDENCE_INTERFACE]: { evidence: limit('evidence', MAX_NONCE_BYTES) } },
      prepare: (instance) => ({ [EVIDENCE_INTERFACE]: evidenceFunctions(service, instance, rate) }),
      forget: (module) => rate.forget(module),
    },
    {
      name: SEAL_INTERFACE,
      interfaces: [SEAL_INTERFACE],
      kinds: ATTEST_KINDS,
      argumentLimits: { [SEAL_INTERFACE]: { seal: limit('seal', MAX_SEAL_DATA_BYTES), unseal: limit('unseal', MAX_SEAL_DATA_BYTES + SEAL_OVERHEAD) } },
      prepare: (instance) => ({ [SEAL_INTERFACE]: sealFunctions(service, instance) }),
    },
  ];
}
