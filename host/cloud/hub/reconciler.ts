/**
 * Keeps IoT Hub's module identities equal to the device's local modules (components and native modules),
 * as aziot-identityd reconciles host-process identities at start and on every create/remove.
 *
 * - A local module gets a hub identity with type `sas` and the keys derived for it in the key service
 *   (`moduleSasKeys`). Created in **one** PUT that carries the keys and `managedBy: "edgeward"` (identityd
 *   does PUT then PUT + `If-Match: *` because its keys depend on the hub's generationId; Edgeward's do not).
 *   An existing identity whose keys differ is updated (PUT + `If-Match: *`), keeping its `managedBy`.
 * - A hub identity is deleted only if it is marked `managedBy: "edgeward"` and no local module has its
 *   name; `$edgeAgent`, `$edgeHub` and identities created by other tools are never deleted.
 * - Offline: the work is a set of module names (coalesced: the desired state is "exists iff local") plus a
 *   "full sync" flag, retried with bounded exponential back-off; nothing is persisted, because
 *   `reconcile()` at start recomputes everything from the hub's list and the local modules.
 * - A 401 calls `onDeviceUnauthorized()` once per failure streak (the daemon reprovisions with DPS).
 */
import type https from 'node:https';
import type { Logger } from '../../log.js';
import { HubClient, type HubModule } from './client.js';
import { GLOBAL_KINDS, HubError } from './errors.js';

export const MANAGED_BY = 'edgeward';
/** Identities IoT Hub creates for every edge device: never touched. */
export const HUB_SYSTEM_MODULES: ReadonlySet<string> = new Set(['$edgeAgent', '$edgeHub']);

/** What the reconciler needs from the identity service (host/identity). */
export interface ModuleIdentitySource {
  hubHostname: string;
  deviceId: string;
  /**
   * `SharedAccessSignature …` for `audience` (`{hub}/devices/{device}`), signed with the device key. Absent
   * for X.509 devices: then `agent` carries the device's TLS client certificate and no header is sent.
   */
  deviceSasToken?(audience: string, ttlSeconds: number): Promise<string>;
  /** The module's SAS keys as derived in the key service (what its workload-API tokens are signed with). */
  moduleSasKeys(module: string): Promise<{ primary: Buffer; secondary: Buffer }>;
  agent?: https.Agent;
}

export interface ReconcilerOptions extends ModuleIdentitySource {
  onDeviceUnauthorized?: () => void | Promise<void>;
  logger?: Logger;
  /** Retry delays: initial, doubled per failed attempt, capped (default 2 s → 5 min), ±20 % jitter. */
  backoff?: { initialMs: number; maxMs: number };
  timeoutMs?: number;
  /** Device SAS lifetime (default 300 s). */
  sasTtlSeconds?: number;
  now?: () => number;
}

export interface HubIdentityStatus {
  hub: string;
  deviceId: string;
  /** Modules waiting for the hub, and whether a full sync is waiting. */
  pending: string[];
  fullSyncPending: boolean;
  lastSuccess?: string;
  lastError?: { kind: string; message: string; at: string };
  failedAttempts: number;
  nextRetryAt?: string;
}

const FULL = Symbol('full sync');
const isSystem = (m: string): boolean => HUB_SYSTEM_MODULES.has(m);

export class ModuleIdentityReconciler {
  private client: HubClient;
  private readonly local = new Set<string>();
  private readonly pending = new Set<string>();
  private fullPending = false;
  /** The unit of work in flight (a module name, or FULL): still counted as pending in `status()`. */
  private inFlight: string | typeof FULL | undefined;
  private running: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private nextRetryAt: number | undefined;
  private failedAttempts = 0;
  private unauthorizedReported = false;
  private lastSuccess: number | undefined;
  private lastError: HubIdentityStatus['lastError'];
  private closed = false;

  private readonly opts: ReconcilerOptions;

  constructor(opts: ReconcilerOptions) {
    this.opts = { ...opts };
    this.client = this.makeClient(opts.hubHostname, opts.deviceId);
  }

  /** At start (and after reprovisioning): the full local set; resolves after one attempt (never throws). */
  reconcile(localModules: Iterable<string>): Promise<void> {
    this.local.clear();
    for (const m of localModules) if (!isSystem(m)) this.local.add(m);
    this.fullPending = true;
    return this.kick(true);
  }

