/**
 * Which hosts a module may reach over wasi:http/outgoing-handler: the grant's `network.hosts` patterns,
 * and the matcher that checks one request's authority against them before any DNS lookup or connect.
 *
 * Names are compared, not resolved addresses: a granted name that resolves (or is rebound) to an
 * internal address is reached. DNS rebinding is out of scope; grant names you control.
 *
 * Both sides go through the WHATWG URL host parser (RFC 3986 authority, as browsers normalise it):
 * lowercase, IDNA to punycode, IPv4 in every legacy form (`127.1`, `0x7f.0.0.1`) to dotted decimal,
 * IPv6 compressed in brackets. The request then connects to exactly the host that matched, so the check
 * and the connect can never read one authority two ways. Userinfo (`granted.com@evil.com`), paths,
 * queries, fragments, backslashes and percent-escapes in an authority are refused outright.
 */

import { MAX_AUTHORITY_LENGTH } from '../../runtime/registry.js';

export { MAX_AUTHORITY_LENGTH };

export type Scheme = 'http' | 'https';

/** A request's target after normalisation: what is checked and what is connected to. */
export interface Target {
  /** Normalised host: `api.example.com`, `127.0.0.1`, `[::1]`. */
  host: string;
  port: number;
}

/** One granted pattern. `port` undefined: the scheme's default port only (80 for http, 443 for https). */
export interface HostPattern {
  /** `exact`: the host itself; `subdomains`: any name strictly below `host` (from `*.host`). */
  kind: 'exact' | 'subdomains';
  host: string;
  port?: number;
}

export const DEFAULT_PORTS: Readonly<Record<Scheme, number>> = { http: 80, https: 443 };

const FORBIDDEN_CHARS = /[@/?#\\%\s]/;

/**
 * Parse `host[:port]`: the port by hand (1-65535, digits only), the host through the URL parser; undefined
 * if it is not a plain authority.
 */
function parseAuthority(text: string): { host: string; port?: number } | undefined {
  if (text.length === 0 || text.length > MAX_AUTHORITY_LENGTH || FORBIDDEN_CHARS.test(text)) return undefined;
  const split = text.startsWith('[') ? text.indexOf(']') + 1 : text.includes(':') ? text.indexOf(':') : text.length;
  if (split <= 0) return undefined;
  const hostPart = text.slice(0, split);
  const rest = text.slice(split);
  let port: number | undefined;
  if (rest !== '') {
    if (!/^:[0-9]{1,5}$/.test(rest)) return undefined;
    port = Number(rest.slice(1));
    if (port < 1 || port > 65535) return undefined;
  }
  let url: URL;
  try {
    url = new URL(`http://${hostPart}/`);
  } catch {
    return undefined;
  }
  if (url.username || url.password || url.port || url.pathname !== '/' || url.search || url.hash || !url.hostname) return undefined;
  // A trailing dot names the same DNS node but is a different string: refused, never silently matched.
  if (url.hostname.endsWith('.')) return undefined;
  return port === undefined ? { host: url.hostname } : { host: url.hostname, port };
}

const isIpLiteral = (host: string) => host.startsWith('[') || /^[0-9.]+$/.test(host);

/**
 * Parse one granted pattern: `name`, `name:port`, `*.name[:port]`, an IPv4 literal, `[ipv6][:port]`.
 * Returns the reason when it is not one. A wildcard covers subdomains only and needs at least two labels
 * below it (`*.com` is refused), and never an IP literal.
 */
export function parseHostPattern(text: string): HostPattern | string {
  const wildcard = text.startsWith('*.');
  const parsed = parseAuthority(wildcard ? text.slice(2) : text);
  if (!parsed) return `"${text.slice(0, 80)}" is not a host, host:port, *.domain or IP literal (no scheme, path or userinfo)`;
  if (text.includes('*', wildcard ? 1 : 0)) return `"${text}": "*" is allowed only as the first label ("*.example.com")`;
  if (wildcard && (isIpLiteral(parsed.host) || parsed.host.split('.').length < 2)) {
    return `"${text}": a wildcard needs a domain of at least two labels below it, never an IP address`;
  }
  return { kind: wildcard ? 'subdomains' : 'exact', host: parsed.host, ...(parsed.port === undefined ? {} : { port: parsed.port }) };
}

/** Normalise a request's authority for `scheme`; undefined if it is not a plain host[:port]. */
export function parseTarget(scheme: Scheme, authority: string): Target | undefined {
  const parsed = parseAuthority(authority);
  if (!parsed) return undefined;
  return { host: parsed.host, port: parsed.port ?? DEFAULT_PORTS[scheme] };
}

/** Does `pattern` cover `target` for `scheme`? */
export function matches(pattern: HostPattern, scheme: Scheme, target: Target): boolean {
  if (target.port !== (pattern.port ?? DEFAULT_PORTS[scheme])) return false;
  if (pattern.kind === 'exact') return target.host === pattern.host;
  return !isIpLiteral(target.host) && target.host.endsWith(`.${pattern.host}`);
}

/** A module's grant, compiled once per instance: the check every request goes through. */
export class HostAllowList {
  private constructor(private readonly patterns: readonly HostPattern[]) {}

  /** Throws on a pattern that does not parse (the registration was validated, so this is a host bug). */
  static of(hosts: readonly string[]): HostAllowList {
    return new HostAllowList(hosts.map((h) => {
      const p = parseHostPattern(h);
      if (typeof p === 'string') throw new Error(`network.hosts: ${p}`);
      return p;
    }));
  }

  /** The normalised target if the authority is granted for this scheme, else undefined. */
  check(scheme: Scheme, authority: string): Target | undefined {
    const target = parseTarget(scheme, authority);
    if (!target) return undefined;
    return this.patterns.some((p) => matches(p, scheme, target)) ? target : undefined;
  }
}
