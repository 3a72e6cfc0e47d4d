/**
 * Statistics for narrow dtypes by counting codes. A bf16, f16, f8 or 8/16-bit integer tensor can
 * hold at most 65,536 distinct values, so one pass counts how often each bit pattern occurs and
 * everything else (NaN/Inf/zero counts, min, max, two-pass moments, the histogram) is computed
 * exactly over the distinct values, weighted by their counts. That skips decoding every element
 * and the second read a histogram needs, and the moments are two-pass over exact values.
 */
import type { TensorRef } from '../checkpoint';
import type { FileOpener } from '../io/byteSource';
import { CodeCounter } from './codeCounter';
import { decodeChunk } from './decode';
import { DTYPE_BITS, type DType } from '../dtype';
import { readTensorBytes } from './read';
import { READ_CHUNK_BYTES } from '../limits';
import type { StatsOptions, TensorStats } from './statsResult';

/** Bits per code when counting codes is exact and cheap (at most 2^16 table entries). */
export function codeBits(dtype: DType): 8 | 16 | undefined {
  if (dtype === 'F4' || dtype === 'F6_E2M3' || dtype === 'F6_E3M2') return undefined;
  const bits = DTYPE_BITS[dtype];
  return bits === 8 || bits === 16 ? bits : undefined;
}

/** The value of every code of `dtype`, in code order. */
export function codeValues(dtype: DType, bits: 8 | 16): ArrayLike<number> {
  const n = 1 << bits;
  const codes = bits === 8 ? Uint8Array.from({ length: n }, (_, i) => i) : new Uint8Array(Uint16Array.from({ length: n }, (_, i) => i).buffer);
  return decodeChunk(dtype, codes);
}

/** How many times each code occurs in the tensor (one streamed pass over its bytes). */
export async function countCodes(opener: FileOpener, t: TensorRef, bits: 8 | 16, opts: StatsOptions = {}): Promise<Float64Array> {
  const chunkBytes = opts.chunkBytes ?? READ_CHUNK_BYTES;
  // A tensor longer than a chunk is read straight into the counter's memory (no copy per chunk).
  const counter = new CodeCounter(bits, t.bytes > chunkBytes ? chunkBytes : 0);
  let done = 0;
  for await (const chunk of readTensorBytes(opener, t, { ...opts, buffers: counter.readBuffers })) {
    counter.add(chunk);
    done += chunk.length;
    opts.onProgress?.(done / t.bytes);
  }
  return counter.counts();
}

/** Statistics of a multiset given as distinct values and their counts. */
export function statsFromCounts(values: ArrayLike<number>, counts: ArrayLike<number>): TensorStats {
  let count = 0;
  let n = 0;
  let nan = 0;
  let posInf = 0;
  let negInf = 0;
  let zeros = 0;
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (let k = 0; k < counts.length; k++) {
    const c = counts[k]!;
    if (c === 0) continue;
    const v = values[k]!;
    count += c;
    if (v !== v) nan += c;
    else if (v === Infinity) posInf += c;
    else if (v === -Infinity) negInf += c;
    else {
      if (v === 0) zeros += c;
      if (v < min) min = v;
      if (v > max) max = v;
      sum += c * v;
      n += c;
    }
  }
  if (n === 0) return { count, finite: 0, nan, posInf, negInf, zeros, min: null, max: null, mean: null, std: null };
  const mean = sum / n;
  let m2 = 0;
  for (let k = 0; k < counts.length; k++) {
    const c = counts[k]!;
    const v = values[k]!;
    if (c !== 0 && v - v === 0) m2 += c * (v - mean) * (v - mean);
  }
  return { count, finite: n, nan, posInf, negInf, zeros, min, max, mean, std: Math.sqrt(m2 / n) };
}
