/**
 * Memory ceilings for core modules, checked where every core module passes: before it is compiled for
 * jco's `getCoreModule` hook. A worker's `resourceLimits` caps the JS heap only; WebAssembly linear
 * memory is capped by the maximum the module itself declares, so each defined memory gets a maximum no
 * larger than the module's ceiling (a missing or larger one is rewritten down, a minimum above it is
 * refused). Imported memories need no check: every memory jco links is defined by one of the component's
 * own core modules. Binary layout: WebAssembly core spec §5.5 (sections), §5.3.8 (limits).
 */

export const WASM_PAGE_BYTES = 64 * 1024;
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
  /** True when at least one maximum was added or lowered. */
  rewritten: boolean;
}

/**
 * Return `bytes` with every defined memory capped at `capPages`. Throws MemoryLimitError when a memory
 * needs more than the cap to start, or is shared or 64-bit (not supported by this host).
 */
export function capCoreModuleMemory(bytes: Uint8Array, capPages: number): { bytes: Uint8Array; report: MemoryReport } {
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new MemoryLimitError('not a core WebAssembly module');
  }
  const r: Reader = { buf: bytes, pos: 8 };
  const report: MemoryReport = { memories: [], rewritten: false };
  while (r.pos < bytes.length) {
    const sectionStart = r.pos;
    const id = bytes[r.pos++]!;
    const size = readU32(r);
    const bodyStart = r.pos;
    const bodyEnd = bodyStart + size;
    if (bodyEnd > bytes.length) throw new MemoryLimitError('truncated section in core module');
    if (id !== MEMORY_SECTION) {
      r.pos = bodyEnd;
      continue;
    }
    const count = readU32(r);
    const body: number[] = [...writeU32(count)];
    for (let i = 0; i < count; i++) {
      const flags = bytes[r.pos++];
      if (flags === undefined || flags > 1) {
        throw new MemoryLimitError(`memory ${i} is shared or 64-bit (limits flags 0x${(flags ?? 0).toString(16)}): not supported`);
      }
      const min = readU32(r);
      const max = flags === 1 ? readU32(r) : undefined;
      report.memories.push(max === undefined ? { min } : { min, max });
      if (min > capPages) {
        throw new MemoryLimitError(`memory ${i} needs ${min} pages at start, above the ceiling of ${capPages} pages (${(capPages * WASM_PAGE_BYTES) / 1048576} MiB)`);
      }
      const capped = max === undefined ? capPages : Math.min(max, capPages);
      if (capped !== max) report.rewritten = true;
      body.push(0x01, ...writeU32(min), ...writeU32(capped));
    }
    if (r.pos !== bodyEnd) throw new MemoryLimitError('memory section size mismatch');
    if (!report.rewritten) return { bytes, report };
    const section = [MEMORY_SECTION, ...writeU32(body.length), ...body];
    const out = new Uint8Array(bytes.length - (bodyEnd - sectionStart) + section.length);
    out.set(bytes.subarray(0, sectionStart), 0);
    out.set(section, sectionStart);
    out.set(bytes.subarray(bodyEnd), sectionStart + section.length);
    return { bytes: out, report };
  }
  return { bytes, report };
}
