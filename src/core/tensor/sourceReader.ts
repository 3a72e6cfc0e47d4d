/**
 * Positioned reads of a tensor's stored bytes, straight into the caller's buffer: the tiled
 * converter reads blocks and rows of a matrix, and a whole-tensor read lands in its final buffer
 * without a copy. Only plain storage (C order, not deflated) reads this way.
 */
import type { ByteRange, TensorRef } from '../checkpoint';
import { JaxServeError } from '../errors';
import { readExactly, type ByteSource, type FileOpener } from '../io/byteSource';
import { dtypeBytes } from '../dtype';
import { swapInPlace } from './read';

/** True when `t` can be read at any offset (not deflated, not Fortran order). */
export function positionable(t: Pick<TensorRef, 'source' | 'segments' | 'order'>): boolean {
  return t.order !== 'F' && !(t.segments ?? [t.source]).some((r) => r.deflate);
}

/** Positioned reads of a tensor's stored bytes, across pieces (chunked Flax arrays), big-endian swapped. */
export class SourceReader {
  private readonly sources = new Map<string, Promise<ByteSource>>();
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
        await readExactly(await src, r.offset + inRange, target.subarray(at, at + n));
        at += n;
      }
      base += r.length;
    }
    if (at !== target.length) throw new JaxServeError('E_FORMAT', `${this.t.name}: read past its ${this.t.bytes} bytes.`);
    const size = dtypeBytes(this.t.dtype) ?? 1;
    if (this.t.bigEndian && size > 1) swapInPlace(target, size);
  }

  async close(): Promise<void> {
    for (const s of this.sources.values()) await (await s).close();
  }
}
