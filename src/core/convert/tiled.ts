/**
 * Tensors larger than the memory budget (a 1 GB lm_head, a scanned (D, L, N, H) kernel) are
 * converted in pieces so peak memory stays bounded whatever the model size:
 *  - chains without a transpose (renames, select of a scanned layer, reshape, RoPE pairing on the
 *    last axis, scale/add/cast) stream the source in order, a budget's worth at a time;
 *  - chains whose only reordering is a final 2-D transpose read square-ish blocks of the source
 *    matrix, transpose each in memory and write its rows to their places in the output (positioned
 *    writes), so a 128k-column lm_head kernel is not written a few bytes at a time.
 * Anything else over the budget is refused with the tensor's name and size, never loaded whole.
 */
import type { TensorRef } from '../checkpoint';
import { JaxServeError, throwIfAborted } from '../errors';
import type { FileOpener } from '../io/byteSource';
import type { TensorData } from '../formats/safetensors/writer';
import { dtypeBytes } from '../dtype';
import { positionable, SourceReader } from '../tensor/sourceReader';
import type { PlannedTensor } from './plan';
import { applyTransforms, describeTransform, layoutAfter, pairPermute, transformLayout, transposeBytes, type Layout, type Transform } from './transforms';

/**
 * Tensors up to this size are converted whole (source, transposed and cast copies: about 3× in
 * memory); larger ones in tiles of about this size. 96 MiB, with the look-ahead, keeps the peak under the 512 MB bar.
 */
export const DEFAULT_TILE_BUDGET_BYTES = 96 << 20;

/** Row reads of a tile issued together. */
const READS_IN_FLIGHT = 16;

/** The reading part of a chain: which elements of the source, in which order, before any 2-D transpose. */
interface Shape2D {
  /** Source element index of slab element e (the slab is the source after `select`, row-major). */
  readonly slabToSource: (e: number) => number;
  /** Slab elements per contiguous run in the source. */
  readonly run: number;
  readonly rows: number;
  readonly cols: number;
}

type Select = Extract<Transform, { op: 'select' }>;
type Pairing = Extract<Transform, { op: 'deinterleave' | 'interleave' }>;

/** A chain split into the parts the tiled executor runs. */
interface Analysis {
  /** Leading selects (one layer of a scanned kernel; one expert of one layer of a scanned stack). */
  readonly selects: readonly Select[];
  /** RoPE pairing on the last axis (length `pairLength`), applied to whole runs of that axis. */
  readonly pairing?: Pairing;
  readonly pairLength: number;
  readonly transposed: boolean;
  /**
   * A transpose of the last two axes only, (…, r, c) -> (…, c, r) (Gemma's (N, D, H) -> (N, H, D)):
   * `batch` matrices of r × c, each whole and contiguous in source and output.
   */
  readonly batched?: { readonly rows: number; readonly cols: number };
  readonly after: Transform[];
  readonly mid: Layout;
}

/**
 * Splits a chain into [select…] [pairing on the last axis?] [reshape/merge/split…]
 * [transpose(1,0)?] [elementwise…]; undefined when it has another shape (a transpose of more than
 * two axes, or one before a select).
 */
