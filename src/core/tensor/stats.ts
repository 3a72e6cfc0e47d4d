/**
 * Exact statistics over every element of a tensor, streamed in chunks so any size fits in memory.
 * Moments use per-block two-pass sums merged with Chan's formula: stable for large tensors where a
 * running sum of squares would cancel.
 */
import { parameterCount, type TensorRef } from '../checkpoint';
import type { FileOpener } from '../io/byteSource';
import { codeBits, codeValues, countCodes, statsFromCounts } from './codeCounts';
import { F32Moments } from './f32Moments';
import { readTensorValues, type ReuseBuffers } from './read';
import { READ_CHUNK_BYTES } from '../limits';
import type { StatsOptions, TensorStats } from './statsResult';

export type { StatsOptions, TensorStats } from './statsResult';

/** Float32 elements per block: the second pass reads the block again from the L1 cache (16 KiB). */
const F32_BLOCK = 4096;

/**
 * The kernel for float32 read anywhere else: it keeps nothing between calls and add() never awaits,
 * so one serves every accumulator of this thread (a health scan's many small tensors start no
 * WebAssembly instance each).
 */
let sharedF32: F32Moments | undefined;

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
  /** A kernel of this accumulator's own, with read areas (see readBuffers). */
  private own: F32Moments | undefined;

  /** `readBytes`: the size of each of two areas float32 chunks can be read into and used in place (see readBuffers). */
  constructor(private readonly readBytes = 0) {}

  /** Where a reader may put float32 chunks so the kernel needs no copy (each valid until the next read). */
  get readBuffers(): ReuseBuffers | undefined {
    if (this.readBytes === 0) return undefined;
    this.own ??= new F32Moments(this.readBytes);
    return this.own.readBuffers;
  }

  add(values: ArrayLike<number>): void {
    if (values instanceof Float32Array) this.addFloat32(values);
    else this.addRange(values, 0, values.length);
  }

  private kernel(): F32Moments {
    return this.own ?? (sharedF32 ??= new F32Moments());
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

  /** Float32 in blocks of F32_BLOCK through the SIMD kernel; up to 3 trailing elements of a piece through addRange. */
  private addFloat32(values: Float32Array): void {
    const k = this.kernel();
    k.each(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), (offset, n) => {
      const view = k.view(offset, n);
      for (let start = 0; start < n; start += F32_BLOCK) {
        const len = Math.min(F32_BLOCK, n - start);
        const whole = len & ~3;
        if (whole > 0) this.addBlock(k, view, offset, start, whole);
        if (whole < len) this.addRange(view, start + whole, start + len);
      }
    });
  }

  /**
   * One block, two passes, no test per element: a block holds a NaN or ±Inf exactly when its
   * float64 sum is not finite (no finite block sum can overflow), and such a block is done again
   * element by element.
   */
  private addBlock(k: F32Moments, view: Float32Array, offset: number, start: number, n: number): void {
    const s = k.scan(offset + start * 4, n);
    if (s.sum - s.sum !== 0) return this.addRange(view, start, start + n);
    let min = s.min[0]!;
    let max = s.max[0]!;
    for (let lane = 1; lane < 4; lane++) {
      if (s.min[lane]! < min) min = s.min[lane]!;
      if (s.max[lane]! > max) max = s.max[lane]!;
    }
    if (min === 0 || max === 0) {
      // A zero extreme is the block's first zero, +0 or -0, as `if (v < min) min = v` keeps it;
      // the kernel's lanes lose that order.
      let i = start;
      while (view[i] !== 0) i++;
      if (min === 0) min = view[i]!;
      if (max === 0) max = view[i]!;
    }
    const mean = s.sum / n;
    const m2 = k.squares(offset + start * 4, n, mean);
    this.count += n;
    this.zeros += s.zeros;
    if (min < this.min) this.min = min;
    if (max > this.max) this.max = max;
    this.merge(n, mean, m2);
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
  if (t.bytes === 0) return new StatsAccumulator().result();
  const bits = codeBits(t.dtype);
  if (bits) return statsFromCounts(codeValues(t.dtype, bits), await countCodes(opener, t, bits, opts));
  const chunkBytes = opts.chunkBytes ?? READ_CHUNK_BYTES;
  // A float32 tensor longer than a chunk is read straight into the kernel's memory.
  const acc = new StatsAccumulator(t.dtype === 'F32' && t.bytes > chunkBytes ? chunkBytes : 0);
  const perElement = t.bytes / parameterCount(t);
  let done = 0;
  for await (const values of readTensorValues(opener, t, { ...opts, buffers: acc.readBuffers })) {
    acc.add(values);
    done += values.length;
    opts.onProgress?.((done * perElement) / t.bytes);
  }
  return acc.result();
}
