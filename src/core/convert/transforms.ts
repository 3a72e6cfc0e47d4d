/**
 * The transforms a conversion rule chains: data, so one plan can be shown, checked and executed.
 * Shape rules follow ../shared/reference/formats-and-layouts.md §1.1 (explicit axes, never a bare
 * `.T` on more than two dimensions). Byte moves (transpose, reshape, select) are exact for every
 * dtype; arithmetic (scale, add, cast) decodes to numbers and encodes back.
 */
import { JaxServeError } from '../errors';
import { decodeChunk } from '../tensor/decode';
import { DTYPE_BITS, dtypeBytes, type DType } from '../dtype';
import { encodeValues } from './encode';

export type Transform =
  /** Output axis k is input axis axes[k] (numpy's transpose). */
  | { readonly op: 'transpose'; readonly axes: readonly number[] }
  /** Same elements in the same order, another shape (one entry may be -1). */
  | { readonly op: 'reshape'; readonly shape: readonly number[] }
  /** Axes `axis` and `axis + 1` become one (an einsum kernel's heads × head_dim -> rows). */
  | { readonly op: 'merge'; readonly axis: number }
  /** The inverse: `axis` becomes (n / size, size). */
  | { readonly op: 'split'; readonly axis: number; readonly size: number }
  /** One index of an axis, which disappears (a scanned layer, one expert, k of a fused kv). */
  | { readonly op: 'select'; readonly axis: number; readonly index: number }
  /**
   * RoPE pairing, per head: along `axis` (head_dim), interleaved pairs (2i, 2i+1) become
   * half-split pairs (i, i + H/2): evens first, then odds (reference §8.2). `interleave` undoes it.
   */
  | { readonly op: 'deinterleave'; readonly axis: number }
  | { readonly op: 'interleave'; readonly axis: number }
  /** Multiply every element (undo a query pre-scale). */
  | { readonly op: 'scale'; readonly factor: number }
  /** Add a constant to every element (a norm stored as scale-1). */
  | { readonly op: 'add'; readonly value: number }
  /** Change the element type (f32 -> bf16 rounds to nearest even). */
  | { readonly op: 'cast'; readonly dtype: DType };

export interface Layout {
  readonly shape: readonly number[];
  readonly dtype: DType;
}

const count = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Bytes a tensor of this layout holds. */
export function layoutBytes(l: Layout): number {
  return (count(l.shape) * DTYPE_BITS[l.dtype]) / 8;
}

function bad(t: Transform, from: Layout, why: string): JaxServeError {
  return new JaxServeError('E_USAGE', `${describeTransform(t)} cannot apply to ${from.dtype}${JSON.stringify(from.shape)}: ${why}.`);
}

