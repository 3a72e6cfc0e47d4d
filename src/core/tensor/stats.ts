/**
 * Exact statistics over every element of a tensor, streamed in chunks so any size fits in memory.
 * Moments use per-block two-pass sums merged with Chan's formula: stable for large tensors where a
 * running sum of squares would cancel.
 */
import { parameterCount, type TensorRef } from '../checkpoint';
import type { FileOpener } from '../io/byteSource';
import { codeBits, codeValues, countCodes, statsFromCounts } from './codeCounts';
import { readTensorValues } from './read';
import type { StatsOptions, TensorStats } from './statsResult';

export type { StatsOptions, TensorStats } from './statsResult';

/**
 * Elements per block of the float32 path: its second pass reads the block again from the L1 cache
 * (16 KiB), and a sum of this many float32 values cannot overflow a float64.
 */
const F32_BLOCK = 4096;

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
    // f32, what nearly every float tensor that is not counted by code holds, gets a loop of its own:
    // one element kind keeps V8's loads monomorphic.
    if (values instanceof Float32Array) this.addFloat32(values);
    else this.addRange(values, 0, values.length);
  }

  /** Elements [from, to): each one classified (NaN, ±Inf, zero), then two passes over the finite ones. */
  private addRange(values: ArrayLike<number>, from: number, to: number): void {
    let n = 0;
    let sum = 0;
    let min = this.min;
    let max = this.max;
    for (let i = from; i < to; i++) {
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
    this.count += to - from;
    this.min = min;
    this.max = max;
    if (n === 0) return;
    const cMean = sum / n;
    let cM2 = 0;
    for (let i = from; i < to; i++) {
      const v = values[i]!;
      if (v - v === 0) {
        const d = v - cMean;
        cM2 += d * d;
      }
    }
    this.merge(n, cMean, cM2);
  }

  /**
   * Blocks of float32, each in two passes with no test per element for NaN or ±Inf: a block holds
   * one exactly when its float64 sum is not finite (no finite sum of the block can overflow), and
   * such a block is done again by addRange. Four partial sums per pass, so each add does not wait
   * on the one before; zeros are counted from the bits, with no branch to mispredict on sparse weights.
   */
  private addFloat32(values: Float32Array): void {
    const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
    const len = values.length;
    for (let start = 0; start < len; start += F32_BLOCK) {
      const end = Math.min(len, start + F32_BLOCK);
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      let zeros = 0;
      let min = Infinity;
      let max = -Infinity;
      let i = start;
      for (; i + 3 < end; i += 4) {
        const a = values[i]!, b = values[i + 1]!, c = values[i + 2]!, d = values[i + 3]!;
        s0 += a;
        s1 += b;
        s2 += c;
        s3 += d;
        if (a < min) min = a;
        if (a > max) max = a;
        if (b < min) min = b;
        if (b > max) max = b;
        if (c < min) min = c;
        if (c > max) max = c;
        if (d < min) min = d;
        if (d > max) max = d;
        // (x - 1) >>> 31 is 1 for x = 0 and 0 for 0 < x < 2^31: ±0 counted, sign bit masked off.
        zeros += (((bits[i]! & 0x7fffffff) - 1) >>> 31) + (((bits[i + 1]! & 0x7fffffff) - 1) >>> 31) + (((bits[i + 2]! & 0x7fffffff) - 1) >>> 31) + (((bits[i + 3]! & 0x7fffffff) - 1) >>> 31);
      }
      for (; i < end; i++) {
        const a = values[i]!;
        s0 += a;
        if (a < min) min = a;
        if (a > max) max = a;
        zeros += ((bits[i]! & 0x7fffffff) - 1) >>> 31;
      }
      const sum = s0 + s1 + (s2 + s3);
      if (sum - sum !== 0) {
        this.addRange(values, start, end);
        continue;
      }
      const n = end - start;
      const mean = sum / n;
      let q0 = 0, q1 = 0, q2 = 0, q3 = 0;
      for (i = start; i + 3 < end; i += 4) {
        const a = values[i]! - mean, b = values[i + 1]! - mean, c = values[i + 2]! - mean, d = values[i + 3]! - mean;
        q0 += a * a;
        q1 += b * b;
        q2 += c * c;
        q3 += d * d;
      }
      for (; i < end; i++) {
        const a = values[i]! - mean;
        q0 += a * a;
      }
      this.count += n;
      this.zeros += zeros;
      if (min < this.min) this.min = min;
      if (max > this.max) this.max = max;
      this.merge(n, mean, q0 + q1 + (q2 + q3));
    }
  }

  /** Chan et al.'s pairwise update: folds a part's count, mean and sum of squared deviations in. */
  private merge(n: number, mean: number, m2: number): void {
    const total = this.n + n;
    const delta = mean - this.mean;
    this.mean += (delta * n) / total;
    this.m2 += m2 + (delta * delta * this.n * n) / total;
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
