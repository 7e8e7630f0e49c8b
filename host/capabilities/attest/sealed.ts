/**
 * The sealed-blob format of `edgeward:attest/seal` (v1), pure: given the device's seal master secret and the
 * caller's measurement, seal and open. All integers big-endian.
 *
 * | offset | size | field |
 * |---|---|---|
 * | 0 | 6 | magic `EWSEAL` |
 * | 6 | 2 | version = 1 |
 * | 8 | 32 | the sealer's measurement (SHA-256 of its plaintext component) |
 * | 40 | 8 | master id: HKDF-SHA256(master, info "edgeward-attest-master-id/1"), first 8 bytes |
 * | 48 | 12 | AES-GCM IV (random) |
 * | 60 | n | ciphertext (n = data length) |
 * | 60+n | 16 | GCM tag |
 *
 * Key = HKDF-SHA256(ikm = master, salt = empty, info = "edgeward-attest-seal/1" ‖ caller's digest, 32 bytes);
 * additional data = header (bytes 0..60) ‖ caller's digest. A caller with another measurement is refused by
 * the header (`wrong-measurement`), and, were the header edited, by the tag (`invalid-blob`): its key differs.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

export const SEAL_MAGIC = Buffer.from('EWSEAL');
export const SEAL_VERSION = 1;
export const SEAL_HEADER_BYTES = 60;
export const SEAL_OVERHEAD = SEAL_HEADER_BYTES + 16;
/** Largest data `seal` takes (and so the largest blob `unseal` takes is this plus SEAL_OVERHEAD). */
export const MAX_SEAL_DATA_BYTES = 1024 * 1024;

export type OpenRefusal = 'invalid-blob' | 'wrong-measurement' | 'other-master';

export class SealedBlobError extends Error {
  constructor(readonly reason: OpenRefusal, message: string) {
    super(message);
    this.name = 'SealedBlobError';
  }
}

/** `sha256:<hex>` → its 32 bytes (a malformed measurement is a host bug, not the guest's). */
export function digestBytes(measurement: string): Buffer {
  const m = /^sha256:([0-9a-f]{64})$/.exec(measurement);
  if (!m) throw new Error(`not a sha256 measurement: ${measurement}`);
  return Buffer.from(m[1]!, 'hex');
}

function hkdf(master: Buffer, info: Buffer, bytes: number): Buffer {
  return Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), info, bytes));
}

/** The id a blob records of the master it was sealed under (tells "another device's" from "damaged"). */
export function masterId(master: Buffer): Buffer {
  return hkdf(master, Buffer.from('edgeward-attest-master-id/1'), 8);
}

/** The per-measurement sealing key. */
export function sealingKey(master: Buffer, digest: Buffer): Buffer {
  return hkdf(master, Buffer.concat([Buffer.from('edgeward-attest-seal/1'), digest]), 32);
}

export function sealData(master: Buffer, measurement: string, data: Buffer): Buffer {
  const digest = digestBytes(measurement);
  const header = Buffer.alloc(SEAL_HEADER_BYTES);
  SEAL_MAGIC.copy(header, 0);
  header.writeUInt16BE(SEAL_VERSION, 6);
  digest.copy(header, 8);
  masterId(master).copy(header, 40);
  randomBytes(12).copy(header, 48);
  const c = createCipheriv('aes-256-gcm', sealingKey(master, digest), header.subarray(48, 60)).setAAD(Buffer.concat([header, digest]));
  const body = Buffer.concat([c.update(data), c.final()]);
  return Buffer.concat([header, body, c.getAuthTag()]);
}

/** The header's checks that need no secret: format, version, and whose measurement sealed it. */
export function checkHeader(blob: Buffer, measurement: string): void {
  if (blob.length < SEAL_OVERHEAD || !blob.subarray(0, 6).equals(SEAL_MAGIC)) throw new SealedBlobError('invalid-blob', 'not a blob sealed by edgeward:attest/seal');
  const version = blob.readUInt16BE(6);
  if (version !== SEAL_VERSION) throw new SealedBlobError('invalid-blob', `sealed-blob version ${version} is not supported (this host reads version ${SEAL_VERSION})`);
  if (!blob.subarray(8, 40).equals(digestBytes(measurement))) throw new SealedBlobError('wrong-measurement', 'sealed by a component with another measurement');
}

export function openData(master: Buffer, measurement: string, blob: Buffer): Buffer {
  checkHeader(blob, measurement);
  if (!blob.subarray(40, 48).equals(masterId(master))) {
    throw new SealedBlobError('other-master', 'sealed under another seal secret: on another device, or before this device\'s seal secret was replaced');
  }
  const digest = digestBytes(measurement);
  const header = blob.subarray(0, SEAL_HEADER_BYTES);
  try {
    const d = createDecipheriv('aes-256-gcm', sealingKey(master, digest), header.subarray(48, 60)).setAAD(Buffer.concat([header, digest]));
    d.setAuthTag(blob.subarray(blob.length - 16));
    return Buffer.concat([d.update(blob.subarray(SEAL_HEADER_BYTES, blob.length - 16)), d.final()]);
  } catch {
    throw new SealedBlobError('invalid-blob', 'the sealed blob is damaged (its authentication tag does not verify)');
  }
}
