/**
 * Runtime events (start, stop, crash, restart scheduled, integrity violation, denied import or call, internal
 * error, config applied, provisioning, key created): kept in a bounded ring for `edgeward:monitor` and the
 * management API's `GET /events`, and mirrored to the module log and the daemon log. Events a guest can
 * cause at will (a refused call in a loop) go through an EventLimiter per instance.
 */
import type { Logger } from '../log.js';
import type { LogStore } from './log-store.js';
export type RuntimeEventKind =
  | 'created' | 'updated' | 'removed' | 'started' | 'stopped' | 'crashed' | 'exited' | 'timeout'
  | 'restart-scheduled' | 'restart-abandoned' | 'integrity-violation' | 'signature-refused' | 'denied' | 'type-mismatch' | 'start-failed'
  | 'policy-mismatch' /** A confidential module's key not released: the TEE policy (a runtime PCR, named) does not hold. */
  /** A signed security version below the highest that ran for its signer (runtime/rollback.ts). */
  | 'rollback'
  /** Health probes failed `failure_threshold` times in a row (supervisor.ts); restarted under on-unhealthy. */
  | 'unhealthy'
  /** A host-side bug while serving an instance (sandbox/instance.ts `internal`): the instance trapped, the cause is in the daemon log only. */
  | 'internal-error'
  /** The daemon survived an exception nothing caught (daemon/last-resort.ts); `module` is DAEMON_EVENTS. */
  | 'daemon-fault'
  /** The daemon started (or restarted) with a config, or reloaded one (`config apply`); `module` is DAEMON_EVENTS. */
  | 'config-applied'
  /** The device identity was provisioned (at start) or reprovisioned; `module` is DAEMON_EVENTS. Never a key. */
  | 'provisioning'
  /** A key was created: by a module through `edgeward:hsm/keys`, or the daemon's through the management API. Never key material. */
  | 'key-created';

/** The kinds recorded about the daemon itself (`module` is DAEMON_EVENTS). */
export type DaemonEventKind = 'daemon-fault' | 'config-applied' | 'provisioning' | 'key-created';

export interface RuntimeEvent {
  time: string;
  module: string;
  kind: RuntimeEventKind;
  message: string;
  /** For integrity events: the measured and the registered digest. */
  measured?: string;
  expected?: string;
}

export const MAX_EVENTS = 1000;

/** The `module` of events about the daemon itself (not a valid module name, so it names no module). */
export const DAEMON_EVENTS = '(edgeward)';

export class EventRing {
  private readonly items: RuntimeEvent[] = [];
  private readonly listeners = new Set<(e: RuntimeEvent) => void>();

  push(e: Omit<RuntimeEvent, 'time'>): RuntimeEvent {
    const ev = { time: new Date().toISOString(), ...e };
    this.items.push(ev);
    if (this.items.length > MAX_EVENTS) this.items.shift();
    for (const l of this.listeners) l(ev);
    return ev;
  }

  list(module?: string): RuntimeEvent[] {
    return module ? this.items.filter((e) => e.module === module) : [...this.items];
  }

  subscribe(l: (e: RuntimeEvent) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
}

/** The kinds logged at warn level (the others at info). */
const WARN_EVENTS: ReadonlySet<RuntimeEventKind> = new Set<RuntimeEventKind>(['integrity-violation', 'signature-refused', 'rollback', 'unhealthy', 'denied', 'crashed', 'timeout', 'start-failed', 'internal-error']);

/** Where events go besides the ring. */
export interface EventSinks {
  logger: Logger;
  logs: LogStore;
  /** Whether `module` is registered: only a registered module's log gets its events. */
  registered(module: string): boolean;
}

/** The runtime's events: into the ring, the daemon log and the module's own log. */
export class RuntimeEvents {
  readonly ring = new EventRing();

  constructor(private readonly sinks: EventSinks) {}

  /** Record one event about `module`; `toDaemonLog` false when the caller logged it already (with more). */
  record(module: string, kind: RuntimeEventKind, message: string, extra: { measured?: string; expected?: string } = {}, toDaemonLog = true): void {
    this.ring.push({ module, kind, message, ...extra });
    const level = WARN_EVENTS.has(kind) ? 'warn' : 'info';
    if (toDaemonLog) this.sinks.logger[level]({ module, event: kind, ...extra }, message);
    if (!this.sinks.registered(module)) return;
    try {
      this.sinks.logs.for(module).append(level, `[edgeward] ${kind}: ${message}`);
    } catch (err) {
      // A module log that cannot be written (disk full, a file in the way) must not undo the bookkeeping
      // of the event: the daemon log has it.
      this.sinks.logger.warn({ module, err: (err as Error).message }, 'could not write the module log');
    }
  }
}

/** Most events of one kind an instance can cause per second (InstanceContext.denied, keyCreated); the rest are counted. */
export const INSTANCE_EVENTS_PER_SECOND = 10;

/**
 * A per-instance limit on events a guest can trigger at will: at most `perSecond` in each one-second window.
 * The ones past it are counted, and the count is told in one more event when the window ends (or the instance
 * does: `flush`), so a flood costs the ring at most `perSecond + 1` events a second and loses no count.
 */
export class EventLimiter {
  private windowStart = -Infinity;
  private inWindow = 0;
  private suppressed = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly emit: (message: string) => void,
    /** What is counted, in the plural ("denied calls"). */
    private readonly what: string,
    private readonly perSecond = INSTANCE_EVENTS_PER_SECOND,
  ) {}

  offer(message: string): void {
    const now = performance.now();
    if (now - this.windowStart >= 1000) {
      this.flush();
      this.windowStart = now;
      this.inWindow = 0;
    }
    if (this.inWindow < this.perSecond) {
      this.inWindow++;
      this.emit(message);
      return;
    }
    this.suppressed++;
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), Math.max(1, 1000 - (now - this.windowStart)));
      this.timer.unref();
    }
  }

  /** Tell the count of suppressed events now (one event), if any. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.suppressed === 0) return;
    const n = this.suppressed;
    this.suppressed = 0;
    this.emit(`${n} more ${this.what} suppressed (at most ${this.perSecond} events a second per instance)`);
  }
}
