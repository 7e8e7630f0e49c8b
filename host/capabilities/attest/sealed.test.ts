/** The sealed-blob format: layout, binding to the measurement and the master, refusals. */
import { createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SealedBlobError, openData, sealData, SEAL_HEADER_BYTES } from './sealed.js';

const A = `sha256:${'a1'.repeat(32)}`;
const B = `sha256:${'b2'.repeat(32)}`;
const reason = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return e instanceof SealedBlobError ? e.reason : String(e);
  }
  return 'accepted';
};

describe('sealed blobs v1', () => {
  it('lays out the header as documented and decrypts with the documented key and additional data', () => {
    const master = randomBytes(32);
    const data = Buffer.from('the data');
    const blob = sealData(master, A, data);
    expect(blob.subarray(0, 6).toString()).toBe('EWSEAL');
    expect(blob.readUInt16BE(6)).toBe(1);
    expect(blob.subarray(8, 40).toString('hex')).toBe(A.slice(7));
    expect(blob.length).toBe(SEAL_HEADER_BYTES + data.length + 16);
    // Independently of openData: key = HKDF(master, "edgeward-attest-seal/1" ‖ digest), AAD = header ‖ digest.
    const digest = Buffer.from(A.slice(7), 'hex');
    const key = Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), Buffer.concat([Buffer.from('edgeward-attest-seal/1'), digest]), 32));
    const d = createDecipheriv('aes-256-gcm', key, blob.subarray(48, 60)).setAAD(Buffer.concat([blob.subarray(0, 60), digest]));
    d.setAuthTag(blob.subarray(blob.length - 16));
    expect(Buffer.concat([d.update(blob.subarray(60, blob.length - 16)), d.final()]).equals(data)).toBe(true);
    expect(openData(master, A, blob).equals(data)).toBe(true);
  });

  it('refuses another measurement, another master, another version and damage, each by its reason', () => {
    const master = randomBytes(32);
    const blob = sealData(master, A, Buffer.from('x'));
    expect(reason(() => openData(master, B, blob))).toBe('wrong-measurement');
    expect(reason(() => openData(randomBytes(32), A, blob))).toBe('other-master');
    const v2 = Buffer.from(blob);
    v2.writeUInt16BE(2, 6);
    expect(reason(() => openData(master, A, v2))).toBe('invalid-blob');
    const forged = Buffer.from(blob);
    Buffer.from(B.slice(7), 'hex').copy(forged, 8);
    expect(reason(() => openData(master, B, forged))).toBe('invalid-blob');
    expect(reason(() => openData(master, A, blob.subarray(0, 70)))).toBe('invalid-blob');
  });
});
