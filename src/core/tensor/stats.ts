/**
 * Exact statistics over every element of a tensor, streamed in chunks so any size fits in memory.
 * Moments use per-chunk two-pass sums merged with Chan's formula: stable for large tensors where a
 * running sum of squares would cancel.
 */
import { parameterCount, type TensorRef } from '../checkpoint';
import type { FileOpener } from '../io/byteSource';
import { codeBits, codeValues, countCodes, statsFromCounts } from './codeCounts';
import { readTensorValues } from './read';
import type { StatsOptions, TensorStats } from './statsResult';

export type { StatsOptions, TensorStats } from './statsResult';

export class StatsAccumulator {
  private count = 0;
  private n = 0;
  private mean = 0;
  private m2 = 0;
  private nan = 0;
  private posInf = 0;
  private negInf = 0;
  private zeros = 0;
  private min = Infinity;
  private max = -Infinity;

  add(values: ArrayLike<number>): void {
    const len = values.length;
    let n = 0;
    let sum = 0;
    let min = this.min;
    let max = this.max;
    for (let i = 0; i < len; i++) {
      const v = values[i]!;
      if (v - v !== 0) {
        // NaN or ±Inf: v - v is NaN for both.
        if (v !== v) this.nan++;
        else if (v > 0) this.posInf++;
        else this.negInf++;
        continue;
      }
      if (v === 0) this.zeros++;
      if (v < min) min = v;
      if (v > max) max = v;
      sum += v;
      n++;
    }
    this.count += len;
    this.min = min;
    this.max = max;
    if (n === 0) return;
    const cMean = sum / n;
    let cM2 = 0;
    for (let i = 0; i < len; i++) {
      const v = values[i]!;
      if (v - v === 0) {
        const d = v - cMean;
        cM2 += d * d;
      }
    }
    const total = this.n + n;
    const delta = cMean - this.mean;
    this.mean += (delta * n) / total;
    this.m2 += cM2 + (delta * delta * this.n * n) / total;
    this.n = total;
  }

  result(): TensorStats {
    const has = this.n > 0;
    return {
      count: this.count,
      finite: this.n,
      nan: this.nan,
      posInf: this.posInf,
      negInf: this.negInf,
      zeros: this.zeros,
      min: has ? this.min : null,
      max: has ? this.max : null,
      mean: has ? this.mean : null,
      std: has ? Math.sqrt(this.m2 / this.n) : null,
    };
  }
}

/** Reads the tensor's bytes in chunks through `opener` and returns its statistics. */
export async function tensorStats(opener: FileOpener, t: TensorRef, opts: StatsOptions = {}): Promise<TensorStats> {
  const acc = new StatsAccumulator();
  if (t.bytes === 0) return acc.result();
  const bits = codeBits(t.dtype);
  if (bits) return statsFromCounts(codeValues(t.dtype, bits), await countCodes(opener, t, bits, opts));
  const perElement = t.bytes / parameterCount(t);
  let done = 0;
  for await (const values of readTensorValues(opener, t, opts)) {
    acc.add(values);
    done += values.length;
    opts.onProgress?.((done * perElement) / t.bytes);
  }
  return acc.result();
}
