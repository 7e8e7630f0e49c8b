/**
 * Memory ceilings for core modules, checked where every core module passes: before it is compiled for
 * jco's `getCoreModule` hook. A worker's `resourceLimits` caps the JS heap only; WebAssembly linear
 * memory is capped by the maximum the module itself declares, so each defined memory gets a maximum no
 * larger than the module's ceiling (a missing or larger one is rewritten down, a minimum above it is
 * refused). Imported memories need no check: every memory jco links is defined by one of the component's
 * own core modules. Binary layout: WebAssembly core spec §5.5 (sections), §5.3.8 (limits).
 */

export const WASM_PAGE_BYTES = 64 * 1024;
const TABLE_SECTION = 4;
const MEMORY_SECTION = 5;

export class MemoryLimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MemoryLimitError';
  }
}

interface Reader { buf: Uint8Array; pos: number }

function readU32(r: Reader): number {
  let result = 0;
  let shift = 0;
  for (;;) {
    if (r.pos >= r.buf.length) throw new MemoryLimitError('truncated LEB128 in core module');
    const byte = r.buf[r.pos++]!;
    result |= (byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return result >>> 0;
    shift += 7;
    if (shift > 28) throw new MemoryLimitError('LEB128 too long in core module');
  }
}

function writeU32(value: number): number[] {
  const out: number[] = [];
  let v = value >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

export interface MemoryReport {
  /** Declared limits of each defined memory, in pages, before the rewrite. */
  memories: { min: number; max?: number }[];
  /** Declared limits of each defined table, in elements, before the rewrite. */
  tables: { min: number; max?: number }[];
  /** True when at least one maximum was added or lowered. */
  rewritten: boolean;
}

/**
 * Most elements a table may hold. Tables live outside linear memory (8+ bytes per element in V8), so a
 * table without a maximum would be a second, uncapped memory (G2). StarlingMonkey needs a few thousand.
 */
export const MAX_TABLE_ELEMENTS = 100_000;

/** Read one limits (core spec §5.3.8) and return it re-encoded with its maximum capped. */
function capLimits(r: Reader, what: string, cap: number, unit: string, out: { min: number; max?: number }[], note = ''): { bytes: number[]; rewritten: boolean } {
  const flags = r.buf[r.pos++];
  if (flags === undefined || flags > 1) throw new MemoryLimitError(`${what} is shared or 64-bit (limits flags 0x${(flags ?? 0).toString(16)}): not supported`);
  const min = readU32(r);
  const max = flags === 1 ? readU32(r) : undefined;
  out.push(max === undefined ? { min } : { min, max });
  if (min > cap) throw new MemoryLimitError(`${what} needs ${min} ${unit} at start, above the ceiling of ${cap} ${unit}${note}`);
  const capped = max === undefined ? cap : Math.min(max, cap);
  return { bytes: [0x01, ...writeU32(min), ...writeU32(capped)], rewritten: capped !== max };
}

/**
 * Return `bytes` with every defined memory capped at `capPages` and every defined table at
 * MAX_TABLE_ELEMENTS. Throws MemoryLimitError when one needs more than its cap to start, or is shared or
 * 64-bit (not supported by this host).
 */
export function capCoreModuleMemory(bytes: Uint8Array, capPages: number): { bytes: Uint8Array; report: MemoryReport } {
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new MemoryLimitError('not a core WebAssembly module');
  }
  const r: Reader = { buf: bytes, pos: 8 };
  const report: MemoryReport = { memories: [], tables: [], rewritten: false };
  const chunks: Uint8Array[] = [bytes.subarray(0, 8)];
  while (r.pos < bytes.length) {
    const sectionStart = r.pos;
    const id = bytes[r.pos++]!;
    const size = readU32(r);
    const bodyEnd = r.pos + size;
    if (bodyEnd > bytes.length) throw new MemoryLimitError('truncated section in core module');
    if (id !== MEMORY_SECTION && id !== TABLE_SECTION) {
      chunks.push(bytes.subarray(sectionStart, bodyEnd));
      r.pos = bodyEnd;
      continue;
    }
    const count = readU32(r);
    const body: number[] = [...writeU32(count)];
    for (let i = 0; i < count; i++) {
      let limits: { bytes: number[]; rewritten: boolean };
      if (id === TABLE_SECTION) {
        const reftype = bytes[r.pos++]!;
        if (reftype === 0x40) throw new MemoryLimitError(`table ${i} has an initialiser expression: not supported`);
        limits = capLimits(r, `table ${i}`, MAX_TABLE_ELEMENTS, 'elements', report.tables);
        body.push(reftype, ...limits.bytes);
      } else {
        limits = capLimits(r, `memory ${i}`, capPages, 'pages', report.memories, ` (${(capPages * WASM_PAGE_BYTES) / 1048576} MiB)`);
        body.push(...limits.bytes);
      }
      if (limits.rewritten) report.rewritten = true;
    }
    if (r.pos !== bodyEnd) throw new MemoryLimitError(`${id === TABLE_SECTION ? 'table' : 'memory'} section size mismatch`);
    chunks.push(Uint8Array.from([id, ...writeU32(body.length), ...body]));
  }
  if (!report.rewritten) return { bytes, report };
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return { bytes: out, report };
}
