/**
 * The bytes of a component binary as Binary.md reads them: bytes, LEB128 u32s, UTF-8 names, vectors and
 * options, each bounded by the end of the section being read. Every malformed or truncated input is a
 * ComponentTypeError, never a read past the end.
 */

/** A component whose types cannot be read (malformed, truncated, or beyond what this reader models). */
export class ComponentTypeError extends Error {
  override readonly name = 'ComponentTypeError';
}

const textDecoder = new TextDecoder('utf-8', { fatal: true });

/** A cursor over `bytes[pos, end)`. */
export class Reader {
  pos: number;
  constructor(readonly bytes: Uint8Array, pos = 0, readonly end = bytes.length) { this.pos = pos; }

  byte(): number {
    if (this.pos >= this.end) throw new ComponentTypeError('unexpected end of component');
    return this.bytes[this.pos++]!;
  }
  peek(): number {
    if (this.pos >= this.end) throw new ComponentTypeError('unexpected end of component');
    return this.bytes[this.pos]!;
  }
  u32(): number {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) {
        if (result > 0xffffffff) throw new ComponentTypeError('u32 out of range');
        return result;
      }
    }
    throw new ComponentTypeError('malformed LEB128');
  }
  string(): string {
    const len = this.u32();
    if (len > this.end - this.pos) throw new ComponentTypeError('string past the end');
    const start = this.pos;
    this.pos += len;
    // Names are almost always ASCII: build those directly (TextDecoder costs ~0.5 µs a call, and a
    // componentize-qjs guest declares hundreds of short names); anything else goes through the strict decoder.
    if (len <= 64) {
      let s = '';
      for (let i = start; i < start + len; i++) {
        const c = this.bytes[i]!;
        if (c >= 0x80) return textDecoder.decode(this.bytes.subarray(start, start + len));
        s += String.fromCharCode(c);
      }
      return s;
    }
    return textDecoder.decode(this.bytes.subarray(start, start + len));
  }
  vec<T>(item: () => T): T[] {
    const n = this.u32();
    if (n > this.end - this.pos) throw new ComponentTypeError('vector longer than its section');
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(item());
    return out;
  }
  optional<T>(item: () => T): T | undefined {
    const b = this.byte();
    if (b === 0) return undefined;
    if (b === 1) return item();
    throw new ComponentTypeError(`bad option byte 0x${b.toString(16)}`);
  }
}
