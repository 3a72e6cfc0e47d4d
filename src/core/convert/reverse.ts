/**
 * Import: an HF checkpoint into a preset's JAX layout (the talk's "load into JAX" step), written as
 * Flax msgpack (for `flax.serialization.from_bytes` / `msgpack_restore`) or flax-format safetensors
 * (`safetensors.flax.load_file`, `__metadata__ {"format": "flax"}`). The rules are the preset's, run
 * backwards: each forward transform has an exact inverse, so export then import is bit for bit (a
 * scale by a factor that is not a power of two is the exception, and the plan warns of it).
 * A rule that unstacks (MaxText's scanned layers, its stacked experts) runs backwards as a stack:
 * each HF tensor it made gives one slice of the JAX array, placed at its indices.
 */
import { valueOpener, type Checkpoint } from '../checkpoint';
import { JaxServeError } from '../errors';
import type { ByteSink, FileOpener } from '../io/byteSource';
import { writeFlaxMsgpack } from '../formats/msgpack/writer';
import { writeSafetensors } from '../formats/safetensors/writer';
import { DEFAULT_TILE_BUDGET_BYTES } from './tiled';
import type { PlannedTensor, Problem } from './plan';
import { PRESETS, presetById, type Preset } from './presets/index';
import { compileRule, matchRule, MAX_UNSTACK_TARGETS, unstackAxes, type CompiledRule, type Rule, type Unstack } from './rules';
import { describeTransform, layoutAfter, layoutBytes, type Layout, type Transform } from './transforms';
import { leafData, streamsInOrder } from './importLeaf';

/** MaxText's two layer layouts: one array per tensor with the layer on an axis (`scan_layers`), or `layers_N`. */
export type LayerLayout = 'scanned' | 'unscanned';

/** One HF tensor of an import: its inverse chain makes one slice of the JAX array `to`. */
export interface ImportSlice extends PlannedTensor {
  /** Its indices along the array's stacked axes (lowest axis first); [] when it is the whole array. */
  readonly at: readonly number[];
}

/** One array of the imported tree. */
export interface ImportLeaf {
  readonly name: string;
  readonly target: Layout;
  readonly bytes: number;
  /** The axes of `target` (ascending) that stack several HF tensors; [] for an array of one. */
  readonly axes: readonly number[];
  /** Its slices as indices into the plan's tensors, in output order (row-major over `axes`). */
  readonly slices: readonly number[];
}

export interface ImportPlan {
  readonly source: string;
  readonly preset: { readonly id: string; readonly title: string };
  /** The layer layout written, for presets that have both (MaxText's); absent for the rest. */
  readonly layers?: LayerLayout;
  readonly tensors: readonly ImportSlice[];
  readonly leaves: readonly ImportLeaf[];
  readonly unmapped: readonly string[];
  readonly problems: readonly Problem[];
}

export interface ImportOptions {
  /** For presets with both layouts: scanned (the default, as MaxText's `scan_layers: true`) or unscanned. */
  readonly layers?: LayerLayout;
}

/** What an inverse needs that the HF side's shapes do not say. */
export interface InverseHints {
  /** Every preset's `merge` joins (heads, head_dim), so its inverse splits head_dim back off. */
  readonly headDim?: number;
}

/** The inverse of a transform chain (reverse order, each step inverted); throws when one has none. */
export function invertTransforms(ts: readonly Transform[], what: string, hints: InverseHints = {}): Transform[] {
  return [...ts].reverse().map((t): Transform => {
    switch (t.op) {
      case 'transpose': {
        const inv = new Array<number>(t.axes.length);
        t.axes.forEach((a, k) => (inv[a] = k));
        return { op: 'transpose', axes: inv };
      }
      case 'scale':
        return { op: 'scale', factor: 1 / t.factor };
      case 'add':
        return { op: 'add', value: -t.value };
      case 'deinterleave':
        return { op: 'interleave', axis: t.axis };
      case 'interleave':
        return { op: 'deinterleave', axis: t.axis };
      case 'merge':
        if (!hints.headDim) throw new JaxServeError('E_USAGE', `${what}: splitting heads back out needs head_dim; the source folder's config.json should say it.`);
        return { op: 'split', axis: t.axis, size: hints.headDim };
      default:
        throw new JaxServeError('E_UNSUPPORTED', `${what}: ${describeTransform(t)} has no inverse here.`);
    }
  });
}

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}/g;

