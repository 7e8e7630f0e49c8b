/**
 * Workload sockets: one per native module (`<run>/mnt/<module>.sock`, mode 0600), so the socket that
 * accepted a connection is the caller's identity, plus the shared `[listen] workload_uri` socket that
 * serves only the public routes (trust bundles). Node cannot read SO_PEERCRED, so per-module sockets are
 * the only sound way to tell native callers apart here.
 */
import path from 'node:path';
import { DEFAULT_HTTP_LIMITS, MAX_WORKLOAD_CONNECTIONS, serveOnListenUri, serveOnUnixSocket, type HttpLimits, type UdsServer } from '../serve.js';
import { MAX_WORKLOAD_BODY_BYTES, workloadApp, type WorkloadDeps } from './app.js';

/** Module socket mode: only the daemon's user (and root). A module under another uid gets it by chown. */
const MODULE_SOCKET_MODE = 0o600;
/** Shared socket: public routes only, so group access is harmless. */
const SHARED_SOCKET_MODE = 0o660;

export class WorkloadSockets {
  private readonly servers = new Map<string, UdsServer>();
  private shared?: UdsServer;
  /** The listeners' limits, with the workload API's body limit. */
  private readonly limits: HttpLimits;

  constructor(
    private readonly deps: WorkloadDeps,
    private readonly runDir: string,
    /** The shared socket's `[listen]` URI: `unix:///…`, or `fd://NAME` from systemd. */
    private readonly sharedListenUri: string,
    limits: HttpLimits = DEFAULT_HTTP_LIMITS,
  ) {
    this.limits = { ...limits, maxBodyBytes: Math.min(limits.maxBodyBytes, MAX_WORKLOAD_BODY_BYTES) };
  }

  async start(): Promise<void> {
    this.shared = await serveOnListenUri(workloadApp(this.deps, undefined), this.sharedListenUri, { mode: SHARED_SOCKET_MODE, limits: this.limits });
  }

  socketPathFor(module: string): string {
    return path.join(this.runDir, 'mnt', `${module}.sock`);
  }

  /** Serve the module's own socket (idempotent). Returns its `unix://` URI. */
  async add(module: string, uid?: number): Promise<string> {
    const p = this.socketPathFor(module);
    if (!this.servers.has(module)) {
      const server = await serveOnUnixSocket(workloadApp(this.deps, module), p, MODULE_SOCKET_MODE, MAX_WORKLOAD_CONNECTIONS, this.limits);
      if (uid !== undefined && typeof process.getuid === 'function' && process.getuid() === 0) {
        const { chown } = await import('node:fs/promises');
        await chown(p, uid, -1);
      }
      this.servers.set(module, server);
    }
    return `unix://${p}`;
  }

  async remove(module: string): Promise<void> {
    const s = this.servers.get(module);
    this.servers.delete(module);
    await s?.close();
  }

  async close(): Promise<void> {
    for (const m of [...this.servers.keys()]) await this.remove(m);
    await this.shared?.close();
    this.shared = undefined;
  }
}
