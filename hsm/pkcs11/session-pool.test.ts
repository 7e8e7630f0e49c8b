import { describe, expect, it } from 'vitest';
import type * as P from 'pkcs11js';
import { SessionPool } from './session-pool.js';

const closed: Buffer[] = [];
const fakeModule = { C_CloseSession: (s: Buffer) => void closed.push(s) } as unknown as P.PKCS11;
const sessions = [Buffer.from([1]), Buffer.from([2])];

describe('SessionPool', () => {
  it('one operation per session; waiters are served in order; a throwing operation still returns its session (G6)', async () => {
    const pool = new SessionPool(fakeModule, sessions);
    const inUse = new Set<string>();
    const order: number[] = [];
    let overlaps = 0;
    const op = (i: number) =>
      pool.use(async (s, lane) => {
        expect(lane).toBe(sessions.indexOf(s as (typeof sessions)[number]));
        if (inUse.has(s.toString('hex'))) overlaps++;
        inUse.add(s.toString('hex'));
        await new Promise((r) => setTimeout(r, 1));
        inUse.delete(s.toString('hex'));
        order.push(i);
        if (i % 3 === 0) throw new Error(`op ${i} failed`);
        return i;
      });
    const results = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => op(i)));
    expect(overlaps).toBe(0);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(10);
    expect(pool.stats()).toEqual({ size: 2, idle: 2, waiting: 0, highWater: 2 });
    pool.close();
    expect(closed).toEqual(sessions);
    await expect(pool.use(() => 1)).rejects.toMatchObject({ tag: 'backend-unavailable' });
  });
});
