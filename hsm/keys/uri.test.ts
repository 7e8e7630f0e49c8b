import { describe, expect, it } from 'vitest';
import { rawEcdsaToDer } from './ecdsa.js';
import { parsePkcs11Uri } from './uri.js';

describe('RFC 7512 PKCS#11 URIs', () => {
  it('parses token, object, id, type and slot-id with percent-decoding', () => {
    expect(parsePkcs11Uri('pkcs11:token=My%20Token;object=device%2Did;type=private;id=%01%ff;slot-id=3')).toEqual({
      token: 'My Token', object: 'device-id', type: 'private', id: Buffer.from([1, 255]), slotId: 3,
    });
    expect(parsePkcs11Uri('pkcs11:object=a?module-path=/x.so')).toEqual({ object: 'a' });
  });

  it('refuses pin-value, unknown attributes and bad encodings', () => {
    expect(() => parsePkcs11Uri('pkcs11:object=a?pin-value=1234')).toThrow(/pin-value is not accepted/);
    expect(() => parsePkcs11Uri('pkcs11:object=a?pin-value=1234')).not.toThrow(/1234/);
    expect(() => parsePkcs11Uri('pkcs11:colour=red')).toThrow(/unknown attribute/);
    expect(() => parsePkcs11Uri('pkcs11:object=%zz')).toThrow(/percent/);
    expect(() => parsePkcs11Uri('file:///x')).toThrow(/not a pkcs11: URI/);
  });
});

describe('raw ECDSA → DER', () => {
  it('encodes r and s as minimal positive INTEGERs', () => {
    const r = Buffer.alloc(32, 0); r[31] = 1;
    const s = Buffer.alloc(32, 0xff);
    expect(rawEcdsaToDer(Buffer.concat([r, s])).toString('hex')).toBe(`3026020101022100${'ff'.repeat(32)}`);
  });
});

describe('raw ECDSA → DER against node:crypto', () => {
  it('every P-256/P-384 signature node makes in ieee-p1363 converts to the DER node makes', async () => {
    const { generateKeyPairSync, sign, verify } = await import('node:crypto');
    for (const namedCurve of ['P-256', 'P-384']) {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve });
      for (let i = 0; i < 200; i++) {
        const m = Buffer.from(`m${i}`);
        const raw = sign('sha256', m, { key: privateKey, dsaEncoding: 'ieee-p1363' });
        const der = rawEcdsaToDer(raw);
        expect(verify('sha256', m, publicKey, der)).toBe(true);
        expect(verify('sha256', m, { key: publicKey, dsaEncoding: 'ieee-p1363' }, raw)).toBe(true);
      }
    }
  });
});
