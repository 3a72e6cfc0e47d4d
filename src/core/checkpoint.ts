import type { FileOpener } from './io/byteSource';
import type { DType } from './dtype';
import { naturalCompare } from './naturalOrder';

/** A key in a pytree path: dict keys are strings, list/tuple/layer indices numbers. */
export type PathKey = string | number;

/** Where one tensor's bytes lie: a contiguous little-endian row-major run in one file. */
export interface ByteRange {
  /** The file, as given to the opener (absolute or relative to the checkpoint). */
  readonly file: string;
  /** Absolute offset of the first byte in the file. */
  readonly offset: number;
  /** Bytes of tensor data this range yields (after inflating, when `deflate` is set). */
  readonly length: number;
  /**
   * Set when the bytes are a raw-deflate stream (a compressed .npz member) starting at `offset`:
   * inflate `compressedLength` bytes, drop the first `skip` (the .npy header), keep `length`.
   * `crc32` is the zip directory's checksum of the whole inflated member (raw deflate has none).
   */
  readonly deflate?: { readonly compressedLength: number; readonly skip: number; readonly crc32?: number };
}

/** One tensor of a checkpoint: header facts only; bytes are read from `source` when asked for. */
export interface TensorRef {
  /** The tensor's own name: the safetensors key, or pytree keys joined with '.'. */
  readonly name: string;
  readonly path: readonly PathKey[];
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly bytes: number;
  /** Where the bytes lie; for a tensor stored in pieces (flax chunked arrays), the first piece. */
  readonly source: ByteRange;
  /** All pieces in order, when there is more than one; the tensor is their concatenation. */
  readonly segments?: readonly ByteRange[];
  /** Elements stored big-endian (a numpy '>f4' array); readers swap them to little-endian. */
  readonly bigEndian?: boolean;
  /** 'F' when elements are stored in Fortran (column-major) order; row-major otherwise. */
  readonly order?: 'C' | 'F';
}

/** The byte ranges of a tensor, in order. */
export function tensorRanges(t: TensorRef): readonly ByteRange[] {
  return t.segments ?? [t.source];
}

/** A leaf that is not an array (a Python number, string, None or complex in a Flax state), shown as text. */
export interface ScalarLeaf {
  readonly name: string;
  readonly path: readonly PathKey[];
  readonly value: string;
}

export type CheckpointFormat = 'safetensors' | 'safetensors-sharded' | 'flax-msgpack' | 'flax-msgpack-sharded' | 'npz' | 'npy' | 'orbax';

export interface Checkpoint {
  readonly format: CheckpointFormat;
  /** The path the user opened (a file or an index). */
  readonly location: string;
  /** Every data file, in the order tensors were read. */
  readonly files: readonly string[];
  /** Tensors in file order (for shards: index order of files, header order within each). */
  readonly tensors: readonly TensorRef[];
  /** String metadata (`__metadata__` of safetensors; for an index, its own `metadata`). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Non-array leaves (Flax states may hold step counters, strings, complex numbers). */
  readonly values?: readonly ScalarLeaf[];
  /**
   * Reads this checkpoint's byte ranges when they are not plain files (Orbax leaves come through
   * the Python sidecar). Use `valueOpener()` rather than reading it directly.
   */
  readonly opener?: FileOpener;
}

/** The opener that reads `ck`'s tensor bytes: its own, or the one it was opened with. */
export function valueOpener(ck: Checkpoint, fallback: FileOpener): FileOpener {
  return ck.opener ?? fallback;
}

/**
 * Splits a flat name into pytree keys: '.'-separated, all-digit parts become numbers, so
 * `model.layers.0.mlp` -> ['model', 'layers', 0, 'mlp'].
 */
export function pathFromName(name: string): PathKey[] {
  // As name.split('.').map(pathKey), without the array of strings between (trees split 100,000 names).
  const keys: PathKey[] = [];
  let from = 0;
  for (let dot = name.indexOf('.'); dot !== -1; dot = name.indexOf('.', from)) {
    keys.push(pathKey(name.slice(from, dot)));
    from = dot + 1;
  }
  keys.push(pathKey(name.slice(from)));
  return keys;
}

/** '12' -> 12 (a list index); '012', '1e3', '' and anything else stay strings. */
export function pathKey(k: string): PathKey {
  const n = k.length;
  if (n === 0 || n > 9 || (n > 1 && k.charCodeAt(0) === 0x30)) return k;
  for (let i = 0; i < n; i++) {
    const c = k.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return k;
  }
  return Number(k);
}

export interface CheckpointSummary {
  readonly tensorCount: number;
  readonly parameterCount: number;
  readonly bytes: number;
  readonly parametersByDtype: Readonly<Partial<Record<DType, number>>>;
}

export function summarize(ck: Checkpoint): CheckpointSummary {
  let params = 0;
  let bytes = 0;
  const byDtype: Partial<Record<DType, number>> = {};
  for (const t of ck.tensors) {
    const n = parameterCount(t);
    params += n;
    bytes += t.bytes;
    byDtype[t.dtype] = (byDtype[t.dtype] ?? 0) + n;
  }
  return { tensorCount: ck.tensors.length, parameterCount: params, bytes, parametersByDtype: byDtype };
}

/**
 * Tensors whose name contains `filter` (case-insensitive), or matches it as a regular expression
 * when written `/…/` (an invalid one is taken as text), in checkpoint order. Views page through the
 * result, so callers compute it once per filter and keep it.
 */
export function filterTensors(ck: Checkpoint, filter: string): readonly TensorRef[] {
  const match = nameMatcher(filter);
  return match ? ck.tensors.filter((t) => match(t.name)) : ck.tensors;
}

/** The test behind filterTensors, for any list of names; undefined when the filter is empty. */
export function nameMatcher(filter: string): ((name: string) => boolean) | undefined {
  const raw = filter.trim();
  if (raw === '') return undefined;
  const re = /^\/(.+)\/$/.exec(raw);
  if (re) {
    try {
      const rx = new RegExp(re[1]!, 'i');
      return (name) => rx.test(name);
    } catch {
      // not a valid expression: match it as text
    }
  }
  const f = raw.toLowerCase();
  return (name) => name.toLowerCase().includes(f);
}

export type TensorSortKey = 'name' | 'dtype' | 'rank' | 'parameters' | 'bytes';

/** A sorted copy, names in natural order (layers.2 before layers.10); ties keep file order (Array.prototype.sort is stable). */
export function sortTensors(tensors: readonly TensorRef[], key: TensorSortKey, descending: boolean): TensorRef[] {
  const sign = descending ? -1 : 1;
  if (key === 'name') return [...tensors].sort((a, b) => sign * naturalCompare(a.name, b.name));
  const value = (t: TensorRef): string | number => (key === 'dtype' ? t.dtype : key === 'rank' ? t.shape.length : key === 'parameters' ? parameterCount(t) : t.bytes);
  return [...tensors].sort((a, b) => {
    const x = value(a);
    const y = value(b);
    return sign * (x < y ? -1 : x > y ? 1 : 0);
  });
}

export function parameterCount(t: TensorRef): number {
  return t.shape.reduce((a, b) => a * b, 1);
}
