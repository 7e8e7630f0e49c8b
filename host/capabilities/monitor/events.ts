/**
 * `edgeward:monitor/events`: the runtime's events as the WIT's typed `event`, in bounded subscriptions
 * kept per instance. A subscription number is unique across the daemon and resolves only in the table of
 * the instance that made it: another instance's number is `invalid-handle`. The table goes when the
 * instance ends.
 */
import type { InstanceContext } from '../../runtime/capabilities.js';
import { DAEMON_EVENTS } from '../../runtime/events.js';
import type * as Wit from './generated/interfaces/edgeward-monitor-events.js';
import { guestCount, guestString, invalidArgument, invalidHandle, limitExceeded } from './errors.js';
import { offer, type MonitorHub, type NumberedEvent, type Subscription } from './hub.js';

export const MAX_SUBSCRIPTIONS = 8;
export const MAX_QUEUE = 1024;
/** Most events one `next` or `recent` call returns. */
export const MAX_BATCH = 256;
/** Most module names in a filter. */
export const MAX_FILTER_MODULES = 64;
/** Longest message handed to a guest (the runtime's are shorter; a cap all the same). */
export const MAX_MESSAGE_BYTES = 2048;

export const WIT_KINDS: readonly Wit.EventKind[] = [
  'created', 'updated', 'removed', 'started', 'stopped', 'crashed', 'exited', 'timeout', 'restarted', 'restart-abandoned',
  'denied-call', 'signature-refused', 'integrity-violation', 'type-mismatch', 'start-failed', 'internal-error',
  'daemon-fault', 'quarantined', 'config-applied', 'provisioning', 'key-created',
];
/**
 * Runtime kinds whose WIT label differs. `rollback` (a refused security version), `unhealthy` (failed
 * health probes) and `policy-mismatch` (a confidential module's key not released) have no WIT kind yet:
 * shown as the nearest one, the message says which.
 */
const RENAMED: Readonly<Record<string, Wit.EventKind>> = {
  'restart-scheduled': 'restarted', denied: 'denied-call', rollback: 'signature-refused', unhealthy: 'crashed', 'policy-mismatch': 'start-failed',
};

export function witKind(kind: string): Wit.EventKind {
  return RENAMED[kind] ?? WIT_KINDS.find((k) => k === kind) ?? 'internal-error';
}

export function witEvent(e: NumberedEvent): Wit.Event {
  const kind = witKind(e.kind);
  const message = Buffer.byteLength(e.message) > MAX_MESSAGE_BYTES ? `${Buffer.from(e.message).subarray(0, MAX_MESSAGE_BYTES).toString('utf8')}…` : e.message;
  const detail = (kind === 'integrity-violation'
    ? { tag: kind, val: { expected: e.expected ?? '', ...(e.measured ? { measured: e.measured } : {}) } }
    : { tag: kind, val: message }) as Wit.EventDetail;
  return { seq: BigInt(e.seq), timeMs: BigInt(Date.parse(e.time)), ...(e.module !== DAEMON_EVENTS ? { module: e.module } : {}), message, detail };
}

function filterOf(v: unknown): Pick<Subscription, 'kinds' | 'modules'> {
  const f = v as Partial<Wit.Filter> | null;
  if (!f || !Array.isArray(f.kinds) || !Array.isArray(f.modules)) throw invalidArgument('filter: expected {kinds, modules}');
  if (f.modules.length > MAX_FILTER_MODULES) throw limitExceeded(`filter: more than ${MAX_FILTER_MODULES} modules`);
  if (f.kinds.length > WIT_KINDS.length) throw limitExceeded(`filter: more than ${WIT_KINDS.length} kinds`);
  const kinds = new Set(f.kinds.map((k) => {
    if (!WIT_KINDS.includes(k)) throw invalidArgument('filter: unknown event kind');
    return k;
  }));
  return { kinds, modules: new Set(f.modules.map((m) => guestString(m, 'filter module', 64))) };
}

let nextHandle = 1;

/** One instance's subscriptions; fed by the hub until the instance ends. */
export function eventsFunctions(hub: MonitorHub, instance: Pick<InstanceContext, 'signal'>) {
  const subs = new Map<number, Subscription>();
  const stopListening = hub.listen((e) => {
    for (const s of subs.values()) offer(s, e, witKind(e.kind));
  });
  instance.signal?.addEventListener('abort', () => {
    stopListening();
    subs.clear();
  }, { once: true });
  const sub = (v: unknown): Subscription => {
    const s = typeof v === 'number' ? subs.get(v) : undefined;
    if (!s) throw invalidHandle();
    return s;
  };
  return {
    async subscribe(filter: unknown, capacity: unknown): Promise<Wit.Subscription> {
      const f = filterOf(filter);
      const cap = guestCount(capacity, 'capacity');
      if (cap < 1 || cap > MAX_QUEUE) throw invalidArgument(`capacity: 1..=${MAX_QUEUE}`);
      if (subs.size >= MAX_SUBSCRIPTIONS) throw limitExceeded(`more than ${MAX_SUBSCRIPTIONS} subscriptions`);
      const id = nextHandle++ >>> 0;
      subs.set(id, { ...f, capacity: cap, queue: [], dropped: 0 });
      return id;
    },
    async next(handle: unknown, max: unknown): Promise<Wit.Event[]> {
      const s = sub(handle);
      return s.queue.splice(0, Math.min(guestCount(max, 'max'), MAX_BATCH)).map(witEvent);
    },
    dropped: async (handle: unknown): Promise<bigint> => BigInt(sub(handle).dropped),
    async unsubscribe(handle: unknown): Promise<void> {
      sub(handle);
      subs.delete(handle as number);
    },
    async recent(filter: unknown, max: unknown): Promise<Wit.Event[]> {
      const f: Subscription = { ...filterOf(filter), capacity: Math.min(guestCount(max, 'max'), MAX_BATCH), queue: [], dropped: 0 };
      for (const e of hub.recent()) offer(f, e, witKind(e.kind));
      return f.queue.map(witEvent);
    },
  };
}
