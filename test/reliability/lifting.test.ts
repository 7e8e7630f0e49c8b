/**
 * W3 (malformed lowered values trap) and W2 (forged, dropped, foreign handles): real WAT components in
 * real workers hand the host values the Canonical ABI traps on. Each must end as a `trap` of that
 * instance only, with the reason in its module log, before the host function runs; another module keeps
 * answering. A fast-check property drives random valid and malformed encodings through one guest.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMalformedGuest, LIFTER_DATA, MALFORMED_CASES, SINK, SINK_WIT, UTF16_CASES, type MalformedGuest } from '../../guests/adversarial/malformed.js';
import type { Capability } from '../../host/runtime/capabilities.js';
import type { ComponentRuntime } from '../../host/runtime/runtime.js';
import { report } from '../helpers/reliability.js';
import { Fixture, moduleLogLines as logLines, rejection, spec } from '../helpers/runtime.js';
import { interfacesOfPackage } from '../../host/boundary/reference.js';

/** Runs of every case (each trap restarts the instance: ~0.3 s here). */
/** Three instances of the property's guest, so one restarts after a trap while the others answer. */
const LIFTERS = ['lifter0', 'lifter1', 'lifter2'];
const RUNS = Number(process.env.EDGEWARD_LIFTING_RUNS ?? 5);
/** The property's runs and its time bound (fast-check stops early, the figure says how many ran). */
const PROPERTY_RUNS = Number(process.env.EDGEWARD_LIFTING_PROPERTY_RUNS ?? 200);
const PROPERTY_MS = 30_000;

/** What the module log / trap message must name for each malformed case. */
const REASON: Record<string, RegExp> = {
  a: /string is not valid UTF-8/, c: /string is not valid UTF-8/, d: /string is not valid UTF-8/,
  e: /string is not valid UTF-8/, f: /string is not valid UTF-8/, t: /string is not valid UTF-8/,
  v: /string is not valid UTF-8/,
  b: /invalid discriminant specified for Level/,
  g: /RangeError: .*outside the bounds of the buffer|RangeError: Invalid typed array length/,
  h: /RangeError: Start offset -16 is outside the bounds of the buffer/,
  i: /out of bounds of linear memory/, j: /out of bounds of linear memory/, k: /out of bounds of linear memory/,
  u: /out of bounds of linear memory/, w: /out of bounds of linear memory/, x: /out of bounds of linear memory/,
  l: /not aligned to 4/,
  m: /not a Unicode scalar value/, n: /not a Unicode scalar value/, o: /not a Unicode scalar value/,
  p: /invalid discriminant specified for Color/,
  q: /invalid variant discriminant for Shape/,
  r: /invalid variant discriminant for option/,
  s: /invalid variant discriminant for expected/,
};

/** The sink's WIT types: the runtime type-checks the guests' imports against them. */
const SINK_TYPES = await interfacesOfPackage(SINK_WIT);

/** The host side of edgeward:test/sink: records every call it gets. */
function sink(calls: Array<[string, unknown[]]>): Capability {
  const rec = (name: string) => (...args: unknown[]) => { calls.push([name, args]); return calls.length; };
  return {
    name: SINK,
    interfaces: [SINK],
    types: SINK_TYPES,
    prepare: () => ({ [SINK]: { take: rec('take'), takeChar: rec('takeChar'), takeEnum: rec('takeEnum'), takeRec: rec('takeRec'), takeList: rec('takeList'), takeStrs: rec('takeStrs') } }),
  };
}

async function guestFile(fx: Fixture, name: MalformedGuest, encoding?: 'utf16'): Promise<string> {
  const file = path.join(fx.dir, `${name}.wasm`);
  writeFileSync(file, await buildMalformedGuest(name, encoding));
  return file;
}

const status = async (rt: ComponentRuntime, name: string) => (await rt.get(name)).status.runtimeStatus.status;