function analyse(p: Pick<PlannedTensor, 'source' | 'transforms'>): Analysis | undefined {
  let i = 0;
  const ts = p.transforms;
  let layout: Layout = p.source;
  const selects: Select[] = [];
  while (ts[i]?.op === 'select') {
    selects.push(ts[i] as Select);
    layout = transformLayout(layout, ts[i++]!);
  }
  let pairing: Pairing | undefined;
  let pairLength = 1;
  const pt = ts[i];
  if ((pt?.op === 'deinterleave' || pt?.op === 'interleave') && pt.axis === layout.shape.length - 1) {
    pairing = pt;
    pairLength = layout.shape[pt.axis]!;
    i++;
  }
  while (ts[i]?.op === 'reshape' || ts[i]?.op === 'merge' || ts[i]?.op === 'split') layout = transformLayout(layout, ts[i++]!);
  let transposed = false;
  let batched: Analysis['batched'];
  const t = ts[i];
  const rank = layout.shape.length;
  if (t?.op === 'transpose' && rank > 2 && !pairing && t.axes.every((a, k) => (k < rank - 2 ? a === k : a === 2 * rank - 3 - k))) {
    batched = { rows: layout.shape[rank - 2]!, cols: layout.shape[rank - 1]! };
    layout = transformLayout(layout, ts[i++]!);
    while (ts[i]?.op === 'reshape' || ts[i]?.op === 'merge' || ts[i]?.op === 'split') layout = transformLayout(layout, ts[i++]!);
  } else if (t?.op === 'transpose') {
    if (rank !== 2 || t.axes[0] !== 1) return undefined;
    // Pairing runs must not straddle the column blocks the transpose reads.
    if (layout.shape[1]! % pairLength !== 0) return undefined;
    transposed = true;
    i++;
    // Reshapes after the transpose (an import splitting heads back out) move no bytes.
    while (ts[i]?.op === 'reshape' || ts[i]?.op === 'merge' || ts[i]?.op === 'split') i++;
  }
  const after = ts.slice(i);
  if (after.some((x) => x.op !== 'scale' && x.op !== 'add' && x.op !== 'cast')) return undefined;
  return { selects, pairing, pairLength, transposed, batched, after, mid: layout };
}

type Slab = Pick<Shape2D, 'slabToSource' | 'run'>;

/**
 * Where the slab's elements lie in the source, after each select in turn. Each select keeps runs of
 * `inner` (the elements after its axis) together; the runs of two selects are trailing products of
 * one shape, so one divides the other and the slab's runs are the shorter, aligned on their length.
 */
function slabOf(p: Pick<PlannedTensor, 'source'>, selects: readonly Select[]): Slab {
  let slab: Slab = { slabToSource: (e) => e, run: Number.MAX_SAFE_INTEGER };
  let shape = p.source.shape;
  for (const select of selects) {
    const inner = shape.slice(select.axis + 1).reduce((a, b) => a * b, 1);
    const n = shape[select.axis]!;
    const outer = slab.slabToSource;
    slab = { slabToSource: (e) => outer((Math.floor(e / inner) * n + select.index) * inner + (e % inner)), run: Math.min(slab.run, inner) };
    shape = shape.filter((_, k) => k !== select.axis);
  }
  return slab;
}

/**
 * Runs this short, when the source bytes from the first to the last fit SPAN_READ_BYTES, are taken
 * from one read of those bytes: one layer of a scanned norm (D, L) is D runs of one element.
 */
const SHORT_RUN_BYTES = 4 << 10;
const SPAN_READ_BYTES = 1 << 20;

/** Where the run holding slab element e ends, at most at `end`. */
function runEnd(slab: Slab, e: number, end: number): number {
  return slab.run === Number.MAX_SAFE_INTEGER ? end : Math.min(end, (Math.floor(e / slab.run) + 1) * slab.run);
}

/** Where slab elements [from, from + count) lie when they are short runs worth one read of their span (first element, bytes). */
function shortRuns(slab: Slab, from: number, count: number, size: number): { first: number; span: number } | undefined {
  if (slab.run * size >= SHORT_RUN_BYTES || count <= slab.run) return undefined;
  const first = slab.slabToSource(from);
  const span = (slab.slabToSource(from + count - 1) + 1 - first) * size;
  return span <= SPAN_READ_BYTES ? { first, span } : undefined;
}

/** Copies slab elements [from, from + count) out of `bytes`, their span read from source element `first`. */
function runsOfSpan(slab: Slab, from: number, count: number, size: number, bytes: Uint8Array, first: number, out: Uint8Array): void {
  for (let e = from; e < from + count; ) {
    const to = runEnd(slab, e, from + count);
    const at = (slab.slabToSource(e) - first) * size;
    out.set(bytes.subarray(at, at + (to - e) * size), (e - from) * size);
    e = to;
  }
}

