/**
 * Histograms over every finite element, with bins between the exact min and max. Bin assignment
 * is numpy.histogram's on the values as float64 (edges from linspace, the same index arithmetic
 * and edge corrections, the last bin closed), so counts equal
 * `np.histogram(a.astype(np.float64), bins, range=(min, max))` element for element.
 */
import { parameterCount, type TensorRef } from '../checkpoint';
import type { FileOpener } from '../io/byteSource';
import { codeBits, codeValues, countCodes, statsFromCounts } from './codeCounts';
import { readTensorValues } from './read';
import { tensorStats, type StatsOptions, type TensorStats } from './stats';
import type { Histogram } from './statsResult';

export type { Histogram } from './statsResult';

/** numpy.linspace(start, stop, num) in float64, last point exactly `stop`. */
export function linspace(start: number, stop: number, num: number): number[] {
  const div = num - 1;
  const step = (stop - start) / div;
  const out = Array.from({ length: num }, (_, i) => (step === 0 ? (i / div) * (stop - start) + start : i * step + start));
  if (num > 1) out[num - 1] = stop;
  return out;
}

export class HistogramAccumulator {
  readonly edges: number[];
  readonly counts: number[];
  private readonly lo: number;
  private readonly hi: number;
  private readonly width: number;

  constructor(min: number, max: number, readonly bins: number) {
    // numpy widens a zero-width range by 0.5 on each side.
    this.lo = min === max ? min - 0.5 : min;
    this.hi = min === max ? max + 0.5 : max;
    this.edges = linspace(this.lo, this.hi, bins + 1);
    this.counts = new Array<number>(bins).fill(0);
    this.width = this.hi - this.lo;
  }

  /**
   * Counts every value: addCount inlined, this loop being the whole second pass over a tensor. It
   * multiplies by bins/width where numpy divides by width: the guess may differ by one bin, and
   * the edge corrections below (numpy's own) land both on the same bin.
   */
  add(values: ArrayLike<number>): void {
    const { lo, hi, bins, edges } = this;
    const counts = this.counts;
    const last = bins - 1;
    const scale = bins / this.width;
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (!(v >= lo && v <= hi)) continue;
      let k = Math.floor((v - lo) * scale);
      if (k === bins) k--;
      if (v < edges[k]!) k--;
      else if (k !== last && v >= edges[k + 1]!) k++;
      counts[k]!++;
    }
  }

  /** Counts `value` `count` times (the code-count path adds each distinct value once). */
  addCount(v: number, count: number): void {
    const { lo, hi, width, bins, edges, counts } = this;
    if (!(v >= lo && v <= hi)) return; // NaN, ±Inf and out-of-range values are not counted
    let k = Math.floor(((v - lo) / width) * bins);
    if (k === bins) k--;
    if (v < edges[k]!) k--;
    else if (k !== bins - 1 && v >= edges[k + 1]!) k++;
    counts[k]! += count;
  }
}

/**
 * Two passes: exact statistics first (the bin range), then the counts. `onProgress` sees the whole
 * job as one fraction (each pass half of it, or all of it when `stats` is given).
 */
export async function tensorHistogram(
  opener: FileOpener,
  t: TensorRef,
  bins = 64,
  opts: StatsOptions & { stats?: TensorStats } = {},
): Promise<{ stats: TensorStats; histogram: Histogram | null }> {
  const report = opts.onProgress;
  const bits = codeBits(t.dtype);
  if (bits && !opts.stats) {
    // Narrow dtypes: one pass of code counts gives the statistics and the histogram.
    const values = codeValues(t.dtype, bits);
    const counts = await countCodes(opener, t, bits, opts);
    const stats = statsFromCounts(values, counts);
    if (stats.min === null || stats.max === null) return { stats, histogram: null };
    const acc = new HistogramAccumulator(stats.min, stats.max, bins);
    for (let k = 0; k < counts.length; k++) if (counts[k]! > 0) acc.addCount(values[k]!, counts[k]!);
    return { stats, histogram: { edges: acc.edges, counts: acc.counts } };
  }
  const firstPass = opts.stats ? 0 : 0.5;
  const stats = opts.stats ?? (await tensorStats(opener, t, { ...opts, onProgress: report && ((f) => report(f * firstPass)) }));
  if (stats.min === null || stats.max === null) {
    report?.(1);
    return { stats, histogram: null };
  }
  const acc = new HistogramAccumulator(stats.min, stats.max, bins);
  const perElement = t.bytes / Math.max(1, parameterCount(t));
  let done = 0;
  for await (const values of readTensorValues(opener, t, opts)) {
    acc.add(values);
    done += values.length;
    report?.(firstPass + (1 - firstPass) * ((done * perElement) / t.bytes));
  }
  return { stats, histogram: { edges: acc.edges, counts: acc.counts } };
}
