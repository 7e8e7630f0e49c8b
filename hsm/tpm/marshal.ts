/**
 * Big-endian marshalling of TPM 2.0 types (Part 2 §5: all integers are big-endian; a TPM2B is a UINT16
 * size followed by that many bytes). `Writer` grows as needed; `Reader` throws `TpmMarshalError` on any
 * read past the end, so a truncated or lying response never yields garbage values.
 */

export class TpmMarshalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TpmMarshalError';
  }
}

export class Writer {
  private buf = Buffer.alloc(256);
  private len = 0;

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  u8(v: number): this {
    this.ensure(1);
    this.buf.writeUInt8(v, this.len);
    this.len += 1;
    return this;
  }

  u16(v: number): this {
    this.ensure(2);
    this.buf.writeUInt16BE(v, this.len);
    this.len += 2;
    return this;
  }

  u32(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.len);
    this.len += 4;
    return this;
  }

  u64(v: bigint): this {
    this.ensure(8);
    this.buf.writeBigUInt64BE(v, this.len);
    this.len += 8;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }

  /** TPM2B: UINT16 size + bytes. */
  b2(b: Uint8Array): this {
    if (b.length > 0xffff) throw new TpmMarshalError(`TPM2B too large (${b.length} bytes)`);
    return this.u16(b.length).bytes(b);
  }

  /** UINT32 size + bytes (the authorization area of a command). */
  b2u32(b: Uint8Array): this {
    return this.u32(b.length).bytes(b);
  }

  /** A TPM2B whose content is produced by `fill` (size computed afterwards). */
  sized(fill: (w: Writer) => void): this {
    const inner = new Writer();
    fill(inner);
    return this.b2(inner.finish());
  }

  get length(): number {
    return this.len;
  }

  finish(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.len));
  }
}

export class Reader {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}

  static of(b: Uint8Array): Reader {
    return new Reader(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  }

  private need(n: number, what: string): void {
    if (this.pos + n > this.buf.length) throw new TpmMarshalError(`truncated TPM data reading ${what} at offset ${this.pos} (need ${n}, have ${this.buf.length - this.pos})`);
  }

  u8(): number {
    this.need(1, 'UINT8');
    return this.buf.readUInt8(this.pos++);
  }

  u16(): number {
    this.need(2, 'UINT16');
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4, 'UINT32');
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  u64(): bigint {
    this.need(8, 'UINT64');
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  bytes(n: number): Buffer {
    this.need(n, `${n} bytes`);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return Buffer.from(v);
  }

  b2(): Buffer {
    return this.bytes(this.u16());
  }

  /** Read a TPM2B and parse its content with `parse`, which must consume it exactly. */
  sized<T>(parse: (r: Reader) => T): T {
    const inner = new Reader(this.b2());
    const v = parse(inner);
    inner.end();
    return v;
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  rest(): Buffer {
    return this.bytes(this.remaining);
  }

  /** Assert everything was consumed. */
  end(): void {
    if (this.pos !== this.buf.length) throw new TpmMarshalError(`${this.buf.length - this.pos} unexpected trailing bytes in TPM data`);
  }
}
