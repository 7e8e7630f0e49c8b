/**
 * integrity-agent: a sample security extension. At start it subscribes to the events that matter to it
 * (denied calls, integrity violations, refused signatures); each `scan` drains the queue, raises one
 * finding per event, and quarantines a registered module once it has `threshold` of them (settings,
 * default 3). A guest has no timer: whoever runs it calls `scan` (an operator, a hub direct method).
 *   scan   → {"events", "findings", "quarantined": [..], "dropped"}
 *   status → {"counts": {module: n}, "quarantined": [..], "dropped"}
 * Built for the `integrity-agent` world (guests/integrity-agent/world.wit).
 */
/// <reference path="../types/integrity-agent.d.ts" />
import { log } from 'edgeward:module/logging@0.1.0';
import { dropped, next, subscribe, type Event } from 'edgeward:monitor/events@0.1.0';
import { submit } from 'edgeward:monitor/findings@0.1.0';
import { quarantine } from 'edgeward:monitor/respond@0.1.0';

let sub: number | undefined;
let threshold = 3;
const counts = new Map<string, number>();
const quarantined = new Set<string>();

/** A WIT error (jco throws the variant as `payload`) as text. */
function why(err: unknown): string {
  const p = (err as { payload?: { tag?: unknown; val?: unknown } } | null)?.payload;
  if (p && typeof p.tag === 'string') return `${p.tag}${typeof p.val === 'string' ? `: ${p.val}` : ''}`;
  return String(err);
}

/** One finding for one event; its rule and severity follow the event's kind. */
function report(e: Event): void {
  const tag = e.detail.tag;
  const rule = tag === 'integrity-violation' ? 'IA-INTEGRITY' : tag === 'signature-refused' ? 'IA-SIGNATURE' : 'IA-DENIED-CALL';
  const evidence: [string, string][] = [['event', tag], ['seq', String(e.seq)], ['message', e.message.slice(0, 1000)]];
  if (e.detail.tag === 'integrity-violation') {
    evidence.push(['expected', e.detail.val.expected]);
    if (e.detail.val.measured) evidence.push(['measured', e.detail.val.measured]);
  }
  const summary = `${tag} of module ${e.module ?? '(daemon)'}`;
  submit({ ruleId: rule, severity: tag === 'denied-call' ? 'medium' : 'high', summary, evidence, tags: ['integrity-agent'], ...(e.module ? { subject: e.module } : {}) });
}

/** Quarantine `module` at the threshold (once); a module that is not registered (refused at deploy) is only counted. */
function count(module: string): void {
  const n = (counts.get(module) ?? 0) + 1;
  counts.set(module, n);
  if (n < threshold || quarantined.has(module)) return;
  try {
    quarantine(module, `${n} integrity findings (threshold ${threshold})`);
    quarantined.add(module);
    log('warn', `quarantined ${module} after ${n} findings`);
  } catch (err) {
    log('info', `could not quarantine ${module}: ${why(err)}`);
  }
}

function scan(): { events: number; findings: number; quarantined: string[]; dropped: string } {
  if (sub === undefined) throw 'not subscribed';
  let events = 0;
  let findings = 0;
  for (let batch = next(sub, 256); batch.length > 0; batch = next(sub, 256)) {
    for (const e of batch) {
      events++;
      try {
        report(e);
        findings++;
      } catch (err) {
        log('warn', `finding not stored: ${why(err)}`);
      }
      if (e.module) count(e.module);
    }
  }
  return { events, findings, quarantined: [...quarantined], dropped: String(dropped(sub)) };
}

export const lifecycle = {
  start(config: string): void {
    const settings = (JSON.parse(config) as { settings?: { threshold?: unknown } }).settings ?? {};
    if (typeof settings.threshold === 'number' && settings.threshold >= 1) threshold = Math.floor(settings.threshold);
    sub = subscribe({ kinds: ['denied-call', 'integrity-violation', 'signature-refused'], modules: [] }, 1024);
    log('info', `integrity-agent watching (quarantine after ${threshold})`);
  },
  stop(): void {},
  invoke(method: string, _payload: string): string {
    try {
      switch (method) {
        case 'scan': return JSON.stringify(scan());
        case 'status': return JSON.stringify({ counts: Object.fromEntries(counts), quarantined: [...quarantined], dropped: sub === undefined ? '0' : String(dropped(sub)) });
        default: throw `unknown method "${method}"`;
      }
    } catch (err) {
      throw typeof err === 'string' ? err : `${method}: ${why(err)}`;
    }
  },
};
