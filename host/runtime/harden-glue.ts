/**
 * Lifting that traps like wasmtime: a rewrite of the JS glue jco generates for a component (jco-transpile
 * 0.15, `instantiation: 'async'`), applied by the loader before the glue is hashed and cached.
 *
 * jco builds the glue from the component's own declarations, and where it lifts a value out of the
 * guest's linear memory it is laxer than the Canonical ABI (CanonicalABI.md, `load_string_from_range`,
 * `load_list_from_range`, `lift_own`, `lift_borrow`, `convert_i32_to_char`), which traps on:
 *  - a string that is not valid UTF-8 / UTF-16 (jco: a non-fatal TextDecoder hands U+FFFD to the host,
 *    and drops a leading byte-order mark);
 *  - a string or list whose pointer + byte length lies outside linear memory, or whose byte length is
 *    over 2^28-1 (jco: `buffer.slice` clamps, negative offsets count from the end, a negative length
 *    lifts an empty list);
 *  - a misaligned string or list pointer (jco checks lists; V8 refuses a misaligned Uint16Array);
 *  - a char that is not a Unicode scalar value (jco checks);
 *  - an enum / variant / option / result discriminant out of range (jco checks, checked again below);
 *  - a handle that is out of range, dropped, never created, of another resource type, or a borrow passed
 *    as `own` (jco reads any index, fabricates a resource object for a rep it does not know, grows its
 *    table on a bad drop, and numbers each type's table from 1, so one type's index names another's).
 *
 * Not checked here: the alignment of the pointer to spilled parameters or to an export's return area
 * (jco reads at any alignment; out-of-bounds reads are V8 RangeErrors), and an own handle lifted while
 * the same call also borrows it.
 *
 * The rewrite routes each such place through one of the checked helpers in PRELUDE and then FAILS CLOSED:
 * if a lax shape is still in the glue (a jco version that emits something else), `hardenGlue` throws and
 * the loader refuses the component instead of running unchecked glue. A helper's throw inside a guest's
 * call to an import is a trap of that instance (worker.mjs `classify`).
 *
 * Two rewrites in the same pass are costs, not checks (see LITERAL): jco's debug log, and its probe for
 * V8's JSPI. Each keeps what the glue does and drops a per-call or per-start cost.
 */

/** Thrown when the glue has a shape this rewrite does not know; the loader refuses the component. */
export class GlueShapeError extends Error {
  constructor(message: string) {
    super(`jco glue of an unknown shape, refused: ${message}`);
    this.name = 'GlueShapeError';
  }
}

/** Marks the prelude, so a second pass is refused rather than applied twice. */
const MARK = '/* edgeward: checked lifting */';

