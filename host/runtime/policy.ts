/**
 * Restart policy and back-off, as IoT Edge's agent computes them (RestartPolicyManager.cs, reference
 * §7): a module that is not running is restarted when its desired status is running, its policy is not
 * `never`, and the policy is `always` or it ended in failure; the cool-off before restart N is
 * min(unit × 2^N, 300 s); after MaxRestartCount restarts it stays failed; a run longer than the
 * intensive-care time clears the count. on-unhealthy also restarts a module whose health probes fail
 * (health.ts, supervisor.ts); for a module that exports no health probe it is on-failure.
 */
import type { RestartPolicy } from './registry.js';

export interface BackoffSettings {
  /** CoolOffTimeUnitInSeconds (default 10 s), in ms. */
  coolOffUnitMs: number;
  /** Cap on one cool-off (300 s). */
  maxCoolOffMs: number;
  /** MaxRestartCount (20). */
  maxRestartCount: number;
  /** IntensiveCareTimeInMinutes (10 min), in ms. */
  intensiveCareMs: number;
}

export const IOT_EDGE_BACKOFF: BackoffSettings = {
  coolOffUnitMs: 10_000,
  maxCoolOffMs: 300_000,
  maxRestartCount: 20,
  intensiveCareMs: 10 * 60_000,
};

/** How an instance ended, seen by the policy. */
export type EndKind = 'failed' | 'exited-ok';

export type RestartDecision =
  | { restart: true; delayMs: number }
  | { restart: false; reason: 'policy' | 'desired-stopped' | 'max-restarts' };

export function decideRestart(
  policy: RestartPolicy,
  desired: 'running' | 'stopped',
  ended: EndKind,
  restartCount: number,
  s: BackoffSettings,
): RestartDecision {
  if (desired !== 'running') return { restart: false, reason: 'desired-stopped' };
  if (policy === 'never') return { restart: false, reason: 'policy' };
  if (policy !== 'always' && ended !== 'failed') return { restart: false, reason: 'policy' };
  if (restartCount >= s.maxRestartCount) return { restart: false, reason: 'max-restarts' };
  return { restart: true, delayMs: coolOff(restartCount, s) };
}

/** Whether failed health probes restart a module under `policy` (only `on-unhealthy`; others report). */
export function restartsWhenUnhealthy(policy: RestartPolicy): boolean {
  return policy === 'on-unhealthy';
}

export function coolOff(restartCount: number, s: BackoffSettings): number {
  return Math.min(s.coolOffUnitMs * 2 ** Math.min(restartCount, 30), s.maxCoolOffMs);
}

/** "05m:00s", as the agent logs it. */
export function formatDelay(ms: number): string {
  const total = Math.ceil(ms / 1000);
  return `${String(Math.floor(total / 60)).padStart(2, '0')}m:${String(total % 60).padStart(2, '0')}s`;
}
