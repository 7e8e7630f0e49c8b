/**
 * IP literals, told apart and encoded without node:net's `isIP`: its IPv6 regular expression took 5–6.6 ms
 * to compile and ~2 ms a call while cold here, and a new daemon paid it on the critical path of a module's
 * first server certificate (its host names checked, split into DNS names and IP addresses, and the
 * addresses encoded into the certificate: one parser for all three).
 *
 * The same answers as `isIP` (test/ip.test.ts compares them), except for a zone index ("fe80::1%eth0"),
 * which `isIP` takes for IPv6: a certificate cannot carry one, so it is no IP address here.
 */
const V4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;
const V6_CHARS = /^[0-9A-Fa-f:.]+$/;

/** 4 or 6 for an IPv4 or IPv6 literal, 0 for anything else. */
export function ipVersion(s: string): 0 | 4 | 6 {
  const b = ipBytes(s);
  return b === undefined ? 0 : b.length === 4 ? 4 : 6;
}

/** The address an IP literal stands for: 4 bytes (IPv4) or 16 (IPv6); undefined for anything else. */
export function ipBytes(s: string): Buffer | undefined {
  if (V4.test(s)) return Buffer.from(s.split('.').map(Number));
  return ipv6Bytes(s);
}

/** RFC 4291 §2.2 text forms: eight groups, or fewer around one "::", the last two optionally dotted IPv4. */
function ipv6Bytes(s: string): Buffer | undefined {
  if (s.length < 2 || s.length > 45 || !V6_CHARS.test(s)) return undefined;
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const compressed = halves.length === 2;
  const split = (h: string): string[] => (h === '' ? [] : h.split(':'));
  // A dotted IPv4 tail ends the address: after the "::" if there is one, not before it.
  const head = groupsOf(split(halves[0]!), !compressed);
  const tail = compressed ? groupsOf(split(halves[1]!), true) : [];
  if (!head || !tail) return undefined;
  const zeros = 8 - head.length - tail.length;
  if (compressed ? zeros < 1 : zeros !== 0) return undefined;
  const out = Buffer.alloc(16);
  [...head, ...new Array<number>(zeros).fill(0), ...tail].forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

/** The 16-bit groups of `parts` (hex groups, and a dotted IPv4 as the last part where `v4Last`); undefined if one is neither. */
function groupsOf(parts: string[], v4Last: boolean): number[] | undefined {
  const out: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (v4Last && i === parts.length - 1 && V4.test(p)) {
      const b = p.split('.').map(Number);
      out.push((b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!);
    } else if (HEX_GROUP.test(p)) out.push(parseInt(p, 16));
    else return undefined;
  }
  return out;
}
