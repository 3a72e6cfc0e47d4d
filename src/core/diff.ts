/**
 * Differences between two checkpoints: which tensors were added, removed, reshaped or given another
 * dtype, and on demand how far their values are apart. Tensors pair by name, or, when one side is a
 * JAX checkpoint and the other its Hugging Face export, through the conversion plan: each export
 * tensor pairs with the source tensor the plan makes it from, and its values are compared after
 * the plan's transforms (transpose, RoPE permutation, unstacking…), so an export can be checked
 * against its source.
 */
import type { Checkpoint, TensorRef } from './checkpoint';
import { findTensor } from './formats/open';
import { JaxServeError } from './errors';
import type { FileOpener } from './io/byteSource';
import { planConversion, type Plan, type PlannedTensor } from './convert/plan';
import { applyTransforms, type Layout } from './convert/transforms';
import { decodeChunk } from './tensor/decode';
import { readTensorValues } from './tensor/read';
import type { DiffStatus, ValueDiff } from './diffResult';

export type { DiffStatus, ValueDiff } from './diffResult';
import { readWholeTensor } from './convert/wholeTensor';


export interface DiffEntry {
  readonly status: DiffStatus;
  /** The tensor in the left checkpoint (absent when added). */
  readonly left?: TensorRef;
  /** The tensor in the right checkpoint (absent when removed). */
  readonly right?: TensorRef;
  /**
   * Plan pairing: the side whose tensor the plan converts, and how; compared to the other side's
   * after the transforms, as is its expected layout.
   */
  readonly via?: { readonly side: 'left' | 'right'; readonly planned: PlannedTensor };
}

export interface CheckpointDiff {
  /** 'names', or the plan of `preset` from the JAX side (`jax`) to the other. */
  readonly pairing: { readonly kind: 'names' } | { readonly kind: 'plan'; readonly preset: string; readonly jax: 'left' | 'right' };
  readonly entries: readonly DiffEntry[];
  readonly counts: Readonly<Record<DiffStatus, number>>;
}

/** How `planned` leaves the converted tensor, against what the other side holds. */
function statusOf(expected: Layout, other: TensorRef): DiffStatus {
  const shape = expected.shape.length === other.shape.length && expected.shape.every((d, i) => d === other.shape[i]);
  return !shape ? 'reshaped' : expected.dtype !== other.dtype ? 'retyped' : 'same';
}

function byNames(left: Checkpoint, right: Checkpoint): DiffEntry[] {
  const rightByName = new Map(right.tensors.map((t) => [t.name, t]));
  const entries: DiffEntry[] = [];
  for (const l of left.tensors) {
    const r = rightByName.get(l.name);
    rightByName.delete(l.name);
    entries.push(r ? { status: statusOf(l, r), left: l, right: r } : { status: 'removed', left: l });
  }
  for (const r of rightByName.values()) entries.push({ status: 'added', right: r });
  return entries;
}

/** Pairs through `plan` (made from the `jax` side): export tensors by target name, the rest unpaired. */
function byPlan(plan: Plan, jaxCk: Checkpoint, hfCk: Checkpoint, jax: 'left' | 'right'): DiffEntry[] {
  const hf = jax === 'left' ? 'right' : 'left';
  const hfByName = new Map(hfCk.tensors.map((t) => [t.name, t]));
  const jaxByName = new Map(jaxCk.tensors.map((t) => [t.name, t]));
  const entries: DiffEntry[] = [];
  const used = new Set<string>();
  for (const p of plan.tensors) {
    const src = jaxByName.get(p.from) ?? findTensor(jaxCk, p.from);
    used.add(p.from);
    const other = hfByName.get(p.to);
    hfByName.delete(p.to);
    const via = { side: jax, planned: p } as const;
    // An expected target missing from the export is a removal; its source stays on the JAX side.
    entries.push(other ? { status: statusOf(p.target, other), [jax]: src, [hf]: other, via } : { status: jax === 'left' ? 'removed' : 'added', [jax]: src, via });
  }
  for (const t of jaxCk.tensors) if (!used.has(t.name)) entries.push({ status: jax === 'left' ? 'removed' : 'added', [jax]: t });
  for (const t of hfByName.values()) entries.push({ status: jax === 'left' ? 'added' : 'removed', [hf]: t });
  return entries;
}

