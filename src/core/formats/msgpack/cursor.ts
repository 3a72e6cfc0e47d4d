/**
 * A forward cursor over a ByteSource that reads through a small window, so a scanner can walk the
 * structure of a multi-GB file while skipping over array payloads without reading them. Offsets are
 * JavaScript numbers: exact to 2^53 bytes, far past the 4 GB a Buffer (or a u32) could address.
 */
import { formatError } from '../../errors';
import type { ByteSource } from '../../io/byteSource';

const WINDOW = 64 * 1024;

export class ByteCursor {
  private buf = new Uint8Array(0);
  private bufStart = 0;
  private view = new DataView(this.buf.buffer);

  constructor(private readonly src: ByteSource, public pos = 0) {}

  get size(): number {
    return this.src.size;
  }

  /** Makes [pos, pos+n) available in the window; fails naming the file when the file ends first. */
  private async ensure(n: number): Promise<number> {
    if (this.pos + n > this.src.size) {
      throw formatError(this.src.name, `unexpected end of file: ${n} bytes needed at byte ${this.pos}, the file has ${this.src.size}.`);
    }
    const rel = this.pos - this.bufStart;
    if (rel >= 0 && rel + n <= this.buf.length) return rel;
    const len = Math.min(Math.max(n, WINDOW), this.src.size - this.pos);
    if (this.buf.length < len) this.buf = new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const r = await this.src.read(this.pos + done, this.buf.subarray(done, len));
      if (r <= 0) throw formatError(this.src.name, `the file ended while reading at byte ${this.pos + done}.`);
      done += r;
    }
    this.bufStart = this.pos;
    this.view = new DataView(this.buf.buffer, 0, len);
    return 0;
  }

  async u8(): Promise<number> {
    const i = await this.ensure(1);
    this.pos += 1;
    return this.buf[i]!;
  }

  /** Big-endian, as msgpack writes every multi-byte number (64-bit ones: u64/i64, exact). */
  async uint(bytes: 1 | 2 | 4): Promise<number> {
    const i = await this.ensure(bytes);
    this.pos += bytes;
    switch (bytes) {
      case 1:
        return this.view.getUint8(i);
      case 2:
        return this.view.getUint16(i);
      case 4:
        return this.view.getUint32(i);
    }
  }

  /** A uint64, exact (a bigint only past 2^53, where a number would round). */
  async u64(): Promise<number | bigint> {
    const i = await this.ensure(8);
    this.pos += 8;
    const v = this.view.getBigUint64(i);
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }

  /** An int64, exact (a bigint only beyond ±2^53). */
  async i64(): Promise<number | bigint> {
    const i = await this.ensure(8);
    this.pos += 8;
    const v = this.view.getBigInt64(i);
    return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
  }

  async int(bytes: 1 | 2 | 4): Promise<number> {
    const i = await this.ensure(bytes);
    this.pos += bytes;
    switch (bytes) {
      case 1:
        return this.view.getInt8(i);
      case 2:
        return this.view.getInt16(i);
      case 4:
        return this.view.getInt32(i);
    }
  }

  async float(bytes: 4 | 8): Promise<number> {
    const i = await this.ensure(bytes);
    this.pos += bytes;
    return bytes === 4 ? this.view.getFloat32(i) : this.view.getFloat64(i);
  }

  /** A copy of the next n bytes (for strings and small values; callers bound n). */
  async bytes(n: number): Promise<Uint8Array> {
    const i = await this.ensure(n);
    this.pos += n;
    return this.buf.slice(i, i + n);
  }

  /** Moves past n bytes without reading them (array payloads), checking they exist. */
  skip(n: number): void {
    if (this.pos + n > this.src.size) {
      throw formatError(this.src.name, `a ${n}-byte value at byte ${this.pos} runs past the end of the file (${this.src.size} bytes); the file is truncated.`);
    }
    this.pos += n;
  }
}
