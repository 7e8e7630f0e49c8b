/**
 * PCR quotes (Part 3 §18.4; TPMS_ATTEST in Part 2 §10.12): parse the attestation structure and verify it
 * the way a remote verifier does — signature with the AK public key, nonce, and the PCR digest recomputed
 * from PCR values the verifier replayed from an event log.
 */
import { createHash } from 'node:crypto';
import { ST, hashName } from './constants.js';
import { Reader, TpmMarshalError } from './marshal.js';
import { verifyWithPublic } from './pubkey.js';
import { readPcrSelection, type PcrSelection, type Signature, type TpmtPublic } from './types.js';

/** TPM_GENERATED_VALUE: only the TPM signs structures starting with this (Part 2 §6.2). */
export const TPM_GENERATED = 0xff544347;

export interface QuoteAttest {
  qualifiedSigner: Buffer;
  extraData: Buffer;
  clock: bigint;
  resetCount: number;
  restartCount: number;
  safe: boolean;
  firmwareVersion: bigint;
  pcrSelect: PcrSelection[];
  pcrDigest: Buffer;
}

/** Parse TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE. */
export function parseQuoteAttest(attest: Buffer): QuoteAttest {
  const r = new Reader(attest);
  if (r.u32() !== TPM_GENERATED) throw new TpmMarshalError('attestation does not start with TPM_GENERATED_VALUE');
  if (r.u16() !== ST.ATTEST_QUOTE) throw new TpmMarshalError('attestation is not a quote');
  const qualifiedSigner = r.b2();
  const extraData = r.b2();
  const clock = r.u64();
  const resetCount = r.u32();
  const restartCount = r.u32();
  const safe = r.u8() === 1;
  const firmwareVersion = r.u64();
  const pcrSelect = readPcrSelection(r);
  const pcrDigest = r.b2();
  r.end();
  return { qualifiedSigner, extraData, clock, resetCount, restartCount, safe, firmwareVersion, pcrSelect, pcrDigest };
}

/** The PCR value after extending `start` with each digest in order: v' = H(v || d) (Part 1 §17.4). */
export function replayPcr(hashAlg: number, digests: Buffer[], start?: Buffer): Buffer {
  const h = hashName(hashAlg);
  let v = start ?? Buffer.alloc(createHash(h).digest().length);
  for (const d of digests) v = createHash(h).update(v).update(d).digest();
  return v;
}

export type QuoteVerdict = { ok: true; attest: QuoteAttest } | { ok: false; reason: 'signature' | 'nonce' | 'selection' | 'pcr-digest' };

/**
 * Verify a quote: AK signature over the attest bytes, the verifier's nonce, the PCR selection, and the
 * digest of the expected PCR values (given in selection order, lowest PCR first per bank).
 */
export function verifyQuote(
  akPublic: TpmtPublic,
  quote: { attest: Buffer; signature: Signature },
  expected: { nonce: Buffer; selection: PcrSelection[]; pcrValues: Buffer[]; hashAlg: number },
): QuoteVerdict {
  if (!verifyWithPublic(akPublic, quote.attest, quote.signature)) return { ok: false, reason: 'signature' };
  const attest = parseQuoteAttest(quote.attest);
  if (!attest.extraData.equals(expected.nonce)) return { ok: false, reason: 'nonce' };
  const norm = (s: PcrSelection[]): string => JSON.stringify(s.map((x) => ({ h: x.hashAlg, p: [...x.pcrs].sort((a, b) => a - b) })));
  if (norm(attest.pcrSelect) !== norm(expected.selection)) return { ok: false, reason: 'selection' };
  const h = createHash(hashName(expected.hashAlg));
  for (const v of expected.pcrValues) h.update(v);
  if (!h.digest().equals(attest.pcrDigest)) return { ok: false, reason: 'pcr-digest' };
  return { ok: true, attest };
}
