/**
 * The shared argument validator (defence in depth at every capability entry), driven by the host's own
 * WIT: for every function of every interface the host serves, valid values built from its parameter types
 * pass, and one wrong value in any parameter is refused before the implementation runs.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BoundaryValueError, camel, functionCheckers, guardInterface } from './validate.mjs';
import { HOST_INTERFACES } from './generated/host-interfaces.js';
import type { FuncType, ValType } from './types.js';

const TYPED: Record<string, { from(a: ArrayLike<number | bigint>): unknown }> = {
  u8: Uint8Array, s8: Int8Array, u16: Uint16Array, s16: Int16Array, u32: Uint32Array, s32: Int32Array,
  u64: BigUint64Array as never, s64: BigInt64Array as never, f32: Float32Array, f64: Float64Array,
};
const INT: Record<string, [number, number]> = { s8: [-128, 127], u8: [0, 255], s16: [-32768, 32767], u16: [0, 65535], s32: [-(2 ** 31), 2 ** 31 - 1], u32: [0, 2 ** 32 - 1] };
const scalar = fc.oneof(fc.integer({ min: 0, max: 0xd7ff }), fc.integer({ min: 0xe000, max: 0x10ffff })).map((c) => String.fromCodePoint(c));

/** Valid JS values of WIT type `t`, as jco represents them. */
function valid(t: ValType): fc.Arbitrary<unknown> {
  switch (t.k) {
    case 'bool': return fc.boolean();
    case 's64': return fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
    case 'u64': return fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
    case 'f32': case 'f64': return fc.double();
    case 'char': return scalar;
    case 'string': return fc.array(scalar, { maxLength: 8 }).map((a) => a.join(''));
    case 'list': {
      const typed = TYPED[t.of.k];
      const items = fc.array(valid(t.of), { maxLength: 3, ...(t.len === undefined ? {} : { minLength: t.len, maxLength: t.len }) });
      return typed ? items.map((a) => typed.from(a as never)) : items;
    }
    case 'tuple': return fc.tuple(...t.of.map(valid));
    case 'record': return fc.record(Object.fromEntries(t.fields.map((f) => [camel(f.name), valid(f.type)])));
    case 'flags': return fc.record(Object.fromEntries(t.names.map((n) => [camel(n), fc.boolean()])));
    case 'enum': return fc.constantFrom(...t.names);
    case 'variant': return fc.oneof(...t.cases.map((c) => (c.type ? valid(c.type).map((val) => ({ tag: c.name, val })) : fc.constant({ tag: c.name }))));
    case 'option': return t.of.k === 'option' ? fc.option(valid(t.of).map((val) => ({ tag: 'some', val })), { nil: undefined }) : fc.option(valid(t.of), { nil: undefined });
    case 'result': return fc.oneof(
      (t.ok ? valid(t.ok) : fc.constant(undefined)).map((val) => ({ tag: 'ok', val })),
      (t.err ? valid(t.err) : fc.constant(undefined)).map((val) => ({ tag: 'err', val })),
    );
    case 'own': case 'borrow': return fc.constant({ resource: t.resource.origin });
    default: {
      const range = INT[t.k];
      if (range) return fc.integer({ min: range[0], max: range[1] });
      throw new Error(`no generator for ${t.k}`);
    }
  }
}

/** A value of the wrong JS kind (or out of range) for `t`. */
function wrong(t: ValType): unknown {
  switch (t.k) {
    case 'bool': return 1;
    case 's64': case 'u64': return 1;
    case 'f32': case 'f64': return 1n;
    case 'char': return 'ab';
    case 'string': return 'bad \ud800 surrogate';
    case 'list': case 'tuple': return 'not a list';
    case 'record': case 'flags': return null;
    case 'enum': return 'no-such-case';
    case 'variant': return { tag: 'no-such-case' };
    case 'option': return wrong(t.of);
    case 'result': return { tag: 'maybe' };
    case 'own': case 'borrow': return 7;
    default: return t.k.startsWith('u') ? -1 : 1.5;
  }
}

const functions: [string, string, FuncType][] = Object.entries(HOST_INTERFACES.imports).flatMap(([iface, t]) =>
  Object.entries(t.exports).filter((e): e is [string, FuncType] => e[1].k === 'func' && !e[0].startsWith('[')).map(([n, f]) => [iface, n, f] as [string, string, FuncType]));

describe('argument validator from the host WIT', () => {
  it('passes valid values and refuses one wrong value, for every plain function the host serves', () => {
    let runs = 0;
    for (const [iface, name, fn] of functions) {
      const check = functionCheckers(iface, { k: 'instance', exports: { [name]: fn } }).get(camel(name))!;
      fc.assert(fc.property(fc.tuple(...fn.params.map((p) => valid(p.type))), fc.nat(), (args, pick) => {
        runs++;
        check(args);
        if (args.length === 0) return;
        const i = pick % args.length;
        const bad = [...args];
        bad[i] = wrong(fn.params[i]!.type);
        expect(() => check(bad)).toThrow(BoundaryValueError);
        expect(() => check(args.slice(1))).toThrow(/expected \d+ argument/);
      }), { numRuns: 40 });
    }
    console.log(`[validator] ${functions.length} host functions, ${runs} generated calls`);
    expect(functions.length).toBeGreaterThan(20);
  });

  it('guards a worker capability: logging.log(true, …) never reaches the implementation', () => {
    let calls = 0;
    const fns = guardInterface('edgeward:module/logging', HOST_INTERFACES.imports['edgeward:module/logging']!, { log: (_level: unknown, _message: unknown) => { calls++; } });
    fns.log('info', 'fine');
    expect(() => fns.log(true, 'x')).toThrow('edgeward:module/logging.log: parameter "level": expected enum level, got boolean true');
    expect(() => fns.log('info', 'lone \ud800')).toThrow(/parameter "message": expected string/);
    expect(calls).toBe(1);
  });

  it('guards resource methods in place and constructors through a Proxy that keeps instanceof', () => {
    const types = HOST_INTERFACES.imports['wasi:http/types']!;
    let reads = 0;
    class Fields { get(name: string) { reads++; return [name]; } }
    class OutgoingRequest { constructor(readonly headers: Fields) {} }
    const fns = guardInterface('wasi:http/types', types, { Fields, OutgoingRequest });
    const f = new fns.Fields();
    expect(f.get('x')).toEqual(['x']);
    expect(() => f.get(42 as never)).toThrow(/\[method\]fields.get: parameter "name": expected string/);
    const req = new fns.OutgoingRequest(f);
    expect(req).toBeInstanceOf(fns.OutgoingRequest);
    expect(req).toBeInstanceOf(OutgoingRequest);
    expect(() => new fns.OutgoingRequest(undefined as never)).toThrow(/\[constructor\]outgoing-request: parameter "headers": expected own<fields>/);
    expect(reads).toBe(1);
  });
});
