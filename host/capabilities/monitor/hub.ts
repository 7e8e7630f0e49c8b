/**
 * The daemon's side of `edgeward:monitor`: one hub, opened before the runtime and attached to it once it
 * runs (capabilities are handed to the runtime when it opens). It numbers the runtime's events, keeps the
 * recent ones and the inventory change feed (both bounded), fans events out to the subscriptions of the
 * extension instances, and holds the findings store and the quarantine marks.
 */
import type { ModuleDetails } from '../../runtime/types.js';
import { DAEMON_EVENTS, type RuntimeEvent } from '../../runtime/events.js';
import type { FindingsStore } from './findings-store.js';

/** What the hub reads and does on the runtime (ComponentRuntime has all of it). */
export interface MonitorRuntime {
  list(): Promise<ModuleDetails[]>;
  events(): RuntimeEvent[];
  onEvent(listener: (e: RuntimeEvent) => void): () => void;
  stop(name: string): Promise<void>;
}

/** The measured launch, when the daemon has one (the `measure` work plugs in here). */
export interface MeasurementSource {
  pcrs(): Promise<{ index: number; sha256: Uint8Array }[]>;
  eventLog(): Promise<Uint8Array>;
}

/** A runtime event numbered by the hub, or one the hub records itself (a quarantine). */
export interface NumberedEvent extends Omit<RuntimeEvent, 'kind'> {
  readonly kind: RuntimeEvent['kind'] | 'quarantined';
  readonly seq: number;
}

/** Most events kept for `recent` and most inventory changes kept for `changes`. */
export const MAX_RECENT_EVENTS = 1000;
export const MAX_CHANGES = 1000;

/** One subscription's bounded queue. */
export interface Subscription {
  readonly kinds: ReadonlySet<string>;
  readonly modules: ReadonlySet<string>;
  readonly capacity: number;
  readonly queue: NumberedEvent[];
  dropped: number;
}

/** What receives every event the hub numbers (one per extension instance, feeding its subscriptions). */
export type EventSink = (e: NumberedEvent) => void;

export class MonitorHub {
  private runtime?: MonitorRuntime;
  private seq = 0;
  private readonly recentEvents: NumberedEvent[] = [];
  /** Module names in the order they changed, each with the seq of its change (oldest first). */
  private readonly changeLog: { seq: number; module: string }[] = [];
  /** The seq before the oldest change kept: a cursor below it has lost changes. */
  private changeFloor = 0;
  private readonly sinks = new Set<EventSink>();
  private readonly openedAt = Date.now();

  constructor(readonly findings: FindingsStore, readonly measurements?: MeasurementSource) {}

  /** Start watching `runtime` (once): the events it kept so far are numbered first. */
  attach(runtime: MonitorRuntime): void {
    if (this.runtime) throw new Error('monitor hub already attached');
    this.runtime = runtime;
    for (const e of runtime.events()) this.take(e);
    runtime.onEvent((e) => this.take(e));
  }

  /** The runtime; a monitor call before the daemon attached it is a host fault (`internal`). */
  rt(): MonitorRuntime {
    if (!this.runtime) throw new Error('monitor hub used before the runtime was attached');
    return this.runtime;
  }

  get cursor(): number {
    return this.seq;
  }

  uptimeSeconds(): number {
    return Math.floor((Date.now() - this.openedAt) / 1000);
  }

  recent(): readonly NumberedEvent[] {
    return this.recentEvents;
  }

  /** Deliver every event from now on to `sink`; returns the unsubscribe. */
  listen(sink: EventSink): () => void {
    this.sinks.add(sink);
    return () => this.sinks.delete(sink);
  }

  /**
   * Modules changed after `since`, each once, at most `max`, and the cursor to continue from; undefined
   * when `since` is older than the changes kept or newer than any event (take a new snapshot).
   */
  changesSince(since: number, max: number): { cursor: number; modules: string[] } | undefined {
    if (since > this.seq || since < this.changeFloor) return undefined;
    const modules: string[] = [];
    let cursor = this.seq;
    for (const c of this.changeLog) {
      if (c.seq <= since || modules.includes(c.module)) continue;
      if (modules.length === max) {
        cursor = c.seq - 1;
        break;
      }
      modules.push(c.module);
    }
    return { cursor, modules };
  }

  /** An event of the monitor itself (a quarantine), numbered and delivered like the runtime's. */
  note(module: string, kind: 'quarantined', message: string): void {
    this.take({ time: new Date().toISOString(), module, kind, message });
  }

  private take(e: Omit<NumberedEvent, 'seq'>): void {
    const n: NumberedEvent = { ...e, seq: ++this.seq };
    this.recentEvents.push(n);
    if (this.recentEvents.length > MAX_RECENT_EVENTS) this.recentEvents.shift();
    if (e.module !== DAEMON_EVENTS) this.changeLog.push({ seq: n.seq, module: e.module });
    if (this.changeLog.length > MAX_CHANGES) this.changeFloor = this.changeLog.shift()!.seq;
    for (const sink of this.sinks) sink(n);
  }
}

/** Push `e` onto `sub` if it matches; a full queue drops its oldest event and counts it. */
export function offer(sub: Subscription, e: NumberedEvent, witKind: string): void {
  if (sub.kinds.size && !sub.kinds.has(witKind)) return;
  if (sub.modules.size && !sub.modules.has(e.module)) return;
  sub.queue.push(e);
  if (sub.queue.length > sub.capacity) {
    sub.queue.shift();
    sub.dropped++;
  }
}
