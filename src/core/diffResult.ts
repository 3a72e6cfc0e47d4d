/**
 * What a comparison of two checkpoints says of a pair, in its own file free of Node imports: the
 * Compare Checkpoints page shows these (its protocol takes them through ./types.ts).
 */
export type DiffStatus = 'same' | 'added' | 'removed' | 'reshaped' | 'retyped';

export interface ValueDiff {
  readonly elements: number;
  /** Largest |a − b| over finite pairs (0 when none). */
  readonly maxAbsDiff: number;
  /** Largest |a − b| / |b| over pairs with b ≠ 0. */
  readonly maxRelDiff: number;
  /** Elements where |a − b| > atol + rtol·|b| (NaN equals NaN, ±Inf equals itself; numpy's equal_nan=True). */
  readonly mismatched: number;
  /** Where the first mismatch is, as a flat index (-1 when none). */
  readonly firstMismatch: number;
  readonly allclose: boolean;
  readonly rtol: number;
  readonly atol: number;
}
