/**
 * TCG PC Client crypto-agile event log (TCG PC Client Platform Firmware Profile, §10 "Event Logging"):
 * the log format firmware writes to /sys/kernel/security/tpm0/binary_bios_measurements and that
 * `tpm2_eventlog` and `tpm2_checkquote -e` read. All integers are little-endian (unlike TPM commands).
 *
 * - The first event is a TCG_PCR_EVENT in the SHA-1 format (pcrIndex 0, EV_NO_ACTION, 20 zero bytes of
 *   digest) carrying TCG_EfiSpecIDEvent: signature "Spec ID Event03", platform class 0 (client), spec
 *   version 2.0 errata 2, uintnSize 2 (UINT64), the list of digest algorithms and sizes (here SHA-256
 *   only), no vendor info.
 * - Every later event is a TCG_PCR_EVENT2: pcrIndex, eventType, TPML_DIGEST_VALUES (count, then per bank
 *   hashAlg + digest), eventSize, event data.
 *
 * Edgeward's measurements are EV_EVENT_TAG (0x00000006) events whose data is a TCG_PCClientTaggedEvent
 * (taggedEventID u32, taggedEventDataSize u32, data); the digest extended is SHA-256 over the whole
 * tagged-event structure, so a verifier recomputes it from the data in the log. Edgeward's tag ids (the
 * high half is ASCII "EW"):
 *
 * | id         | name             | data (UTF-8 JSON, keys sorted)                                   |
 * |------------|------------------|------------------------------------------------------------------|
 * | 0x45570001 | daemon-code      | { version, digest }: the daemon's code digest                     |
 * | 0x45570002 | daemon-config    | { digest, config }: effective config, canonical, secrets redacted |
 * | 0x45570003 | module-start     | { module, digest, signer, kind, grants, network }                 |
 *
 * A log section that does not start from PCR values of zero (see `sectionStartEvent`) begins with an
 * EV_NO_ACTION event (never extended; digests zero) tagged 0x45570010 `section-start` with
 * { reason, pcrs: { "<index>": hex }, previousLog }: the PCR values it continues from, as read, unproven.
 */
import { createHash } from 'node:crypto';
import { ALG } from './constants.js';

export const EV_NO_ACTION = 0x00000003;
export const EV_EVENT_TAG = 0x00000006;

export const TAG = {
  daemonCode: 0x45570001,
  daemonConfig: 0x45570002,
  moduleStart: 0x45570003,
  sectionStart: 0x45570010,
} as const;

export const TAG_NAMES: Record<number, string> = {
  [TAG.daemonCode]: 'daemon-code',
  [TAG.daemonConfig]: 'daemon-config',
  [TAG.moduleStart]: 'module-start',
  [TAG.sectionStart]: 'section-start',
};

const SPEC_ID_SIGNATURE = Buffer.from('Spec ID Event03\0', 'latin1');
const SHA256_SIZE = 32;

export class EventLogError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EventLogError';
  }
}

export interface LogEvent {
  pcr: number;
  type: number;
  /** SHA-256 digest (the only bank this log carries). */
  digest: Buffer;
  data: Buffer;
}

/** The header event: TCG_PCR_EVENT (SHA-1 format) carrying TCG_EfiSpecIDEvent for one SHA-256 bank. */
export function specIdHeader(): Buffer {
  const spec = Buffer.alloc(16 + 4 + 4 + 4 + 4 + 1);
  let o = SPEC_ID_SIGNATURE.copy(spec, 0);
  o = spec.writeUInt32LE(0, o); // platformClass: client
  o = spec.writeUInt8(0, o); // specVersionMinor
  o = spec.writeUInt8(2, o); // specVersionMajor
  o = spec.writeUInt8(2, o); // specErrata
  o = spec.writeUInt8(2, o); // uintnSize: UINT64
  o = spec.writeUInt32LE(1, o); // numberOfAlgorithms
  o = spec.writeUInt16LE(ALG.SHA256, o);
  o = spec.writeUInt16LE(SHA256_SIZE, o);
  spec.writeUInt8(0, o); // vendorInfoSize
  const head = Buffer.alloc(4 + 4 + 20 + 4);
  head.writeUInt32LE(0, 0);
  head.writeUInt32LE(EV_NO_ACTION, 4);
  head.writeUInt32LE(spec.length, 28);
  return Buffer.concat([head, spec]);
}

/** TCG_PCClientTaggedEvent. */
export function taggedEvent(id: number, data: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32LE(id, 0);
  h.writeUInt32LE(data.length, 4);
  return Buffer.concat([h, data]);
}

export function parseTaggedEvent(buf: Buffer): { id: number; data: Buffer } {
  if (buf.length < 8) throw new EventLogError('tagged event shorter than its header');
  const size = buf.readUInt32LE(4);
  if (buf.length !== 8 + size) throw new EventLogError(`tagged event says ${size} data bytes, has ${buf.length - 8}`);
  return { id: buf.readUInt32LE(0), data: buf.subarray(8) };
}

