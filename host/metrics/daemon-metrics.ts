/**
 * The daemon's metrics: every `edgeward_*` family, and the hooks that feed them — the runtime (module
 * states and supervisor counts read at each scrape, its event stream for restarts and denials, its
 * `invoke` for guest calls), the key service (wrapped, not changed: hsm/ knows nothing of metrics), the
 * workload API (a response hook) and the process. No label ever carries a key, a token or a payload.
 */
import { randomUUID } from 'node:crypto';
import { KeyError, type KeyService } from '../../hsm/keys/index.js';
import { GUEST_ERROR_STATUS, RuntimeError, type RuntimeStatus } from '../runtime/types.js';
import type { ComponentRuntime } from '../runtime/index.js';
import { Registry } from './registry.js';

/** The states `edgeward_module_state` has a series for, per module (IoT Edge's runtime statuses). */
export const MODULE_STATES: readonly RuntimeStatus[] = ['running', 'stopped', 'failed', 'dead', 'unknown'];

/** The KeyService methods counted in `edgeward_key_operations_total` (`operation` label = method name). */
export const KEY_OPERATIONS = [
  'createKeyPair', 'createSecretKey', 'loadKey', 'loadKeyByUri', 'importSecretKey', 'deriveKey', 'getPublicKey',
  'getKeyType', 'sign', 'verify', 'encrypt', 'decrypt', 'randomBytes', 'deleteKey', 'listKeys',
] as const;

export interface DaemonInfo {
  version: string;
  jcoVersion: string;
}

export class DaemonMetrics {
  readonly registry = new Registry();
  private readonly startedAt = Date.now();
  private readonly instance = randomUUID();
  private readonly r = this.registry;
  private readonly build = this.r.gauge('edgeward_build_info', 'Edgeward build: version, jco and Node.js versions (always 1).', ['version', 'jco_version', 'node_version']);
  private readonly device = this.r.gauge('edgeward_device_info', 'The device this daemon runs as, and a GUID new at every daemon (re)start, after which all counters start from zero (always 1).', ['edge_device', 'iothub', 'instance_number']);
  private readonly startTime = this.r.gauge('edgeward_start_time_seconds', 'When the daemon (re)started, in seconds since the Unix epoch.', []);
  private readonly uptime = this.r.gauge('edgeward_uptime_seconds', 'Seconds since the daemon (re)started.', []);
  private readonly rss = this.r.gauge('edgeward_process_resident_memory_bytes', 'Resident set size of the daemon process (guests run in its worker threads).', []);
  private readonly heap = this.r.gauge('edgeward_process_heap_bytes', 'V8 heap of the daemon process: used and total (process.memoryUsage).', ['kind']);
  private readonly state = this.r.gauge('edgeward_module_state', 'Module runtime status: 1 for the state the module is in, 0 for the others.', ['module', 'state']);
  private readonly restartCount = this.r.gauge('edgeward_module_backoff_restarts', 'The supervisor\'s restart count of a module: its back-off position, as `edgeward list` shows (RESTARTS), cleared after a long enough run.', ['module']);
  private readonly crashes = this.r.counter('edgeward_module_crashes_total', 'Failed ends of a module (traps, timeouts, non-zero exits): the supervisor\'s crash count, kept across daemon restarts.', ['module']);
  private readonly restarts = this.r.counter('edgeward_module_restarts_total', 'Restarts the supervisor scheduled for a module since the daemon started.', ['module']);
  private readonly calls = this.r.counter('edgeward_module_calls_total', 'Direct-method calls into a module (invoke) by outcome: ok, guest-error, or the runtime error code (conflict, timeout, failed, ...).', ['module', 'outcome']);
  private readonly denials = this.r.counter('edgeward_module_denials_total', 'Runtime events of kind "denied" (a grant or call refused) per module.', ['module']);
  private readonly workload = this.r.counter('edgeward_workload_requests_total', 'Workload API requests by the module whose socket answered ("" for the shared socket) and HTTP status.', ['module', 'status']);
  private readonly keyOps = this.r.counter('edgeward_key_operations_total', 'Key service operations through the daemon by operation and outcome (ok or the key error: access-denied, not-found, ...).', ['operation', 'outcome']);

