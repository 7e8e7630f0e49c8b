import { describe, expect, it } from 'vitest';
import { coolOff, decideRestart, formatDelay, IOT_EDGE_BACKOFF as S } from './policy.js';

describe('restart policy (edgeAgent RestartPolicyManager)', () => {
  it('restarts failed modules under on-failure, on-unhealthy and always, never under never', () => {
    expect(decideRestart('never', 'running', 'failed', 0, S)).toEqual({ restart: false, reason: 'policy' });
    for (const p of ['on-failure', 'on-unhealthy', 'always'] as const) expect(decideRestart(p, 'running', 'failed', 0, S)).toEqual({ restart: true, delayMs: 10_000 });
  });

  it('restarts a clean exit only under always, and nothing whose desired status is stopped', () => {
    expect(decideRestart('on-failure', 'running', 'exited-ok', 0, S)).toEqual({ restart: false, reason: 'policy' });
    expect(decideRestart('always', 'running', 'exited-ok', 3, S)).toEqual({ restart: true, delayMs: 80_000 });
    expect(decideRestart('always', 'stopped', 'failed', 0, S)).toEqual({ restart: false, reason: 'desired-stopped' });
  });

  it('backs off as min(10 s × 2^n, 300 s) and gives up after MaxRestartCount', () => {
    expect([0, 1, 2, 3, 4, 5, 19].map((n) => coolOff(n, S))).toEqual([10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000]);
    expect(decideRestart('always', 'running', 'failed', 20, S)).toEqual({ restart: false, reason: 'max-restarts' });
    expect(formatDelay(300_000)).toBe('05m:00s');
    expect(formatDelay(242_000)).toBe('04m:02s');
  });
});