/** Invoke a case that must trap; answers the trap message. Starts the module again first if it is down. */
async function trapOf(rt: ComponentRuntime, name: string, method: string, payload: unknown = null): Promise<string> {
  if ((await status(rt, name)) !== 'running') await rt.start(name);
  const err = await rejection(rt.invoke(name, method, payload));
  expect(err.code).toBe('failed');
  expect(err.message).toMatch(new RegExp(`^module "${name}" trapped: `));
  expect(await status(rt, name)).toBe('failed');
  return err.message;
}

describe('W3: malformed lowered values trap', () => {
  let fx: Fixture;
  let rt: ComponentRuntime;
  const calls: Array<[string, unknown[]]> = [];

  beforeAll(async () => {
    fx = new Fixture();
    rt = await fx.runtime({ capabilities: [sink(calls)] });
    await rt.create(spec('malformed', await guestFile(fx, 'malformed'), { capabilities: [SINK] }));
    const lifter = await guestFile(fx, 'lifter');
    for (const name of LIFTERS) await rt.create(spec(name, lifter, { capabilities: [SINK] }));
    await rt.create(spec('echo', await fx.guest('echo')));
  });
  afterAll(async () => { await fx.cleanup(); });

  it('the valid controls reach the host with the values lowered', async () => {
    calls.length = 0;
    expect(await rt.invoke('malformed', 'V', null)).toEqual({ status: 200, payload: 1 });
    expect(await rt.invoke('malformed', 'W', null)).toEqual({ status: 200, payload: 2 });
    expect(await rt.invoke('malformed', 'X', null)).toEqual({ status: 200, payload: 3 });
    expect(await rt.invoke('malformed', 'Y', null)).toEqual({ status: 200, payload: 4 });
    expect(calls).toEqual([
      ['take', ['started', new Uint8Array(Buffer.from('started'))]],
      ['takeRec', [{ x: 1, y: 2 }, { tag: 'circle', val: 5 }, 'started', { tag: 'ok', val: 9 }]],
      ['takeStrs', [['started']]],
      ['takeChar', ['😀']],
    ]);
  });

  it(`each of ${Object.keys(MALFORMED_CASES).length} malformed cases traps that instance only, the host never called (${RUNS} runs)`, async () => {
    const cases = Object.keys(MALFORMED_CASES);
    calls.length = 0;
    let traps = 0;
    let echoed = 0;
    for (let run = 0; run < RUNS; run++) {
      for (const c of cases) {
        const message = await trapOf(rt, 'malformed', c);
        expect(message, `${c}: ${MALFORMED_CASES[c]!.what}`).toMatch(REASON[c]!);
        traps++;
        expect(calls, `${c}: ${MALFORMED_CASES[c]!.what} reached the host`).toEqual([]);
        expect(await rt.invoke('echo', 'x', { run, c })).toEqual({ status: 200, payload: { run, c } });
        echoed++;
      }
    }
    // The reason is in the module's own log, once per trap.
    const crashed = (await logLines(rt, 'malformed')).filter((l) => l.includes('[edgeward] crashed: '));
    expect(crashed.length).toBeGreaterThanOrEqual(traps);
    for (const c of cases) expect(crashed.some((l) => REASON[c]!.test(l)), c).toBe(true);
    // Logging never wrote the invalid line.
    expect((await logLines(rt, 'malformed')).some((l) => l.includes('\ufffd'))).toBe(false);
    expect(process.exitCode ?? 0).toBe(0);
    report('W3', `${cases.length} malformed cases × ${RUNS} runs: ${traps} traps, ${calls.length} host calls with a malformed value, echo answered ${echoed}/${traps}`);
  }, 600_000);

  it("an export's own result that is not valid UTF-8 traps (lifted from the guest's answer)", async () => {
    expect(await trapOf(rt, 'malformed', 'U')).toMatch(/string is not valid UTF-8/);
    expect(await rt.invoke('echo', 'x', 1)).toEqual({ status: 200, payload: 1 });
  });

  it('UTF-16 strings: a lone surrogate, an odd address or a range past memory traps; latin1+utf16 is refused at deploy', async () => {
    await rt.create(spec('utf16', await guestFile(fx, 'utf16', 'utf16'), { capabilities: [SINK] }));
    calls.length = 0;
    expect(await rt.invoke('utf16', 'V', null)).toEqual({ status: 200, payload: 1 });
    expect(calls).toEqual([['take', ['hi', new Uint8Array([104, 0, 105, 0])]]]);
    const reasons: Record<string, RegExp> = {
      a: /string is not valid UTF-16/,
      b: /RangeError: start offset of Uint16Array should be a multiple of 2/,
      c: /RangeError: Invalid typed array length: 2/,
    };
    for (const [c, what] of Object.entries(UTF16_CASES)) {
      calls.length = 0;
      expect(await trapOf(rt, 'utf16', c), what).toMatch(reasons[c]!);
      expect(calls, what).toEqual([]);
    }
    const compact = path.join(fx.dir, 'compact.wasm');
    writeFileSync(compact, await buildMalformedGuest('utf16', 'compact-utf16'));
    // jco panics on it in the transpiler process; a component queued behind it, and the next one, still transpile.
    const [refused] = await Promise.all([
      rejection(rt.create(spec('compact', compact, { capabilities: [SINK] }))),
      rt.create(spec('queued', await fx.guest('chatty'))),
    ]);
    expect(refused.code).toBe('invalid');
    expect(await rt.invoke('queued', 'x', null)).toEqual({ status: 200, payload: null });
    await rt.create(spec('after', await fx.guest('crash')));
    expect(await rt.invoke('echo', 'x', 16)).toEqual({ status: 200, payload: 16 });
    report('W3', `UTF-16 guest: ${Object.keys(UTF16_CASES).length} malformed strings trapped, 0 host calls; a latin1+utf16 component refused at deploy (${refused.code})`);
  });

  it('property: random valid encodings reach the host unchanged, random malformed ones trap and never reach it', async () => {
    const t0 = Date.now();
    let valid = 0;
    let malformed = 0;
    // Instances in turn: one that trapped restarts while the next ones answer.
    const ready = new Map(LIFTERS.map((n) => [n, Promise.resolve()]));
    let turn = 0;
    await fc.assert(fc.asyncProperty(lowered(), async (l) => {
      const name = LIFTERS[turn++ % LIFTERS.length]!;
      await ready.get(name);
      calls.length = 0;
      if (l.expect === 'trap') {
        const err = await rejection(rt.invoke(name, l.method, l.hex));
        expect(err.message).toMatch(new RegExp(`^module "${name}" trapped: `));
        ready.set(name, rt.start(name));
        expect(calls).toEqual([]);
        malformed++;
      } else {
        expect(await rt.invoke(name, l.method, l.hex)).toEqual({ status: 200, payload: 1 });
        expect(calls).toEqual([[l.fn, l.expect]]);
        valid++;
      }
    }), { numRuns: PROPERTY_RUNS, interruptAfterTimeLimit: PROPERTY_MS, markInterruptAsFailure: false });
    await Promise.all(ready.values());
    expect(await rt.invoke('echo', 'x', 'alive')).toEqual({ status: 200, payload: 'alive' });
    expect(valid).toBeGreaterThan(0);
    expect(malformed).toBeGreaterThan(0);
    report('W3', `property: ${valid} random valid encodings round-tripped, ${malformed} random malformed ones trapped with 0 host calls, in ${((Date.now() - t0) / 1000).toFixed(1)} s; echo alive`);
  }, PROPERTY_MS + 60_000);
});

