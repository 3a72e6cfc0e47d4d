/**
 * Where a LoRA adapter's factors land after a base kernel's conversion chain. The chains presets use
 * move elements (transpose, reshape, merge/split of heads, RoPE pairing, select) and scale them; none
 * mixes a kernel's input axes with its output axes. So the HF weight W = T(K) (out, in) takes each
 * input column from one input index of K and each output row from one output index, times one
 * factor: W[o, i] = c · K[inMap[i], outMap[o]]. With ΔK = A·B (A (in…, r), B (r, out…)), the
 * same holds for ΔW = lora_B · lora_A with lora_A[k, i] = A[inMap[i], k] and
 * lora_B[o, k] = c · B[k, outMap[o]]: exact, whatever the chain, with no kernel-sized buffer.
 */
import { JaxServeError } from '../errors';
import { describeTransform, layoutAfter, pairSource, type Layout, type Transform } from './transforms';

export interface LoraMap {
  /** For each HF input column, the index into K's (flattened) input axes. */
  readonly inMap: Int32Array;
  /** For each HF output row, the index into K's (flattened) output axes. */
  readonly outMap: Int32Array;
  /** The chain's scale factors, multiplied (MaxText's query pre-scale undone). */
  readonly factor: number;
}

/** Pairs checked beyond the first row and column: the rule is checked, not assumed. */
const CHECKED_PAIRS = 4096;

/**
 * The maps of a chain from a kernel `source` whose axes `inAxes` are its inputs (the rest, in order,
 * its outputs: A holds the input axes, B the output axes) to a 2-D (out, in) weight. Throws, naming
 * the step, when the chain does arithmetic other than scaling or does not keep inputs and outputs apart.
 */
export function loraMap(source: Layout, transforms: readonly Transform[], inAxes: readonly number[], what: string): LoraMap {
  const layouts: Layout[] = [source];
  let factor = 1;
  for (const t of transforms) {
    if (t.op === 'add') throw new JaxServeError('E_UNSUPPORTED', `${what}: its conversion adds a constant (${describeTransform(t)}), which a LoRA delta does not take.`);
    if (t.op === 'scale') factor *= t.factor;
    layouts.push(layoutAfter(layouts.at(-1)!, [t]));
  }
  const out = layouts.at(-1)!;
  if (out.shape.length !== 2) throw new JaxServeError('E_UNSUPPORTED', `${what}: it converts to ${JSON.stringify(out.shape)}, not a 2-D (out, in) weight a LoRA adapter applies to.`);
  const [rows, cols] = out.shape as [number, number];
  const inSet = new Set(inAxes);
  const outAxes = source.shape.map((_, k) => k).filter((k) => !inSet.has(k));
  const inShape = inAxes.map((k) => source.shape[k]!);
  const outShape = outAxes.map((k) => source.shape[k]!);
  // A kernel index as (input index, output index): its coordinates on each side, flattened.
  const split = (flat: number): [number, number] => {
    const c = unflatten(flat, source.shape);
    return [flatten(inAxes.map((k) => c[k]!), inShape), flatten(outAxes.map((k) => c[k]!), outShape)];
  };
  // Output flat index -> source flat index, back through each step.
  const sourceIndex = (flat: number): number => {
    for (let k = transforms.length - 1; k >= 0; k--) {
      const t = transforms[k]!;
      if (t.op !== 'transpose' && t.op !== 'select' && t.op !== 'deinterleave' && t.op !== 'interleave') continue; // same order of elements
      const after = layouts[k + 1]!.shape;
      const before = layouts[k]!.shape;
      const coords = unflatten(flat, after);
      let from: number[];
      if (t.op === 'transpose') {
        from = new Array<number>(before.length);
        t.axes.forEach((a, j) => (from[a] = coords[j]!));
      } else if (t.op === 'select') from = [...coords.slice(0, t.axis), t.index, ...coords.slice(t.axis)];
      else {
        from = coords;
        from[t.axis] = pairSource(coords[t.axis]!, after[t.axis]!, t.op === 'deinterleave');
      }
      flat = flatten(from, before);
    }
    return flat;
  };
  const inMap = new Int32Array(cols);
  const outMap = new Int32Array(rows);
  for (let i = 0; i < cols; i++) inMap[i] = split(sourceIndex(i))[0];
  for (let o = 0; o < rows; o++) outMap[o] = split(sourceIndex(o * cols))[1];
  const mixed = () => new JaxServeError('E_UNSUPPORTED', `${what}: its conversion (${transforms.map(describeTransform).join(', ') || 'none'}) mixes the kernel's input and output axes, so a LoRA adapter cannot follow it.`);
  const agrees = (o: number, i: number) => {
    const [a, b] = split(sourceIndex(o * cols + i));
    return a === inMap[i] && b === outMap[o];
  };
  if (!agrees(0, 0)) throw mixed();
  // A fixed pseudo-random sample of (o, i): the same pairs on every run.
  let seed = 0x9e3779b9;
  const next = (n: number) => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed % n;
  };
  for (let k = 0; k < Math.min(CHECKED_PAIRS, rows * cols); k++) {
    const o = next(rows);
    const i = next(cols);
    if (!agrees(o, i)) throw mixed();
  }
  return { inMap, outMap, factor };
}

function unflatten(flat: number, shape: readonly number[]): number[] {
  const c = new Array<number>(shape.length);
  for (let k = shape.length - 1; k >= 0; k--) {
    c[k] = flat % shape[k]!;
    flat = Math.floor(flat / shape[k]!);
  }
  return c;
}

function flatten(coords: readonly number[], shape: readonly number[]): number {
  let flat = 0;
  for (let k = 0; k < shape.length; k++) flat = flat * shape[k]! + coords[k]!;
  return flat;
}

/**
 * PEFT's factors from JAX's: lora_A (r, in) and lora_B (out, r) in f64, from A (in…, r) and
 * B (r, out…) as values (row-major), so that lora_B · lora_A is the HF weight's delta.
 */
export function peftFactors(map: LoraMap, a: Float64Array, b: Float64Array, rank: number): { loraA: Float64Array; loraB: Float64Array } {
  const cols = map.inMap.length;
  const rows = map.outMap.length;
  const outer = b.length / rank;
  const loraA = new Float64Array(rank * cols);
  for (let k = 0; k < rank; k++) for (let i = 0; i < cols; i++) loraA[k * cols + i] = a[map.inMap[i]! * rank + k]!;
  const loraB = new Float64Array(rows * rank);
  for (let o = 0; o < rows; o++) for (let k = 0; k < rank; k++) loraB[o * rank + k] = map.factor * b[k * outer + map.outMap[o]!]!;
  return { loraA, loraB };
}

/** W + scale · lora_B · lora_A, each sum in f64 and rounded to f32 once ("in f32 before any cast"). */
export function mergeInto(w: Float32Array, rows: number, cols: number, loraA: Float64Array, loraB: Float64Array, rank: number, scale: number): Float32Array {
  const out = new Float32Array(rows * cols);
  const row = new Float64Array(cols);
  for (let o = 0; o < rows; o++) {
    row.fill(0);
    for (let k = 0; k < rank; k++) {
      const bk = loraB[o * rank + k]! * scale;
      const a = k * cols;
      for (let i = 0; i < cols; i++) row[i]! += bk * loraA[a + i]!;
    }
    for (let i = 0; i < cols; i++) out[o * cols + i] = w[o * cols + i]! + row[i]!;
  }
  return out;
}