/** The layout after one transform; throws (naming both) when it does not apply. */
export function transformLayout(from: Layout, t: Transform): Layout {
  const { shape } = from;
  switch (t.op) {
    case 'transpose': {
      const ok = t.axes.length === shape.length && [...t.axes].sort((a, b) => a - b).every((a, i) => a === i);
      if (!ok) throw bad(t, from, `the axes must be a permutation of 0..${shape.length - 1}`);
      return { shape: t.axes.map((a) => shape[a]!), dtype: from.dtype };
    }
    case 'reshape': {
      const free = t.shape.filter((d) => d === -1).length;
      const known = count(t.shape.filter((d) => d !== -1));
      if (free > 1 || t.shape.some((d) => d < -1 || !Number.isInteger(d))) throw bad(t, from, 'at most one -1 and whole sizes');
      const n = count(shape);
      const out = free ? t.shape.map((d) => (d === -1 ? n / known : d)) : [...t.shape];
      if (count(out) !== n || out.some((d) => !Number.isInteger(d))) throw bad(t, from, `${n} elements do not fill ${JSON.stringify(t.shape)}`);
      return { shape: out, dtype: from.dtype };
    }
    case 'merge':
      if (!(Number.isInteger(t.axis) && t.axis >= 0 && t.axis + 1 < shape.length)) throw bad(t, from, `axes ${t.axis} and ${t.axis + 1} must both exist`);
      return { shape: [...shape.slice(0, t.axis), shape[t.axis]! * shape[t.axis + 1]!, ...shape.slice(t.axis + 2)], dtype: from.dtype };
    case 'split': {
      const n = shape[t.axis];
      if (n === undefined || !(Number.isInteger(t.size) && t.size > 0) || n % t.size !== 0) throw bad(t, from, `axis ${t.axis} must exist and divide by ${t.size}`);
      return { shape: [...shape.slice(0, t.axis), n / t.size, t.size, ...shape.slice(t.axis + 1)], dtype: from.dtype };
    }
    case 'deinterleave':
    case 'interleave':
      if (!(Number.isInteger(t.axis) && t.axis >= 0 && t.axis < shape.length)) throw bad(t, from, 'no such axis');
      if (shape[t.axis]! % 2 !== 0) throw bad(t, from, `RoPE pairs need an even head_dim, axis ${t.axis} has ${shape[t.axis]}`);
      return from;
    case 'select':
      if (!(t.axis >= 0 && t.axis < shape.length)) throw bad(t, from, 'no such axis');
      if (!(t.index >= 0 && t.index < shape[t.axis]!)) throw bad(t, from, `index outside 0..${shape[t.axis]! - 1}`);
      return { shape: shape.filter((_, i) => i !== t.axis), dtype: from.dtype };
    case 'scale':
    case 'add':
      if (!isFloat(from.dtype)) throw bad(t, from, 'arithmetic applies to floating-point tensors');
      return from;
    case 'cast':
      if (!isFloat(from.dtype) || !isFloat(t.dtype)) throw bad(t, from, 'casts are between F32, F16 and BF16');
      return { shape, dtype: t.dtype };
  }
}

export function layoutAfter(from: Layout, transforms: readonly Transform[]): Layout {
  return transforms.reduce(transformLayout, from);
}

function isFloat(d: DType): boolean {
  return d === 'F32' || d === 'F16' || d === 'BF16' || d === 'F64';
}

export function describeTransform(t: Transform): string {
  switch (t.op) {
    case 'transpose':
      return `transpose(${t.axes.join(', ')})`;
    case 'reshape':
      return `reshape(${t.shape.join(', ')})`;
    case 'merge':
      return `merge(axes ${t.axis}, ${t.axis + 1})`;
    case 'split':
      return `split(axis ${t.axis}, …×${t.size})`;
    case 'select':
      return `select(axis ${t.axis}, index ${t.index})`;
    case 'deinterleave':
      return `rope-deinterleave(axis ${t.axis})`;
    case 'interleave':
      return `rope-interleave(axis ${t.axis})`;
    case 'scale':
      return `scale(×${t.factor})`;
    case 'add':
      return `add(${t.value})`;
    case 'cast':
      return `cast(${t.dtype})`;
  }
}

/** Row-major strides, in elements. */
function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/**
 * Moves elements so that output axis k is input axis `axes[k]`, into `into` when given (a buffer
 * reused across tiles: fresh multi-MB allocations cost a page fault per 4 KiB). The innermost output axis is copied
 * in a tight loop; element sizes 2 and 4 use typed arrays (bf16/f16 and f32 are what models hold).
 */
