/**
 * The metrics listener: `GET /metrics` (and HEAD) answers the exposition as
 * `text/plain; version=0.0.4; charset=utf-8`; every other path or method is 404. Bounded like the other
 * listeners: few connections, small headers, short timeouts, no request body. On a Unix socket it binds
 * the way the management socket does (serveOnUnixSocket: stale socket replaced, mode 0660); on TCP it
 * binds the host and port `[metrics] listen` names.
 */
import net from 'node:net';
import { Hono } from 'hono';
import { StartupError } from '../errors.js';
import { httpServer, serveOnUnixSocket, type HttpLimits } from '../api/serve.js';
import type { MetricsListen } from '../config/metrics.js';
import type { Logger } from '../log.js';

/** The exposition's media type (Prometheus text format 0.0.4). */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
/** Scrapers connect once in a while: a few connections are plenty. */
export const MAX_METRICS_CONNECTIONS = 8;
export const METRICS_LIMITS: HttpLimits = { maxHeaderBytes: 8 * 1024, headersTimeoutMs: 5_000, requestTimeoutMs: 10_000, timeoutCheckIntervalMs: 1_000, maxBodyBytes: 0 };

export interface MetricsListener {
  /** Where it listens: `http://HOST:PORT` (the port bound) or the socket path. */
  readonly address: string;
  close(): Promise<void>;
}

/** The metrics app: one route. */
export function metricsApp(render: () => Promise<string>, logger: Logger): Hono {
  const app = new Hono();
  app.get('/metrics', async (c) => c.body(await render(), 200, { 'content-type': METRICS_CONTENT_TYPE, 'cache-control': 'no-store' }));
  app.notFound((c) => c.text('not found: the metrics listener serves GET /metrics only\n', 404));
  app.onError((err, c) => {
    logger.error({ err }, 'rendering metrics failed');
    return c.text('internal error\n', 500);
  });
  return app;
}

/** Serve the metrics where `listen` says. A port in use or a refused bind is a StartupError saying so. */
export async function serveMetrics(listen: MetricsListen, render: () => Promise<string>, logger: Logger): Promise<MetricsListener> {
  const app = metricsApp(render, logger);
  if (listen.kind === 'unix') {
    const s = await serveOnUnixSocket(app, listen.path, 0o660, MAX_METRICS_CONNECTIONS, METRICS_LIMITS);
    return { address: `unix://${s.path}`, close: () => s.close() };
  }
  return serveTcp(app, listen.host, listen.port);
}

async function serveTcp(app: Hono, host: string, port: number): Promise<MetricsListener> {
  const { server, stop } = httpServer(app, MAX_METRICS_CONNECTIONS, METRICS_LIMITS);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'the port is in use (another process, or another Edgeward daemon?)' : err.code === 'EADDRNOTAVAIL' ? 'no interface of this machine has that address' : err.code === 'EACCES' ? 'permission denied (ports below 1024 need privileges)' : err.message;
      reject(new StartupError(`[metrics] listen: cannot listen on ${host}:${port}: ${why}; choose another address in [metrics] listen, or remove [metrics] to turn metrics off`, 1));
    });
    server.listen({ host, port }, () => resolve());
  });
  const bound = server.address() as net.AddressInfo;
  const shown = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  return { address: `http://${shown}:${bound.port}`, close: stop };
}
