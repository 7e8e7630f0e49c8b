/**
 * `edgeward events [-f] [--since N] [--module M] [--kind K]... [--json]`: the runtime's events (`GET
 * /events`), numbered as security extensions see them. One line per event by default; `--json` prints the
 * API answer (with `-f`, one JSON event per line); `-f` keeps printing new events until Ctrl-C or until the
 * daemon stops.
 */
import type { Command } from 'commander';
import type { MgmtClient } from '../client.js';
import { action } from '../output.js';
import type { ApiEvent } from '../../api/management/events.js';

export interface EventsAnswer {
  events: ApiEvent[];
  cursor: number;
  missed: number;
}

/** Text from the daemon on one terminal line: control characters shown as `?` (no escape sequences reach the terminal). */
function oneLine(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

/** `SEQ TIME MODULE KIND MESSAGE`, the daemon's own events under `(edgeward)`. */
export function renderEvent(e: ApiEvent): string {
  return `${String(e.seq).padStart(6)}  ${e.time}  ${oneLine(e.module ?? '(edgeward)').padEnd(16)}  ${e.kind.padEnd(19)}  ${oneLine(e.message)}\n`;
}

export function renderEvents(res: EventsAnswer): string {
  const head = res.missed > 0 ? `(${res.missed} earlier event(s) no longer kept)\n` : '';
  return head + (res.events.length === 0 ? 'no events\n' : res.events.map(renderEvent).join(''));
}

interface EventsOptions {
  follow?: boolean;
  since?: string;
  module?: string;
  kind: string[];
  json?: boolean;
}

function queryOf(opts: EventsOptions): string {
  const q = new URLSearchParams();
  if (opts.since !== undefined) q.set('since', opts.since);
  if (opts.module !== undefined) q.set('module', opts.module);
  for (const k of opts.kind) q.append('kind', k);
  if (opts.follow) q.set('follow', 'true');
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** Print the stream line by line: events as text (or as they came, with --json); the stream's own lines say drops and the end. */
async function followEvents(client: MgmtClient, opts: EventsOptions): Promise<void> {
  let pending = '';
  let dropped = 0;
  const line = (text: string) => {
    if (!text.trim()) return;
    const v = JSON.parse(text) as Partial<ApiEvent> & { dropped?: number; end?: string };
    if (typeof v.seq === 'number') {
      process.stdout.write(opts.json ? `${text}\n` : renderEvent(v as ApiEvent));
    } else if (typeof v.end === 'string') {
      process.stderr.write(`the daemon closed the event stream (${oneLine(v.end)})\n`);
    } else if (typeof v.dropped === 'number' && v.dropped > dropped) {
      process.stderr.write(`(${v.dropped - dropped} event(s) dropped: this client fell behind)\n`);
      dropped = v.dropped;
    }
  };
  await client.stream(`/events${queryOf(opts)}`, (chunk) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const l of lines) line(l);
  });
}

export function registerEventsCommand(program: Command, getClient: () => Promise<MgmtClient>): void {
  program
    .command('events')
    .description("the runtime's events (start, stop, crash, denied calls, config applied, provisioning, keys created...)")
    .option('-f, --follow', 'keep printing new events until Ctrl-C')
    .option('--since <seq>', 'only events after this sequence number')
    .option('--module <name>', "only this module's events")
    .option('--kind <kind>', 'only events of this kind (repeatable: --kind denied-call --kind crashed)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--json', 'print the API answer as JSON (with -f: one event per line)')
    .action(
      action(async (opts: EventsOptions) => {
        const client = await getClient();
        if (opts.follow) return followEvents(client, opts);
        const res = await client.request<EventsAnswer>('GET', `/events${queryOf(opts)}`);
        process.stdout.write(opts.json ? `${JSON.stringify(res, null, 2)}\n` : renderEvents(res));
      }),
    );
}
