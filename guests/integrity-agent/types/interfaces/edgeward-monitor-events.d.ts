declare module 'edgeward:monitor/events@0.1.0' {
  /**
   * A queue of at most `capacity` events (1..=1024) matching `filter`, from now on.
   */
  export function subscribe(filter: Filter, capacity: number): Subscription;
  /**
   * Take at most `max` queued events, oldest first (empty when none are queued; it never waits).
   */
  export function next(sub: Subscription, max: number): Array<Event>;
  /**
   * How many events the queue dropped because it was full, since the subscription began.
   */
  export function dropped(sub: Subscription): bigint;
  export function unsubscribe(sub: Subscription): void;
  /**
   * The last `max` events the daemon keeps that match `filter`, oldest first.
   */
  export function recent(filter: Filter, max: number): Array<Event>;
  /**
   * What `filter.kinds` selects; the same labels as `event-detail`'s cases.
   * # Variants
   * 
   * ## `"created"`
   * 
   * ## `"updated"`
   * 
   * ## `"removed"`
   * 
   * ## `"started"`
   * 
   * ## `"stopped"`
   * 
   * ## `"crashed"`
   * 
   * ## `"exited"`
   * 
   * ## `"timeout"`
   * 
   * ## `"restarted"`
   * 
   * ## `"restart-abandoned"`
   * 
   * ## `"denied-call"`
   * 
   * ## `"signature-refused"`
   * 
   * ## `"integrity-violation"`
   * 
   * ## `"type-mismatch"`
   * 
   * ## `"start-failed"`
   * 
   * ## `"internal-error"`
   * 
   * ## `"daemon-fault"`
   * 
   * ## `"quarantined"`
   * 
   * ## `"config-applied"`
   * 
   * ## `"provisioning"`
   * 
   * ## `"key-created"`
   */
  export type EventKind = 'created' | 'updated' | 'removed' | 'started' | 'stopped' | 'crashed' | 'exited' | 'timeout' | 'restarted' | 'restart-abandoned' | 'denied-call' | 'signature-refused' | 'integrity-violation' | 'type-mismatch' | 'start-failed' | 'internal-error' | 'daemon-fault' | 'quarantined' | 'config-applied' | 'provisioning' | 'key-created';
  export interface Integrity {
    /**
     * What the bytes measured, when they could be read.
     */
    measured?: string,
    /**
     * The digest the registration (or the deployment) pins.
     */
    expected: string,
  }
  /**
   * An event's typed part; the string payloads are the host's message.
   */
  export type EventDetail = EventDetailCreated | EventDetailUpdated | EventDetailRemoved | EventDetailStarted | EventDetailStopped | EventDetailCrashed | EventDetailExited | EventDetailTimeout | EventDetailRestarted | EventDetailRestartAbandoned | EventDetailDeniedCall | EventDetailSignatureRefused | EventDetailIntegrityViolation | EventDetailTypeMismatch | EventDetailStartFailed | EventDetailInternalError | EventDetailDaemonFault | EventDetailQuarantined | EventDetailConfigApplied | EventDetailProvisioning | EventDetailKeyCreated;
  export interface EventDetailCreated {
    tag: 'created',
    val: string,
  }
  export interface EventDetailUpdated {
    tag: 'updated',
    val: string,
  }
  export interface EventDetailRemoved {
    tag: 'removed',
    val: string,
  }
  export interface EventDetailStarted {
    tag: 'started',
    val: string,
  }
  export interface EventDetailStopped {
    tag: 'stopped',
    val: string,
  }
  export interface EventDetailCrashed {
    tag: 'crashed',
    val: string,
  }
  export interface EventDetailExited {
    tag: 'exited',
    val: string,
  }
  export interface EventDetailTimeout {
    tag: 'timeout',
    val: string,
  }
  /**
   * A restart was scheduled (the message says after how long).
   */
  export interface EventDetailRestarted {
    tag: 'restarted',
    val: string,
  }
  export interface EventDetailRestartAbandoned {
    tag: 'restart-abandoned',
    val: string,
  }
  /**
   * An import or call the module is not granted was refused.
   */
  export interface EventDetailDeniedCall {
    tag: 'denied-call',
    val: string,
  }
  export interface EventDetailSignatureRefused {
    tag: 'signature-refused',
    val: string,
  }
  export interface EventDetailIntegrityViolation {
    tag: 'integrity-violation',
    val: Integrity,
  }
  export interface EventDetailTypeMismatch {
    tag: 'type-mismatch',
    val: string,
  }
  export interface EventDetailStartFailed {
    tag: 'start-failed',
    val: string,
  }
  /**
   * A host fault while serving the module; the cause is in the daemon log only.
   */
  export interface EventDetailInternalError {
    tag: 'internal-error',
    val: string,
  }
  export interface EventDetailDaemonFault {
    tag: 'daemon-fault',
    val: string,
  }
  /**
   * A security extension quarantined the module.
   */
  export interface EventDetailQuarantined {
    tag: 'quarantined',
    val: string,
  }
  /**
   * The daemon started or restarted with a config, or reloaded one (`edgeward config apply`); no module.
   */
  export interface EventDetailConfigApplied {
    tag: 'config-applied',
    val: string,
  }
  /**
   * The device identity was provisioned at start or reprovisioned: source, hub, device id, substatus
   * (never a key); no module.
   */
  export interface EventDetailProvisioning {
    tag: 'provisioning',
    val: string,
  }
  /**
   * A key was created: by the module through `edgeward:hsm/keys` (its id and type), or by the daemon
   * through the management API (no module). Never key material.
   */
  export interface EventDetailKeyCreated {
    tag: 'key-created',
    val: string,
  }
  export interface Event {
    /**
     * Increases by one with each event the daemon records.
     */
    seq: bigint,
    /**
     * Milliseconds since the Unix epoch.
     */
    timeMs: bigint,
    /**
     * The module the event is about; none for the daemon itself.
     */
    module?: string,
    message: string,
    detail: EventDetail,
  }
  /**
   * Empty lists select everything.
   */
  export interface Filter {
    kinds: Array<EventKind>,
    modules: Array<string>,
  }
  /**
   * A subscription of the calling module; another module's numbers are `invalid-handle`.
   */
  export type Subscription = number;
  export type EventsError = EventsErrorInvalidHandle | EventsErrorInvalidArgument | EventsErrorLimitExceeded;
  export interface EventsErrorInvalidHandle {
    tag: 'invalid-handle',
  }
  export interface EventsErrorInvalidArgument {
    tag: 'invalid-argument',
    val: string,
  }
  export interface EventsErrorLimitExceeded {
    tag: 'limit-exceeded',
    val: string,
  }
}