/** Checked helpers, injected at module scope. Every throw is a trap of the calling instance. */
const PRELUDE = `${MARK}
const __ew_T_FLAG = 1 << 30;
const __ew_MAX_BYTES = (1 << 28) - 1;
const __ew_trap = (Kind, what) => new Kind(\`\${what} (Canonical ABI trap)\`);
const __ew_utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const __ew_utf16 = new TextDecoder('utf-16le', { fatal: true, ignoreBOM: true });
function __ew_decodeUtf8(view) {
  if (view.byteLength > __ew_MAX_BYTES) throw __ew_trap(RangeError, \`string of \${view.byteLength} bytes is longer than the limit\`);
  try { return __ew_utf8.decode(view); } catch { throw __ew_trap(TypeError, 'string is not valid UTF-8'); }
}
function __ew_decodeUtf16(view) {
  if (view.byteLength > __ew_MAX_BYTES) throw __ew_trap(RangeError, \`string of \${view.byteLength} bytes is longer than the limit\`);
  try { return __ew_utf16.decode(view); } catch { throw __ew_trap(TypeError, 'string is not valid UTF-16'); }
}
function __ew_range(byteLength, start, bytes) {
  if (!Number.isInteger(start) || !Number.isInteger(bytes) || start < 0 || bytes < 0 || bytes > __ew_MAX_BYTES || start + bytes > byteLength) {
    throw __ew_trap(RangeError, \`list of \${bytes < 0 ? 'over 2^31' : bytes} bytes at \${start >>> 0} is out of bounds of linear memory (\${byteLength} bytes)\`);
  }
}
function __ew_slice(buffer, start, end) {
  __ew_range(buffer.byteLength, start, end - start);
  return buffer.slice(start, end);
}
function __ew_list(memory, base, len, size) {
  if (!Number.isInteger(len) || len < 0) throw __ew_trap(RangeError, \`list length \${len >>> 0} is out of bounds of linear memory\`);
  __ew_range(memory.buffer.byteLength, base, len * size);
}
function __ew_char(i) {
  if (!Number.isInteger(i) || i < 0 || i >= 0x110000 || (i >= 0xd800 && i <= 0xdfff)) throw __ew_trap(TypeError, \`\${i >>> 0} is not a Unicode scalar value (char)\`);
}
function __ew_live(table, h) {
  if (!Number.isInteger(h) || h < 1 || 2 * h + 1 >= table.length) throw __ew_trap(RangeError, \`unknown handle \${h >>> 0}\`);
  const scope = table[2 * h];
  const val = table[2 * h + 1];
  if (typeof val !== 'number' || val === 0 || typeof scope !== 'number' || (scope & __ew_T_FLAG) !== 0) throw __ew_trap(RangeError, \`handle \${h} was dropped or never created\`);
}
function __ew_rep(table, h, capture) {
  __ew_live(table, h);
  const rep = table[2 * h + 1] & ~__ew_T_FLAG;
  if (capture !== undefined && !capture.has(rep)) throw __ew_trap(RangeError, \`handle \${h} names no live resource\`);
  return rep;
}
// One handle index space per instance, as the Canonical ABI's single handle table: jco keeps a table per
// resource type, each numbering from 1, so an index of one type could name a live resource of another.
// Indices are allocated here across all tables; an index used as another type is not live there and traps.
const __ew_freeIndices = [];
let __ew_nextIndex = 1;
function __ew_create(table, rep) {
  const h = __ew_freeIndices.length > 0 ? __ew_freeIndices.pop() : __ew_nextIndex++;
  while (table.length < 2 * h) table.push(__ew_T_FLAG, 0);
  table[2 * h] = 0;
  table[2 * h + 1] = rep | __ew_T_FLAG;
  return h;
}
function __ew_remove(table, h, remove) {
  __ew_live(table, h);
  const entry = remove(table, h);
  __ew_freeIndices.push(h);
  return entry;
}
function __ew_removeOwn(table, h, remove) {
  __ew_live(table, h);
  if ((table[2 * h + 1] & __ew_T_FLAG) === 0) throw __ew_trap(TypeError, \`handle \${h} is a borrow, passed where an own handle is required\`);
  return remove(table, h);
}
function __ew_promising(f) {
  if (typeof WebAssembly.promising === 'function') return WebAssembly.promising(f);
  throw new TypeError('WebAssembly.promising is not a function');
}
`;

/** jco 0.15's handle allocator, replaced whole (any other text of it is refused). */
const JCO_CREATE_OWN = `function rscTableCreateOwn(table, rep) {
    const free = table[0] & ~T_FLAG;
    table._createdReps.add(rep);
    if (free === 0) {
      table.push(0);
      table.push(rep | T_FLAG);
      return (table.length >> 1) - 1;
    }
    table[0] = table[free << 1];
    table[free << 1] = 0;
    table[(free << 1) + 1] = rep | T_FLAG;
    return free;
  }`;

/**
 * Not a check, a cost: jco's debug logger, called on every lift, lower and task step of every call (130
 * call sites in hello's glue), reads `process.env.JCO_DEBUG` each time, a lookup in C++. A sandbox worker
 * has an empty environment (pool.ts), so it never logs: it becomes a no-op. Measured (hello's `count`,
 * median of 2000 calls in the worker, A/B alternated 3×): the guest call 20–21 µs instead of 34–41 µs.
 */
const JCO_DEBUG_LOG = `const _debugLog = (...args) => {
    if (!globalThis?.process?.env?.JCO_DEBUG) { return; }
    console.debug(...args);
  };`;