/** A preset rule run backwards: the HF name's pattern to the JAX name, and what the rule stacks. */
interface Inverse {
  readonly forward: Rule;
  /** The forward rule's unstacked axes, lowest first: the JAX array's stacked axes. */
  readonly axes: readonly Unstack[];
  readonly compiled: CompiledRule;
}

function inverseRule(r: Rule): Inverse {
  const alts = new Map<string, string>();
  for (const m of r.from.matchAll(PLACEHOLDER)) if (m[2] !== undefined) alts.set(m[1]!, m[2]);
  const axes = [...unstackAxes(r)].sort((a, b) => a.axis - b.axis);
  // A stacked index in the HF name: one of its names, or any segment (read as a number when planning).
  for (const u of axes) if (u.names) alts.set(u.as, u.names.join('|'));
  const from = r.to.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (whole, n: string) => (alts.has(n) ? `{${n}:${alts.get(n)}}` : whole));
  // An alternative the HF name does not carry ({a:attn|self_attn}) is written as its first choice.
  const inTarget = new Set([...r.to.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1]!));
  const to = r.from.replace(/\{([A-Za-z_][A-Za-z0-9_]*):([^}|]*)[^}]*\}/g, (_, n: string, first: string) => (inTarget.has(n) ? `{${n}}` : first));
  return { forward: r, axes, compiled: compileRule({ from, to, rank: hfRank(r, axes.length) }) };
}

/**
 * A rule's chain for one slice. One that depends on the layout has the same steps whatever the
 * sizes, so a stand-in of the slice's rank shows them (none when the rule gives no rank).
 */
function stepsOf(r: Rule): readonly Transform[] {
  if (typeof r.transforms !== 'function') return r.transforms ?? [];
  return r.rank === undefined ? [] : r.transforms({ shape: new Array<number>(r.rank - unstackAxes(r).length).fill(1), dtype: 'F32' });
}

/** The HF side's rank for a rule: one slice's rank after its merges. */
function hfRank(r: Rule, stacked: number): number | undefined {
  return r.rank === undefined ? undefined : r.rank - stacked - stepsOf(r).filter((t) => t.op === 'merge').length;
}

const fmt = (l: Layout) => `${l.dtype}${JSON.stringify(l.shape)}`;
const sameLayout = (a: Layout, b: Layout) => a.dtype === b.dtype && a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);

/**
 * The chains of one HF tensor: the inverse that makes its JAX slice, and the forward chain export
 * runs on that slice. A preset's chain may be a function of the slice's layout (MaxText's query
 * factor is sqrt of its last axis), which the HF side does not give directly: it is resolved on a
 * stand-in of the slice's rank to learn the slice's layout, then on that layout, and the two
 * directions must agree.
 */
function sliceChains(inv: Inverse, hf: Layout, name: string, hints: InverseHints): { forward: readonly Transform[]; inverse: Transform[]; slice: Layout } {
  const t = inv.forward.transforms;
  const what = `${name} → ${inv.forward.from}`;
  let first: Layout | undefined;
  if (typeof t === 'function') {
    if (inv.forward.rank === undefined) throw new JaxServeError('E_UNSUPPORTED', `${what}: its transforms depend on the shape and its rule gives no rank, so they cannot run backwards.`);
    first = layoutAfter(hf, invertTransforms(stepsOf(inv.forward), what, hints));
  }
  const forward = typeof t === 'function' ? t(first!) : (t ?? []);
  const inverse = elementwiseLast(invertTransforms(forward, what, hints));
  const slice = layoutAfter(hf, inverse);
  const back = layoutAfter(slice, forward);
  if (!sameLayout(back, hf) || (first && !sameLayout(first, slice))) {
    throw new JaxServeError('E_UNSUPPORTED', `${what}: export would make ${fmt(back)} of the ${fmt(slice)} import makes, not the ${fmt(hf)} it has; its transforms cannot run backwards here.`);
  }
  return { forward, inverse, slice };
}

/**
 * The chain with its scale and add steps moved to the end: they act on each element alone, so they
 * commute with the steps that only move elements, and last is where the tiler takes them (export
 * has them there too). Left as it is when a cast would change their arithmetic.
 */
