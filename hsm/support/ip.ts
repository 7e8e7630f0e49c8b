/**
 * IP literals, told apart without node:net's `isIP`: its IPv6 regular expression took 5–6.6 ms to compile
 * and ~2 ms a call while cold here, and a new daemon paid it on the critical path of a module's first
 * server certificate (its host names checked, then split into DNS names and IP addresses).
 *
 * The same answers as `isIP` (test/ip.test.ts compares them), except for a zone index ("fe80::1%eth0"),
 * which `isIP` takes for IPv6: a certificate cannot carry one, so it is no IP address here.
 */
const V4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;
const V6_CHARS = /^[0-9A-Fa-f:.]+$/;

/** 4 or 6 for an IPv4 or IPv6 literal, 0 for anything else. */
export function ipVersion(s: string): 0 | 4 | 6 {
  if (V4.test(s)) return 4;
  return isIPv6(s) ? 6 : 0;
}

/** RFC 4291 §2.2 text forms: eight groups, or fewer around one "::", the last two optionally dotted IPv4. */
function isIPv6(s: string): boolean {
  if (s.length < 2 || s.length > 45 || !V6_CHARS.test(s)) return false;
  const halves = s.split('::');
  if (halves.length > 2) return false;
  const split = (h: string): string[] => (h === '' ? [] : h.split(':'));
  const parts = [...split(halves[0]!), ...(halves.length === 2 ? split(halves[1]!) : [])];
  // A dotted IPv4 tail ends the address: after the "::" if there is one, not before it.
  const v4Tail = parts.length > 0 && parts[parts.length - 1]!.includes('.') && (halves.length === 1 || halves[1] !== '');
  let groups = 0;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (v4Tail && i === parts.length - 1) {
      if (!V4.test(p)) return false;
      groups += 2;
    } else if (HEX_GROUP.test(p)) groups++;
    else return false;
  }
  return halves.length === 2 ? groups <= 7 : groups === 8;
}