// ---- the property's generator ---------------------------------------------------------------------

const MEM = 65536;
const D = LIFTER_DATA;
/** Data copied from the payload starts after the 11 argument slots. */
const DATA = D + 64;
const utf8 = new TextEncoder();
const fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const isUtf8 = (b: Uint8Array) => { try { fatal.decode(b); return true; } catch { return false; } };

interface Lowered { method: string; hex: string; fn: string; expect: unknown[] | 'trap' }

function payload(args: number[], data: Uint8Array): string {
  const bytes = new Uint8Array(64 + data.length);
  const dv = new DataView(bytes.buffer);
  args.forEach((a, i) => dv.setUint32(i * 4, a >>> 0, true));
  bytes.set(data, 64);
  return Buffer.from(bytes).toString('hex');
}

const text = fc.string({ unit: 'binary', maxLength: 24 }).map((s) => fatal.decode(utf8.encode(s)));
const bytes = fc.uint8Array({ maxLength: 48 });
/** Byte sequences that are never valid UTF-8 wherever they sit (the oracle below checks the whole string). */
const badUtf8 = fc.constantFrom([0xff], [0xfe], [0xc0, 0x80], [0xc1, 0xbf], [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf], [0xf4, 0x90, 0x80, 0x80], [0x80], [0xe2, 0x82], [0xf0, 0x9f, 0x98], [0xf8, 0x88, 0x80, 0x80, 0x80]);
/** [ptr, len] whose range is not inside memory (as unsigned 32-bit values). */
const outOfBounds = fc.oneof(
  fc.tuple(fc.integer({ min: 0, max: MEM }), fc.integer({ min: 1, max: 4096 })).filter(([p, l]) => p + l > MEM),
  fc.tuple(fc.integer({ min: MEM + 1, max: 0xffffffff }), fc.integer({ min: 0, max: 64 })),
  fc.tuple(fc.integer({ min: 0, max: MEM }), fc.integer({ min: 0x80000000, max: 0xffffffff })),
);