/** jco's exact text → the checked form. */
const LITERAL: Record<string, string> = {
  // Strings: every decode goes through a fatal decoder with the length limit; the decoders jco declares
  // are made fatal as well, so nothing decodes laxly even on a path not rewritten by name.
  'TEXT_DECODER_UTF8.decode(': '__ew_decodeUtf8(',
  'utf16Decoder.decode(': '__ew_decodeUtf16(',
  'new TextDecoder()': "new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })",
  "new TextDecoder('utf-16')": "new TextDecoder('utf-16le', { fatal: true, ignoreBOM: true })",
  // resource.drop and every other removal: in range and live.
  'function rscTableRemove(table, handle) {': 'function rscTableRemove(table, handle) { return __ew_remove(table, handle, __ew_jcoRemove); }\n  function __ew_jcoRemove(table, handle) {',
  // char: a Unicode scalar value (jco checks; checked again so a laxer jco does not pass unnoticed).
  'function validateGuestChar(i) {': 'function validateGuestChar(i) {\n    __ew_char(i);',
  'function i32ToChar(n) {': 'function i32ToChar(n) {\n    __ew_char(n);',
  // Handle allocation: one index space across the per-type tables (see __ew_create).
  [JCO_CREATE_OWN]: 'function rscTableCreateOwn(table, rep) { table._createdReps.add(rep); return __ew_create(table, rep); }',
  // Not a check, a cost: jco wraps exports for JSPI in a try, falling back in its catch. Where V8 has no
  // JSPI (Node 20), calling the missing WebAssembly.promising throws a TypeError whose message V8 builds
  // by parsing the calling function again: the whole instantiate generator, ~1.5–3 ms per call, 7 calls
  // in hello's glue (a restart's instantiate: 20–25 ms before, 5.5–8.5 after). The same TypeError, thrown
  // without the parse.
  'WebAssembly.promising(': '__ew_promising(',
  // jco's debug log, never on in a worker (see JCO_DEBUG_LOG).
  [JCO_DEBUG_LOG]: 'const _debugLog = () => {};',
};

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const ID = '[A-Za-z_$][\\w$]*';

/** Every rewrite as one alternation, so the glue (up to ~600 KB) is scanned once. */
const REWRITE = new RegExp([
  `(?<literal>${Object.keys(LITERAL).map(escape).join('|')})`,
  // Lists of scalars: a checked copy instead of the clamping ArrayBuffer.slice.
  '\\b(?<copyOf>memory\\d+|ctx\\.memory)\\.buffer\\.slice\\(',
  // Lists of records / strings / handles: the whole range is checked before the element loop.
  'for \\(let i = 0; i < (?<len>len\\d+); i\\+\\+\\) \\{(?<ws>\\s*)const base = (?<base>base\\d+) \\+ i \\* (?<size>\\d+);(?<body>(?:(?!\\bfor \\()[\\s\\S]){0,600}?)\\b(?:dataView\\((?<mem1>memory\\d+)\\)|(?<mem2>memory\\d+)\\.buffer)',
  // Handles: a live entry of this resource's table, whose rep the glue knows (no fabricated objects).
  `\\bhandleTable(?<table>\\d+)\\[\\((?<handle>${ID}) << 1\\) \\+ 1\\] & ~T_FLAG`,
  // Lifting an own handle: it must be own (not a borrow) before jco removes it.
  `^(?<indent>[ \\t]*)rscTableRemove\\((?<ownTable>handleTable\\d+), (?<ownHandle>${ID})\\);`,
].join('|'), 'gm');

function rewrite(src: string): string {
  const captures = new Set([...src.matchAll(/\bconst captureTable(\d+)\s*=/g)].map((m) => m[1]));
  return src.replace(REWRITE, (...args: unknown[]) => {
    const g = args.at(-1) as Record<string, string | undefined>;
    if (g.literal !== undefined) return LITERAL[g.literal]!;
    if (g.copyOf !== undefined) return `__ew_slice(${g.copyOf}.buffer, `;
    if (g.len !== undefined) {
      const mem = g.mem1 ?? g.mem2;
      return `__ew_list(${mem}, ${g.base}, ${g.len}, ${g.size}); for (let i = 0; i < ${g.len}; i++) {${g.ws}const base = ${g.base} + i * ${g.size};${g.body}${g.mem1 ? `dataView(${mem})` : `${mem}.buffer`}`;
    }
    if (g.table !== undefined) return `__ew_rep(handleTable${g.table}, ${g.handle}, ${captures.has(g.table) ? `captureTable${g.table}` : 'undefined'})`;
    return `${g.indent}__ew_removeOwn(${g.ownTable}, ${g.ownHandle}, rscTableRemove);`;
  });
}