function elementwiseLast(ts: Transform[]): Transform[] {
  if (ts.some((t) => t.op === 'cast')) return ts;
  const arithmetic = (t: Transform) => t.op === 'scale' || t.op === 'add';
  return [...ts.filter((t) => !arithmetic(t)), ...ts.filter(arithmetic)];
}

/** The placeholder that numbers HF decoder layers in a rule's target (`model.layers.{l}.…`). */
function layerCapture(r: Rule): string | undefined {
  return /(?:^|\.)layers\.\{([A-Za-z_][A-Za-z0-9_]*)\}\./.exec(r.to)?.[1];
}

/** A rule that stacks the layers (MaxText's scan_layers: the layer is one of its unstacked axes). */
const scansLayers = (r: Rule): boolean => unstackAxes(r).some((u) => u.as === layerCapture(r));
/** A rule for one layer's tensor (`layers_{i}`, `layers.{i}`). */
const perLayer = (r: Rule): boolean => layerCapture(r) !== undefined && !scansLayers(r);

/** The layer layouts a preset can write: both for MaxText's, none to choose for the rest. */
export function layerLayouts(presetId: string): LayerLayout[] {
  const p = presetById(presetId);
  return p && p.rules.some(scansLayers) && p.rules.some(perLayer) ? ['scanned', 'unscanned'] : [];
}

/**
 * The rules of the layout asked for. A preset with both holds two rules for each layer tensor with
 * the same HF name, so only one kind may run backwards: scanned unless asked otherwise, as MaxText
 * itself defaults to `scan_layers: true`.
 */
function rulesFor(p: Preset, asked: LayerLayout | undefined): { rules: readonly Rule[]; layers?: LayerLayout } {
  const has = { scanned: p.rules.some(scansLayers), unscanned: p.rules.some(perLayer) };
  if (asked && !has[asked]) throw new JaxServeError('E_USAGE', `${p.id} has no ${asked} layer layout (${has.scanned ? 'its layers are scanned' : 'it writes one array per layer'}).`);
  if (!has.scanned || !has.unscanned) return { rules: p.rules };
  const layers = asked ?? 'scanned';
  return { rules: p.rules.filter((r) => layerCapture(r) === undefined || scansLayers(r) === (layers === 'scanned')), layers };
}

/**
 * A rule that fuses HF tensors into one by name (Gemma's k and v, or q, k and v): which ones go
 * together depends on the head counts, so import does not guess.
 */
function fusingRule(p: Preset): Rule | undefined {
  return p.rules.find((r) => unstackAxes(r).some((u) => u.names !== undefined));
}

/**
 * The wrapper the JAX side's own checkpoints put around the tree, written back on import (convert
 * leaves it out of the matching): MaxText saves its TrainState's params, {'params': {'params': …}}.
 */
function wrapperOf(p: Preset): string {
  return p.id.startsWith('maxtext-') ? 'params.params.' : '';
}

/** Presets an HF checkpoint can be imported into (language models, fused projections aside). */
export function importablePresets(): Preset[] {
  return PRESETS.filter((p) => p.architecture !== 'state-dict' && !fusingRule(p));
}

/** Where an HF tensor goes along a stacked axis: its name's index, or undefined when it names none. */
function indexAlong(u: Unstack, v: string): number | undefined {
  if (u.names) {
    const k = u.names.indexOf(v);
    return k < 0 ? undefined : k;
  }
  return /^\d{1,9}$/.test(v) ? Number(v) : undefined;
}

/** What a stacked axis counts, by the HF name around its index: layers, experts, or else its capture's name. */
function axisWord(r: Rule, u: Unstack): string {
  const to = `.${r.to}`;
  return to.includes(`.layers.{${u.as}}.`) ? 'layers' : to.includes(`.experts.{${u.as}}.`) ? 'experts' : u.as;
}

/** The keys of config.json that count layers and experts (Mixtral's num_local_experts, Qwen3-MoE's num_experts). */
const CONFIG_COUNTS: ReadonlyMap<string, readonly string[]> = new Map([
  ['layers', ['num_hidden_layers']],
  ['experts', ['num_local_experts', 'num_experts']],
]);

