/**
 * Faster transpiling of big components. jco's glue depends on the component's structure and on each core
 * module's imports and exports, never on the code inside them, yet transpiling copies and parses all of it
 * (~0.9 s for a 12 MB componentize-js guest). So the loader hands jco a copy of the component in which each
 * big core module is a stub: the same type, import, function, table, memory, global, export, start and
 * element sections, every function body `unreachable`, no data and no custom sections. jco's output
 * then carries the stubs, which are swapped back for the real, measured core modules by exact bytes; if
 * any stub does not come back unchanged, the loader transpiles the real component instead.
 *
 * Only core module sections are stubbed (at the top level and in nested components); everything else is
 * copied byte for byte.
 */
/** Core modules smaller than this are left as they are (nothing to gain). */
export const STUB_MIN_BYTES = 16 * 1024;

const COMPONENT_PREAMBLE = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
const CORE_PREAMBLE = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
const COMPONENT_CORE_MODULE = 1;
const COMPONENT_COMPONENT = 4;
const CORE_CUSTOM = 0;
const CORE_CODE = 10;
const CORE_DATA = 11;
const CORE_DATA_COUNT = 12;
/** A function body of no locals and `unreachable end`, with its size prefix. */
const UNREACHABLE_BODY = [0x03, 0x00, 0x00, 0x0b];

export interface Stubbed {
  /** The component with its big core modules stubbed. */
  component: Uint8Array;
  /** Each stub and the real core module it stands for (no two stubs are alike). */
  swaps: { stub: Uint8Array; real: Uint8Array }[];
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);

/** The real core module a stub in jco's output stands for, if `data` is one of the stubs. */
export function realModuleOf(stubbed: Stubbed, data: Uint8Array): Uint8Array | undefined {
  return stubbed.swaps.find((s) => sameBytes(s.stub, data))?.real;
}

function readU32(buf: Uint8Array, pos: number): [number, number] {
  let result = 0;
  let shift = 0;
  for (let i = 0; i < 5; i++) {
    if (pos >= buf.length) throw new Error('truncated LEB128');
    const byte = buf[pos++]!;
    result += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return [result, pos];
    shift += 7;
  }
  throw new Error('LEB128 longer than 5 bytes');
}

function u32(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

function startsWith(buf: Uint8Array, prefix: number[]): boolean {
  return buf.length >= prefix.length && prefix.every((b, i) => buf[i] === b);
}

/** Walk `id size contents` sections after an 8-byte preamble. */
function* sections(buf: Uint8Array): Generator<{ id: number; start: number; body: Uint8Array }> {
  let pos = 8;
  while (pos < buf.length) {
    const start = pos;
    const id = buf[pos]!;
    const [size, at] = readU32(buf, pos + 1);
    if (at + size > buf.length) throw new Error('section runs past the end');
    yield { id, start, body: buf.subarray(at, at + size) };
    pos = at + size;
  }
}

function section(id: number, body: Uint8Array | number[]): Uint8Array {
  const b = body instanceof Uint8Array ? body : Uint8Array.from(body);
  const head = Uint8Array.from([id, ...u32(b.length)]);
  const out = new Uint8Array(head.length + b.length);
  out.set(head);
  out.set(b, head.length);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The stub of one core module: same interface, no code, no data. */
export function stubCoreModule(core: Uint8Array): Uint8Array {
  if (!startsWith(core, CORE_PREAMBLE)) throw new Error('not a core module');
  const parts: Uint8Array[] = [Uint8Array.from(CORE_PREAMBLE)];
  for (const s of sections(core)) {
    if (s.id === CORE_CUSTOM || s.id === CORE_DATA || s.id === CORE_DATA_COUNT) continue;
    if (s.id === CORE_CODE) {
      const [count] = readU32(s.body, 0);
      const body: number[] = [...u32(count)];
      for (let i = 0; i < count; i++) body.push(...UNREACHABLE_BODY);
      parts.push(section(CORE_CODE, body));
      continue;
    }
    parts.push(section(s.id, s.body));
  }
  return concat(parts);
}

/**
 * Stub the big core modules of a component, at the top level and inside nested components (componentize-qjs
 * wraps its QuickJS core module in one); undefined if there is none (or it is not a component).
 */
export function stubComponent(component: Uint8Array, minBytes = STUB_MIN_BYTES): Stubbed | undefined {
  if (!startsWith(component, COMPONENT_PREAMBLE)) return undefined;
  const swaps: Stubbed['swaps'] = [];
  const stubbed = stubInto(component, minBytes, swaps, 0);
  return stubbed === undefined || swaps.length === 0 ? undefined : { component: stubbed, swaps };
}

/** Components nest no deeper than this here (jco's output for deeper nesting is left to jco). */
const MAX_NESTING = 4;

/** `component` with its big core modules stubbed, each recorded in `swaps`; undefined if a swap would be ambiguous. */
function stubInto(component: Uint8Array, minBytes: number, swaps: Stubbed['swaps'], depth: number): Uint8Array | undefined {
  const parts: Uint8Array[] = [Uint8Array.from(COMPONENT_PREAMBLE)];
  for (const s of sections(component)) {
    if (s.id === COMPONENT_CORE_MODULE && s.body.length >= minBytes) {
      const stub = stubCoreModule(s.body);
      if (swaps.some((w) => sameBytes(w.stub, stub))) return undefined; // two modules with one interface: the swap would be ambiguous
      swaps.push({ stub, real: s.body });
      parts.push(section(COMPONENT_CORE_MODULE, stub));
    } else if (s.id === COMPONENT_COMPONENT && s.body.length >= minBytes && depth < MAX_NESTING && startsWith(s.body, COMPONENT_PREAMBLE)) {
      const inner = stubInto(s.body, minBytes, swaps, depth + 1);
      if (inner === undefined) return undefined;
      parts.push(section(COMPONENT_COMPONENT, inner));
    } else {
      parts.push(section(s.id, s.body));
    }
  }
  return concat(parts);
}