  moduleAdded(name: string): Promise<void> {
    if (isSystem(name)) return Promise.resolve();
    this.local.add(name);
    this.pending.add(name);
    return this.kick(false);
  }

  moduleRemoved(name: string): Promise<void> {
    if (isSystem(name)) return Promise.resolve();
    this.local.delete(name);
    this.pending.add(name);
    return this.kick(false);
  }

  /** The device was reprovisioned (new hub or device id): talk to the new hub and resync everything. */
  setDevice(hubHostname: string, deviceId: string): Promise<void> {
    this.opts.hubHostname = hubHostname;
    this.opts.deviceId = deviceId;
    this.client = this.makeClient(hubHostname, deviceId);
    this.fullPending = true;
    return this.kick(true);
  }

  /** Run what is pending now, ignoring the back-off (tests, `system reconcile`). */
  flush(): Promise<void> {
    return this.kick(true);
  }

  status(): HubIdentityStatus {
    const iso = (t: number): string => new Date(t).toISOString();
    return {
      hub: this.opts.hubHostname,
      deviceId: this.opts.deviceId,
      pending: [...new Set([...this.pending, ...(typeof this.inFlight === 'string' ? [this.inFlight] : [])])].sort(),
      fullSyncPending: this.fullPending || this.inFlight === FULL,
      failedAttempts: this.failedAttempts,
      ...(this.lastSuccess === undefined ? {} : { lastSuccess: iso(this.lastSuccess) }),
      ...(this.lastError === undefined ? {} : { lastError: this.lastError }),
      ...(this.nextRetryAt === undefined ? {} : { nextRetryAt: iso(this.nextRetryAt) }),
    };
  }

  /** One line for `system status` (the management API's ServiceStatus shape). */
  serviceStatus(): { name: string; status: 'running' | 'degraded'; detail: string } {
    const s = this.status();
    const where = `${s.hub} (device ${s.deviceId})`;
    const waiting = s.pending.length + (s.fullSyncPending ? 1 : 0);
    if (waiting === 0) return { name: 'hub-identities', status: 'running', detail: `module identities in sync with ${where}${s.lastSuccess ? `, last sync ${s.lastSuccess}` : ''}` };
    const what = s.fullSyncPending ? 'full sync' : `${s.pending.length} module(s)`;
    const retry = s.nextRetryAt ? `; next retry ${s.nextRetryAt}` : '';
    return { name: 'hub-identities', status: 'degraded', detail: `${what} waiting for ${where}${s.lastError ? `: ${s.lastError.message}` : ''}${retry}` };
  }

  /** Stop retrying (daemon shutdown); an attempt in flight finishes. */
  async close(): Promise<void> {
    this.closed = true;
    this.clearTimer();
    await this.running;
  }