/** How many indices a stacked axis has when config.json says. */
function configCount(r: Rule, u: Unstack, config: Readonly<Record<string, unknown>> | undefined): number | undefined {
  for (const k of CONFIG_COUNTS.get(axisWord(r, u)) ?? []) {
    const n = config?.[k];
    if (typeof n === 'number' && Number.isInteger(n) && n > 0 && n <= MAX_UNSTACK_TARGETS) return n;
  }
  return undefined;
}

/** A pattern with its placeholders filled (a missing tensor's HF name). */
function fillPattern(pattern: string, captures: Readonly<Record<string, string>>): string {
  return pattern.replace(PLACEHOLDER, (whole, n: string) => captures[n] ?? whole);
}

/** The HF tensors that map to one JAX array, while planning. */
interface Group {
  readonly inv: Inverse;
  readonly captures: Readonly<Record<string, string>>;
  readonly slice: Layout;
  /** The plan's tensor that made the group (and set its slice layout). */
  readonly first: number;
  /** Index into the plan's tensors by the slice's indices joined with ','. */
  readonly byIndex: Map<string, number>;
}

/**
 * Plans an import. `config` is the HF folder's config.json: einsum layouts need its head_dim
 * (or hidden_size / num_attention_heads) to split heads back out, and stacked arrays its layer and
 * expert counts, so that a missing last layer or expert is named instead of making a smaller array.
 */
export function planImport(ck: Checkpoint, presetId: string, config?: Readonly<Record<string, unknown>>, opts: ImportOptions = {}): ImportPlan {
  const preset: Preset | undefined = presetById(presetId);
  if (!preset) throw new JaxServeError('E_USAGE', `unknown preset ${JSON.stringify(presetId)} (known: ${PRESETS.map((p) => p.id).join(', ')}).`);
  const heads = Number(config?.num_attention_heads);
  const headDim = Number(config?.head_dim ?? Number(config?.hidden_size) / heads);
  const hints = { headDim: Number.isInteger(headDim) && headDim > 0 ? headDim : undefined };
  const fused = fusingRule(preset);
  if (fused) {
    throw new JaxServeError('E_UNSUPPORTED', `${preset.id}: its ${fused.from} fuses several HF tensors into one (which ones depends on the head counts); importing into this layout is not supported yet.`);
  }
  const { rules, layers } = rulesFor(preset, opts.layers);
  const splits = hints.headDim ? undefined : rules.find((r) => stepsOf(r).some((t) => t.op === 'merge'));
  if (splits) throw new JaxServeError('E_USAGE', `${splits.to} → ${splits.from}: splitting heads back out needs head_dim; the source folder's config.json should say it.`);
  const inverses = rules.map(inverseRule);
  const compiled = inverses.map((i) => i.compiled);
  const byCompiled = new Map(inverses.map((i) => [i.compiled, i]));
  const prefix = wrapperOf(preset);
  const tensors: ImportSlice[] = [];
  const unmapped: string[] = [];
  const problems: Problem[] = [];
  const groups = new Map<string, Group>();
  // Per stacked capture (l, e): the largest index seen + 1, the count when config.json gives none.
  const seen = new Map<string, number>();
  for (const t of ck.tensors) {
    const m = matchRule(compiled, t.name, t.shape.length);
    if (!m) {
      unmapped.push(t.name);
      problems.push({ severity: 'error', code: 'unmapped', tensor: t.name, message: `${t.name}: ${preset.id} has no place for it in the JAX layout.` });
      continue;
    }
    const inv = byCompiled.get(m.rule)!;
    const at = inv.axes.map((u) => indexAlong(u, m.captures[u.as]!));
    const bad = at.findIndex((a) => a === undefined);
    if (bad >= 0) {
      unmapped.push(t.name);
      const u = inv.axes[bad]!;
      problems.push({ severity: 'error', code: 'unmapped', tensor: t.name, message: `${t.name}: ${JSON.stringify(m.captures[u.as])} is not an index along ${axisWord(inv.forward, u)}, so it has no place in ${inv.forward.from}.` });
      continue;
    }
    const hf = { shape: t.shape, dtype: t.dtype };
    let chains: ReturnType<typeof sliceChains>;
    try {
      chains = sliceChains(inv, hf, t.name, hints);
    } catch (e) {
      problems.push({ severity: 'error', code: 'transform', tensor: t.name, message: `${t.name}: ${(e as Error).message}` });
      continue;
    }
    const name = prefix + m.target;
    let g = groups.get(name);
    if (!g) {
      groups.set(name, (g = { inv, captures: m.captures, slice: chains.slice, first: tensors.length, byIndex: new Map() }));
      const inexact = inexactStep(chains.forward);
      if (inexact) problems.push({ severity: 'warning', code: 'inexact', tensor: name, message: `${name}: export applies ${describeTransform(inexact)} to it, and undoing that may differ from the original in the last bit (only powers of two are exact).` });
    }
    const key = (at as number[]).join(',');
    const earlier = g.inv === inv ? g.byIndex.get(key) : g.first;
    if (earlier !== undefined) {
      problems.push({ severity: 'error', code: 'duplicate', tensor: t.name, message: `${t.name} and ${tensors[earlier]!.from} both map to ${name}${key ? ` at [${key}]` : ''}.` });
      continue;
    }
    if (!sameLayout(chains.slice, g.slice)) {
      problems.push({ severity: 'error', code: 'shape', tensor: t.name, message: `${t.name} makes a ${fmt(chains.slice)} slice of ${name}, ${tensors[g.first]!.from} a ${fmt(g.slice)} one: the slices of one array must agree.` });
      continue;
    }
    g.byIndex.set(key, tensors.length);
    inv.axes.forEach((u, k) => seen.set(u.as, Math.max(seen.get(u.as) ?? 0, at[k]! + 1)));
    tensors.push({ from: t.name, to: name, transforms: chains.inverse, source: hf, target: chains.slice, bytes: layoutBytes(chains.slice), at: at as number[] });
  }
  const leaves: ImportLeaf[] = [];
  for (const [name, g] of groups) {
    const sizes = g.inv.axes.map((u) => u.names?.length ?? configCount(g.inv.forward, u, config) ?? seen.get(u.as)!);
    const leaf = stackedLeaf(name, g, sizes, tensors, problems);
    if (leaf) leaves.push(leaf);
  }
  return { source: ck.location, preset: { id: preset.id, title: preset.title }, ...(layers ? { layers } : {}), tensors, leaves, unmapped, problems };
}