  constructor(info: DaemonInfo) {
    this.build.set({ version: info.version, jco_version: info.jcoVersion, node_version: process.version }, 1);
    this.startTime.set({}, Math.floor(this.startedAt / 1000));
    this.r.collect(() => this.collectProcess());
  }

  /** The whole exposition (0.0.4 text). */
  render(): Promise<string> {
    return this.registry.render();
  }

  /**
   * Watch the runtime: its modules' states and counts at each scrape, its events, and its `invoke` (every
   * caller — the management API, IoT Hub direct methods — goes through that one method of that one object,
   * which is wrapped here rather than changed). `device` fills `edgeward_device_info` (IoT Edge's
   * `edge_device` and `iothub` labels). Returns what stops watching.
   */
  observeRuntime(runtime: ComponentRuntime, device: { deviceId: string; hubHostname: string }): () => void {
    this.device.set({ edge_device: device.deviceId, iothub: device.hubHostname, instance_number: this.instance }, 1);
    this.r.collect(() => this.collectModules(runtime));
    const invoke = runtime.invoke.bind(runtime);
    runtime.invoke = async (name, method, payload) => {
      const module = runtime.registration(name) ? name : '';
      try {
        const out = await invoke(name, method, payload);
        this.calls.inc({ module, outcome: out.status === 200 ? 'ok' : out.status === GUEST_ERROR_STATUS ? 'guest-error' : String(out.status) });
        return out;
      } catch (err) {
        this.calls.inc({ module, outcome: err instanceof RuntimeError ? err.code : 'error' });
        throw err;
      }
    };
    return runtime.onEvent((e) => {
      if (e.kind === 'denied') this.denials.inc({ module: e.module });
      else if (e.kind === 'restart-scheduled') this.restarts.inc({ module: e.module });
    });
  }

  /** The key service, each operation counted by outcome; everything else passes through unchanged. */
  observeKeys(keys: KeyService): KeyService {
    const counted = new Set<string>(KEY_OPERATIONS);
    const count = (operation: string, outcome: string) => this.keyOps.inc({ operation, outcome });
    return new Proxy(keys, {
      get(target, prop) {
        const v: unknown = Reflect.get(target, prop, target);
        if (typeof v !== 'function') return v;
        if (typeof prop !== 'string' || !counted.has(prop)) return (v as (...a: unknown[]) => unknown).bind(target);
        return async (...args: unknown[]) => {
          try {
            const out: unknown = await (v as (...a: unknown[]) => Promise<unknown>).apply(target, args);
            count(prop, 'ok');
            return out;
          } catch (err) {
            count(prop, err instanceof KeyError ? err.tag : 'error');
            throw err;
          }
        };
      },
    });
  }

  /** The workload API's response hook: `module` is the socket's module (undefined: the shared socket). */
  readonly workloadResponse = (module: string | undefined, status: number): void => {
    this.workload.inc({ module: module ?? '', status: String(status) });
  };

  private collectProcess(): void {
    const mem = process.memoryUsage();
    this.rss.set({}, mem.rss);
    this.heap.set({ kind: 'used' }, mem.heapUsed);
    this.heap.set({ kind: 'total' }, mem.heapTotal);
    this.uptime.set({}, (Date.now() - this.startedAt) / 1000);
  }

  private async collectModules(runtime: ComponentRuntime): Promise<void> {
    const modules = await runtime.list();
    // Cleared and refilled with no await in between: a concurrent scrape never sees a half-filled family.
    this.state.clear();
    this.restartCount.clear();
    this.crashes.clear();
    for (const m of modules) {
      const now = m.status.runtimeStatus.status;
      for (const s of MODULE_STATES) this.state.set({ module: m.name, state: s }, s === now ? 1 : 0);
      const counts = m.edgeward as { restartCount?: number; crashCount?: number } | undefined;
      this.restartCount.set({ module: m.name }, counts?.restartCount ?? 0);
      this.crashes.set({ module: m.name }, counts?.crashCount ?? 0);
    }
  }
}