const paired = (entries: readonly DiffEntry[]) => entries.filter((e) => e.left && e.right).length;

/** A plan from `ck` by its detected preset, or undefined when no preset maps it. */
function tryPlan(ck: Checkpoint): Plan | undefined {
  try {
    const plan = planConversion(ck);
    return plan.tensors.length > 0 ? plan : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The differences of `right` from `left`. Pairing: by name, unless a conversion plan from either
 * side pairs more tensors with the other (a JAX checkpoint against its export); `pairing` forces one.
 */
export function diffCheckpoints(left: Checkpoint, right: Checkpoint, opts: { pairing?: 'names' | 'plan' | 'auto' } = {}): CheckpointDiff {
  const mode = opts.pairing ?? 'auto';
  let best: { entries: DiffEntry[]; pairing: CheckpointDiff['pairing'] } = { entries: byNames(left, right), pairing: { kind: 'names' } };
  const everyNamePairs = best.entries.every((e) => e.left && e.right);
  if (mode === 'plan' || (mode === 'auto' && !everyNamePairs)) {
    let bestPaired = mode === 'plan' ? -1 : paired(best.entries);
    for (const jax of ['left', 'right'] as const) {
      const [jaxCk, hfCk] = jax === 'left' ? [left, right] : [right, left];
      const plan = tryPlan(jaxCk);
      if (!plan) continue;
      const entries = byPlan(plan, jaxCk, hfCk, jax);
      const n = paired(entries);
      if (n > bestPaired) {
        bestPaired = n;
        best = { entries, pairing: { kind: 'plan', preset: plan.preset.id, jax } };
      }
    }
    if (mode === 'plan' && best.pairing.kind !== 'plan') throw new JaxServeError('E_UNSUPPORTED', `Neither ${left.location} nor ${right.location} matches a conversion preset, so they cannot be paired through a plan; compare them by name.`);
  }
  const counts: Record<DiffStatus, number> = { same: 0, added: 0, removed: 0, reshaped: 0, retyped: 0 };
  for (const e of best.entries) counts[e.status]++;
  return { pairing: best.pairing, entries: best.entries, counts };
}

/** numpy.allclose's defaults. */
export const DEFAULT_TOLERANCE = { rtol: 1e-5, atol: 1e-8 } as const;


/** A tensor to compare: read as stored, or converted first (the plan's transforms). */
export interface ValueSide {
  readonly opener: FileOpener;
  readonly tensor: TensorRef;
  readonly planned?: PlannedTensor;
}

/** Tensors larger than this are refused when they must be converted in memory first. */
export const MAX_CONVERTED_COMPARE_BYTES = 2 ** 31;

async function* sideValues(s: ValueSide, signal?: AbortSignal): AsyncGenerator<ArrayLike<number>> {
  // A Fortran-order tensor streams in the wrong element order: it is read whole and put in order.
  if (!s.planned && (s.tensor.order !== 'F' || s.tensor.shape.length < 2)) {
    yield* readTensorValues(s.opener, s.tensor, { signal });
    return;
  }
  if (s.tensor.bytes > MAX_CONVERTED_COMPARE_BYTES) throw new JaxServeError('E_LIMIT', `${s.tensor.source.file}: ${s.tensor.name}: ${s.tensor.bytes} bytes is too large to put in order in memory for a value comparison (limit ${MAX_CONVERTED_COMPARE_BYTES}).`);
  const bytes = await readWholeTensor(s.opener, s.tensor, signal);
  const out = s.planned ? applyTransforms(bytes, s.planned.source, s.planned.transforms) : { bytes, layout: s.tensor };
  // Decoded a MiB at a time, as reads are.
  const step = 1 << 20;
  for (let i = 0; i < out.bytes.length; i += step) yield decodeChunk(out.layout.dtype, out.bytes.subarray(i, Math.min(out.bytes.length, i + step)));
}

function layoutOf(s: ValueSide): Layout {
  return s.planned ? s.planned.target : s.tensor;
}

/**
 * Compares two tensors element by element in one streaming pass (a converted side is converted
 * whole first). Both must hold the same number of elements in the same order.
 */
export async function compareValues(a: ValueSide, b: ValueSide, opts: { rtol?: number; atol?: number; signal?: AbortSignal; onProgress?: (fraction: number) => void } = {}): Promise<ValueDiff> {
  const la = layoutOf(a);
  const lb = layoutOf(b);
  const n = la.shape.reduce((x, y) => x * y, 1);
  const same = la.shape.length === lb.shape.length && la.shape.every((d, i) => d === lb.shape[i]);
  if (!same) throw new JaxServeError('E_USAGE', `${a.tensor.name} [${la.shape.join(', ')}] and ${b.tensor.name} [${lb.shape.join(', ')}] differ in shape, so their values are not compared.`);
  const { rtol, atol } = { ...DEFAULT_TOLERANCE, ...opts };
  const ia = sideValues(a, opts.signal);
  const ib = sideValues(b, opts.signal);
  let maxAbs = 0;
  let maxRel = 0;
  let mismatched = 0;
  let first = -1;
  let done = 0;
  let lastReport = 0;
  // Each stream's chunk is only valid until that stream advances (decoders reuse their buffer).
  let ca = await ia.next();
  let cb = await ib.next();
  let pa = 0;
  let pb = 0;
  while (!ca.done && !cb.done) {
    const xa = ca.value;
    const xb = cb.value;
    const m = Math.min(xa.length - pa, xb.length - pb);
    for (let k = 0; k < m; k++) {
      const x = xa[pa + k]!;
      const y = xb[pb + k]!;
      const d = Math.abs(x - y);
      let ok: boolean;
      if (Number.isFinite(d)) {
        if (d > maxAbs) maxAbs = d;
        if (y !== 0 && d / Math.abs(y) > maxRel) maxRel = d / Math.abs(y);
        ok = d <= atol + rtol * Math.abs(y);
      } else ok = x === y || (Number.isNaN(x) && Number.isNaN(y));
      if (!ok) {
        if (first < 0) first = done + k;
        mismatched++;
      }
    }
    pa += m;
    pb += m;
    done += m;
    if (pa === xa.length) {
      ca = await ia.next();
      pa = 0;
    }
    if (pb === xb.length) {
      cb = await ib.next();
      pb = 0;
    }
    if (opts.onProgress && n > 0 && done - lastReport >= n / 100) {
      lastReport = done;
      opts.onProgress(done / n);
    }
  }
  if (done !== n) throw new JaxServeError('E_IO', `${a.tensor.name} / ${b.tensor.name}: read ${done} of ${n} elements.`);
  return { elements: n, maxAbsDiff: maxAbs, maxRelDiff: maxRel, mismatched, firstMismatch: first, allclose: mismatched === 0, rtol, atol };
}

/** The two sides of a paired entry, in left/right order, ready for compareValues. */
export function valueSides(e: DiffEntry, leftOpener: FileOpener, rightOpener: FileOpener): [ValueSide, ValueSide] | undefined {
  if (!e.left || !e.right) return undefined;
  return [
    { opener: leftOpener, tensor: e.left, planned: e.via?.side === 'left' ? e.via.planned : undefined },
    { opener: rightOpener, tensor: e.right, planned: e.via?.side === 'right' ? e.via.planned : undefined },
  ];
}

/** A short name of an entry: the export's (right, or the HF side) name, else whichever exists. */
export function entryName(e: DiffEntry): string {
  if (e.via) {
    const hf = e.via.side === 'left' ? e.right : e.left;
    return hf?.name ?? e.via.planned.to;
  }
  return (e.right ?? e.left)!.name;
}
