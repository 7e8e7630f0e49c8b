import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HandleCodec } from './handles.js';
import { KeyError } from './types.js';

const codec = new HandleCodec(randomBytes(32));

function invalid(h: unknown): void {
  let err: unknown;
  try {
    codec.verify(h);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(KeyError);
  expect((err as KeyError).tag).toBe('invalid-handle');
  expect((err as KeyError).message).toBe('invalid handle');
}

describe('HandleCodec', () => {
  it('round-trips each payload kind', () => {
    expect(codec.verify(codec.issue({ t: 'key', ns: 'edgeward', id: 'a' }))).toEqual({ t: 'key', ns: 'edgeward', id: 'a' });
    expect(codec.verify(codec.issue({ t: 'uri', ns: 'edgeward', uri: 'pkcs11:object=x' }))).toEqual({ t: 'uri', ns: 'edgeward', uri: 'pkcs11:object=x' });
    expect(codec.verify(codec.issue({ t: 'derived', ns: 'module.m', id: 'b', d: 'AAE=' }))).toEqual({ t: 'derived', ns: 'module.m', id: 'b', d: 'AAE=' });
  });

  it('refuses every tampering with the one answer', () => {
    const h = codec.issue({ t: 'key', ns: 'module.a', id: 'k' });
    const [pre, body, sig] = h.split('.') as [string, string, string];
    const forged = Buffer.from(JSON.stringify({ t: 'key', ns: 'module.b', id: 'k', n: 'x' })).toString('base64url');
    for (const bad of [
      `${pre}.${forged}.${sig}`,
      `ew2.${body}.${sig}`,
      `${pre}.${body}.${sig.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'))}`,
      `${pre}.${body}`,
      `${pre}.${body}.${sig}.x`,
      '', 'x'.repeat(5000), 42, null, undefined,
      new HandleCodec(randomBytes(32)).issue({ t: 'key', ns: 'module.a', id: 'k' }),
    ]) invalid(bad);
  });

  it('refuses a non-canonical spelling of a genuine MAC (unused low bits of the last base64 character)', () => {
    const h = codec.issue({ t: 'key', ns: 'module.a', id: 'k' });
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(h.at(-1)!);
    for (const bits of [1, 2, 3]) invalid(h.slice(0, -1) + alphabet[last ^ bits]);
  });

  it('a correctly MAC\'d body with an unknown kind or missing field is still invalid', () => {
    const secret = randomBytes(32);
    const c = new HandleCodec(secret);
    const mint = (payload: unknown) => {
      const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
      return `ew1.${body}.${createHmac('sha256', secret).update('ew1.').update(body).digest('base64url')}`;
    };
    expect(c.verify(mint({ t: 'key', ns: 'edgeward', id: 'a' }))).toEqual({ t: 'key', ns: 'edgeward', id: 'a' });
    for (const p of [{ t: 'bogus', ns: 'edgeward', id: 'a' }, { t: 'key', ns: 'edgeward' }, { t: 'key', ns: 1, id: 'a' }, [1], 'str']) {
      expect(() => c.verify(mint(p))).toThrow('invalid handle');
    }
    expect(() => new HandleCodec(Buffer.alloc(16))).toThrow(/32 bytes/);
  });
});
