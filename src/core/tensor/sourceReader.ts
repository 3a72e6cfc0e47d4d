/**
 * Positioned reads of a tensor's stored bytes, straight into the caller's buffer: the tiled
 * converter reads blocks and rows of a matrix, and a whole-tensor read lands in its final buffer
 * without a copy. Only plain storage (C order, not deflated) reads this way.
 */
import type { ByteRange, TensorRef } from '../checkpoint';
import { JaxServeError } from '../errors';
import { readExactly, readExactlySync, type ByteSource, type FileOpener } from '../io/byteSource';
import { dtypeBytes } from '../dtype';
import { swapInPlace } from './read';

/** True when `t` can be read at any offset (not deflated, not Fortran order). */
export function positionable(t: Pick<TensorRef, 'source' | 'segments' | 'order'>): boolean {
  return t.order !== 'F' && !(t.segments ?? [t.source]).some((r) => r.deflate);
}

/** Positioned reads of a tensor's stored bytes, across pieces (chunked Flax arrays), big-endian swapped. */
export class SourceReader {
  private readonly sources = new Map<string, Promise<ByteSource>>();
  /** The sources opened so far, for readNow. */
  private readonly opened = new Map<string, ByteSource>();
  private readonly ranges: readonly ByteRange[];
  constructor(
    private readonly opener: FileOpener,
    private readonly t: TensorRef,
  ) {
    this.ranges = t.segments ?? [t.source];
    if (!positionable(t)) {
      throw new JaxServeError('E_UNSUPPORTED', `${t.name} is ${t.order === 'F' ? 'stored in Fortran order' : 'compressed'} and larger than the memory budget; save it uncompressed in C order (np.savez, np.ascontiguousarray) to convert it.`);
    }
  }

  /** Bytes [offset, offset + target.length) of the tensor into target. */
  async read(offset: number, target: Uint8Array): Promise<void> {
    let at = 0;
    let base = 0;
    for (const r of this.ranges) {
      if (at < target.length && offset + at < base + r.length && offset + at >= base) {
        const inRange = offset + at - base;
        const n = Math.min(target.length - at, r.length - inRange);
        let src = this.sources.get(r.file);
        if (!src) this.sources.set(r.file, (src = this.opener.open(r.file)));
        const opened = await src;
        this.opened.set(r.file, opened);
        await readExactly(opened, r.offset + inRange, target.subarray(at, at + n));
        at += n;
      }
      base += r.length;
    }
    if (at !== target.length) throw new JaxServeError('E_FORMAT', `${this.t.name}: read past its ${this.t.bytes} bytes.`);
    const size = dtypeBytes(this.t.dtype) ?? 1;
    if (this.t.bigEndian && size > 1) swapInPlace(target, size);
  }

  /**
   * Whether readNow takes reads of up to `bytes`: the tensor is one stored piece, little-endian,
   * in a file read already (by read) whose source reads in place (ByteSource.readSync).
   */
  readsNow(bytes: number): boolean {
    if (this.t.bigEndian || this.ranges.length !== 1) return false;
    const src = this.opened.get(this.ranges[0]!.file);
    return src?.readSync !== undefined && bytes <= (src.syncBytes ?? 0);
  }

  /** As read, done at once on this thread; only where readsNow(target.length) is true. */
  readNow(offset: number, target: Uint8Array): void {
    const r = this.ranges[0]!;
    const src = this.opened.get(r.file)!;
    if (offset < 0 || offset + target.length > r.length) throw new JaxServeError('E_FORMAT', `${this.t.name}: read past its ${this.t.bytes} bytes.`);
    readExactlySync(src, src.readSync!, r.offset + offset, target);
  }

  async close(): Promise<void> {
    for (const s of this.sources.values()) await (await s).close();
  }
}
