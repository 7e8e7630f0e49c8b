/**
 * hardenGlue on real jco output (the `fs` WAT guest: strings, list<u8>, flags, enums, variants, handles)
 * and its fail-closed check: glue of a shape the rewrite does not know is refused, never run unchecked.
 */
import { transpile } from '@bytecodealliance/jco';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildTestGuest } from '../../guests/adversarial/components.js';
import { buildMalformedGuest } from '../../guests/adversarial/malformed.js';
import { GlueShapeError, hardenGlue } from './harden-glue.js';

const wasm = (globalThis as unknown as { WebAssembly: { compile(bytes: Uint8Array): Promise<unknown> } }).WebAssembly;
const OPTIONS = { name: 'component', instantiation: 'async', base64Cutoff: 0, noTypescript: true, quiet: true } as const;

async function glueOf(bytes: Uint8Array): Promise<string> {
  const out = await transpile(bytes, OPTIONS as Parameters<typeof transpile>[1]);
  return Buffer.from(out.files['component.js'] as Uint8Array).toString('utf8');
}

let fs: string;
let sink: string;
beforeAll(async () => {
  fs = await glueOf(await buildTestGuest('fs'));
  sink = await glueOf(await buildMalformedGuest('malformed'));
}, 60_000);

/** `glue` with `extra` inserted at the start of `instantiate`. */
const inject = (glue: string, extra: string) => glue.replace(/^(export function instantiate\(.*\{)$/m, `$1\n  ${extra}`);

describe('hardenGlue', () => {
  it('routes every lax lift of real glue through a checked helper', () => {
    for (const glue of [fs, sink]) {
      const out = hardenGlue(glue);
      expect(out.startsWith('"use components";\n/* edgeward: checked lifting */')).toBe(true);
      expect(out).not.toMatch(/TEXT_DECODER_UTF8\.decode\(|utf16Decoder\.decode\(|\.buffer\.slice\(/);
      expect(out).not.toMatch(/new TextDecoder\(\)|new TextDecoder\('utf-16'\)/);
      expect(hardenGlue(glue)).toBe(out); // pure
      // jco's debug log reads process.env on every call; a worker's env is empty, so it is a no-op.
      expect(glue).toContain('JCO_DEBUG');
      expect(out).not.toContain('JCO_DEBUG');
      expect(out).toContain('const _debugLog = () => {};');
      // jco's JSPI probe throws where V8 has no JSPI; it goes through one helper, whose throw V8 need not
      // build by parsing jco's whole instantiate again.
      expect(glue).toContain('WebAssembly.promising(');
      expect(out.split('WebAssembly.promising(').length - 1).toBe(1); // the helper's own call
      expect(out).toContain('__ew_promising(');
    }
    expect(hardenGlue(fs)).toContain('function rscTableRemove(table, handle) { return __ew_remove(table, handle, __ew_jcoRemove); }');
    expect(hardenGlue(fs)).toContain('function rscTableCreateOwn(table, rep) { table._createdReps.add(rep); return __ew_create(table, rep); }');
    expect(hardenGlue(fs)).toMatch(/__ew_rep\(handleTable0, handle1, captureTable0\)/);
    expect(hardenGlue(sink)).toContain('function validateGuestChar(i) {\n    __ew_char(i);');
    expect(hardenGlue(fs)).toMatch(/__ew_slice\(memory0\.buffer, ptr3, ptr3 \+ len3 \* 1\)/);
    expect(hardenGlue(sink)).toMatch(/__ew_list\(memory0, base\d+, len\d+, 8\); for \(let i = 0;/);
  });

  it('refuses glue that is not jco-transpile 0.15 async glue', () => {
    expect(() => hardenGlue('export function instantiate() {}')).toThrow(GlueShapeError);
    expect(() => hardenGlue(fs.replace('"use components";\n', ''))).toThrow(/not the async-instantiation glue/);
  });

  it('refuses glue it has already rewritten', () => {
    expect(() => hardenGlue(hardenGlue(fs))).toThrow(/already rewritten/);
  });

  // Each of these is a lax shape the rewrite does not know: the glue must be refused, not run.
  const unknown: Array<[string, string, RegExp]> = [
    ['a non-fatal decoder of another encoding', "const d = new TextDecoder('latin1');", /TextDecoder that is not fatal/],
    ['a decode through another decoder', 'const s = someDecoder.decode(new Uint8Array(4));', /string decode not routed/],
    ['a clamping copy of another receiver', "const b = mem['buffer'].slice(0, 4);", /copy that clamps/],
    ['a clamping view of memory', 'const b = new Uint8Array(memory0.buffer).subarray(ptr, ptr + len);', /copy that clamps/],
    ['a clamping copy through the prototype', 'const b = ArrayBuffer.prototype.slice.call(m, 0, 4);', /list copy that clamps/],
    ['a handle read of another shape', 'const r = handleTable0[h * 2 + 1] & ~T_FLAG;', /handle read without a liveness check/],
    ['an own-handle removal of another shape', 'rscTableRemove(tables[0], h);', /own-handle lift without an own check/],
    ['a list loop with no memory read the rewrite can find', 'for (let i = 0; i < len99; i++) {\n      const base = base99 + i * 8;\n      out.push(base);\n    }', /list loop without a range check/],
    ['a lifting switch without a throwing default', 'switch (arg0) {\n      case 0: { v = 1; break; }\n    }', /switch without a throwing default/],
    ['the async lifting path switched on', '_trampoline0.manuallyAsync = true;', /async lifting path/],
  ];
  for (const [what, extra, reason] of unknown) {
    it(`refuses ${what}`, () => {
      const glue = inject(fs, extra);
      expect(glue).toContain(extra);
      expect(() => hardenGlue(glue)).toThrow(GlueShapeError);
      expect(() => hardenGlue(glue)).toThrow(reason);
    });
  }

  it('refuses glue whose table or char helpers are not the ones it patches', () => {
    expect(() => hardenGlue(fs.replace('function rscTableRemove(table, handle) {', 'function rscTableRemove(t, handle) {'))).toThrow(/rscTableRemove without a range check/);
    expect(() => hardenGlue(fs.replace('const T_FLAG = 1 << 30;', 'const T_FLAG = 1 << 29;'))).toThrow(/another flag layout/);
    expect(() => hardenGlue(fs.replace('return (table.length >> 1) - 1;', 'return table.length >> 1;'))).toThrow(/handle allocation of another shape/);
    expect(sink).toContain('function validateGuestChar(i) {');
    expect(() => hardenGlue(sink.replace('function validateGuestChar(i) {', 'function validateGuestChar(n) {'))).toThrow(/char lifting without a scalar-value check/);
  });
});

describe('hardenGlue: handles of two resource types (in-process, real jco glue)', () => {
  const WIT = `package edgeward:test;
interface kinds { resource a { get: func() -> u32; } resource b { get: func() -> u32; } make-a: func() -> a; make-b: func() -> b; }
world kinds-guest { import kinds; export run: func(op: u32, h: u32) -> u32; }`;
  const WAT = `(module
  (import "edgeward:test/kinds" "make-a" (func $makeA (result i32)))
  (import "edgeward:test/kinds" "make-b" (func $makeB (result i32)))
  (import "edgeward:test/kinds" "[method]a.get" (func $getA (param i32) (result i32)))
  (import "edgeward:test/kinds" "[method]b.get" (func $getB (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
  (func (export "run") (param $op i32) (param $h i32) (result i32)
    (if (i32.eq (local.get $op) (i32.const 0)) (then (return (call $makeA))))
    (if (i32.eq (local.get $op) (i32.const 1)) (then (return (call $makeB))))
    (if (i32.eq (local.get $op) (i32.const 2)) (then (return (call $getA (local.get $h)))))
    (call $getB (local.get $h))))`;

  /** Instantiate the glue (hardened or not) in this thread with host classes A and B; `run(op, h)`. */
  async function instance(harden: boolean): Promise<(op: number, h?: number) => number> {
    const { parse, componentEmbed, componentNew } = await import('@bytecodealliance/jco');
    const bytes = await componentNew(await componentEmbed({ binary: await parse(WAT), witSource: WIT, world: 'kinds-guest' }));
    const out = await transpile(bytes, OPTIONS as Parameters<typeof transpile>[1]);
    const glue = Buffer.from(out.files['component.js'] as Uint8Array).toString('utf8');
    const { instantiate } = await import(`data:text/javascript;base64,${Buffer.from(harden ? hardenGlue(glue) : glue).toString('base64')}`) as { instantiate: (get: (n: string) => unknown, imports: unknown) => Promise<{ run: (op: number, h: number) => number }> };
    const modules = new Map<string, unknown>();
    for (const [name, data] of Object.entries(out.files)) if (name.endsWith('.wasm')) modules.set(name, await wasm.compile(data as Uint8Array));
    class A { get(): number { return 10; } }
    class B { get(): number { return 20; } }
    const ex = await instantiate((n) => modules.get(n), { 'edgeward:test/kinds': { A, B, makeA: () => new A(), makeB: () => new B() } });
    return (op, h = 0) => ex.run(op, h);
  }

  it('a handle of one type used as another traps (jco alone answers with the other type’s resource)', async () => {
    const lax = await instance(false);
    const a = lax(0);
    lax(1);
    expect(lax(3, a)).toBe(20); // jco: index 1 is live in b's table too
    const run = await instance(true);
    const ha = run(0);
    const hb = run(1);
    expect(hb).not.toBe(ha); // one index space across types
    expect(run(2, ha)).toBe(10);
    expect(run(3, hb)).toBe(20);
    expect(() => run(3, ha)).toThrow(/handle 1 was dropped or never created|unknown handle/);
  }, 60_000);
});
