/**
 * ECDSA signature encodings. PKCS#11 (CKM_ECDSA, PKCS#11 v2.40 §2.3.1) returns raw r||s; X.509 and
 * node:crypto use the DER `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` (RFC 3279 §2.2.3).
 * Written straight into one buffer: this runs once per signature on the hot path.
 */

/** Raw r||s (equal halves) → DER. */
export function rawEcdsaToDer(raw: Uint8Array): Buffer {
  if (raw.length === 0 || raw.length % 2 !== 0) throw new Error(`raw ECDSA signature has odd length ${raw.length}`);
  const half = raw.length / 2;
  const r = integerSpan(raw, 0, half);
  const s = integerSpan(raw, half, raw.length);
  const bodyLen = 2 + r.len + 2 + s.len; // each INTEGER: tag, 1-byte length (r, s ≤ 67 bytes for P-521)
  const head = bodyLen < 0x80 ? 2 : 3;
  const out = Buffer.allocUnsafe(head + bodyLen);
  out[0] = 0x30;
  if (head === 2) out[1] = bodyLen;
  else {
    out[1] = 0x81;
    out[2] = bodyLen;
  }
  let o = writeInteger(out, head, raw, r);
  o = writeInteger(out, o, raw, s);
  return out;
}

interface Span {
  readonly start: number;
  readonly end: number;
  /** Content length including a 0x00 pad when the high bit is set (X.690 §8.3.2). */
  readonly len: number;
  readonly pad: boolean;
}

function integerSpan(raw: Uint8Array, from: number, to: number): Span {
  let start = from;
  while (start < to - 1 && raw[start] === 0) start++;
  const pad = ((raw[start] ?? 0) & 0x80) !== 0;
  return { start, end: to, len: to - start + (pad ? 1 : 0), pad };
}

function writeInteger(out: Buffer, at: number, raw: Uint8Array, span: Span): number {
  out[at++] = 0x02;
  out[at++] = span.len;
  if (span.pad) out[at++] = 0;
  out.set(raw.subarray(span.start, span.end), at);
  return at + (span.end - span.start);
}
