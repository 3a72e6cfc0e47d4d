/**
 * The bytes of one imported array. An array made of one HF tensor is that tensor converted (whole
 * within the tile budget, in tiles over it). An array stacked from several is made from its slices:
 * when its stacked axes lead (MaxText's experts, (E, L, …)), each slice is a contiguous run of the
 * output, so the slices stream in order, each within the budget, whatever the total; otherwise (a
 * scanned kernel's layer on axis 1) the slices interleave and the array is built whole, which
 * executeImport allows only within the budget.
 */
import type { TensorRef } from '../checkpoint';
import { JaxServeError } from '../errors';
import type { FileOpener } from '../io/byteSource';
import type { TensorData, TensorFill } from '../formats/safetensors/writer';
import { dtypeBytes } from '../dtype';
import { convertTensor } from './execute';
import { tiledTensorData } from './tiled';
import { transposeBytes } from './transforms';
import type { ImportLeaf, ImportSlice } from './reverse';

/** True when the leaf's slices lie one after another in its bytes (its stacked axes come first). */
export function streamsInOrder(leaf: Pick<ImportLeaf, 'axes'>): boolean {
  return leaf.axes.every((a, k) => a === k);
}

type SliceData = Promise<Uint8Array> | TensorData;

/**
 * The leaf's bytes: a promise of them all, a stream in order (always, when `sequential`: the
 * msgpack writer has no positioned writes), or a positioned fill for the safetensors writer.
 */
export function leafData(leaf: ImportLeaf, tensors: readonly ImportSlice[], sources: ReadonlyMap<string, TensorRef>, opener: FileOpener, budget: number, sequential: boolean): SliceData {
  const slices = leaf.slices.map((k) => tensors[k]!);
  const one = (p: ImportSlice): SliceData => {
    const src = sources.get(p.from)!;
    return src.bytes > budget || p.bytes > budget ? tiledTensorData(p, src, opener, budget, undefined, sequential) : convertTensor(p, src, opener);
  };
  if (leaf.axes.length === 0) return one(slices[0]!);
  if (!streamsInOrder(leaf)) return built(leaf, slices, sources, opener);
  if (sequential) {
    return (async function* () {
      for (const p of slices) {
        const d = one(p);
        if (d instanceof Promise) yield await d;
        else yield* d as AsyncIterable<Uint8Array>;
      }
    })();
  }
  return {
    async writeTiles(writeAt) {
      let base = 0;
      for (const p of slices) {
        await place(one(p), base, writeAt);
        base += p.bytes;
      }
    },
  };
}

/** Writes one slice's data at `base` of its leaf. */
async function place(d: SliceData, base: number, writeAt: (offset: number, bytes: Uint8Array) => Promise<void>): Promise<void> {
  if (d instanceof Promise || d instanceof Uint8Array) return writeAt(base, await d);
  if (typeof (d as TensorFill).writeTiles === 'function') return (d as TensorFill).writeTiles((offset, bytes) => writeAt(base + offset, bytes));
  let at = base;
  for await (const bytes of d as AsyncIterable<Uint8Array>) {
    await writeAt(at, bytes);
    at += bytes.length;
  }
}

/**
 * A leaf stacked along inner axes, within the budget: its slices one after another, as if the
 * stacked axes led, then those axes moved to their places (one transpose).
 */
async function built(leaf: ImportLeaf, slices: readonly ImportSlice[], sources: ReadonlyMap<string, TensorRef>, opener: FileOpener): Promise<Uint8Array> {
  const size = dtypeBytes(leaf.target.dtype);
  if (!size) throw new JaxServeError('E_UNSUPPORTED', `${leaf.name}: ${leaf.target.dtype} elements are not whole bytes, so its slices cannot be stacked.`);
  const stacked = new Uint8Array(leaf.bytes);
  let at = 0;
  for (const p of slices) {
    stacked.set(await convertTensor(p, sources.get(p.from)!, opener), at);
    at += p.bytes;
  }
  const { shape } = leaf.target;
  const rest = shape.filter((_, i) => !leaf.axes.includes(i));
  // Output axis i is stacked axis k (input axis k), or the next of the slice's own (after the stacked ones).
  let next = leaf.axes.length;
  const axes = shape.map((_, i) => (leaf.axes.includes(i) ? leaf.axes.indexOf(i) : next++));
  return transposeBytes(stacked, [...leaf.axes.map((a) => shape[a]!), ...rest], axes, size);
}