function lowered(): fc.Arbitrary<Lowered> {
  const take = fc.tuple(text, bytes).map(([s, b]): Lowered => {
    const sb = utf8.encode(s);
    const data = new Uint8Array([...sb, ...b]);
    return { method: 't', hex: payload([DATA, sb.length, DATA + sb.length, b.length], data), fn: 'take', expect: [s, b] };
  });
  const takeBadString = fc.tuple(text, badUtf8, fc.nat(), bytes).map(([s, bad, at, b]): Lowered => {
    const sb = [...utf8.encode(s)];
    sb.splice(at % (sb.length + 1), 0, ...bad);
    const data = new Uint8Array([...sb, ...b]);
    return { method: 't', hex: payload([DATA, sb.length, DATA + sb.length, b.length], data), fn: 'take', expect: isUtf8(new Uint8Array(sb)) ? [fatal.decode(new Uint8Array(sb)), b] : 'trap' };
  });
  const takeOobString = fc.tuple(outOfBounds, bytes).map(([[p, l], b]): Lowered =>
    ({ method: 't', hex: payload([p, l, DATA, b.length], b), fn: 'take', expect: 'trap' }));
  const takeOobList = fc.tuple(text, outOfBounds).map(([s, [p, l]]): Lowered => {
    const sb = utf8.encode(s);
    return { method: 't', hex: payload([DATA, sb.length, p, l], sb), fn: 'take', expect: 'trap' };
  });
  const validChar = fc.oneof(fc.integer({ min: 0, max: 0xd7ff }), fc.integer({ min: 0xe000, max: 0x10ffff }));
  const char = validChar.map((c): Lowered => ({ method: 'c', hex: payload([c], new Uint8Array()), fn: 'takeChar', expect: [String.fromCodePoint(c)] }));
  const badChar = fc.oneof(fc.integer({ min: 0xd800, max: 0xdfff }), fc.integer({ min: 0x110000, max: 0xffffffff }))
    .map((c): Lowered => ({ method: 'c', hex: payload([c], new Uint8Array()), fn: 'takeChar', expect: 'trap' }));
  const colors = ['red', 'green', 'blue'];
  const anEnum = fc.integer({ min: 0, max: 2 }).map((c): Lowered => ({ method: 'e', hex: payload([c], new Uint8Array()), fn: 'takeEnum', expect: [colors[c]] }));
  const badEnum = fc.integer({ min: 3, max: 0xffffffff }).map((c): Lowered => ({ method: 'e', hex: payload([c], new Uint8Array()), fn: 'takeEnum', expect: 'trap' }));
  // take-rec(point, shape, option<string>, result<u32, string>): 11 flat values.
  const record = fc.tuple(fc.nat({ max: 0xffffffff }), fc.integer({ min: -0x80000000, max: 0x7fffffff }), fc.nat(2), fc.nat({ max: 0xffffffff }), text, fc.boolean(), text, fc.boolean(), fc.nat({ max: 0xffffffff }), text)
    .map(([x, y, shape, n, label, some, opt, ok, u, msg]): Lowered => {
      const lb = utf8.encode(label);
      const ob = utf8.encode(opt);
      const mb = utf8.encode(msg);
      const data = new Uint8Array([...lb, ...ob, ...mb]);
      const [lp, op, mp] = [DATA, DATA + lb.length, DATA + lb.length + ob.length];
      const shapeArgs = shape === 0 ? [0, 0, 0] : shape === 1 ? [1, n, 0] : [2, lp, lb.length];
      const shapeVal = shape === 0 ? { tag: 'none' } : shape === 1 ? { tag: 'circle', val: n } : { tag: 'label', val: label };
      const args = [x, y, ...shapeArgs, some ? 1 : 0, some ? op : 0, some ? ob.length : 0, ok ? 0 : 1, ok ? u : mp, ok ? 0 : mb.length];
      return { method: 'r', hex: payload(args, data), fn: 'takeRec', expect: [{ x, y }, shapeVal, some ? opt : undefined, ok ? { tag: 'ok', val: u } : { tag: 'err', val: msg }] };
    });
  const badRecord = fc.tuple(fc.nat(2), fc.nat({ max: 0xffffffff })).map(([which, d]): Lowered => {
    const args = [1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    const slot = [2, 5, 8][which]!;
    args[slot] = Math.max(d, [3, 2, 2][which]!);
    return { method: 'r', hex: payload(args, new Uint8Array()), fn: 'takeRec', expect: 'trap' };
  });
  // list<string>: a table of (ptr, len) at DATA, the strings after it.
  const strings = fc.array(text, { maxLength: 6 }).map((ss): Lowered => {
    const enc = ss.map((s) => utf8.encode(s));
    const table = new DataView(new ArrayBuffer(8 * ss.length));
    let at = DATA + 8 * ss.length;
    enc.forEach((b, i) => { table.setUint32(8 * i, at, true); table.setUint32(8 * i + 4, b.length, true); at += b.length; });
    const data = new Uint8Array([...new Uint8Array(table.buffer), ...enc.flatMap((b) => [...b])]);
    return { method: 'l', hex: payload([DATA, ss.length], data), fn: 'takeStrs', expect: [ss] };
  });
  const badStrings = fc.oneof(
    outOfBounds.filter(([p]) => p % 4 === 0).map(([p, l]): Lowered => ({ method: 'l', hex: payload([p, l], new Uint8Array()), fn: 'takeStrs', expect: 'trap' })),
    fc.tuple(badUtf8, outOfBounds).chain(([bad, oob]) => fc.oneof(
      // one element's bytes are not UTF-8
      fc.constant({ method: 'l', hex: payload([DATA, 1], new Uint8Array([...u32(DATA + 8), ...u32(bad.length), ...bad])), fn: 'takeStrs', expect: 'trap' } as Lowered),
      // one element's range is outside memory
      fc.constant({ method: 'l', hex: payload([DATA, 1], new Uint8Array([...u32(oob[0]), ...u32(oob[1])])), fn: 'takeStrs', expect: 'trap' } as Lowered),
    )),
  );
  return fc.oneof(take, takeBadString, takeOobString, takeOobList, char, badChar, anEnum, badEnum, record, badRecord, strings, badStrings);
}

function u32(n: number): number[] {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0, true);
  return [...b];
}