/** An EV_EVENT_TAG event for `pcr`: the digest is SHA-256 of the tagged-event bytes. */
export function tagEvent(pcr: number, id: number, data: Buffer): LogEvent {
  const bytes = taggedEvent(id, data);
  return { pcr, type: EV_EVENT_TAG, digest: createHash('sha256').update(bytes).digest(), data: bytes };
}

/** The EV_NO_ACTION event that opens a log section continuing from PCR values it cannot prove. */
export function sectionStartEvent(info: { reason: string; pcrs: Record<string, string>; previousLog?: string }): LogEvent {
  return { pcr: 0, type: EV_NO_ACTION, digest: Buffer.alloc(SHA256_SIZE), data: taggedEvent(TAG.sectionStart, Buffer.from(canonicalJson(info))) };
}

/** TCG_PCR_EVENT2 with one SHA-256 digest. */
export function encodeEvent(e: LogEvent): Buffer {
  if (e.digest.length !== SHA256_SIZE) throw new EventLogError('event digest must be 32 bytes (SHA-256)');
  const b = Buffer.alloc(4 + 4 + 4 + 2 + SHA256_SIZE + 4);
  let o = b.writeUInt32LE(e.pcr, 0);
  o = b.writeUInt32LE(e.type, o);
  o = b.writeUInt32LE(1, o);
  o = b.writeUInt16LE(ALG.SHA256, o);
  o += e.digest.copy(b, o);
  b.writeUInt32LE(e.data.length, o);
  return Buffer.concat([b, e.data]);
}

/** Parse a whole log; throws EventLogError on anything but a well-formed SHA-256 crypto-agile log. */
export function parseEventLog(log: Buffer): LogEvent[] {
  const header = specIdHeader();
  if (log.length < header.length || !log.subarray(0, header.length).equals(header)) {
    throw new EventLogError('the log does not start with the Spec ID Event03 header for a SHA-256-only log');
  }
  const events: LogEvent[] = [];
  let o = header.length;
  const need = (n: number): void => {
    if (o + n > log.length) throw new EventLogError(`event ${events.length + 1} is truncated at byte ${o}`);
  };
  while (o < log.length) {
    need(12);
    const pcr = log.readUInt32LE(o);
    const type = log.readUInt32LE(o + 4);
    const count = log.readUInt32LE(o + 8);
    o += 12;
    if (count !== 1) throw new EventLogError(`event ${events.length + 1} has ${count} digests; this log carries SHA-256 only`);
    need(2 + SHA256_SIZE + 4);
    if (log.readUInt16LE(o) !== ALG.SHA256) throw new EventLogError(`event ${events.length + 1} has a digest that is not SHA-256`);
    const digest = Buffer.from(log.subarray(o + 2, o + 2 + SHA256_SIZE));
    o += 2 + SHA256_SIZE;
    const size = log.readUInt32LE(o);
    o += 4;
    need(size);
    events.push({ pcr, type, digest, data: Buffer.from(log.subarray(o, o + size)) });
    o += size;
  }
  return events;
}

/** A new log: the header, then `events`. */
export function encodeEventLog(events: LogEvent[]): Buffer {
  return Buffer.concat([specIdHeader(), ...events.map(encodeEvent)]);
}

/** JSON with object keys sorted at every level: the canonical form of event data and configs. */
export function canonicalJson(v: unknown): string {
  const norm = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(norm);
    if (x && typeof x === 'object') {
      return Object.fromEntries(Object.keys(x).sort().filter((k) => (x as Record<string, unknown>)[k] !== undefined).map((k) => [k, norm((x as Record<string, unknown>)[k])]));
    }
    return x;
  };
  return JSON.stringify(norm(v));
}

/**
 * The PCR values the log's events produce (EV_NO_ACTION events are not extended), per PCR index, starting
 * from `start` (default: zero) — what `tpm2_checkquote -e` computes from digests alone.
 */
export function replayEventLog(events: LogEvent[], start: Map<number, Buffer> = new Map()): Map<number, Buffer> {
  const pcrs = new Map(start);
  for (const e of events) {
    if (e.type === EV_NO_ACTION) continue;
    const v = pcrs.get(e.pcr) ?? Buffer.alloc(SHA256_SIZE);
    pcrs.set(e.pcr, createHash('sha256').update(v).update(e.digest).digest());
  }
  return pcrs;
}

/**
 * The events whose data does not hash to their digest (EV_EVENT_TAG: SHA-256 of the event data) — what a
 * digest-only replay cannot see: the log's data edited while its digests were left alone.
 */
export function eventsWithWrongData(events: LogEvent[]): number[] {
  const bad: number[] = [];
  events.forEach((e, i) => {
    if (e.type === EV_EVENT_TAG && !createHash('sha256').update(e.data).digest().equals(e.digest)) bad.push(i);
  });
  return bad;
}
