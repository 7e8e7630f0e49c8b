/** What the management API may ask of the daemon itself. */
import type { LogLevel } from '../../config/schema.js';
import type { ServiceStatus } from '../../status.js';

export type { ServiceStatus };

/** What the last-resort handler (host/daemon/last-resort.ts) counts. */
export type FaultKind = 'uncaught-exception' | 'unhandled-rejection';

/** The faults the daemon survived, for `system status`. */
export interface FaultCounts {
  uncaughtExceptions: number;
  unhandledRejections: number;
  /** The most recent one: when, which kind, the error's name (never its message: it may carry a secret). */
  last?: { time: string; kind: FaultKind; name: string };
  /** The policy's limit (more in a minute and the daemon exits). */
  maxPerMinute: number;
}


export interface DaemonStatus {
  pid: number;
  version: string;
  uptimeSeconds: number;
  stateDir: string;
  configSource: string;
  logLevel: LogLevel;
  managementUri: string;
  services: ServiceStatus[];
  /** `starting` while the configured deployment is being applied after a (re)start. */
  modules: { total: number; running: number; starting: boolean };
  /** Exceptions nothing caught that the last-resort policy (last-resort.ts) survived, since the process started. */
  faults: FaultCounts;
}

export interface ReloadResult {
  applied: string[];
  restartRequired: string[];
  message: string;
}

export interface DaemonControl {
  readonly version: string;
  readonly jcoVersion: string;
  readonly provisioningType: string;
  readonly logFile: string;
  readonly stopping: boolean;
  status(): Promise<DaemonStatus>;
  setLogLevel(level: LogLevel): void;
  reload(): Promise<ReloadResult>;
  requestRestart(): void;
  /** Register with DPS again (the new assignment becomes the backup), then restart onto it. */
  reprovision(): Promise<void>;
}
