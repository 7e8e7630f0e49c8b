/**
 * Serving a hono app on a Unix socket with a given file mode, replacing a stale socket safely: a socket
 * file that still answers belongs to a live process and is refused; one that does not is removed.
 * The socket is bound in a private directory and published at its final mode (bindPrivately): no
 * process-wide state such as the umask is touched.
 */
import net from 'node:net';
import http from 'node:http';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { StartupError } from '../errors.js';
import { limitBody } from './body.js';
import { activatedSocketFor } from './socket-activation.js';

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
  const { server, stop } = httpServer(app, maxConnections, limits);
  await bindPrivately(server, socketPath, mode);
  return {
    path: socketPath,
    async close() {
      await stop();
      await fs.rm(socketPath, { force: true });
    },
  };
}

/**
 * Serve `app` on a `[listen]` URI: `unix:///path` (bound here, at `mode`), or `fd://NAME` / `fd://N`, a
 * socket systemd bound and passed (its unit owns the file, its mode and its removal).
 */
export async function serveOnListenUri(app: Hono, uri: string, opts: { mode?: number; maxConnections?: number; limits?: HttpLimits } = {}): Promise<UdsServer> {
  const { maxConnections = MAX_MGMT_CONNECTIONS, limits = DEFAULT_HTTP_LIMITS } = opts;
  if (!uri.startsWith('fd://')) return serveOnUnixSocket(app, uri.replace(/^unix:\/\//, ''), opts.mode, maxConnections, limits);
  const { fd } = activatedSocketFor(uri);
  let served = activated.get(fd);
  if (!served) {
    // The descriptor is the unit's for the process's lifetime: once closed it cannot be listened on again,
    // so a `system restart` (a new bootstrap in this process) swaps the app behind the same server.
    const slot: { app?: Hono } = {};
    const { server, dropConnections } = httpServer(new Hono().all('*', (c) => (slot.app ? slot.app.fetch(c.req.raw, c.env) : c.json({ message: 'the daemon is restarting' }, 503))), maxConnections, limits);
    await listen(server, { fd });
    served = { slot, dropConnections };
    activated.set(fd, served);
  }
  const current = served;
  current.slot.app = app;
  return {
    path: uri,
    async close() {
      if (current.slot.app === app) current.slot.app = undefined;
      await current.dropConnections();
    },
  };
}

/** `server.listen(target)`, settled: an error while binding rejects instead of being emitted. */
function listen(server: http.Server, target: { path: string } | { fd: number }): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(target, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Servers on systemd-passed descriptors, by descriptor: listening for the process's lifetime. */
const activated = new Map<number, { slot: { app?: Hono }; dropConnections(): Promise<void> }>();

/** An HTTP server for `app` with the limits, and a stop that closes it and every open connection. */
export function httpServer(app: Hono, maxConnections: number, limits: HttpLimits): { server: http.Server; stop(): Promise<void>; dropConnections(): Promise<void> } {
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
  const stop = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
  return { server, stop, dropConnections: async () => { for (const s of sockets) s.destroy(); } };
}

/** Name of bindPrivately's directory: mkdtemp's 6 random characters after this prefix. */
const BIND_DIR_PREFIX = '.b';
const BIND_DIR_RE = /^\.b[A-Za-z0-9]{6}$/;

/**
 * Remove bind directories a killed daemon left in `dirs` (SIGKILL between mkdtemp and its removal). Call
 * only while nothing is binding there (the daemon does before it serves any socket).
 */
export async function sweepBindDirs(dirs: readonly string[]): Promise<string[]> {
  const swept: string[] = [];
  for (const dir of dirs) {
    for (const e of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (!e.isDirectory() || !BIND_DIR_RE.test(e.name)) continue;
      await fs.rm(path.join(dir, e.name), { recursive: true, force: true });
      swept.push(path.join(dir, e.name));
    }
  }
  return swept;
}

/** sockaddr_un.sun_path on Linux: 108 bytes with the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 107;

/**
 * Bind `server` at `socketPath` with `mode`, never reachable with a wider one, without touching the
 * process umask (process-wide: a worker or file write of the daemon during the bind would inherit it).
 * The socket is bound in a fresh directory next to the target that only the daemon's user can enter
 * (mkdtemp: 0700), chmod'ed to `mode` there, then hard-linked into place: link() fails when the target
 * exists (as bind() would: a live socket that appeared since removeStaleSocket is not replaced), and the
 * inode appears at `socketPath` already at its final mode. The private name is unlinked and its
 * directory removed.
 */
async function bindPrivately(server: http.Server, socketPath: string, mode: number): Promise<void> {
  const dir = path.dirname(socketPath);
  const privateDir = await fs.mkdtemp(path.join(dir, BIND_DIR_PREFIX));
  const staging = path.join(privateDir, 's');
  try {
    if (Buffer.byteLength(staging) > MAX_SOCKET_PATH_BYTES) {
      throw new StartupError(`socket directory ${dir} is too deep: ${staging} (used while binding ${path.basename(socketPath)}) is longer than ${MAX_SOCKET_PATH_BYTES} bytes`);
    }
    await listen(server, { path: staging });
    await fs.chmod(staging, mode);
    await fs.link(staging, socketPath).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'EEXIST') throw new StartupError(`${socketPath} appeared while the daemon was binding it; is another process serving it?`, 1);
      throw err;
    });
  } catch (err) {
    server.close();
    throw err;
  } finally {
    await fs.rm(privateDir, { recursive: true, force: true });
  }
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