/** Patterns that must not survive the rewrite: each is a lift the Canonical ABI would trap on. */
const FORBIDDEN: Array<[RegExp, string]> = [
  [/new TextDecoder\((?!'utf-8', \{ fatal: true, ignoreBOM: true \}\)|'utf-16le', \{ fatal: true, ignoreBOM: true \}\))/, 'a TextDecoder that is not fatal'],
  [/(?<!__ew_utf(?:8|16))\.decode\(/, 'a string decode not routed through the checked decoders'],
  [/\.buffer\.slice\(/, 'a list copy that clamps out-of-bounds ranges'],
  [/\bArrayBuffer\.prototype\.slice\b/, 'a list copy that clamps out-of-bounds ranges'],
  [/(?<!__ew_list\([^)]*\); )for \(let i = 0; i < len\d+; i\+\+\) \{\s*const base = /, 'a list loop without a range check'],
  [/handleTable\d+\[[^\]]*\] & ~T_FLAG/, 'a handle read without a liveness check'],
  [/^[ \t]*rscTableRemove\(/m, 'an own-handle lift without an own check'],
  [/\.manuallyAsync\s*=/, 'an import lowered through the async lifting path'],
];

/** Definitions that must have been patched when the glue uses them. */
const REQUIRED: Array<[RegExp, RegExp, string]> = [
  [/\brscTableRemove\(/, /function rscTableRemove\(table, handle\) \{ return __ew_remove\(table, handle, __ew_jcoRemove\); \}/, 'rscTableRemove without a range check'],
  [/\brscTableCreateOwn\(/, /function rscTableCreateOwn\(table, rep\) \{ table\._createdReps\.add\(rep\); return __ew_create\(table, rep\); \}/, 'handle allocation of another shape'],
  [/\bvalidateGuestChar\(/, /function validateGuestChar\(i\) \{\n {4}__ew_char\(i\);/, 'char lifting without a scalar-value check'],
  [/\bi32ToChar\(/, /function i32ToChar\(n\) \{\n {4}__ew_char\(n\);/, 'char lifting without a scalar-value check'],
  [/& ~T_FLAG/, /const T_FLAG = 1 << 30;/, 'a handle table with another flag layout'],
];

/**
 * `slice` / `subarray` clamp their range silently: besides the checked copy, only the receivers jco uses
 * on JS arrays (never on linear memory) may call them.
 */
function checkSlices(src: string): void {
  const re = /\.(?:slice|subarray)\(/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(src))) {
    const before = src.slice(Math.max(0, m.index - 24), m.index);
    if (!/(?:[^\w$.]ctx\.params|[^\w$.]list|\[\.\.\.arguments\])$/.test(before)) {
      const line = src.slice(0, m.index).split('\n').length;
      throw new GlueShapeError(`a copy that clamps out-of-bounds ranges (line ${line}: ${before.trim()}${m[0]})`);
    }
  }
}

/**
 * Every lifting `switch` (on a core argument or a value read from linear memory) must end in a `default`
 * that throws: an enum / variant / option / result discriminant out of range traps.
 */
function checkSwitches(src: string): void {
  const re = /\bswitch \((?:arg\d+|Number\(arg\d+\)|dataView\(memory\d+\)\.get\w+\([^)]*\))\) \{/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(src))) {
    const open = src.indexOf('{', m.index);
    let depth = 0;
    let end = -1;
    for (let i = open; i < src.length; i++) {
      const c = src[i];
      if (c === '{') depth++;
      else if (c === '}' && --depth === 0) { end = i; break; }
    }
    if (end < 0) throw new GlueShapeError(`unbalanced switch at offset ${m.index}`);
    // The switch's own `default` (depth 1 of its block), not one of a nested switch.
    let throws = false;
    for (let i = open, d = 0; i < end; i++) {
      const c = src[i];
      if (c === '{') d++;
      else if (c === '}') d--;
      else if (d === 1 && c === 'd' && /^default: \{?\s*throw\b/.test(src.slice(i, i + 40))) throws = true;
    }
    if (!throws) {
      const line = src.slice(0, m.index).split('\n').length;
      throw new GlueShapeError(`a switch without a throwing default (line ${line}): a discriminant out of range would not trap`);
    }
  }
}

/**
 * Rewrite jco's glue so every lift the Canonical ABI traps on throws. Pure: same input, same output.
 * Throws `GlueShapeError` when the glue is not of the shape this rewrite knows.
 */
export function hardenGlue(source: string): string {
  if (source.includes(MARK)) throw new GlueShapeError('the glue was already rewritten');
  const head = /^"use components";\n/.exec(source);
  if (!head || !/^export function instantiate\(getCoreModule, imports, instantiateCore = WebAssembly\.instantiate\) \{$/m.test(source)) {
    throw new GlueShapeError('not the async-instantiation glue of jco-transpile 0.15');
  }
  let body = source.slice(head[0].length);
  body = rewrite(body);
  for (const [re, what] of FORBIDDEN) {
    const hit = re.exec(body);
    if (hit) throw new GlueShapeError(`${what} (line ${body.slice(0, hit.index).split('\n').length + 1}: ${hit[0].slice(0, 60)})`);
  }
  for (const [uses, patched, what] of REQUIRED) {
    if (uses.test(body) && !patched.test(body)) throw new GlueShapeError(what);
  }
  checkSlices(body);
  checkSwitches(body);
  return `${head[0]}${PRELUDE}${body}`;
}
