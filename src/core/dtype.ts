/**
 * Element types in safetensors spelling (the `Dtype` enum of huggingface/safetensors). Everything in
 * core speaks these names; readers of other formats translate into them.
 */
export const DTYPE_BITS = {
  BOOL: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  F8_E4M3FNUZ: 8,
  F8_E5M2FNUZ: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  C64: 64,
  F64: 64,
  I64: 64,
  U64: 64,
} as const;

export type DType = keyof typeof DTYPE_BITS;

export function isDType(s: string): s is DType {
  return Object.prototype.hasOwnProperty.call(DTYPE_BITS, s);
}

/** Bytes per element, or undefined for sub-byte types (F4, F6_*), which safetensors cannot slice. */
export function dtypeBytes(d: DType): number | undefined {
  const bits = DTYPE_BITS[d];
  return bits % 8 === 0 ? bits / 8 : undefined;
}

/** Product of a shape as a bigint, so a hostile header cannot overflow it silently. */
export function elementCount(shape: readonly number[]): bigint {
  let n = 1n;
  for (const d of shape) n *= BigInt(d);
  return n;
}