  private makeClient(hubHostname: string, deviceId: string): HubClient {
    const ttl = this.opts.sasTtlSeconds ?? 300;
    return new HubClient({
      hubHostname,
      deviceId,
      authorization: async () => this.opts.deviceSasToken?.(`${hubHostname}/devices/${deviceId}`, ttl),
      ...(this.opts.agent ? { agent: this.opts.agent } : {}),
      ...(this.opts.timeoutMs === undefined ? {} : { timeoutMs: this.opts.timeoutMs }),
    });
  }

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.nextRetryAt = undefined;
  }

  /** Start the worker if idle. While waiting for a retry, new events only queue unless `force`. */
  private kick(force: boolean): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.running) return this.running.then(() => (this.hasWork() && (force || !this.timer) ? this.kick(force) : undefined));
    if (this.timer && !force) return Promise.resolve();
    this.clearTimer();
    this.running = this.drain().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private hasWork(): boolean {
    return this.fullPending || this.pending.size > 0;
  }

  private async drain(): Promise<void> {
    while (this.hasWork() && !this.closed) {
      try {
        await this.step();
      } catch (err) {
        await this.failed(err);
        return;
      }
    }
  }

  /** One unit of work: the full sync if flagged, else one module. Throws when the whole queue must wait. */
  private async step(): Promise<void> {
    if (this.fullPending) {
      this.fullPending = false;
      this.inFlight = FULL;
      try {
        await this.fullSync();
      } catch (err) {
        this.fullPending = true;
        throw err;
      } finally {
        this.inFlight = undefined;
      }
    } else {
      const name = this.pending.values().next().value as string;
      this.pending.delete(name);
      this.inFlight = name;
      try {
        await this.syncOne(name);
      } catch (err) {
        this.pending.add(name);
        throw err;
      } finally {
        this.inFlight = undefined;
      }
    }
    this.succeeded();
  }

  private async fullSync(): Promise<void> {
    const hubModules = await this.client.listModules();
    const byId = new Map(hubModules.map((m) => [m.moduleId, m]));
    const names = new Set([...this.local, ...hubModules.filter((m) => m.managedBy === MANAGED_BY && !isSystem(m.moduleId)).map((m) => m.moduleId)]);
    for (const name of names) {
      try {
        await this.syncOne(name, byId.get(name) ?? null);
      } catch (err) {
        if (err instanceof HubError && GLOBAL_KINDS.has(err.kind)) throw err;
        this.pending.add(name); // one module's trouble: retried on its own
        this.recordError(err);
      }
    }
  }

  /** Make the hub agree with the local set for one module. `known`: the hub's record from a list (null: absent). */
  private async syncOne(name: string, known?: HubModule | null): Promise<void> {
    if (isSystem(name)) return;
    const existing = known === undefined ? await this.client.getModule(name) : (known ?? undefined);
    if (this.local.has(name)) await this.ensure(name, existing);
    else if (existing) await this.remove(existing);
  }

  private async ensure(name: string, existing: HubModule | undefined): Promise<void> {
    const keys = await this.opts.moduleSasKeys(name);
    const authentication = { type: 'sas' as const, symmetricKey: { primaryKey: keys.primary.toString('base64'), secondaryKey: keys.secondary.toString('base64') } };
    if (!existing) {
      try {
        await this.client.createModule({ moduleId: name, managedBy: MANAGED_BY, authentication });
        this.opts.logger?.info({ module: name }, 'module identity created in IoT Hub');
        return;
      } catch (err) {
        if (!(err instanceof HubError && err.kind === 'conflict')) throw err;
        existing = await this.client.getModule(name); // created meanwhile by someone else: update it below
        if (!existing) throw err;
      }
    }
    const a = existing.authentication;
    if (a?.type === 'sas' && a.symmetricKey.primaryKey === authentication.symmetricKey.primaryKey && a.symmetricKey.secondaryKey === authentication.symmetricKey.secondaryKey) return;
    await this.client.updateModule({ moduleId: name, managedBy: existing.managedBy ?? null, authentication }, '*');
    this.opts.logger?.info({ module: name }, 'module identity keys updated in IoT Hub');
  }

  private async remove(existing: HubModule): Promise<void> {
    if (existing.managedBy !== MANAGED_BY) {
      this.opts.logger?.info({ module: existing.moduleId, managedBy: existing.managedBy ?? null }, 'module identity in IoT Hub not created by Edgeward: kept');
      return;
    }
    if (await this.client.deleteModule(existing.moduleId, '*')) this.opts.logger?.info({ module: existing.moduleId }, 'module identity deleted in IoT Hub');
  }

  private succeeded(): void {
    this.failedAttempts = 0;
    this.unauthorizedReported = false;
    this.lastSuccess = this.now();
  }

  private recordError(err: unknown): void {
    const kind = err instanceof HubError ? err.kind : 'internal';
    this.lastError = { kind, message: (err as Error).message, at: new Date(this.now()).toISOString() };
  }

  private async failed(err: unknown): Promise<void> {
    this.recordError(err);
    this.failedAttempts++;
    this.opts.logger?.warn({ kind: this.lastError!.kind, err: this.lastError!.message }, 'IoT Hub module identities: attempt failed; retrying');
    if (err instanceof HubError && err.kind === 'unauthorized' && !this.unauthorizedReported) {
      this.unauthorizedReported = true;
      try {
        await this.opts.onDeviceUnauthorized?.();
      } catch (hookErr) {
        this.opts.logger?.error({ err: (hookErr as Error).message }, 'device-unauthorized hook failed');
      }
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.closed) return;
    const { initialMs, maxMs } = this.opts.backoff ?? { initialMs: 2000, maxMs: 300_000 };
    const base = Math.min(maxMs, initialMs * 2 ** Math.min(this.failedAttempts - 1, 30));
    const delay = Math.round(base * (0.8 + 0.4 * Math.random()));
    this.nextRetryAt = this.now() + delay;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.kick(true);
    }, delay);
    this.timer.unref();
  }
}
