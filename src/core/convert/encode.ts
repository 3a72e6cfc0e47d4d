/**
 * Numbers to element bytes for the float types a conversion writes: F64, F32 (round to nearest
 * even, as Float32Array does), BF16 and F16 (round to nearest even from the f32 value, the rule
 * torch and ml_dtypes use; a NaN stays a quiet NaN with its sign).
 */
import { JaxServeError } from '../errors';
import type { DType } from '../dtype';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** bfloat16 bits of the f32 nearest to v, rounded to nearest even. */
export function bf16Bits(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) & 0x8000) | 0x7fc0;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** IEEE half bits of the f32 nearest to v, rounded to nearest even (subnormals, overflow to ±Inf). */
export function f16Bits(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa moves into the exponent, which is the right answer (up to Inf).
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

export function encodeValues(dtype: DType, values: ArrayLike<number>): Uint8Array {
  const n = values.length;
  switch (dtype) {
    case 'F64':
      return new Uint8Array(Float64Array.from(values).buffer);
    case 'F32':
      return new Uint8Array(Float32Array.from(values).buffer);
    case 'BF16': {
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) out[i] = bf16Bits(values[i]!);
      return new Uint8Array(out.buffer);
    }
    case 'F16': {
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) out[i] = f16Bits(values[i]!);
      return new Uint8Array(out.buffer);
    }
    default:
      throw new JaxServeError('E_UNSUPPORTED', `writing ${dtype} values is not supported (F64, F32, BF16, F16 are).`);
  }
}
