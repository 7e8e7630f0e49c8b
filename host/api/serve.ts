/**
 * Serving a hono app on a Unix socket with a given file mode, replacing a stale socket safely: a socket
 * file that still answers belongs to a live process and is refused; one that does not is removed.
 */
import net from 'node:net';
import http from 'node:http';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { getRequestListener } from '@hono/node-server';
import type { Hono } from 'hono';
import { StartupError } from '../errors.js';
import { limitBody } from './body.js';

export interface UdsServer {
  readonly path: string;
  close(): Promise<void>;
}

/** Header and timing limits of a listener (slowloris and oversized headers: scenario A5). */
export interface HttpLimits {
  /** Request line plus headers; larger is 431 (Node's `maxHeaderSize`). */
  readonly maxHeaderBytes: number;
  /** All headers must arrive within this; else 408 and the connection is closed. */
  readonly headersTimeoutMs: number;
  /** The whole request (headers and body) must arrive within this; else 408. */
  readonly requestTimeoutMs: number;
  /**
   * How often Node checks the two timeouts above. Node's default (30 s) lets a slowloris connection live
   * up to 30 s past its timeout; a check per second keeps the timeouts what they say.
   */
  readonly timeoutCheckIntervalMs: number;
  /** Largest request body, enforced before the app reads it (`limitBody`); larger is 413. */
  readonly maxBodyBytes: number;
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  maxHeaderBytes: 16 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  timeoutCheckIntervalMs: 1_000,
  maxBodyBytes: 4 * 1024 * 1024,
};

/** IoT Edge's per-listener connection caps (`iotedge_max_requests`): management 50, workload 10. */
export const MAX_MGMT_CONNECTIONS = 50;
export const MAX_WORKLOAD_CONNECTIONS = 10;

/**
 * Serve `app` on `socketPath`. Connections beyond `maxConnections` are accepted and closed without an
 * answer, as IoT Edge's http-common does; with one socket per module, that cap is per principal.
 */
export async function serveOnUnixSocket(
  app: Hono,
  socketPath: string,
  mode = 0o660,
  maxConnections = MAX_MGMT_CONNECTIONS,
  limits: HttpLimits = DEFAULT_HTTP_LIMITS,
): Promise<UdsServer> {
  await fs.mkdir(path.dirname(socketPath), { recursive: true, mode: 0o750 });
  await removeStaleSocket(socketPath);
  const server = http.createServer(
    { maxHeaderSize: limits.maxHeaderBytes, headersTimeout: limits.headersTimeoutMs, requestTimeout: limits.requestTimeoutMs, connectionsCheckingInterval: limits.timeoutCheckIntervalMs },
    limitBody(getRequestListener(app.fetch), limits.maxBodyBytes),
  );
  server.maxConnections = maxConnections;
  const sockets = new Set<net.Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  // Create the socket with the final mode from the start: no window in which it is wider.
  const oldUmask = process.umask(0o777 & ~mode);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
  } finally {
    process.umask(oldUmask);
  }
  await fs.chmod(socketPath, mode);
  return {
    path: socketPath,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      await fs.rm(socketPath, { force: true });
    },
  };
}

async function removeStaleSocket(socketPath: string): Promise<void> {
  const st = await fs.lstat(socketPath).catch(() => undefined);
  if (!st) return;
  if (!st.isSocket()) throw new StartupError(`${socketPath} exists and is not a socket; remove it or choose another path`);
  const alive = await new Promise<boolean>((resolve) => {
    const c = net.connect(socketPath);
    c.once('connect', () => (c.destroy(), resolve(true)));
    c.once('error', () => resolve(false));
  });
  if (alive) throw new StartupError(`${socketPath} is in use by another process; is another Edgeward daemon running with a different state_dir?`, 1);
  await fs.rm(socketPath, { force: true });
}
