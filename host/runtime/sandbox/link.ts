/**
 * What one instance links, built on the host before its worker gets it: the instance's options, the host
 * functions each granted capability prepares for it (each closes over the instance's context), and the
 * worker's `load` message — the broker's and the call channel's halves, the verified glue and its code
 * cache, the worker modules granted, and every host function with its argument limit.
 */
import type { LimitsConfig } from '../../config/schema.js';
import { shadowed, type ArgumentLimit, type Capability, type HostFunction, type InstanceContext, type LogLevel } from '../capabilities.js';
import type { CoreModule, Digest } from '../loader.js';
import { assetUrl } from '../assets.js';
import { EventLimiter } from '../events.js';
import type { InstanceType } from '../../boundary/types.js';
import type { Phases } from '../phases.js';
import type { Broker } from './broker.js';
import type { CallChannel } from './call-channel.js';
import { glueCodeCache } from './glue-cache.js';
import type { GlueCodeStore } from '../glue-code-store.js';
import type { LoadMessage } from './worker-api.js';

/** Why an instance ended without the host asking it to. */
export type ExitReason =
  | { kind: 'exited'; code: number }
  | { kind: 'trap'; message: string }
  | { kind: 'timeout'; message: string }
  | { kind: 'error'; message: string };

export interface SandboxOptions {
  module: string;
  generationId: string;
  digest: Digest;
  /** The component's own digest when `digest` is a confidential package's (InstanceContext.measurement). */
  plaintextDigest?: string;
  /** The verified signer of those bytes (`sha256:<SPKI hex>` or "unsigned"). */
  signer: string;
  instanceId: number;
  /** The component's verified JS glue (compiled by the worker in memory, glue-script.mjs). */
  glueSource: string;
  /** Its V8 code cache on disk, where the transpile cache is sealed (glue-code-store.ts). */
  glueCodeCache?: GlueCodeStore;
  coreModules: Record<string, CoreModule>;
  capabilities: readonly Capability[];
  /** The host's WIT types of every interface linked (host/boundary): the worker checks arguments against them. */
  interfaceTypes: Readonly<Record<string, InstanceType>>;
  /** JSON handed to the guest's `start`. */
  config: string;
  limits: LimitsConfig;
  /** The registration's `network` (hosts for wasi:http/outgoing-handler), if any. */
  network?: { hosts: readonly string[] };
  /**
   * The module's own data directory (absolute), handed only to capabilities that declare `dataDir`
   * (wasi:filesystem/data), which create it on first use. Other capabilities never see a host path.
   */
  dataDir?: string;
  onLog(level: LogLevel, message: string): void;
  /**
   * An event a capability reports for this instance (InstanceContext.denied, keyCreated), already limited
   * per instance here; recorded as the module's runtime event. Absent: such reports are dropped.
   */
  onEvent?(kind: 'denied' | 'key-created', message: string): void;
  /** Whether the instance is still its module's registration (InstanceContext.current). */
  current(): boolean;
  /**
   * A bug on the host side of this instance: an unexpected exception from a capability call (`where` is
   * `capability <interface>.<function>`) or from handling the worker's messages. The instance is trapped as
   * "internal error in <where>"; `cause` (with its stack) is for the daemon log only, never for
   * the module log (it may name host paths or state).
   */
  onInternalError(where: string, cause: unknown): void;
  /** Resolves when the component's measurement matched; the guest is not instantiated before. */
  gate?: Promise<unknown>;
  /** Called once, when the instance ends on its own (trap, exit, timeout, worker error). */
  onExit(reason: ExitReason): void;
  /** Where the start's time goes (phases.ts): worker, load, link, gate, instantiate, start are added. */
  phases?: Phases;
}

/** The host functions every granted capability prepares for this instance (each closes over `ctx`). */
export function prepareHost(opts: SandboxOptions, signal: AbortSignal, callDeadline: () => number | undefined): Record<string, Record<string, HostFunction>> {
  const onEvent = opts.onEvent;
  const denied = onEvent && new EventLimiter((m) => onEvent('denied', m), 'denied calls');
  const created = onEvent && new EventLimiter((m) => onEvent('key-created', m), 'key-created events');
  // What was suppressed in the instance's last second is told when it ends.
  signal.addEventListener('abort', () => { denied?.flush(); created?.flush(); }, { once: true });
  const ctx: InstanceContext = {
    module: opts.module,
    generationId: opts.generationId,
    digest: opts.digest,
    measurement: opts.plaintextDigest ?? opts.digest,
    signer: opts.signer,
    instanceId: opts.instanceId,
    limits: opts.limits,
    ...(opts.network ? { network: opts.network } : {}),
    signal,
    callDeadline,
    log: opts.onLog,
    current: opts.current,
    ...(denied && created ? { denied: (m: string) => denied.offer(m), keyCreated: (m: string) => created.offer(m) } : {}),
  };
  const host: Record<string, Record<string, HostFunction>> = {};
  for (const cap of opts.capabilities) if (cap.prepare) Object.assign(host, cap.prepare(ctx));
  return host;
}

/** The worker's `load` message: the broker's half, the glue, the worker modules granted, the host functions. */
export function loadMessage(opts: SandboxOptions, broker: Broker, calls: CallChannel): LoadMessage {
  const limits = new Map<string, ArgumentLimit>();
  for (const c of opts.capabilities) {
    for (const [iface, fns] of Object.entries(c.argumentLimits ?? {})) for (const [fn, limit] of Object.entries(fns)) limits.set(`${iface}.${fn}`, limit);
  }
  return {
    t: 'load',
    ...broker.workerInit,
    ...calls.workerInit,
    glueSource: opts.glueSource,
    glueCache: glueCodeCache(opts.glueSource, opts.glueCodeCache),
    workerModules: opts.capabilities.filter((c) => c.workerModule).map((c) => ({
      url: assetUrl(c.workerModule!),
      skip: shadowed(c, opts.capabilities),
      ...(c.dataDir ? { dataDir: opts.dataDir } : {}),
    })),
    hostFunctions: broker.functions.map(([iface, fn]) => [iface, fn, limits.get(`${iface}.${fn}`)]),
    types: opts.interfaceTypes,
  };
}