/**
 * A step whose inverse may not give back the same bits: x·f·(1/f) rounds to x for every x only when
 * f is a power of two (MaxText's sqrt(head_dim) is one for head_dim 64 or 256, not for 128), and
 * x + v - v not always.
 */
function inexactStep(ts: readonly Transform[]): Transform | undefined {
  return ts.find((t) => (t.op === 'scale' && !Number.isInteger(Math.log2(Math.abs(t.factor)))) || (t.op === 'add' && t.value !== 0));
}

/** Missing tensors a problem names; the count says how many more. */
const NAMED_MISSING = 3;

/**
 * The array `g`'s slices make, `sizes` indices along each stacked axis, or undefined with the reason
 * in `problems`: every index of every stacked axis must be there exactly once.
 */
function stackedLeaf(name: string, g: Group, sizes: readonly number[], tensors: readonly ImportSlice[], problems: Problem[]): ImportLeaf | undefined {
  const { axes } = g.inv;
  if (axes.length === 0) return { name, target: g.slice, bytes: layoutBytes(g.slice), axes: [], slices: [...g.byIndex.values()] };
  const error = (code: string, tensor: string, message: string): undefined => {
    problems.push({ severity: 'error', code, tensor, message });
    return undefined;
  };
  const past = [...g.byIndex.values()].find((k) => tensors[k]!.at.some((a, j) => a >= sizes[j]!));
  if (past !== undefined) {
    const j = tensors[past]!.at.findIndex((a, i) => a >= sizes[i]!);
    const word = axisWord(g.inv.forward, axes[j]!);
    return error('shape', tensors[past]!.from, `${tensors[past]!.from}: index ${tensors[past]!.at[j]} is past the ${sizes[j]} ${word} config.json gives, so it has no place in ${name}.`);
  }
  const count = sizes.reduce((a, b) => a * b, 1);
  if (count > MAX_UNSTACK_TARGETS) return error('shape', name, `${name} would stack ${count} HF tensors (${sizes.join(' × ')}), over the limit of ${MAX_UNSTACK_TARGETS}.`);
  if (axes.some((u, k) => u.axis > g.slice.shape.length + k)) return error('shape', name, `${name}: ${g.inv.forward.from} stacks axis ${axes.map((u) => u.axis).join(', ')}, which a ${fmt(g.slice)} slice cannot take.`);
  // Every combination in output order (row-major, lowest axis outermost): at most MAX_UNSTACK_TARGETS.
  const slices: number[] = [];
  const missing: string[] = [];
  let absent = 0;
  const index = new Array<number>(axes.length).fill(0);
  for (let n = 0; n < count; n++) {
    const k = g.byIndex.get(index.join(','));
    if (k !== undefined) slices.push(k);
    else if (absent++ < NAMED_MISSING) missing.push(fillPattern(g.inv.compiled.from, { ...g.captures, ...Object.fromEntries(axes.map((u, j) => [u.as, u.names?.[index[j]!] ?? String(index[j])])) }));
    for (let j = axes.length - 1; j >= 0 && ++index[j]! >= sizes[j]!; j--) index[j] = 0;
  }
  if (absent > 0) {
    const more = absent > missing.length ? ` and ${absent - missing.length} more` : '';
    return error('missing', missing[0]!, `${missing.join(', ')}${more} ${absent === 1 ? 'is' : 'are'} not in the HF checkpoint: ${name} stacks ${sizes.join(' × ')} of them (${axes.map((u) => axisWord(g.inv.forward, u)).join(' × ')}) and needs every one.`);
  }
  const shape = [...g.slice.shape];
  axes.forEach((u, k) => shape.splice(u.axis, 0, sizes[k]!));
  const target = { shape, dtype: g.slice.dtype };
  return { name, target, bytes: layoutBytes(target), axes: axes.map((u) => u.axis), slices };
}

