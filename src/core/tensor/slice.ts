/**
 * A 2-D window of an N-D tensor: choose the row and column axes, fix an index on every other axis,
 * and read only the elements in the window, as a person scrolls a table of values. Stored arrays
 * are read in place through positioned reads (a row's run in one read where the elements are close,
 * element by element where they are far apart); a deflated member is streamed once, keeping only
 * the window.
 */
import { tensorRanges, type TensorRef } from '../checkpoint';
import { JaxServeError, throwIfAborted } from '../errors';
import { readExactly, type FileOpener } from '../io/byteSource';
import { decodeChunk } from './decode';
import { dtypeBytes } from '../dtype';
import { readTensorValues, swapInPlace } from './read';
import type { SliceRequest } from './sliceRequest';

export type { SliceRequest } from './sliceRequest';


export interface Slice {
  readonly rows: number;
  readonly cols: number;
  /** Row-major values of the window, decoded to numbers. */
  readonly values: Float64Array;
}

/** Largest window served at once: a screenful is far smaller; this bounds memory and reads. */
export const MAX_SLICE_ELEMENTS = 1 << 20;
/** A row is read as one run when its elements span at most this many bytes. */
const RUN_BYTES = 1 << 16;

function check(t: TensorRef, q: SliceRequest): { rows: number; cols: number; strides: number[] } {
  const rank = t.shape.length;
  const bad = (why: string) => new JaxServeError('E_USAGE', `slice of ${JSON.stringify(t.name)}${JSON.stringify(t.shape)}: ${why}.`);
  const isAxis = (a: number) => Number.isInteger(a) && a >= 0 && a < Math.max(rank, 1);
  if (!isAxis(q.rowAxis) || !isAxis(q.colAxis)) throw bad('an axis is out of range');
  if (rank > 1 && q.rowAxis === q.colAxis) throw bad('rows and columns need two different axes');
  if (q.index.length !== rank) throw bad(`give an index for each of the ${rank} axes`);
  q.index.forEach((v, k) => {
    if (k !== q.rowAxis && k !== q.colAxis && !(Number.isInteger(v) && v >= 0 && v < t.shape[k]!)) throw bad(`index ${v} is outside axis ${k}`);
  });
  const dim = (a: number) => (rank === 0 ? 1 : t.shape[a]!);
  const rows = rank <= 1 ? 1 : Math.max(0, Math.min(q.rowCount, dim(q.rowAxis) - q.rowStart));
  const cols = Math.max(0, Math.min(q.colCount, dim(q.colAxis) - q.colStart));
  if (q.rowStart < 0 || q.colStart < 0) throw bad('a window start is negative');
  if (rows * cols > MAX_SLICE_ELEMENTS) throw bad(`the window has ${rows * cols} elements, over ${MAX_SLICE_ELEMENTS}`);
  // Element strides in storage order (C: last axis fastest; Fortran: first axis fastest).
  const strides = new Array<number>(rank).fill(1);
  const axes = [...Array(rank).keys()];
  const order = t.order === 'F' ? axes : axes.reverse();
  let s = 1;
  for (const a of order) {
    strides[a] = s;
    s *= t.shape[a]!;
  }
  return { rows, cols, strides };
}

/** Reads `length` bytes at tensor byte `offset`, across the tensor's pieces (not deflated ones). */
async function readSpan(opener: FileOpener, t: TensorRef, offset: number, target: Uint8Array): Promise<void> {
  let at = 0;
  let base = 0;
  for (const r of tensorRanges(t)) {
    const lo = Math.max(offset + at, base);
    const hi = Math.min(offset + target.length, base + r.length);
    if (lo < hi) {
      const src = await opener.open(r.file);
      try {
        await readExactly(src, r.offset + (lo - base), target.subarray(lo - offset, hi - offset));
      } finally {
        await src.close();
      }
      at = hi - offset;
    }
    base += r.length;
    if (at >= target.length) return;
  }
}

export async function tensorSlice(opener: FileOpener, t: TensorRef, q: SliceRequest, signal?: AbortSignal): Promise<Slice> {
  const size = dtypeBytes(t.dtype);
  if (size === undefined) throw new JaxServeError('E_UNSUPPORTED', `values of ${t.dtype} tensors cannot be decoded yet.`);
  const { rows, cols, strides } = check(t, q);
  const values = new Float64Array(rows * cols);
  if (rows * cols === 0) return { rows, cols, values };
  const rank = t.shape.length;
  let base = 0;
  q.index.forEach((v, k) => {
    if (k !== q.rowAxis && k !== q.colAxis) base += v * strides[k]!;
  });
  const rowStride = rank > 1 ? strides[q.rowAxis]! : 0;
  const colStride = rank > 0 ? strides[q.colAxis]! : 0;
  const at = (r: number, c: number) => base + (q.rowStart + r) * rowStride + (q.colStart + c) * colStride;

  if (tensorRanges(t).some((r) => r.deflate)) {
    // Compressed: one sequential pass, keeping the window's elements.
    const want = new Map<number, number>();
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) want.set(at(r, c), r * cols + c);
    let element = 0;
    for await (const decoded of readTensorValues(opener, t, { signal })) {
      for (let i = 0; i < decoded.length; i++) {
        const slot = want.get(element + i);
        if (slot !== undefined) values[slot] = decoded[i]!;
      }
      element += decoded.length;
    }
    return { rows, cols, values };
  }

  const swap = t.bigEndian && size > 1;
  const decode = (b: Uint8Array) => {
    if (swap) swapInPlace(b, size);
    return decodeChunk(t.dtype, b);
  };
  const span = (cols - 1) * colStride * size + size;
  for (let r = 0; r < rows; r++) {
    throwIfAborted(signal);
    if (span <= RUN_BYTES) {
      const b = new Uint8Array(span);
      await readSpan(opener, t, at(r, 0) * size, b);
      const d = decode(b);
      for (let c = 0; c < cols; c++) values[r * cols + c] = d[c * colStride]!;
    } else {
      for (let c = 0; c < cols; c++) {
        const b = new Uint8Array(size);
        await readSpan(opener, t, at(r, c) * size, b);
        values[r * cols + c] = decode(b)[0]!;
      }
    }
  }
  return { rows, cols, values };
}
