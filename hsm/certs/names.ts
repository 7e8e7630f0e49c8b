/** Names in the certificates the certificate service issues (no ASN.1 library needed). */
import { ipVersion } from '../support/ip.js';

/** Split a subject alternative name list into DNS names and IP addresses. */
export function splitSans(names: string[]): { dnsNames: string[]; ipAddresses: string[] } {
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  for (const n of names) (ipVersion(n) !== 0 ? ipAddresses : dnsNames).push(n);
  return { dnsNames, ipAddresses };
}

/** Escape a value for an RFC 4514 distinguished name string. */
export function dnValue(v: string): string {
  return v.replace(/[\\,+"<>;=]/g, (c) => `\\${c}`).replace(/^[ #]|[ ]$/g, (c) => `\\${c}`);
}
