/**
 * What the management API and the CLI need from the module runtime. The component runtime
 * (host/runtime/) implements it; the daemon composes it.
 */

import type { ModuleSpec } from './manifest.js';
import type { DeployResult } from './runtime.js';

/** Runtime status as IoT Edge reports it in ModuleDetails.status.runtimeStatus.status. */
export type RuntimeStatus = 'running' | 'stopped' | 'failed' | 'dead' | 'unknown';

/** IoT Edge ModuleDetails, with Edgeward's extra fields under `edgeward`. */
export interface ModuleDetails {
  id: string;
  name: string;
  type: string;
  config: { settings: { image: string; imageHash?: string; [k: string]: unknown }; env: { key: string; value: string }[] };
  status: {
    startTime?: string;
    exitStatus?: { exitTime: string; statusCode: string };
    runtimeStatus: { status: RuntimeStatus; description?: string };
  };
  edgeward?: Record<string, unknown>;
}

export interface LogQuery {
  tail?: number;
  follow?: boolean;
  since?: Date;
  until?: Date;
  /** Ends a `follow` read when the client goes away. */
  signal?: AbortSignal;
}

/** A direct method's answer, shaped like IoT Hub's: `{"status", "payload"}`. */
export interface InvokeResult {
  status: number;
  payload: unknown;
}

/** A typed runtime failure; the API maps `code` onto an HTTP status. */
export class RuntimeError extends Error {
  constructor(
    readonly code: 'not-found' | 'conflict' | 'invalid' | 'integrity-mismatch' | 'type-mismatch' | 'denied' | 'timeout' | 'failed',
    message: string,
  ) {
    super(message);
    this.name = 'RuntimeError';
  }
}

export interface ModuleRuntime {
  list(): Promise<ModuleDetails[]>;
  get(name: string): Promise<ModuleDetails>;
  start(name: string): Promise<void>;
  stop(name: string): Promise<void>;
  restart(name: string): Promise<void>;
  /** Log lines (already formatted text). With `follow`, an async iterable that ends when the client goes away. */
  logs(name: string, query: LogQuery): AsyncIterable<string>;
  /** Stop every module and release resources (daemon shutdown). */
  close(): Promise<void>;
  /* Management beyond IoT Edge's read/start/stop (required: the component runtime implements all of them). */
  /** Register, measure and (if desired) start a module. */
  create(spec: ModuleSpec): Promise<ModuleDetails>;
  /** Replace a module (stop → re-register → optional start); creates it if missing. */
  update(spec: ModuleSpec, start?: boolean): Promise<ModuleDetails>;
  remove(name: string): Promise<void>;
  /** Call the module's `invoke` export (a direct method). */
  invoke(name: string, method: string, payload: unknown): Promise<InvokeResult>;
  /** Reconcile the running modules to a deployment. */
  deploy(specs: ModuleSpec[]): Promise<DeployResult>;
}
