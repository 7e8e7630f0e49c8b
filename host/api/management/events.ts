/**
 * Management route for the runtime's events, numbered by the monitor hub (the same `seq` the
 * `edgeward:monitor/events` subscriptions see), mounted at `/events` by the daemon's services.
 *
 *   GET /?since=SEQ&module=NAME&kind=K[&kind=K2…]
 *       → 200 {"events": [{seq, time, module|null, kind, message, measured?, expected?}], "cursor": N, "missed": N}
 *         events with seq > SEQ still kept (the hub keeps the last 1000), oldest first; `kind` is the WIT
 *         label (`denied-call`, `restarted`…, repeatable or comma-separated); `module` null for the daemon's
 *         own events; `cursor` the last seq numbered; `missed` how many after SEQ are no longer kept.
 *   GET /?follow=true[&since=SEQ][&heartbeat=S]
 *       → 200 application/x-ndjson, one event per line as above (those after SEQ first, when given), kept
 *         open. A line without `seq` is the stream's own: `{"heartbeat", "cursor", "dropped"}` every S
 *         seconds (default 15) and at once when events were dropped (this client's queue holds
 *         FOLLOW_QUEUE; the oldest goes first), and `{"end", "cursor"}` when the daemon stops or restarts.
 */
import { Hono, type Context } from 'hono';
import { stream } from 'hono/streaming';
import type { StreamingApi } from 'hono/utils/stream';
import { DAEMON_EVENTS } from '../../runtime/events.js';
import type { NumberedEvent } from '../../capabilities/monitor/hub.js';
import { WIT_KINDS, witKind } from '../../capabilities/monitor/events.js';

/** Where the events come from: the monitor hub (MonitorHub has all of it). */
export interface EventFeed {
  readonly cursor: number;
  recent(): readonly NumberedEvent[];
  listen(sink: (e: NumberedEvent) => void): () => void;
}

/** One event as the API answers it. */
export interface ApiEvent {
  seq: number;
  time: string;
  module: string | null;
  kind: string;
  message: string;
  measured?: string;
  expected?: string;
}

/** Events one following client may have waiting; past it the oldest is dropped and counted. */
export const FOLLOW_QUEUE = 1024;
export const DEFAULT_HEARTBEAT_S = 15;
const MAX_HEARTBEAT_S = 300;
/** How long `close()` waits for the open streams to write their last line. */
const CLOSE_GRACE_MS = 1000;

interface Filter {
  module?: string;
  kinds: ReadonlySet<string>;
}

export function apiEvent(e: NumberedEvent): ApiEvent {
  return {
    seq: e.seq,
    time: e.time,
    module: e.module === DAEMON_EVENTS ? null : e.module,
    kind: witKind(e.kind),
    message: e.message,
    ...(e.measured ? { measured: e.measured } : {}),
    ...(e.expected ? { expected: e.expected } : {}),
  };
}

function matches(f: Filter, e: NumberedEvent): boolean {
  return (f.module === undefined || e.module === f.module) && (f.kinds.size === 0 || f.kinds.has(witKind(e.kind)));
}

type Query = { filter: Filter; since?: number; follow: boolean; heartbeatS: number };

/** The query, or the message of a 400. */
function parseQuery(c: Context): Query | string {
  const since = c.req.query('since');
  if (since !== undefined && !/^\d{1,15}$/.test(since)) return 'since: a non-negative integer (the seq of the last event seen)';
  const module = c.req.query('module');
  if (module !== undefined && (module.length === 0 || module.length > 128)) return 'module: 1..128 characters';
  const kinds = (c.req.queries('kind') ?? []).flatMap((k) => k.split(',')).filter(Boolean);
  const unknown = kinds.find((k) => !(WIT_KINDS as readonly string[]).includes(k));
  if (unknown !== undefined) return `kind: unknown event kind ${JSON.stringify(unknown.slice(0, 40))} (known: ${WIT_KINDS.join(', ')})`;
  const follow = c.req.query('follow');
  if (follow !== undefined && follow !== 'true' && follow !== 'false') return 'follow: true or false';
  const hb = c.req.query('heartbeat');
  const heartbeatS = hb === undefined ? DEFAULT_HEARTBEAT_S : Number(hb);
  if (!Number.isInteger(heartbeatS) || heartbeatS < 1 || heartbeatS > MAX_HEARTBEAT_S) return `heartbeat: seconds, 1..${MAX_HEARTBEAT_S}`;
  return { filter: { ...(module !== undefined ? { module } : {}), kinds: new Set(kinds) }, ...(since !== undefined ? { since: Number(since) } : {}), follow: follow === 'true', heartbeatS };
}

