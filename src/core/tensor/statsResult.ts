/**
 * What a tensor's statistics and histogram are and how they are asked for: the types both the float
 * path (stats.ts) and the counted-codes path (codeCounts.ts) produce and take, and the webview shows
 * (through ../types.ts; so this file imports no Node module).
 */
import type { ReadOptions } from './readOptions';

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

export interface Histogram {
  /** bins + 1 edges, as numpy.linspace(min, max, bins + 1). */
  readonly edges: readonly number[];
  readonly counts: readonly number[];
}

export interface StatsOptions extends ReadOptions {
  /** Fraction of the tensor's bytes read so far, at most once per chunk. */
  onProgress?: (fraction: number) => void;
}