export type ImportFormat = 'msgpack' | 'safetensors';

/**
 * Writes the imported tree to `sink` (one file); the source is only read. Memory stays within about
 * the tile budget: a tensor over it is converted in tiles, an array stacked along its leading axes
 * (experts) streams slice by slice, and one stacked along an inner axis (a scanned layer on axis 1)
 * is built whole, so one over the budget is refused before a byte is written.
 */
export async function executeImport(plan: ImportPlan, ck: Checkpoint, files: FileOpener, sink: ByteSink, format: ImportFormat, opts: { tileBudgetBytes?: number } = {}): Promise<void> {
  if (plan.problems.some((p) => p.severity === 'error')) {
    await sink.abort();
    throw new JaxServeError('E_USAGE', `the import plan has errors; nothing was written:\n  ${plan.problems.filter((p) => p.severity === 'error').slice(0, 3).map((p) => p.message).join('\n  ')}`);
  }
  const budget = opts.tileBudgetBytes ?? DEFAULT_TILE_BUDGET_BYTES;
  const whole = plan.leaves.find((l) => !streamsInOrder(l) && l.bytes > budget);
  if (whole) {
    await sink.abort();
    const instead = plan.layers === 'scanned' ? 'import with --layers unscanned (one array per layer), or raise the budget' : 'raise the budget';
    throw new JaxServeError(
      'E_LIMIT',
      `${whole.name} is ${fmt(whole.target)} (${whole.bytes} bytes) stacked along axis ${whole.axes.join(', ')} from ${whole.slices.length} HF tensors, so it is built whole in memory, over the ${budget}-byte memory budget; ${instead}. Nothing was written.`,
    );
  }
  const opener = valueOpener(ck, files);
  const sources = new Map(ck.tensors.map((t) => [t.name, t]));
  const byName = new Map(plan.leaves.map((l) => [l.name, l]));
  const data = (name: string) => leafData(byName.get(name)!, plan.tensors, sources, opener, budget, format === 'msgpack');
  if (format === 'safetensors') {
    await writeSafetensors(sink, plan.leaves.map((l) => ({ name: l.name, dtype: l.target.dtype, shape: l.target.shape })), (s) => data(s.name), { metadata: { format: 'flax' } });
    return;
  }
  await writeFlaxMsgpack(
    sink,
    plan.leaves.map((l) => ({ path: l.name.split('.'), dtype: l.target.dtype, shape: l.target.shape })),
    async function* (leaf) {
      const d = data(leaf.path.join('.'));
      if (d instanceof Promise) yield await d;
      else yield* d as AsyncIterable<Uint8Array>;
    },
  );
}
