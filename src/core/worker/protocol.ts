/**
 * Messages between the extension host (or CLI) and the value worker: tensor statistics,
 * histograms and slices computed on a worker thread, so a multi-GB tensor never blocks the host,
 * and tensor conversions, so an export uses more than one core.
 */
import type { TensorRef } from '../checkpoint';
import type { PlannedTensor } from '../convert/plan';
import type { Piece, TiledTensor } from '../convert/tiled';
import type { Layout, Transform } from '../convert/transforms';
import type { ValueDiff } from '../diff';
import type { Histogram } from '../tensor/histogram';
import type { Slice, SliceRequest } from '../tensor/slice';
import type { TensorStats } from '../tensor/stats';

/** What the worker needs of a TensorRef: plain data that survives structured cloning (no getters). */
export type TensorData = Pick<TensorRef, 'name' | 'dtype' | 'shape' | 'bytes' | 'source' | 'segments' | 'bigEndian' | 'order'>;

export function tensorData(t: TensorRef): TensorData {
  const { name, dtype, shape, bytes, source, segments, bigEndian, order } = t;
  return { name, dtype, shape, bytes, source, segments, bigEndian, order };
}

/**
 * `convert`: read a whole tensor and apply a conversion chain (the export's second core).
 * `compare`: the job's tensor against `other` (of another checkpoint: its bytes may come through
 * the host on their own), one of them converted by `planned` first.
 */
export type Job =
  /**
   * `firstPass`: stop after the statistics when the histogram would take a second pass (float
   * dtypes; narrow ones get both from one pass anyway). `stats`: known already: only that second pass.
   */
  | { kind: 'stats'; bins: number; firstPass?: boolean; stats?: TensorStats }
  | { kind: 'slice'; request: SliceRequest }
  | { kind: 'convert'; layout: Layout; transforms: readonly Transform[] }
  /** Tile `index` of a tensor cut into tiles of `budget` working bytes (convert/tiled's tileSet). */
  | { kind: 'tile'; planned: TiledTensor; budget: number; index: number }
  | { kind: 'compare'; other: TensorData; otherProxied: boolean; planned?: { side: 'left' | 'right'; planned: PlannedTensor }; rtol: number; atol: number };
/** A stats result's histogram: null when nothing is finite, undefined when a first pass left it out. */
export type JobResult = { kind: 'stats'; stats: TensorStats; histogram: Histogram | null | undefined } | { kind: 'slice'; slice: Slice } | { kind: 'convert'; bytes: Uint8Array } | { kind: 'tile'; pieces: Piece[] } | { kind: 'compare'; diff: ValueDiff };

export type ToWorker =
  /** `proxied`: read bytes through the host (sources that are not plain files, e.g. Orbax leaves). */
  | { type: 'job'; id: number; tensor: TensorData; proxied: boolean; job: Job }
  | { type: 'cancel'; id: number }
  /** A tile's buffers, written and handed back for the next tiles. */
  | { type: 'recycle'; buffers: ArrayBuffer[] }
  | { type: 'readReply'; rid: number; bytes?: Uint8Array; error?: { code: string; message: string } };

export type FromWorker =
  | { type: 'progress'; id: number; fraction: number }
  | { type: 'result'; id: number; result: JobResult }
  | { type: 'error'; id: number; code: string; message: string }
  /** `other`: a range of the compare job's other tensor. */
  | { type: 'read'; id: number; rid: number; file: string; offset: number; length: number; other?: boolean };