/** Reads slab elements [from, from + count) into a new buffer, run by run. */
async function readSlab(reader: SourceReader, slab: Slab, from: number, count: number, size: number, into?: Uint8Array): Promise<Uint8Array> {
  const out = into ? into.subarray(0, count * size) : new Uint8Array(count * size);
  const short = shortRuns(slab, from, count, size);
  if (short) {
    const bytes = new Uint8Array(short.span);
    await reader.read(short.first * size, bytes);
    runsOfSpan(slab, from, count, size, bytes, short.first, out);
    return out;
  }
  // Runs (one per index of the axes before a selected one) are read READS_IN_FLIGHT at a time.
  let pending: Promise<void>[] = [];
  let e = from;
  while (e < from + count) {
    const to = runEnd(slab, e, from + count);
    pending.push(reader.read(slab.slabToSource(e) * size, out.subarray((e - from) * size, (to - from) * size)));
    if (pending.length >= READS_IN_FLIGHT) {
      await Promise.all(pending);
      pending = [];
    }
    e = to;
  }
  await Promise.all(pending);
  return out;
}

/** As readSlab, into `out`, with the reader's readNow (where its readsNow said yes for a row's bytes and for SPAN_READ_BYTES). */
function readSlabNow(reader: SourceReader, slab: Slab, from: number, count: number, size: number, out: Uint8Array): void {
  const short = shortRuns(slab, from, count, size);
  if (short) {
    const bytes = new Uint8Array(short.span);
    reader.readNow(short.first * size, bytes);
    runsOfSpan(slab, from, count, size, bytes, short.first, out);
    return;
  }
  for (let e = from; e < from + count; ) {
    const to = runEnd(slab, e, from + count);
    reader.readNow(slab.slabToSource(e) * size, out.subarray((e - from) * size, (to - from) * size));
    e = to;
  }
}

/** Bytes of a tensor's output at `offset` (from the tensor's first byte). */
export interface Piece {
  readonly offset: number;
  readonly bytes: Uint8Array;
}

/** Working buffers of one tile: `read` for the source bytes, `out` for the reordered ones (at least readBytes / outBytes). */
export interface TileBuffers {
  readonly read: Uint8Array;
  readonly out: Uint8Array;
}

/**
 * A planned tensor's output cut into tiles that can be made in any order and on any thread (the
 * export's converter threads make them side by side), each within about `budget` bytes of working
 * memory. Tile i's pieces are its bytes and where they go in the output.
 */
export interface TileSet {
  readonly count: number;
  /** Tiles made in index order give their pieces in output order (a stream the msgpack writer can take). */
  readonly ordered: boolean;
  readonly readBytes: number;
  readonly outBytes: number;
  /** Makes tile i; its pieces may be views of `bufs.out` (or of `bufs.read`, for a chain that reorders nothing). */
  make(i: number, reader: SourceReader, bufs: TileBuffers): Promise<Piece[]>;
}

/** What cutting a planned tensor into tiles needs of it. */
export type TiledTensor = Pick<PlannedTensor, 'from' | 'source' | 'target' | 'transforms'>;

/** True when `p`'s chain can run in tiles (see analyse). */
export function tileable(p: Pick<PlannedTensor, 'source' | 'transforms'>): boolean {
  return analyse(p) !== undefined;
}

