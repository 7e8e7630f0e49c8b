/**
 * Edgeward's own verifier of an `attest quote` bundle: the quote (AK signature, nonce, PCR digest of the
 * values the log replays to, hsm/tpm/attest.ts) and — what `tpm2_checkquote -e` does not do — every
 * event's data against its digest, so an edited event is caught even when its digest was left alone.
 * It then says what ran: the daemon's code and config digests and each module start, in order.
 */
import { createPublicKey } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { parseQuoteAttest, verifyQuote } from '../../hsm/tpm/attest.js';
import { digestSize } from '../../hsm/tpm/constants.js';
import { EV_EVENT_TAG, TAG_NAMES, eventsWithWrongData, parseEventLog, parseTaggedEvent } from '../../hsm/tpm/eventlog.js';
import { Reader } from '../../hsm/tpm/marshal.js';
import { publicKeyOf } from '../../hsm/tpm/pubkey.js';
import { parseTpm2bPublic, readSignature } from '../../hsm/tpm/types.js';
import { replayLog, sectionStartOf, type SectionStart } from './log.js';
import { QUOTE_FILES, parseToolsPcrs, type QuoteBundle } from './quote-files.js';

export interface MeasuredEvent {
  index: number;
  pcr: number;
  name: string;
  data: unknown;
}

export interface Verdict {
  ok: boolean;
  problems: string[];
  nonceChecked: boolean;
  events: MeasuredEvent[];
  section?: SectionStart;
}

export async function readBundle(dir: string): Promise<QuoteBundle> {
  const entries = await Promise.all(QUOTE_FILES.map(async (f) => [f, await fs.readFile(path.join(dir, f))] as const));
  return Object.fromEntries(entries) as QuoteBundle;
}

function describeEvents(events: ReturnType<typeof parseEventLog>): MeasuredEvent[] {
  return events.flatMap((e, index) => {
    if (e.type !== EV_EVENT_TAG) return [];
    const t = parseTaggedEvent(e.data);
    let data: unknown;
    try {
      data = JSON.parse(t.data.toString('utf8'));
    } catch {
      data = t.data.toString('hex');
    }
    return [{ index, pcr: e.pcr, name: TAG_NAMES[t.id] ?? `tag 0x${t.id.toString(16)}`, data }];
  });
}

export function verifyBundle(b: QuoteBundle, nonce?: Buffer): Verdict {
  const problems: string[] = [];
  const ak = parseTpm2bPublic(b['ak.pub']);
  const pemKey = createPublicKey(b['ak.pub.pem'].toString());
  if (!publicKeyOf(ak).equals(pemKey)) problems.push('ak.pub and ak.pub.pem are different keys');
  const signature = readSignature(new Reader(b['quote.sig']), digestSize);
  const { selection } = parseToolsPcrs(b['quote.pcrs']);
  const events = parseEventLog(b['eventlog.bin']);
  for (const i of eventsWithWrongData(events)) problems.push(`event ${i + 1} (PCR ${events[i]!.pcr}; EventNum as tpm2_eventlog numbers it): its data does not hash to its digest (the log was edited)`);
  const replayed = replayLog(events);
  const sel = selection.filter((s) => s.pcrs.length > 0);
  const pcrValues = sel.flatMap((s) => [...s.pcrs].sort((a, c) => a - c).map((p) => replayed.get(p) ?? Buffer.alloc(digestSize(s.hashAlg))));
  const attest = parseQuoteAttest(b['quote.msg']);
  const verdict = verifyQuote(ak, { attest: b['quote.msg'], signature }, { nonce: nonce ?? attest.extraData, selection: sel, pcrValues, hashAlg: sel[0]?.hashAlg ?? 0x000b });
  if (!verdict.ok) {
    const why = { signature: 'the AK signature over quote.msg does not verify', nonce: 'the quote is not over the given nonce', selection: 'quote.pcrs names other PCRs than the quote', 'pcr-digest': 'the PCR values the log replays to are not the quoted ones' };
    problems.push(`quote: ${why[verdict.reason]}`);
  }
  const section = sectionStartOf(events);
  if (section) problems.push(`the log starts a new section (${section.reason}): what ran before it is unproven`);
  return { ok: problems.length === 0, problems, nonceChecked: nonce !== undefined, events: describeEvents(events), ...(section ? { section } : {}) };
}

/** One line per measured event, for `edgeward attest verify`. */
export function describeMeasured(e: MeasuredEvent): string {
  const d = (e.data ?? {}) as Record<string, unknown>;
  switch (e.name) {
    case 'daemon-code':
      return `PCR ${e.pcr}  daemon code     edgeward ${String(d.version)} ${String(d.digest)}`;
    case 'daemon-config':
      return `PCR ${e.pcr}  daemon config   ${String(d.digest)}`;
    case 'module-start':
      return `PCR ${e.pcr}  module start    ${String(d.module)} ${String(d.digest)} signer ${String(d.signer)} grants [${(d.grants as string[] | undefined)?.join(', ') ?? ''}]`;
    default:
      return `PCR ${e.pcr}  ${e.name}`;
  }
}
