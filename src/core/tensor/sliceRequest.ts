/**
 * What a 2-D window of a tensor is asked with: its own file, free of Node imports, because the
 * checkpoint editor's page sends it (its protocol takes the type through ../types.ts).
 */
export interface SliceRequest {
  /** Axis shown down the rows, and across the columns (may be equal only for 1-D tensors). */
  readonly rowAxis: number;
  readonly colAxis: number;
  /** Index on every axis (entries for rowAxis/colAxis are ignored). */
  readonly index: readonly number[];
  readonly rowStart: number;
  readonly rowCount: number;
  readonly colStart: number;
  readonly colCount: number;
}