/** The tiles of `p`, or an error naming it when its chain cannot run in tiles. */
export function tileSet(p: TiledTensor, srcBytes: number, budget: number): TileSet {
  const shape = analyse(p);
  if (!shape) {
    throw new JaxServeError('E_UNSUPPORTED', `${p.from} is ${p.source.dtype}${JSON.stringify(p.source.shape)} (${srcBytes} bytes), over the ${budget}-byte memory budget, and its transforms (${p.transforms.map(describeTransform).join(', ')}) cannot run in tiles yet.`);
  }
  const size = dtypeBytes(p.source.dtype)!;
  const outSize = dtypeBytes(p.target.dtype)!;
  const slab = slabOf(p, shape.selects);
  const total = p.target.shape.reduce((a, b) => a * b, 1);
  const elementwise = (bytes: Uint8Array, count: number) => (shape.after.length ? applyTransforms(bytes, { shape: [count], dtype: p.source.dtype }, shape.after).bytes : bytes);
  const n = shape.pairLength;
  // Whole runs of the paired axis, so each run is reordered in one piece.
  const paired = (bytes: Uint8Array, count: number) => (shape.pairing ? pairPermute(bytes, [count / n, n], 1, size, shape.pairing.op === 'deinterleave') : bytes);

  if (shape.batched) {
    const { rows, cols } = shape.batched;
    const item = rows * cols;
    const perStep = Math.floor(budget / (2 * item * Math.max(size, outSize)));
    if (perStep < 1) throw new JaxServeError('E_UNSUPPORTED', `${p.from}: one ${rows} × ${cols} matrix of it is over the ${budget}-byte memory budget; raise the budget.`);
    const step = perStep * item;
    const bytes = Math.min(step, total) * size;
    return {
      count: Math.ceil(total / step),
      ordered: true,
      readBytes: bytes,
      outBytes: bytes,
      async make(i, reader, bufs) {
        const e = i * step;
        const k = Math.min(step, total - e);
        const block = await readSlab(reader, slab, e, k, size, bufs.read);
        const out = bufs.out.subarray(0, block.length);
        for (let b = 0; b < k; b += item) transposeBytes(block.subarray(b * size, (b + item) * size), [rows, cols], [1, 0], size, out.subarray(b * size, (b + item) * size));
        return [{ offset: e * outSize, bytes: elementwise(out, k) }];
      },
    };
  }
  if (!shape.transposed) {
    const step = Math.max(n, Math.floor(budget / Math.max(size, outSize) / n) * n);
    const bytes = Math.min(step, total) * size;
    return {
      count: Math.ceil(total / step),
      ordered: true,
      readBytes: bytes,
      outBytes: 0,
      async make(i, reader, bufs) {
        const e = i * step;
        const k = Math.min(step, total - e);
        return [{ offset: e * outSize, bytes: elementwise(paired(await readSlab(reader, slab, e, k, size, bufs.read), k), k) }];
      },
    };
  }
  const [rows, cols] = shape.mid.shape as [number, number];
  // Blocks of all rows × w columns when they fit: the block's transpose is then one contiguous run of
  // the output (w whole output rows), written at once. Taller matrices take square-ish tiles, so the
  // reads (w elements of each source row) and the writes (h elements of each output row) stay large.
  const elems = Math.max(1, Math.floor(budget / (2 * Math.max(size, outSize))));
  const side = Math.max(1, Math.floor(Math.sqrt(elems)));
  const h = rows <= elems ? rows : Math.min(rows, Math.max(side, Math.floor(elems / cols)));
  const w = Math.min(cols, Math.max(n, Math.floor(elems / h / n) * n));
  const across = Math.ceil(cols / w);
  return {
    count: Math.ceil(rows / h) * across,
    // Tiles of all rows are whole output rows, in order.
    ordered: h === rows,
    readBytes: h * w * size,
    outBytes: h * w * size,
    async make(i, reader, bufs) {
      const r0 = Math.floor(i / across) * h;
      const c0 = (i % across) * w;
      const bh = Math.min(h, rows - r0);
      const bw = Math.min(w, cols - c0);
      let block: Uint8Array;
      if (bw === cols) block = await readSlab(reader, slab, r0 * cols, bh * cols, size, bufs.read);
      else {
        block = bufs.read.subarray(0, bh * bw * size);
        const rowBytes = bw * size;
        const row = (r: number) => block.subarray(r * rowBytes, (r + 1) * rowBytes);
        let first = 0;
        // On a converter thread, once the first row has opened the file, the rest are read in
        // place, a system call each (a scanned (F, L, D) kernel's layer is read 2 KiB a row).
        const inPlace = () => reader.readsNow(Math.max(rowBytes, SPAN_READ_BYTES));
        if (bh > 0 && !inPlace()) {
          await readSlab(reader, slab, r0 * cols + c0, bw, size, row(0));
          first = 1;
        }
        if (inPlace()) for (; first < bh; first++) readSlabNow(reader, slab, (r0 + first) * cols + c0, bw, size, row(first));
        // Elsewhere one positioned read per row of the block, READS_IN_FLIGHT at a time: the thread
        // pool overlaps them instead of one round trip each.
        for (let r = first; r < bh; r += READS_IN_FLIGHT) {
          const rs = Array.from({ length: Math.min(READS_IN_FLIGHT, bh - r) }, (_, k) => readSlab(reader, slab, (r0 + r + k) * cols + c0, bw, size, block.subarray((r + k) * bw * size)));
          await Promise.all(rs);
        }
      }
      // (bh, bw) block -> (bw, bh) tile: tile row j is output row c0 + j, columns r0..r0+bh.
      const tile = elementwise(transposeBytes(paired(block, bh * bw), [bh, bw], [1, 0], size, bufs.out.subarray(0, bh * bw * size)), bh * bw);
      if (bh === rows) return [{ offset: c0 * rows * outSize, bytes: tile }];
      return Array.from({ length: bw }, (_, j) => ({ offset: ((c0 + j) * rows + r0) * outSize, bytes: tile.subarray(j * bh * outSize, (j + 1) * bh * outSize) }));
    },
  };
}