/** The kept events after `since` that match, and how many after it are no longer kept. */
function backlog(feed: EventFeed, q: Query): { events: NumberedEvent[]; missed: number } {
  const recent = feed.recent();
  const since = q.since ?? 0;
  const oldest = recent[0]?.seq ?? feed.cursor + 1;
  return { events: recent.filter((e) => e.seq > since && matches(q.filter, e)), missed: Math.max(0, oldest - since - 1) };
}

/** The route, and `close()`, which ends every open stream (daemon stop or restart) before the socket goes. */
export function eventsRoutes(feed: EventFeed): { app: Hono; close(): Promise<void> } {
  const closing = new AbortController();
  const open = new Set<Promise<void>>();
  const app = new Hono();
  app.get('/', (c) => {
    const q = parseQuery(c);
    if (typeof q === 'string') return c.json({ message: q }, 400);
    if (!q.follow) {
      const { events, missed } = backlog(feed, q);
      return c.json({ events: events.map(apiEvent), cursor: feed.cursor, missed });
    }
    if (closing.signal.aborted) return c.json({ message: 'the daemon is stopping' }, 503);
    c.header('content-type', 'application/x-ndjson');
    c.header('cache-control', 'no-store');
    return stream(c, async (s) => {
      const done = follow(s, feed, q, closing.signal);
      open.add(done);
      try {
        await done;
      } finally {
        open.delete(done);
      }
    });
  });
  const close = async () => {
    closing.abort();
    const grace = new Promise<void>((r) => setTimeout(r, CLOSE_GRACE_MS).unref());
    await Promise.race([Promise.allSettled([...open]), grace]);
  };
  return { app, close };
}

/** Stream `q`'s events to one client until it goes or the daemon closes the route. */
async function follow(s: StreamingApi, feed: EventFeed, q: Query, closing: AbortSignal): Promise<void> {
  const queue: NumberedEvent[] = [];
  let dropped = 0;
  let told = 0;
  let wake: (() => void) | undefined;
  const poke = () => wake?.();
  // Listening before the backlog is read (both synchronous): nothing falls between them; `last` skips doubles.
  const stop = feed.listen((e) => {
    if (!matches(q.filter, e)) return;
    queue.push(e);
    if (queue.length > FOLLOW_QUEUE) {
      queue.shift();
      dropped++;
    }
    poke();
  });
  let last = q.since === undefined ? feed.cursor : q.since;
  if (q.since !== undefined) queue.unshift(...backlog(feed, q).events.filter((e) => !queue.includes(e)));
  s.onAbort(poke);
  closing.addEventListener('abort', poke, { once: true });
  const control = (extra: Record<string, unknown>) => JSON.stringify({ ...extra, cursor: feed.cursor, dropped }) + '\n';
  try {
    while (!s.aborted && !s.closed && !closing.aborted) {
      if (queue.length === 0) {
        let timer: NodeJS.Timeout | undefined;
        const woken = await new Promise<boolean>((r) => {
          wake = () => r(true);
          timer = setTimeout(() => r(false), q.heartbeatS * 1000);
        });
        wake = undefined;
        clearTimeout(timer);
        if (!woken) await s.write(control({ heartbeat: new Date().toISOString() }));
        continue;
      }
      const batch = queue.splice(0).filter((e) => e.seq > last);
      if (dropped > told) {
        told = dropped;
        await s.write(control({ heartbeat: new Date().toISOString() }));
      }
      if (batch.length === 0) continue;
      last = batch[batch.length - 1]!.seq;
      await s.write(batch.map((e) => JSON.stringify(apiEvent(e)) + '\n').join(''));
    }
    if (closing.aborted && !s.aborted) await s.write(JSON.stringify({ end: 'the daemon is stopping or restarting', cursor: feed.cursor }) + '\n');
  } finally {
    stop();
    closing.removeEventListener('abort', poke);
  }
}
