/**
 * The TCG crypto-agile event log (hsm/tpm/eventlog.ts) and the measurement log that keeps it in step with
 * swtpm's PCRs (host/measure/log.ts): tpm2_eventlog is the format oracle (it parses the log and replays it
 * to the same PCR values); the log continues across a daemon restart, restarts after a TPM reset, and opens
 * an honest new section when the PCRs were extended behind its back. quote.pcrs is byte-identical to what
 * tpm2_quote writes.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tpm2, type Swtpm } from '../hsm/tpm/testing/swtpm.js';
import { startTpm, stopTpm } from '../hsm/tpm/testing/fixture.js';
import type { Tpm } from '../hsm/tpm/tpm.js';
import { ALG } from '../hsm/tpm/constants.js';
import {
  EventLogError, TAG, encodeEventLog, eventsWithWrongData, parseEventLog, replayEventLog, tagEvent,
} from '../hsm/tpm/eventlog.js';
import { MeasurementLog, sectionStartOf } from '../host/measure/log.js';
import { encodeToolsPcrs, parseToolsPcrs } from '../host/measure/quote-files.js';

const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest();
const sample = () => [
  tagEvent(12, TAG.daemonCode, Buffer.from('{"digest":"sha256:00","version":"1.0.0"}')),
  tagEvent(12, TAG.daemonConfig, Buffer.from('{"digest":"sha256:11"}')),
  tagEvent(13, TAG.moduleStart, Buffer.from('{"module":"echo"}')),
];

describe('TCG crypto-agile event log', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ew-evlog-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is parsed by tpm2_eventlog, which replays it to the values Edgeward computes', async () => {
    const events = sample();
    const file = path.join(dir, 'eventlog.bin');
    writeFileSync(file, encodeEventLog(events));
    const out = (await tpm2(undefined, 'tpm2_eventlog', [file])).toString();
    expect(out).toContain('Signature: Spec ID Event03');
    expect(out.match(/EventType: EV_EVENT_TAG/g)).toHaveLength(3);
    const ours = replayEventLog(events);
    for (const pcr of [12, 13]) expect(out.toLowerCase()).toMatch(new RegExp(`${pcr}\\s*: 0x${ours.get(pcr)!.toString('hex')}`));
    // Round trip, and each event's digest is SHA-256 of its (tagged-event) data.
    const parsed = parseEventLog(readFileSync(file));
    expect(parsed).toEqual(events);
    expect(eventsWithWrongData(parsed)).toEqual([]);
  });

  it('refuses a truncated log or one without the Spec ID header; finds an event whose data was edited', () => {
    const bytes = encodeEventLog(sample());
    expect(() => parseEventLog(bytes.subarray(0, bytes.length - 3))).toThrow(EventLogError);
    expect(() => parseEventLog(bytes.subarray(10))).toThrow(/Spec ID Event03/);
    const edited = Buffer.from(bytes);
    const at = edited.lastIndexOf(Buffer.from('echo'));
    edited.write('ECHO', at);
    const events = parseEventLog(edited);
    expect(eventsWithWrongData(events)).toEqual([2]);
    // A digest-only replay does not notice.
    expect(replayEventLog(events)).toEqual(replayEventLog(sample()));
  });
});

describe('measurement log on swtpm', () => {
  let sim: Swtpm;
  let tpm: Tpm;
  let dir: string;
  beforeEach(async () => {
    ({ sim, tpm } = await startTpm({ identity: false }));
    dir = mkdtempSync(path.join(os.tmpdir(), 'ew-mlog-'));
  });
  afterEach(async () => {
    await stopTpm({ sim, tpm });
    rmSync(dir, { recursive: true, force: true });
  });

  const pcrValue = async (pcr: number) => (await tpm.pcrRead([{ hashAlg: ALG.SHA256, pcrs: [pcr] }])).digests[0]!;

  it('starts new at zero PCRs, continues after a restart, restarts after a TPM reset', async () => {
    const log = await MeasurementLog.open(dir, tpm, [12, 13]);
    expect(log.opening.kind).toBe('new');
    for (const e of sample()) await log.append(e);
    const onDisk = parseEventLog(readFileSync(log.file));
    expect(replayEventLog(onDisk).get(13)).toEqual(await pcrValue(13));
    // Same boot, daemon restarted: the log replays to the PCRs, so it continues.
    const again = await MeasurementLog.open(dir, tpm, [12, 13]);
    expect(again.opening.kind).toBe('continued');
    await again.append(tagEvent(13, TAG.moduleStart, Buffer.from('{"module":"second"}')));
    expect(replayEventLog(parseEventLog(readFileSync(log.file))).get(13)).toEqual(await pcrValue(13));
    // Reboot (TPM reset): PCRs are zero, a new log; the earlier boot's is kept.
    await tpm.close();
    await sim.restart();
    const afterReset = await MeasurementLog.open(dir, tpm, [12, 13]);
    expect(afterReset.opening.kind).toBe('new');
    expect(afterReset.list()).toEqual([]);
    expect(readdirSync(dir)).toContain('eventlog.previous.bin');
  });

  it('opens a new section, keeping the old log, when the PCRs were extended behind its back', async () => {
    const log = await MeasurementLog.open(dir, tpm, [12, 13]);
    for (const e of sample()) await log.append(e);
    const old = readFileSync(log.file);
    await tpm.pcrExtend(13, [{ hashAlg: ALG.SHA256, digest: sha256('someone else') }]);
    const next = await MeasurementLog.open(dir, tpm, [12, 13]);
    expect(next.opening).toMatchObject({ kind: 'section', reason: 'the log does not replay to the value of PCR 13' });
    expect(readFileSync(next.opening.kept!)).toEqual(old);
    const start = sectionStartOf(next.list())!;
    expect(start.previousLog).toBe(`sha256:${createHash('sha256').update(old).digest('hex')}`);
    expect(start.pcrs['13']).toBe((await pcrValue(13)).toString('hex'));
    // The section's log is still a valid TCG log (tpm2_eventlog parses it).
    await next.append(tagEvent(13, TAG.moduleStart, Buffer.from('{"module":"after"}')));
    const out = (await tpm2(undefined, 'tpm2_eventlog', [next.file])).toString();
    expect(out).toContain('EV_NO_ACTION');
  });

  it('writes quote.pcrs byte for byte as tpm2_quote does', async () => {
    await tpm.pcrExtend(13, [{ hashAlg: ALG.SHA256, digest: sha256('x') }]);
    await tpm.close();
    const opts = { cwd: dir };
    await tpm2(sim, 'tpm2_createprimary', ['-C', 'e', '-G', 'ecc256:ecdsa-sha256:null', '-c', 'ak.ctx', '-a', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign'], opts);
    await tpm2(sim, 'tpm2_quote', ['-c', 'ak.ctx', '-l', 'sha256:12,13', '-q', '0102', '-m', 'q.msg', '-s', 'q.sig', '-o', 'q.pcrs', '-g', 'sha256'], opts);
    await tpm2(sim, 'tpm2_flushcontext', ['-t'], opts);
    const tools = readFileSync(path.join(dir, 'q.pcrs'));
    const values = [await pcrValue(12), await pcrValue(13)];
    const selection = [{ hashAlg: ALG.SHA256, pcrs: [12, 13] }];
    expect(encodeToolsPcrs(selection, values).equals(tools)).toBe(true);
    expect(parseToolsPcrs(tools)).toEqual({ selection, values });
  });
});