/**
 * The output bytes of a planned tensor, produced within `budget` bytes of working memory on this
 * thread, one tile at a time: a chunk stream or a positioned fill for the safetensors writer;
 * `sequential` asks for a stream in every case (the Flax msgpack writer has no positioned writes).
 */
export function tiledTensorData(p: PlannedTensor, src: TensorRef, opener: FileOpener, budget: number, signal?: AbortSignal, sequential = false): TensorData {
  const tiles = tileSet(p, src.bytes, budget);
  // A generator: the next tile (reusing the buffers) is made only once the consumer has written this one.
  async function* pieces(): AsyncGenerator<Piece> {
    const reader = new SourceReader(opener, src);
    const bufs = { read: new Uint8Array(tiles.readBytes), out: new Uint8Array(tiles.outBytes) };
    try {
      for (let i = 0; i < tiles.count; i++) {
        throwIfAborted(signal);
        yield* await tiles.make(i, reader, bufs);
      }
    } finally {
      await reader.close();
    }
  }
  if (tiles.ordered) {
    return (async function* () {
      for await (const piece of pieces()) yield piece.bytes;
    })();
  }
  if (sequential) {
    throw new JaxServeError('E_UNSUPPORTED', `${p.from}: its rows do not fit one ${budget}-byte tile, so it cannot be written in order; write safetensors instead.`);
  }
  return {
    async writeTiles(writeAt: (offset: number, bytes: Uint8Array) => Promise<void>) {
      for await (const piece of pieces()) await writeAt(piece.offset, piece.bytes);
    },
  };
}

/**
 * The bytes of a chain that starts with selects (one layer of a scanned kernel, one expert of one
 * layer of a scanned stack), read from the source run by run instead of whole, then the rest of the
 * chain applied; undefined when the source cannot be read in pieces (deflated, Fortran order), so
 * the caller reads it whole.
 */
export async function convertSelected(p: Pick<PlannedTensor, 'source' | 'transforms'>, src: TensorRef, opener: FileOpener): Promise<Uint8Array | undefined> {
  let k = 0;
  while (p.transforms[k]?.op === 'select') k++;
  if (k === 0 || !positionable(src)) return undefined;
  const selects = p.transforms.slice(0, k) as Select[];
  const reader = new SourceReader(opener, src);
  try {
    const size = dtypeBytes(p.source.dtype)!;
    const sliced = layoutAfter(p.source, selects);
    const bytes = await readSlab(reader, slabOf(p, selects), 0, sliced.shape.reduce((a, b) => a * b, 1), size);
    return applyTransforms(bytes, sliced, p.transforms.slice(k)).bytes;
  } finally {
    await reader.close();
  }
}
