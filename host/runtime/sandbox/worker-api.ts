/**
 * The contract between the daemon and a sandbox worker, as types: the messages the host posts
 * (instance.ts → worker.mjs; what the worker posts back is messages.ts `Reply`), and the API of a
 * worker-side capability module (`imports(ctx)`, host/capabilities/<iface>/worker.mjs). The worker's
 * plain-ESM sources import these types in JSDoc (`@import`), so `npm run typecheck` holds both sides to
 * the same contract; nothing here exists at run time.
 */
import type { ArgumentLimit, LogLevel } from '../capabilities.js';
import type { CoreModule } from '../loader.js';
import type { InstanceType } from '../../boundary/types.js';

/** The broker's shared memory and limits (broker.ts `workerInit`, slots in broker-protocol.mjs). */
export interface BrokerInit {
  brokerFlag: SharedArrayBuffer;
  brokerData: SharedArrayBuffer;
  brokerRequest: SharedArrayBuffer;
  maxValueBytes: number;
  brokerTimeoutMs: number;
}

/** The invoke channel's slots (call-channel.ts `workerInit`; broker-protocol.mjs): its data is in `brokerRequest`. */
export interface CallInit {
  callFlag: SharedArrayBuffer;
}

/** One worker-side capability module to link: its URL, the interfaces another module provides, its data directory. */
export interface WorkerModuleRef {
  url: string;
  skip: string[];
  /** Only for the capability that serves the module's data directory (`Capability.dataDir`). */
  dataDir?: string | undefined;
}

/** Phase 1 (may run while the host still measures the component): link the imports, load the glue. */
export interface LoadMessage extends BrokerInit, CallInit {
  t: 'load';
  glueSource: string;
  /** V8's code cache of the glue's script form, made by the daemon (glue-cache.ts), when it has one. */
  glueCache?: Uint8Array | undefined;
  workerModules: WorkerModuleRef[];
  /** The host functions in call-index order: [interface, function, its own argument cap]. */
  hostFunctions: [iface: string, fn: string, limit: ArgumentLimit | undefined][];
  types: Readonly<Record<string, InstanceType>>;
}

/** Phase 2 (only after the measurement matched): instantiate the measured core modules, call start(config). */
export interface InitMessage { t: 'init'; modules: Record<string, CoreModule>; config: string }
export interface StopMessage { t: 'stop' }
/** A health probe: call the guest's `edgeward:module/health.check` (only sent when it exports it). */
export interface HealthMessage { t: 'health' }

/** A memory probe (memory-budget.ts): the worker answers between guest calls, never during one. */
export interface MemoryMessage { t: 'memory' }

/**
 * Sent by the pool to a spare as it spawns (no reply): import these worker-side capability modules now,
 * before any instance; nothing is linked until `load`. A module that fails to import fails at `load`.
 */
export interface PreloadMessage { t: 'preload'; urls: string[] }

export type HostRequest = LoadMessage | InitMessage | StopMessage | HealthMessage | MemoryMessage;
/** What the host posts to a worker; `id` pairs it with the reply. */
export type HostMessage = (HostRequest & { id: number }) | PreloadMessage;

/** A host function as the worker calls it: synchronously, through the broker. */
export type BrokerProxy = (...args: unknown[]) => unknown;

/** What worker.mjs hands each worker-side capability module's `imports(ctx)`. */
export interface WorkerContext {
  /** The module log (rate-limited per instance). */
  log(level: LogLevel, message: string): void;
  /** wasi:cli/exit: unwinds the guest; the instance ends with exited(code). */
  exit(code: number): never;
  /** Host functions of `edgeward-private:` interfaces, for worker modules only (never the guest's). */
  host: Record<string, Record<string, BrokerProxy>>;
  /** The module's `max_value_bytes`. */
  maxValueBytes: number;
  /** The module's own data directory (absolute), for the capability that declares `dataDir` only. */
  dataDir?: string | undefined;
}

/**
 * An import object fragment: interface name → the functions and resource classes jco's glue links (the
 * glue is untyped JS; every value it passes in is checked against the WIT first, validate.mjs).
 */
export type ImportObject = Record<string, Record<string, any>>;
