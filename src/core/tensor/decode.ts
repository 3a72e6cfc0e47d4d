/**
 * Decodes little-endian element bytes to JavaScript numbers, chunk by chunk. Float types decode to a
 * Float32Array (bf16 by a shift, f16 and the f8 family by lookup tables), so statistics run over
 * one typed array whatever the stored type.
 */
import { JaxServeError } from '../errors';
import { dtypeBytes, type DType } from '../dtype';

/** A minifloat with `e` exponent bits and `m` mantissa bits; `fnuz` types have one NaN (0x80) and no -0. */
function minifloat(bits: number, e: number, m: number, bias: number, style: 'ieee' | 'fn' | 'fnuz'): number {
  const sign = (bits >> (e + m)) & 1;
  const exp = (bits >> m) & ((1 << e) - 1);
  const man = bits & ((1 << m) - 1);
  const maxExp = (1 << e) - 1;
  if (style === 'fnuz' && bits === 1 << (e + m)) return NaN;
  if (style === 'ieee' && exp === maxExp) return man === 0 ? (sign ? -Infinity : Infinity) : NaN;
  if (style === 'fn' && exp === maxExp && man === (1 << m) - 1) return NaN;
  const v = exp === 0 ? man * 2 ** (1 - bias - m) : (1 + man / (1 << m)) * 2 ** (exp - bias);
  return sign ? -v : v;
}

function table(size: number, f: (i: number) => number): Float32Array {
  const t = new Float32Array(size);
  for (let i = 0; i < size; i++) t[i] = f(i);
  return t;
}

const lazy = <T>(make: () => T) => {
  let v: T | undefined;
  return () => (v ??= make());
};

const F16 = lazy(() => table(65536, (i) => minifloat(i, 5, 10, 15, 'ieee')));
const F8 = {
  F8_E4M3: lazy(() => table(256, (i) => minifloat(i, 4, 3, 7, 'fn'))),
  F8_E5M2: lazy(() => table(256, (i) => minifloat(i, 5, 2, 15, 'ieee'))),
  F8_E4M3FNUZ: lazy(() => table(256, (i) => minifloat(i, 4, 3, 8, 'fnuz'))),
  F8_E5M2FNUZ: lazy(() => table(256, (i) => minifloat(i, 5, 2, 16, 'fnuz'))),
  // e8m0: a bare exponent, 2^(e-127), 0xFF is NaN (OCP MX scale format).
  F8_E8M0: lazy(() => table(256, (i) => (i === 255 ? NaN : 2 ** (i - 127)))),
};

/** Decodes f16 bits (exported for tests and for the f32->f16 cast's round trip checks). */
export function f16ToNumber(bits: number): number {
  return F16()[bits & 0xffff]!;
}

/**
 * Decodes one chunk. `bytes` must start on an element boundary and hold whole elements; it is
 * copied if misaligned for the typed view. Returns numbers in element order. Types that need a
 * conversion write into `scratch` when it is large enough (a caller decoding chunk after chunk
 * passes the same one, so a GB-sized tensor does not allocate per chunk); the result may then be
 * a view of it, valid until the next call with the same scratch.
 */
export function decodeChunk(dtype: DType, bytes: Uint8Array, scratch?: Float32Array): ArrayLike<number> {
  const size = dtypeBytes(dtype);
  if (size === undefined || dtype === 'C64') {
    throw new JaxServeError('E_UNSUPPORTED', `values of ${dtype} tensors cannot be decoded yet.`);
  }
  const aligned = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  const n = Math.floor(aligned.length / size);
  const buf = aligned.buffer;
  const off = aligned.byteOffset;
  const out32 = () => (scratch && scratch.length >= n ? scratch.subarray(0, n) : new Float32Array(n));
  switch (dtype) {
    case 'F32':
      return new Float32Array(buf, off, n);
    case 'F64':
      return new Float64Array(buf, off, n);
    case 'BF16': {
      const src = new Uint16Array(buf, off, n);
      const out = out32();
      const bits = new Uint32Array(out.buffer, out.byteOffset, n);
      for (let i = 0; i < n; i++) bits[i] = src[i]! << 16;
      return out;
    }
    case 'F16': {
      const src = new Uint16Array(buf, off, n);
      const t = F16();
      const out = out32();
      for (let i = 0; i < n; i++) out[i] = t[src[i]!]!;
      return out;
    }
    case 'F8_E4M3':
    case 'F8_E5M2':
    case 'F8_E4M3FNUZ':
    case 'F8_E5M2FNUZ':
    case 'F8_E8M0': {
      const t = F8[dtype]();
      const out = out32();
      for (let i = 0; i < n; i++) out[i] = t[aligned[i]!]!;
      return out;
    }
    case 'BOOL':
      // Any byte but 0 is True, as numpy, torch and flax read a bool (a file may hold 2 or 255).
      return Uint8Array.from(aligned.subarray(0, n), (b) => (b === 0 ? 0 : 1));
    case 'U8':
      return aligned.subarray(0, n);
    case 'I8':
      return new Int8Array(buf, off, n);
    case 'I16':
      return new Int16Array(buf, off, n);
    case 'U16':
      return new Uint16Array(buf, off, n);
    case 'I32':
      return new Int32Array(buf, off, n);
    case 'U32':
      return new Uint32Array(buf, off, n);
    case 'I64':
      return Float64Array.from(new BigInt64Array(buf, off, n), Number);
    case 'U64':
      return Float64Array.from(new BigUint64Array(buf, off, n), Number);
    default:
      throw new JaxServeError('E_UNSUPPORTED', `values of ${dtype} tensors cannot be decoded yet.`);
  }
}
