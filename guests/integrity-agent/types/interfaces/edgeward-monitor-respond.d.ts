declare module 'edgeward:monitor/respond@0.1.0' {
  /**
   * Stop `module` (as `edgeward stop`): its restart policy no longer applies.
   */
  export function stop(module: string): void;
  /**
   * Stop `module` and mark it quarantined (a finding records who and why); it stays stopped until redeployed.
   */
  export function quarantine(module: string, reason: string): void;
  export type RespondError = RespondErrorNotFound | RespondErrorRefused | RespondErrorFailed;
  export interface RespondErrorNotFound {
    tag: 'not-found',
  }
  /**
   * The module may not be acted on (the caller itself, or another security extension).
   */
  export interface RespondErrorRefused {
    tag: 'refused',
    val: string,
  }
  /**
   * The runtime could not do it; the cause is in the daemon log.
   */
  export interface RespondErrorFailed {
    tag: 'failed',
  }
}
