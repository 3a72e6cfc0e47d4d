/**
 * What a tensor's statistics are and how they are asked for: the types both the float path
 * (stats.ts) and the counted-codes path (codeCounts.ts) produce and take.
 */
/** How a tensor is read: the chunk size and a cancel. Stated here, not in ./read, so the type-only entry (../types) reaches no Node module. */
export interface ReadOptions {
  chunkBytes?: number;
  signal?: AbortSignal;
}

export interface TensorStats {
  readonly count: number;
  /** Finite elements, over which min/max/mean/std are taken (NaN and ±Inf excluded). */
  readonly finite: number;
  readonly nan: number;
  readonly posInf: number;
  readonly negInf: number;
  readonly zeros: number;
  /** null when no element is finite. */
  readonly min: number | null;
  readonly max: number | null;
  readonly mean: number | null;
  /** Population standard deviation (numpy's default, ddof=0). */
  readonly std: number | null;
}

export interface StatsOptions extends ReadOptions {
  /** Fraction of the tensor's bytes read so far, at most once per chunk. */
  onProgress?: (fraction: number) => void;
}
