/**
 * hsm/support/ip.ts against node:net's isIP: the same answer for every string but a zone index, which
 * isIP takes for IPv6 and a certificate cannot carry.
 */
import { isIP } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ipBytes, ipVersion } from '../hsm/support/ip.js';

const expected = (s: string): number => (s.includes('%') ? 0 : isIP(s));

describe('ipVersion', () => {
  it('agrees with isIP on the forms of RFC 4291 and on near misses', () => {
    const cases = [
      '0.0.0.0', '127.0.0.1', '255.255.255.255', '256.1.1.1', '1.2.3', '1.2.3.4.5', '01.2.3.4', '1.2.3.04', ' 1.2.3.4', '1.2.3.4\n',
      '::', '::1', '1::', '1::2', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7',
      '1::2::3', ':1::', '1:::2', ':', ':::', '1:', ':1', 'fe80::1', 'FE80::ABCD', '12345::', 'g::1', '::ffff:1.2.3.4',
      '1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:7:1.2.3.4', '::1.2.3.4', '1.2.3.4::', '1.2.3.4::1', '::1.2.3.4:1', '::ffff:256.1.1.1',
      '1::1.2.3.4', '1:2:3:4:5::1.2.3.4', '1:2:3:4:5:6::1.2.3.4', 'fe80::1%eth0', 'localhost', 'hello.example', '', '.', '..',
    ];
    for (const c of cases) expect(ipVersion(c), c).toBe(expected(c));
  });

  it('agrees with isIP on random strings of IP characters', () => {
    const ch = fc.constantFrom(...'0123456789abcdefABCDEF:.:.:.'.split(''));
    fc.assert(fc.property(fc.array(ch, { maxLength: 46 }).map((a) => a.join('')), (s) => ipVersion(s) === expected(s)), { numRuns: 20_000 });
  });

  it('agrees with isIP on random real addresses, written every way', () => {
    fc.assert(fc.property(fc.ipV4(), fc.ipV6(), (a, b) => ipVersion(a) === 4 && ipVersion(b) === 6 && expected(b) === 6), { numRuns: 5_000 });
  });

  it('encodes every address as the bytes it stands for (the same canonical form as the URL parser gives)', () => {
    const canonical = (v6: string) => new URL(`http://[${v6}]/`).hostname;
    fc.assert(fc.property(fc.ipV4(), fc.ipV6(), (a, b) => {
      const four = ipBytes(a)!;
      const sixteen = ipBytes(b)!;
      const groups = Array.from({ length: 8 }, (_, i) => sixteen.readUInt16BE(i * 2).toString(16)).join(':');
      return four.length === 4 && [...four].join('.') === a.split('.').map(Number).join('.') && sixteen.length === 16 && canonical(groups) === canonical(b);
    }), { numRuns: 5_000 });
    expect([...ipBytes('::ffff:192.0.2.1')!]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1]);
    expect(ipBytes('fe80::1%eth0')).toBeUndefined();
  });
});
