/**
 * The files `tpm2_quote` writes and `tpm2_checkquote` reads, in the exact forms those tools use:
 *
 * - quote.msg: TPMS_ATTEST as the TPM marshalled it (the TPM2B_ATTEST content, no size).
 * - quote.sig: TPMT_SIGNATURE, TPM-marshalled (big-endian).
 * - quote.pcrs (tpm2-tools' "values" format, checked against tpm2_quote 5.4 output): the in-memory C
 *   structs, little-endian and padded as the compiler lays them out — TPML_PCR_SELECTION (u32 count, 16
 *   TPMS_PCR_SELECTION of 8 bytes: u16 hash, u8 sizeofSelect, 4 bytes pcrSelect, 1 pad), a u32 count of
 *   TPML_DIGEST that follow, and each TPML_DIGEST (u32 count, 8 TPM2B_DIGEST of 66 bytes: u16 size, 64
 *   bytes buffer). The values are in selection order, 8 per TPML_DIGEST.
 */
import { EventLogError } from '../../hsm/tpm/eventlog.js';
import type { PcrSelection } from '../../hsm/tpm/types.js';

const SEL_ENTRIES = 16;
const SEL_SIZE = 8;
const DIGESTS_PER_LIST = 8;
const TPM2B_DIGEST_SIZE = 66;

export function encodeToolsPcrs(selection: PcrSelection[], values: Buffer[]): Buffer {
  const sel = Buffer.alloc(4 + SEL_ENTRIES * SEL_SIZE);
  sel.writeUInt32LE(selection.length, 0);
  selection.forEach((s, i) => {
    const o = 4 + i * SEL_SIZE;
    sel.writeUInt16LE(s.hashAlg, o);
    sel.writeUInt8(3, o + 2);
    for (const p of s.pcrs) sel[o + 3 + (p >> 3)]! |= 1 << (p & 7);
  });
  const lists: Buffer[] = [];
  for (let i = 0; i < values.length; i += DIGESTS_PER_LIST) {
    const chunk = values.slice(i, i + DIGESTS_PER_LIST);
    const l = Buffer.alloc(4 + DIGESTS_PER_LIST * TPM2B_DIGEST_SIZE);
    l.writeUInt32LE(chunk.length, 0);
    chunk.forEach((v, j) => {
      l.writeUInt16LE(v.length, 4 + j * TPM2B_DIGEST_SIZE);
      v.copy(l, 4 + j * TPM2B_DIGEST_SIZE + 2);
    });
    lists.push(l);
  }
  const n = Buffer.alloc(4);
  n.writeUInt32LE(lists.length, 0);
  return Buffer.concat([sel, n, ...lists]);
}

export function parseToolsPcrs(buf: Buffer): { selection: PcrSelection[]; values: Buffer[] } {
  const fail = (why: string): never => {
    throw new EventLogError(`quote.pcrs is not in tpm2-tools' values format: ${why}`);
  };
  if (buf.length < 4 + SEL_ENTRIES * SEL_SIZE + 4) fail('too short');
  const count = buf.readUInt32LE(0);
  if (count > SEL_ENTRIES) fail('selection count');
  const selection: PcrSelection[] = [];
  for (let i = 0; i < count; i++) {
    const o = 4 + i * SEL_SIZE;
    const size = buf.readUInt8(o + 2);
    const pcrs: number[] = [];
    for (let b = 0; b < Math.min(size, 4); b++) for (let bit = 0; bit < 8; bit++) if (buf[o + 3 + b]! & (1 << bit)) pcrs.push(b * 8 + bit);
    selection.push({ hashAlg: buf.readUInt16LE(o), pcrs });
  }
  let o = 4 + SEL_ENTRIES * SEL_SIZE;
  const lists = buf.readUInt32LE(o);
  o += 4;
  if (buf.length !== o + lists * (4 + DIGESTS_PER_LIST * TPM2B_DIGEST_SIZE)) fail('length');
  const values: Buffer[] = [];
  for (let l = 0; l < lists; l++, o += 4 + DIGESTS_PER_LIST * TPM2B_DIGEST_SIZE) {
    const n = buf.readUInt32LE(o);
    if (n > DIGESTS_PER_LIST) fail('digest count');
    for (let j = 0; j < n; j++) {
      const at = o + 4 + j * TPM2B_DIGEST_SIZE;
      const size = buf.readUInt16LE(at);
      if (size > 64) fail('digest size');
      values.push(Buffer.from(buf.subarray(at + 2, at + 2 + size)));
    }
  }
  return { selection, values };
}

/** The bundle `edgeward attest quote` writes (file name → bytes). */
export const QUOTE_FILES = ['quote.msg', 'quote.sig', 'quote.pcrs', 'ak.pub.pem', 'ak.pub', 'eventlog.bin'] as const;
export type QuoteFile = (typeof QUOTE_FILES)[number];
export type QuoteBundle = Record<QuoteFile, Buffer>;