describe('W2: forged, dropped, foreign handles', () => {
  const GRANT = 'wasi:filesystem/data';
  let fx: Fixture;
  let rt: ComponentRuntime;
  const dataDir = (name: string) => path.join(fx.dir, 'state', 'modules', name, 'data');

  beforeAll(async () => {
    fx = new Fixture();
    rt = await fx.runtime();
    const file = await guestFile(fx, 'handles');
    for (const name of ['a', 'b']) await rt.create(spec(name, file, { capabilities: [GRANT] }));
    await rt.create(spec('echo', await fx.guest('echo')));
  });
  afterAll(async () => { await fx.cleanup(); });

  /** Handle cases: [method, payload (a handle index), what, reason]. Handle 1 is the preopen. */
  const CASES: Array<[string, number, string, RegExp]> = [
    ['r', 7, 'a handle never created (read)', /unknown handle 7/],
    ['w', 7, 'a handle never created (write)', /unknown handle 7/],
    ['r', 0, 'handle 0', /unknown handle 0/],
    ['r', 2147483647, 'handle 2^31-1', /unknown handle 2147483647/],
    ['r', 4294967295, 'handle 2^32-1', /unknown handle 4294967295/],
    ['d', 1000000, 'drop of a handle far out of range', /unknown handle 1000000/],
    ['d', 2, 'drop of a handle never created', /unknown handle 2/],
    ['f', 0, 'read through a dropped handle', /handle 2 was dropped or never created/],
    ['D', 0, 'a handle dropped twice', /handle 2 was dropped or never created/],
    ['W', 0, 'write through a dropped handle', /handle 2 was dropped or never created/],
  ];

  it('every forged, dropped or out-of-range handle traps that instance only; nothing is written', async () => {
    let traps = 0;
    for (let run = 0; run < RUNS; run++) {
      for (const [method, h, what, reason] of CASES) {
        expect(await trapOf(rt, 'a', method, h), what).toMatch(reason);
        traps++;
        expect(await rt.invoke('echo', 'x', { run, method })).toEqual({ status: 200, payload: { run, method } });
      }
    }
    // `W` created victim.txt empty and its write through the dropped handle never ran.
    expect(readFileSync(path.join(dataDir('a'), 'victim.txt'), 'utf8')).toBe('');
    const crashed = (await logLines(rt, 'a')).filter((l) => l.includes('[edgeward] crashed: '));
    for (const [, , what, reason] of CASES) expect(crashed.some((l) => reason.test(l)), what).toBe(true);
    report('W2', `${CASES.length} forged/dropped/out-of-range handle cases × ${RUNS} runs: ${traps} traps, 0 writes through a dead handle`);
  }, 600_000);

  it("a handle index of another instance names nothing, or the caller's own resource: cross-instance successes = 0", async () => {
    for (const name of ['a', 'b']) if ((await status(rt, name)) !== 'running') await rt.start(name);
    // a opens f.txt ("mine") and keeps the handle.
    const { payload: handle } = await rt.invoke('a', 'o', null);
    expect(handle).toBe(2);
    expect(await rt.invoke('a', 'r', handle)).toEqual({ status: 200, payload: 'mine' });
    let successes = 0;
    // b has no handle 2: the index traps.
    const message = await trapOf(rt, 'b', 'r', handle);
    expect(message).toMatch(/unknown handle 2/);
    // b with its own handle 2 reads its own file, never a's: write a different text into b's file first.
    await rt.start('b');
    writeFileSync(path.join(dataDir('b'), 'f.txt'), 'other');
    const mine = await rt.invoke('b', 'o', null);
    expect(mine.payload).toBe(2);
    const read = await rt.invoke('b', 'r', handle);
    expect(read).toEqual({ status: 200, payload: 'mine' }); // b's own f.txt, which `o` rewrote to "mine"
    expect(readFileSync(path.join(dataDir('b'), 'f.txt'), 'utf8')).toBe('mine');
    // a's file was never touched by b: overwrite a's with a marker and check b cannot see it.
    writeFileSync(path.join(dataDir('a'), 'f.txt'), 'only-a');
    for (let i = 0; i < 20; i++) {
      const r = await rt.invoke('b', 'r', handle);
      if (JSON.stringify(r).includes('only-a')) successes++;
    }
    expect(successes).toBe(0);
    expect(await rt.invoke('a', 'r', handle)).toEqual({ status: 200, payload: 'only-a' });
    report('W2', `cross-instance successes = ${successes} (a's handle 2 in b: trap when b has none, b's own file when it has one)`);
  });
});
