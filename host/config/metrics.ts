/**
 * `[metrics]`: the opt-in Prometheus listener (host/metrics). Absent: no listener, nothing instrumented.
 *
 * ```toml
 * [metrics]
 * listen = "http://127.0.0.1:9600"     # or "unix:///run/edgeward/metrics.sock"
 * # allow_non_loopback = true          # only to serve it on another interface (no auth, no TLS)
 * ```
 *
 * The listener has no authentication and no TLS (as IoT Edge's edgeAgent on :9600): what it shows (module
 * names, states, call and error counts) tells an attacker what runs, so an address that is not loopback
 * is refused unless `allow_non_loopback = true` says so. The host must be an IP literal or `localhost`: a
 * name that resolves elsewhere later would silently widen the listener.
 */
import net from 'node:net';
import { z } from 'zod';

/** A parsed `listen`: a TCP host and port, or a Unix socket path. */
export type MetricsListen = { kind: 'tcp'; host: string; port: number; loopback: boolean } | { kind: 'unix'; path: string };

const LISTEN_EXAMPLE = '"http://127.0.0.1:9600" or "unix:///run/edgeward/metrics.sock"';

/** Parse `[metrics] listen`; a string saying what is wrong when it is not usable. */
export function parseMetricsListen(v: string): MetricsListen | string {
  if (v.startsWith('unix://')) {
    return /^unix:\/\/\/[^\0]+$/.test(v) && !v.endsWith('/') ? { kind: 'unix', path: v.slice('unix://'.length) } : `a unix socket URI with an absolute path, such as "unix:///run/edgeward/metrics.sock"`;
  }
  const m = /^http:\/\/(\[[0-9A-Fa-f:.]+\]|[^/:@?#[\]]+):(\d{1,5})\/?$/.exec(v);
  if (!m) return `${LISTEN_EXAMPLE} (http://HOST:PORT with an IP address or localhost and a port; no path, no https: the listener serves plain HTTP)`;
  const host = m[1]!.replace(/^\[(.*)\]$/, '$1');
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return `port ${m[2]} is not 1–65535`;
  if (host !== 'localhost' && net.isIP(host) === 0) return `"${host}" is not an IP address: give an IP literal (127.0.0.1, [::1], 0.0.0.0) or localhost`;
  return { kind: 'tcp', host, port, loopback: isLoopback(host) };
}

function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  if (net.isIPv4(host)) return host.startsWith('127.');
  return /^::ffff:127\./i.test(host);
}

export const metricsSchema = z
  .object({
    /** `http://HOST:PORT` (loopback unless allowed) or `unix:///path`. */
    listen: z.string(),
    /** Serve on a non-loopback address (other hosts can then read module names and counts). Default false. */
    allow_non_loopback: z.boolean().default(false),
  })
  .strict()
  .superRefine((m, ctx) => {
    const parsed = parseMetricsListen(m.listen);
    if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', path: ['listen'], message: parsed });
    else if (parsed.kind === 'tcp' && !parsed.loopback && !m.allow_non_loopback) {
      ctx.addIssue({
        code: 'custom',
        path: ['listen'],
        message: `${parsed.host} is not a loopback address: the metrics listener has no authentication or TLS and shows which modules run; listen on 127.0.0.1 (scrape through an SSH tunnel or a local agent), or set allow_non_loopback = true to serve it there anyway`,
      });
    }
  });

export type MetricsConfig = z.infer<typeof metricsSchema>;
