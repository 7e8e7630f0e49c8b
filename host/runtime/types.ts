/**
 * What the management API and the CLI need from the module runtime. The component runtime
 * (host/runtime/) implements it; the daemon composes it.
 */

import type { ModuleSpec } from './manifest.js';

// RuntimeError lives in errors.ts (a leaf, so no import circle runs through here); the API, the identity
// code and the sandbox take it from this file with the runtime's other types.
export { RuntimeError } from './errors.js';

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

/**
 * The `status` of a direct method whose module answered its WIT `err` (a guest-error): 422, the request
 * reached the module and the module refused it. 200 is an `ok` answer; a failure of Edgeward or of the
 * instance (not running 409, trap 500, timeout 504) is the HTTP error of the call itself, not an answer.
 */
export const GUEST_ERROR_STATUS = 422;

/**
 * A direct method's answer, shaped like IoT Hub's: `{"status", "payload"}`; for a guest-error the
 * payload is `{"code": "guest-error", "message"}`.
 */
export interface InvokeResult {
  status: number;
  payload: unknown;
}

/** What a deployment changed (deployer.ts `reconcile`); a module's failure does not stop the others. */
export interface DeployResult {
  created: string[];
  updated: string[];
  removed: string[];
  unchanged: string[];
  failed: { module: string; message: string }[];
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
