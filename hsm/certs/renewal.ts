/**
 * IoT Edge's auto-renew policy (`[edge_ca.auto_renew]`, aziot-certd): `threshold` says when a certificate
 * is due — "80%" of its lifetime elapsed, or "30min"/"2day" before expiry — and `retry` how often to try
 * again after a failure, as a share of the lifetime or a duration.
 */

export interface RenewPolicy {
  rotateKey: boolean;
  threshold: string;
  retry: string;
}

export const DEFAULT_RENEW_POLICY: RenewPolicy = { rotateKey: true, threshold: '80%', retry: '4%' };

const UNIT_MS = { min: 60_000, day: 86_400_000 } as const;

function parseAmount(s: string): { percent: number } | { ms: number } {
  const m = /^(\d+)(%|min|day)$/.exec(s);
  if (!m) throw new Error(`invalid renewal amount "${s}"`);
  const n = Number(m[1]);
  if (m[2] === '%') {
    if (n > 100) throw new Error(`invalid renewal percentage "${s}"`);
    return { percent: n };
  }
  return { ms: n * UNIT_MS[m[2] as keyof typeof UNIT_MS] };
}

/** The instant from which a certificate valid [notBefore, notAfter] is due for renewal. */
export function renewalDue(notBefore: Date, notAfter: Date, policy: RenewPolicy): Date {
  const life = notAfter.getTime() - notBefore.getTime();
  const a = parseAmount(policy.threshold);
  const at = 'percent' in a ? notBefore.getTime() + (life * a.percent) / 100 : notAfter.getTime() - a.ms;
  return new Date(Math.max(notBefore.getTime(), at));
}

/** How long to wait before retrying a failed renewal. At least a minute, so failures cannot spin. */
export function retryInterval(notBefore: Date, notAfter: Date, policy: RenewPolicy): number {
  const life = notAfter.getTime() - notBefore.getTime();
  const a = parseAmount(policy.retry);
  return Math.max(60_000, 'percent' in a ? (life * a.percent) / 100 : a.ms);
}
