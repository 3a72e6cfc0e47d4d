/**
 * Import: an HF checkpoint into a preset's JAX layout (the talk's "load into JAX" step), written as
 * Flax msgpack (for `flax.serialization.from_bytes` / `msgpack_restore`) or flax-format safetensors
 * (`safetensors.flax.load_file`, `__metadata__ {"format": "flax"}`). The rules are the preset's, run
 * backwards: each forward transform has an exact inverse, so export then import is bit for bit.
 */
import { valueOpener, type Checkpoint } from '../checkpoint';
import { JaxServeError } from '../errors';
import type { ByteSink, FileOpener } from '../io/byteSource';
import { writeFlaxMsgpack } from '../formats/msgpack/writer';
import { writeSafetensors, type TensorData } from '../formats/safetensors/writer';
import { DEFAULT_TILE_BUDGET_BYTES, tiledTensorData } from './tiled';
import type { PlannedTensor, Problem } from './plan';
import { PRESETS, presetById, type Preset } from './presets/index';
import { compileRule, matchRule, type Rule } from './rules';
import { convertTensor } from './execute';
import { layoutAfter, layoutBytes, type Transform } from './transforms';

export interface ImportPlan {
  readonly source: string;
  readonly preset: { readonly id: string; readonly title: string };
  readonly tensors: readonly PlannedTensor[];
  readonly unmapped: readonly string[];
  readonly problems: readonly Problem[];
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
        throw new JaxServeError('E_UNSUPPORTED', `${what}: ${t.op} has no inverse here (stacking scanned layers or fused tensors on import is not supported yet).`);
    }
  });
}

/** A preset rule run backwards: the target pattern (with the source's alternatives) to the source name. */
function inverseRule(r: Rule, hints: InverseHints): Rule {
  const alts = new Map<string, string>();
  for (const m of r.from.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}/g)) if (m[2] !== undefined) alts.set(m[1]!, m[2]);
  const from = r.to.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (whole, n: string) => (alts.has(n) ? `{${n}:${alts.get(n)}}` : whole));
  // An alternative the HF name does not carry ({a:attn|self_attn}) is written as its first choice.
  const inTarget = new Set([...r.to.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1]!));
  const to = r.from.replace(/\{([A-Za-z_][A-Za-z0-9_]*):([^}|]*)[^}]*\}/g, (_, n: string, first: string) => (inTarget.has(n) ? `{${n}}` : first));
  // planImport refused function chains (presets whose factors depend on the shape) before this.
  return { from, to, transforms: invertTransforms((r.transforms ?? []) as readonly Transform[], `${r.to} → ${r.from}`, hints), rank: layoutRankAfter(r) };
}

/** The HF side's rank for a rule: the source rank after its merges. */
function layoutRankAfter(r: Rule): number | undefined {
  if (r.rank === undefined || typeof r.transforms === 'function') return undefined;
  return r.rank - (r.transforms ?? []).filter((t) => t.op === 'merge').length;
}

/** A rule that puts several HF tensors into one JAX array, which import cannot run backwards yet. */
function stackingRule(p: Preset): Rule | undefined {
  return p.rules.find((r) => r.unstack || typeof r.transforms === 'function');
}

/** Presets an HF checkpoint can be imported into (language models without stacked layouts). */
export function importablePresets(): Preset[] {
  return PRESETS.filter((p) => p.architecture !== 'state-dict' && !stackingRule(p));
}

/**
 * Plans an import. `config` is the HF folder's config.json: einsum layouts need its head_dim
 * (or hidden_size / num_attention_heads) to split heads back out.
 */
export function planImport(ck: Checkpoint, presetId: string, config?: Readonly<Record<string, unknown>>): ImportPlan {
  const preset: Preset | undefined = presetById(presetId);
  if (!preset) throw new JaxServeError('E_USAGE', `unknown preset ${JSON.stringify(presetId)} (known: ${PRESETS.map((p) => p.id).join(', ')}).`);
  const heads = Number(config?.num_attention_heads);
  const headDim = Number(config?.head_dim ?? Number(config?.hidden_size) / heads);
  const hints = { headDim: Number.isInteger(headDim) && headDim > 0 ? headDim : undefined };
  const stacked = stackingRule(preset);
  if (stacked) {
    throw new JaxServeError('E_UNSUPPORTED', `${preset.id}: its ${stacked.from} stacks several HF tensors into one (scanned layers or fused projections); importing into this layout is not supported yet.`);
  }
  const rules = preset.rules.map((r) => inverseRule(r, hints)).map(compileRule);
  const tensors: PlannedTensor[] = [];
  const unmapped: string[] = [];
  const problems: Problem[] = [];
  for (const t of ck.tensors) {
    const m = matchRule(rules, t.name, t.shape.length);
    if (!m) {
      unmapped.push(t.name);
      problems.push({ severity: 'error', code: 'unmapped', tensor: t.name, message: `${t.name}: ${preset.id} has no place for it in the JAX layout.` });
      continue;
    }
    const source = { shape: t.shape, dtype: t.dtype };
    const transforms = m.rule.transforms as readonly Transform[];
    try {
      const target = layoutAfter(source, transforms);
      tensors.push({ from: t.name, to: m.target, transforms, source, target, bytes: layoutBytes(target) });
    } catch (e) {
      problems.push({ severity: 'error', code: 'transform', tensor: t.name, message: `${t.name}: ${(e as Error).message}` });
    }
  }
  return { source: ck.location, preset: { id: preset.id, title: preset.title }, tensors, unmapped, problems };
}

export type ImportFormat = 'msgpack' | 'safetensors';

/** Writes the imported tree to `sink` (one file); the source is only read. */
export async function executeImport(plan: ImportPlan, ck: Checkpoint, files: FileOpener, sink: ByteSink, format: ImportFormat, opts: { tileBudgetBytes?: number } = {}): Promise<void> {
  if (plan.problems.some((p) => p.severity === 'error')) {
    await sink.abort();
    throw new JaxServeError('E_USAGE', `the import plan has errors; nothing was written:\n  ${plan.problems.slice(0, 3).map((p) => p.message).join('\n  ')}`);
  }
  const opener = valueOpener(ck, files);
  const sources = new Map(ck.tensors.map((t) => [t.name, t]));
  const budget = opts.tileBudgetBytes ?? DEFAULT_TILE_BUDGET_BYTES;
  // Within the budget a tensor is converted whole; over it in tiles (a stream for msgpack).
  const converted = (p: PlannedTensor): Promise<Uint8Array> | TensorData => {
    const src = sources.get(p.from)!;
    return src.bytes > budget || p.bytes > budget ? tiledTensorData(p, src, opener, budget, undefined, format === 'msgpack') : convertTensor(p, src, opener);
  };
  const byTarget = new Map(plan.tensors.map((p) => [p.to, p]));
  if (format === 'safetensors') {
    await writeSafetensors(sink, plan.tensors.map((p) => ({ name: p.to, dtype: p.target.dtype, shape: p.target.shape })), (s) => converted(byTarget.get(s.name)!), { metadata: { format: 'flax' } });
    return;
  }
  await writeFlaxMsgpack(
    sink,
    plan.tensors.map((p) => ({ path: p.to.split('.'), dtype: p.target.dtype, shape: p.target.shape })),
    async function* (leaf) {
      const data = converted(byTarget.get(leaf.path.join('.'))!);
      if (data instanceof Promise) yield await data;
      else yield* data as AsyncIterable<Uint8Array>;
    },
  );
}