export function transposeBytes(src: Uint8Array, shape: readonly number[], axes: readonly number[], elementBytes: number, into?: Uint8Array): Uint8Array {
  const rank = shape.length;
  if (rank === 2 && axes[0] === 1 && src.length > 0) {
    const fast = transpose2d(src, shape[0]!, shape[1]!, elementBytes, into);
    if (fast) return fast;
  }
  const out = into ?? new Uint8Array(src.length);
  if (src.length === 0 || rank === 0) {
    out.set(src);
    return out;
  }
  const inStrides = strides(shape);
  const outShape = axes.map((a) => shape[a]!);
  const gather = axes.map((a) => inStrides[a]!); // input stride of each output axis
  const inner = outShape[rank - 1]!;
  const innerStride = gather[rank - 1]!;
  const rows = src.length / elementBytes / inner;
  const idx = new Array<number>(rank - 1).fill(0);
  const view = (b: Uint8Array) =>
    elementBytes === 4 && b.byteOffset % 4 === 0 ? new Uint32Array(b.buffer, b.byteOffset, b.length / 4) : elementBytes === 2 && b.byteOffset % 2 === 0 ? new Uint16Array(b.buffer, b.byteOffset, b.length / 2) : undefined;
  const s = view(src);
  const o = view(out);
  let base = 0; // input element offset of the current output row
  for (let r = 0, w = 0; r < rows; r++) {
    if (s && o) {
      for (let k = 0, from = base; k < inner; k++, from += innerStride) o[w++] = s[from]!;
    } else {
      for (let k = 0, from = base; k < inner; k++, from += innerStride) {
        out.set(src.subarray(from * elementBytes, (from + 1) * elementBytes), w * elementBytes);
        w++;
      }
    }
    // Advance the outer output index like an odometer, updating the input offset incrementally.
    for (let ax = rank - 2; ax >= 0; ax--) {
      idx[ax]!++;
      base += gather[ax]!;
      if (idx[ax]! < outShape[ax]!) break;
      base -= gather[ax]! * outShape[ax]!;
      idx[ax] = 0;
    }
  }
  return out;
}

/** Side of the square blocks a 2-D transpose moves at a time: the block stays in cache. */
const BLOCK = 128;

/*
 * The Dense-kernel case, (rows, cols) -> (cols, rows), in square blocks, writing each output row's
 * piece in order, four source columns at a time (four output rows filled in step: each source row's
 * cache line serves four reads; 1.7× the pace of one column at a time). There is one copy per
 * element width on purpose: V8 compiles element access for the one typed-array kind it sees, and a
 * shared loop over several kinds runs ~3× slower.
 */
function transpose2d32(s: Uint32Array, o: Uint32Array, rows: number, cols: number): void {
  for (let c0 = 0; c0 < cols; c0 += BLOCK) {
    const c1 = Math.min(cols, c0 + BLOCK);
    const c4 = c0 + ((c1 - c0) & ~3);
    for (let r0 = 0; r0 < rows; r0 += BLOCK) {
      const r1 = Math.min(rows, r0 + BLOCK);
      let c = c0;
      for (; c < c4; c += 4) {
        let w0 = c * rows + r0;
        let w1 = w0 + rows;
        let w2 = w1 + rows;
        let w3 = w2 + rows;
        for (let r = r0, a = r0 * cols + c; r < r1; r++, a += cols) {
          o[w0++] = s[a]!;
          o[w1++] = s[a + 1]!;
          o[w2++] = s[a + 2]!;
          o[w3++] = s[a + 3]!;
        }
      }
      for (; c < c1; c++) for (let r = r0, w = c * rows + r0, a = r0 * cols + c; r < r1; r++, w++, a += cols) o[w] = s[a]!;
    }
  }
}

function transpose2d16(s: Uint16Array, o: Uint16Array, rows: number, cols: number): void {
  for (let c0 = 0; c0 < cols; c0 += BLOCK) {
    const c1 = Math.min(cols, c0 + BLOCK);
    const c4 = c0 + ((c1 - c0) & ~3);
    for (let r0 = 0; r0 < rows; r0 += BLOCK) {
      const r1 = Math.min(rows, r0 + BLOCK);
      let c = c0;
      for (; c < c4; c += 4) {
        let w0 = c * rows + r0;
        let w1 = w0 + rows;
        let w2 = w1 + rows;
        let w3 = w2 + rows;
        for (let r = r0, a = r0 * cols + c; r < r1; r++, a += cols) {
          o[w0++] = s[a]!;
          o[w1++] = s[a + 1]!;
          o[w2++] = s[a + 2]!;
          o[w3++] = s[a + 3]!;
        }
      }
      for (; c < c1; c++) for (let r = r0, w = c * rows + r0, a = r0 * cols + c; r < r1; r++, w++, a += cols) o[w] = s[a]!;
    }
  }
}

function transpose2d(src: Uint8Array, rows: number, cols: number, elementBytes: number, into?: Uint8Array): Uint8Array | undefined {
  const out = into ?? new Uint8Array(src.length);
  if (out.byteOffset % elementBytes !== 0) return undefined;
  if (elementBytes === 4 && src.byteOffset % 4 === 0) transpose2d32(new Uint32Array(src.buffer, src.byteOffset, src.length / 4), new Uint32Array(out.buffer, out.byteOffset, out.length / 4), rows, cols);
  else if (elementBytes === 2 && src.byteOffset % 2 === 0) transpose2d16(new Uint16Array(src.buffer, src.byteOffset, src.length / 2), new Uint16Array(out.buffer, out.byteOffset, out.length / 2), rows, cols);
  else return undefined;
  return out;
}

/** Applies the transforms to a whole tensor held in memory (bytes little-endian, row-major). */
export function applyTransforms(bytes: Uint8Array, from: Layout, transforms: readonly Transform[]): { bytes: Uint8Array; layout: Layout } {
  let cur = bytes;
  let layout = from;
  for (const t of transforms) {
    const next = transformLayout(layout, t);
    const size = dtypeBytes(layout.dtype)!;
    switch (t.op) {
      case 'transpose':
        cur = transposeBytes(cur, layout.shape, t.axes, size);
        break;
      case 'reshape':
      case 'merge':
      case 'split':
        break;
      case 'deinterleave':
      case 'interleave':
        cur = pairPermute(cur, layout.shape, t.axis, size, t.op === 'deinterleave');
        break;
      case 'select': {
        // Elements of one index along an axis: `outer` runs of `inner` contiguous elements.
        const outer = count(layout.shape.slice(0, t.axis));
        const inner = count(layout.shape.slice(t.axis + 1)) * size;
        const n = layout.shape[t.axis]!;
        const out = new Uint8Array(outer * inner);
        for (let i = 0; i < outer; i++) out.set(cur.subarray((i * n + t.index) * inner, (i * n + t.index + 1) * inner), i * inner);
        cur = out;
        break;
      }
      case 'scale':
      case 'add':
      case 'cast': {
        const values = Float64Array.from(decodeChunk(layout.dtype, cur));
        if (t.op === 'scale') for (let i = 0; i < values.length; i++) values[i]! *= t.factor;
        if (t.op === 'add') for (let i = 0; i < values.length; i++) values[i]! += t.value;
        cur = encodeValues(next.dtype, values);
        break;
      }
    }
    layout = next;
  }
  return { bytes: cur, layout };
}

/**
 * Source position, along an axis of length n, of output position j: de-interleaving takes evens
 * then odds (j < n/2 ? 2j : 2(j - n/2) + 1); interleaving is its inverse.
 */
export function pairSource(j: number, n: number, deinterleave: boolean): number {
  const half = n / 2;
  return deinterleave ? (j < half ? 2 * j : 2 * (j - half) + 1) : j % 2 === 0 ? j / 2 : half + (j - 1) / 2;
}

/** Reorders the elements along `axis` in blocks of its trailing size (RoPE de/interleave). */
export function pairPermute(src: Uint8Array, shape: readonly number[], axis: number, elementBytes: number, deinterleave: boolean): Uint8Array {
  const n = shape[axis]!;
  const inner = count(shape.slice(axis + 1)) * elementBytes;
  const outer = count(shape.slice(0, axis));
  const out = new Uint8Array(src.length);
  const from = Int32Array.from({ length: n }, (_, j) => pairSource(j, n, deinterleave));
  // The RoPE case permutes the last axis, one element at a time: gather through a typed view.
  const view = (b: Uint8Array) => (inner === 4 && b.byteOffset % 4 === 0 ? new Uint32Array(b.buffer, b.byteOffset, b.length / 4) : inner === 2 && b.byteOffset % 2 === 0 ? new Uint16Array(b.buffer, b.byteOffset, b.length / 2) : undefined);
  const s = view(src);
  const d = view(out);
  if (s && d) {
    for (let base = 0; base < outer * n; base += n) for (let j = 0; j < n; j++) d[base + j] = s[base + from[j]!]!;
    return out;
  }
  for (let o = 0; o < outer; o++) {
    const base = o * n * inner;
    for (let j = 0; j < n; j++) out.set(src.subarray(base + from[j]! * inner, base + (from[j]! + 1) * inner), base + j * inner);
  }
  return out;
}
