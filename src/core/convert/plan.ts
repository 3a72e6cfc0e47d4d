/**
 * The conversion plan (dry run): every source tensor's target name, transforms, output shape and
 * dtype; what no rule maps; what two sources would both write; what the target class expects but
 * nobody provides; and the config.json to write. The same object is shown before writing, printed
 * by `--dry-run`, executed, and checked by tests.
 */
import type { Checkpoint } from '../checkpoint';
import { JaxServeError } from '../errors';
import type { DType } from '../dtype';
import { ARCHITECTURES, MAX_LAYER_EXPERTS, TORCH_DTYPE, type Architecture, type ModelDims } from './architectures';
import { PRESETS, presetById, type Preset } from './presets/index';
import { compileRule, matchRule, ruleTargets, unstackAxes, type CompiledRule, type Rule } from './rules';
import { layoutAfter, layoutBytes, type Layout, type Transform } from './transforms';
import type { Problem } from './planRow';
import { MERGE_WHOLE_BYTES } from './adapterExport';
import { tileable } from './tiled';
import { findLora, loraModeProblem, planAdapters, type LoraMode, type PlannedAdapter } from './lora';

export interface PlannedTensor {
  readonly from: string;
  readonly to: string;
  readonly transforms: readonly Transform[];
  readonly source: Layout;
  readonly target: Layout;
  readonly bytes: number;
  /** With --lora merge: the adapter folded into this weight (in f32, before any cast). */
  readonly merge?: PlannedAdapter;
}

export type { Problem, Severity } from './planRow';

export interface Plan {
  readonly source: string;
  readonly preset: { readonly id: string; readonly title: string; readonly source: string };
  readonly architecture: string;
  /** A wrapper every source name starts with (Linen's `params.`, MaxText's `params.params.`), left out of the matching. */
  readonly prefix: string;
  readonly tensors: readonly PlannedTensor[];
  readonly unmapped: readonly string[];
  readonly problems: readonly Problem[];
  /** config.json to write; undefined when the shapes could not be settled (see problems). */
  readonly config: Record<string, unknown> | undefined;
  /** LoRA adapters found, one per adapted module (empty when there are none). */
  readonly adapters: readonly PlannedAdapter[];
  /** What is done with them: written as a PEFT adapter, or merged into the base weights. */
  readonly lora?: LoraMode;
}

export interface PlanOptions {
  /** A preset id, or 'auto' (default): the preset whose rules map the most tensors. */
  readonly preset?: string;
  /** Rules tried before the preset's (a user rule file extends or overrides a preset). */
  readonly userRules?: readonly Rule[];
  /** Output element type: 'keep' (default) or a float type every float tensor is cast to. */
  readonly dtype?: 'keep' | DType;
  /** A base model's config.json (--config-from): merged under what the weights say. */
  readonly baseConfig?: Readonly<Record<string, unknown>>;
  /** Single settings (--set KEY=VALUE), over the base config. */
  readonly set?: Readonly<Record<string, unknown>>;
  /**
   * (H, W, C) of the feature map a Dense layer gets flattened (--flatten LAYER=HxWxC): its rows are
   * reordered from Flax's NHWC flatten to PyTorch's NCHW. Inferred from the shapes when absent.
   */
  readonly flatten?: Readonly<Record<string, readonly [number, number, number]>>;
  /** What to do with LoRA leaves (--lora); a checkpoint that has them and no mode is refused. */
  readonly lora?: LoraMode;
  /** LoRA alpha (--lora-alpha); r when absent, as flax's LoRA applies no scale. */
  readonly loraAlpha?: number;
  /** An adapter-only checkpoint beside SRC (--lora-from): its LoRA leaves' base kernels are in SRC. */
  readonly adapter?: Pick<Checkpoint, 'tensors' | 'location'>;
}

/**
 * transformers 5 writes `rope_parameters` (per layer type for Gemma 3) and `dtype`; 4.x wrote
 * `rope_theta`, `rope_scaling`, `rope_local_base_freq` and `torch_dtype`. Read either; the export
 * writes the 4.x keys, which both generations and vLLM read.
 */
function normalizeBaseConfig(base: Readonly<Record<string, unknown>> | undefined): Readonly<Record<string, unknown>> | undefined {
  if (!base) return base;
  const out: Record<string, unknown> = { ...base };
  const rp = base.rope_parameters as Record<string, unknown> | undefined;
  if (rp && typeof rp === 'object') {
    const global = (rp.full_attention ?? rp) as Record<string, unknown>;
    const local = rp.sliding_attention as Record<string, unknown> | undefined;
    if (out.rope_theta === undefined && global.rope_theta !== undefined) out.rope_theta = global.rope_theta;
    if (out.rope_scaling === undefined && global.rope_type !== undefined && global.rope_type !== 'default') {
      const { rope_theta: _theta, ...scaling } = global;
      out.rope_scaling = scaling;
    }
    if (local && out.rope_local_base_freq === undefined && local.rope_theta !== undefined) out.rope_local_base_freq = local.rope_theta;
    delete out.rope_parameters;
  }
  return out;
}

/** Tensors a plan may list (DeepSeek-V3's 61 layers × 256 experts × 3 is 46,848, plus the rest). */
export const MAX_PLAN_TENSORS = 400_000;

/** Targets a rule makes of a tensor of `shape` (its unstacked axes' product; 1 without). */
function unstackCount(rule: Rule, shape: readonly number[]): number {
  return unstackAxes(rule).reduce((n, u) => n * (shape[u.axis] ?? 1), 1);
}

/** Base-config keys the export settles itself, or must not inherit (remote code, another model's quantization). */
const NOT_INHERITED = new Set(['architectures', 'model_type', 'dtype', 'torch_dtype', 'transformers_version', '_name_or_path', 'auto_map', 'quantization_config']);

export function planConversion(ck: Checkpoint, options: PlanOptions = {}): Plan {
  const opts = { ...options, baseConfig: normalizeBaseConfig(options.baseConfig) };
  const user = (opts.userRules ?? []).map(compileRule);
  // LoRA leaves are never conversion targets; a wrapped base (`M.base_module.kernel`) is matched as `M.kernel`.
  const lora = findLora(ck.tensors, opts.adapter?.tensors);
  const sources = ck.tensors.filter((t) => !lora.leaves.has(t.name)).map((t) => ({ t, name: lora.renamed.get(t.name) ?? t.name }));
  const { preset, prefix } = choosePreset(ck.location, sources, opts.preset ?? 'auto', user);
  const rules = [...user, ...preset.rules.map(compileRule)];
  const problems: Problem[] = [];
  if (preset.note) problems.push({ severity: 'info', code: 'preset-note', message: preset.note });
  const tensors: PlannedTensor[] = [];
  const unmapped: string[] = [];
  const byTarget = new Map<string, string>();
  const byUser = new Set<string>();
  for (const { t, name } of sources) {
    const m = name.startsWith(prefix) ? matchRule(rules, name.slice(prefix.length), t.shape.length) : undefined;
    if (!m) {
      unmapped.push(t.name);
      problems.push({ severity: 'error', code: 'unmapped', tensor: t.name, message: `${t.name} ${t.dtype}${JSON.stringify(t.shape)}: no rule of ${preset.id} maps it (add one in jax-serve.rules.json).` });
      continue;
    }
    if (user.includes(m.rule)) byUser.add(t.name);
    const source = { shape: t.shape, dtype: t.dtype };
    // The whole plan is bounded too: many small stacked tensors (zero-sized, a few bytes on disk) must
    // not make millions of targets.
    const made = unstackCount(m.rule, source.shape);
    if (tensors.length + made > MAX_PLAN_TENSORS) throw new JaxServeError('E_LIMIT', `${ck.location}: ${t.name} would take the plan past ${MAX_PLAN_TENSORS.toLocaleString('en-US')} tensors; a checkpoint that unstacks into that many is refused.`);
    try {
      for (const r of ruleTargets(m, source, t.name)) {
        const earlier = byTarget.get(r.target);
        if (earlier !== undefined) {
          problems.push({ severity: 'error', code: 'duplicate', tensor: t.name, message: `${t.name} and ${earlier} both map to ${r.target}.` });
          continue;
        }
        byTarget.set(r.target, t.name);
        const transforms = [...r.transforms, ...castTo(t.dtype, opts.dtype)];
        const target = layoutAfter(source, transforms);
        tensors.push({ from: t.name, to: r.target, transforms, source, target, bytes: layoutBytes(target) });
      }
    } catch (e) {
      problems.push({ severity: 'error', code: 'transform', tensor: t.name, message: `${t.name}: ${(e as Error).message}` });
    }
  }
  // A state dict has no config: its one shape question is the flatten before the first Dense.
  if (preset.architecture === 'state-dict') reorderFlatten(tensors, byUser, opts, problems);
  const config = preset.architecture === 'state-dict' ? undefined : settle(ARCHITECTURES[preset.architecture], tensors, opts, problems);
  problems.push(...lora.problems);
  const adapters = lora.pairs.length || lora.problems.length ? planAdapters(lora, tensors, opts.loraAlpha, problems) : [];
  if ((lora.pairs.length || lora.problems.length) && !opts.lora) problems.push(loraModeProblem(lora));
  if (opts.lora && lora.pairs.length === 0 && lora.problems.length === 0) {
    problems.push({ severity: 'error', code: 'lora-mode', message: `--lora ${opts.lora}: ${opts.adapter ? `${opts.adapter.location} holds` : 'the source holds'} no LoRA leaves (…lora.lora_a / …lora_a / …<param>_lora_a and their _b).` });
  }
  if (opts.lora === 'merge') mergeAdapters(tensors, adapters, problems);
  return {
    source: ck.location,
    preset: { id: preset.id, title: preset.title, source: preset.source },
    architecture: preset.architecture,
    prefix,
    tensors,
    unmapped,
    problems,
    config,
    adapters,
    ...(opts.lora ? { lora: opts.lora } : {}),
  };
}

function mergeAdapters(tensors: PlannedTensor[], adapters: readonly PlannedAdapter[], problems: Problem[]): void {
  // By the weight each adapter was planned for: a fused kernel's adapter has one share per weight.
  const byTo = new Map(tensors.map((t, i) => [t.to, i]));
  for (const a of adapters) {
    const i = byTo.get(`${a.module}.weight`)!;
    const t = tensors[i]!;
    // Past the whole-merge size the merge runs in the base chain's tiles: the chain must allow them.
    if (t.target.shape.reduce((x, y) => x * y, 4) > MERGE_WHOLE_BYTES && !tileable({ source: t.source, transforms: a.transforms })) {
      problems.push({ severity: 'error', code: 'lora', tensor: t.to, message: `${t.to}: too large to merge whole, and its conversion cannot run in tiles; export the adapter with --lora adapter instead.` });
      continue;
    }
    tensors[i] = { ...t, merge: a };
  }
}

function castTo(from: DType, to: PlanOptions['dtype']): Transform[] {
  if (!to || to === 'keep' || to === from) return [];
  const float = (d: DType) => d === 'F32' || d === 'F16' || d === 'BF16' || d === 'F64';
  return float(from) ? [{ op: 'cast', dtype: to }] : [];
}

/** '' and every dotted prefix all the names share ('params.', 'params.params.'), shortest first. */
function sharedPrefixes(names: readonly string[]): string[] {
  const out = [''];
  if (names.length === 0) return out;
  const parts = names[0]!.split('.');
  for (let k = 1; k < parts.length; k++) {
    const p = parts.slice(0, k).join('.') + '.';
    if (!names.every((n) => n.startsWith(p) && n.length > p.length)) break;
    out.push(p);
  }
  return out;
}

function choosePreset(location: string, tensors: readonly { readonly t: { readonly shape: readonly number[] }; readonly name: string }[], id: string, user: readonly CompiledRule[]): { preset: Preset; prefix: string } {
  const prefixes = sharedPrefixes(tensors.map((t) => t.name));
  const score = (preset: Preset) => {
    const rules = [...user, ...preset.rules.map(compileRule)];
    let best = { prefix: '', mapped: -1 };
    for (const prefix of prefixes) {
      const mapped = tensors.filter(({ t, name }) => matchRule(rules, name.slice(prefix.length), t.shape.length)).length;
      if (mapped > best.mapped) best = { prefix, mapped };
    }
    return best;
  };
  if (id !== 'auto') {
    const p = presetById(id);
    if (!p) throw new JaxServeError('E_USAGE', `unknown preset ${JSON.stringify(id)} (known: ${PRESETS.map((x) => x.id).join(', ')}, auto).`);
    return { preset: p, prefix: score(p).prefix };
  }
  let best: { preset: Preset; prefix: string; mapped: number } | undefined;
  for (const preset of PRESETS) {
    if (preset.accepts && !preset.accepts(tensors.map(({ t, name }) => ({ name, shape: t.shape })))) continue;
    const s = score(preset);
    if (!best || s.mapped > best.mapped) best = { preset, ...s };
  }
  if (!best || best.mapped === 0) {
    throw new JaxServeError('E_UNSUPPORTED', `${location}: no preset recognizes these tensor names (tried ${PRESETS.map((p) => p.id).join(', ')}); name one with --preset or describe the layout in jax-serve.rules.json.`);
  }
  return best;
}

/**
 * The first Dense after a conv flatten (reference §10): Flax flattens (H, W, C), PyTorch (C, H, W),
 * so its kernel rows are reordered: (H·W·C, O) -> (H, W, C, O) -> (O, C, H, W) -> (O, C·H·W).
 * Given by --flatten, or inferred: the first Dense whose input is the last conv's channels times a
 * square. Never silent: an inference is a warning naming what to pass.
 */
function reorderFlatten(tensors: PlannedTensor[], byUser: ReadonlySet<string>, opts: PlanOptions, problems: Problem[]): void {
  const kernel = (t: PlannedTensor) => t.from.endsWith('.kernel');
  const layerOf = (t: PlannedTensor) => t.from.replace(/^params\./, '').replace(/\.kernel$/, '');
  const dense = tensors.filter((t) => kernel(t) && t.source.shape.length === 2);
  const given = Object.entries(opts.flatten ?? {});
  const chosen: [PlannedTensor, readonly [number, number, number]][] = [];
  for (const [layer, hwc] of given) {
    const t = dense.find((d) => layerOf(d) === layer || d.from === `${layer}.kernel`);
    if (!t) {
      problems.push({ severity: 'error', code: 'flatten', message: `--flatten ${layer}: no 2-D Dense kernel ${layer}.kernel in the source (Dense layers: ${dense.map((d) => d.from).join(', ') || 'none'}).` });
      continue;
    }
    chosen.push([t, hwc]);
  }
  if (given.length === 0) {
    const convs = tensors.filter((t) => kernel(t) && t.source.shape.length === 4);
    const channels = convs.at(-1)?.source.shape[3];
    const first = channels === undefined ? undefined : dense.find((d) => d.source.shape[0]! % channels === 0 && d.source.shape[0]! > channels);
    // A tensor a user rule maps keeps the user's chain.
    if (first && channels && !byUser.has(first.from)) {
      const side = Math.round(Math.sqrt(first.source.shape[0]! / channels));
      if (side * side * channels === first.source.shape[0]) {
        chosen.push([first, [side, side, channels]]);
        problems.push({ severity: 'warning', code: 'flatten-inferred', tensor: first.from, message: `${first.from} takes ${first.source.shape[0]} inputs: read as a flattened ${side}×${side}×${channels} feature map and reordered NHWC → NCHW. If the map is not square or the layer does not follow the flatten, pass --flatten ${layerOf(first)}=HxWxC.` });
      } else {
        problems.push({ severity: 'error', code: 'flatten', tensor: first.from, message: `${first.from} takes ${first.source.shape[0]} = ${channels} channels × ${first.source.shape[0]! / channels}, not a square map: pass --flatten ${layerOf(first)}=HxWxC.` });
      }
    }
  }
  for (const [t, [h, w, c]] of chosen) {
    const [inputs, outputs] = t.source.shape as [number, number];
    if (h * w * c !== inputs) {
      problems.push({ severity: 'error', code: 'flatten', tensor: t.from, message: `${t.from} takes ${inputs} inputs, and ${h}×${w}×${c} is ${h * w * c}.` });
      continue;
    }
    const i = tensors.indexOf(t);
    const transforms: Transform[] = [{ op: 'reshape', shape: [h, w, c, outputs] }, { op: 'transpose', axes: [3, 2, 0, 1] }, { op: 'reshape', shape: [outputs, c * h * w] }, ...t.transforms.filter((x) => x.op === 'cast')];
    tensors[i] = { ...t, transforms, target: layoutAfter(t.source, transforms) };
  }
}

/** A value from --set, else the base config, else undefined. */
function setting(opts: PlanOptions, key: string): unknown {
  if (opts.set && key in opts.set) return opts.set[key];
  if (opts.baseConfig && key in opts.baseConfig) return opts.baseConfig[key];
  return undefined;
}

/**
 * Reads the model's dimensions off the planned tensors, checks them against what the class expects,
 * and settles config.json: the base config merged under the settings, the settings under what the
 * weights say. Records what it cannot settle.
 */
function settle(arch: Architecture, tensors: readonly PlannedTensor[], opts: PlanOptions, problems: Problem[]): Record<string, unknown> | undefined {
  const shape = (name: string) => tensors.find((t) => t.to === name)?.target.shape;
  const embed = shape('model.embed_tokens.weight');
  const gate = shape(arch.mlpProbe);
  const router = arch.moe ? shape(arch.moe.router) : undefined;
  const q = shape('model.layers.0.self_attn.q_proj.weight');
  const k = shape('model.layers.0.self_attn.k_proj.weight');
  if (!embed || !gate || !q || !k || (arch.moe && !router)) {
    problems.push({ severity: 'error', code: 'shape-unknown', message: `the embedding, layer 0 q/k projections and MLP${arch.moe ? ' (its router and expert 0)' : ''} are needed to read the model size; some are missing (see the unmapped tensors).` });
    return undefined;
  }
  let layers = 0;
  for (const t of tensors) {
    const m = /^model\.layers\.(\d+)\./.exec(t.to);
    if (m) layers = Math.max(layers, Number(m[1]) + 1);
  }
  const heads = numberSetting(opts, 'num_attention_heads');
  const headDimSet = numberSetting(opts, 'head_dim');
  if (heads === undefined && headDimSet === undefined) {
    // An einsum kernel carries heads in its shape; a 2-D one does not.
    const qNorm = shape('model.layers.0.self_attn.q_norm.weight');
    const einsum = tensors.find((t) => t.to === 'model.layers.0.self_attn.q_proj.weight' && t.source.shape.length >= 3);
    const fromShape = qNorm?.[0] ?? (einsum ? headDimOfEinsum(einsum) : undefined);
    if (fromShape === undefined) {
      problems.push({
        severity: 'error',
        code: 'heads-unknown',
        // Named, so the plan view marks the row whose shape could not be read.
        tensor: 'model.layers.0.self_attn.q_proj.weight',
        message: `q_proj has ${q[0]} rows, which is heads × head_dim, and shapes cannot tell them apart (a wrong split serves garbage): pass --set num_attention_heads=N, or --config-from the base model's folder.`,
      });
      return undefined;
    }
    return settleWith(arch, tensors, opts, problems, { embed, gate, q, k, layers, headDim: fromShape, experts: router?.[0] });
  }
  return settleWith(arch, tensors, opts, problems, { embed, gate, q, k, layers, heads, headDim: headDimSet, experts: router?.[0] });
}

/** head_dim of an einsum q kernel: (D, N, H), (N, D, H) and scanned slices all keep it last. */
function headDimOfEinsum(t: PlannedTensor): number | undefined {
  const h = t.source.shape[t.source.shape.length - 1]!;
  return h > 0 && t.target.shape[0]! % h === 0 ? h : undefined;
}

interface Read {
  embed: readonly number[];
  gate: readonly number[];
  q: readonly number[];
  k: readonly number[];
  layers: number;
  heads?: number;
  headDim?: number;
  experts?: number;
}

function settleWith(arch: Architecture, tensors: readonly PlannedTensor[], opts: PlanOptions, problems: Problem[], r: Read): Record<string, unknown> | undefined {
  const headDim = r.headDim ?? r.q[0]! / r.heads!;
  const d: ModelDims = {
    vocabSize: r.embed[0]!,
    hiddenSize: r.embed[1]!,
    intermediateSize: r.gate[0]!,
    layers: r.layers,
    heads: r.heads ?? r.q[0]! / headDim,
    kvHeads: r.k[0]! / headDim,
    headDim,
    tied: !tensors.some((t) => t.to === 'lm_head.weight'),
    ...(arch.moe ? { experts: r.experts } : {}),
  };
  for (const [key, v] of [['num_attention_heads', d.heads], ['num_key_value_heads', d.kvHeads], ['head_dim', d.headDim]] as const) {
    if (!Number.isInteger(v) || v <= 0) {
      problems.push({ severity: 'error', code: 'heads-mismatch', message: `${key} would be ${v}: q_proj has ${r.q[0]} rows and k_proj ${r.k[0]}; check num_attention_heads / head_dim.` });
      return undefined;
    }
  }
  const fixed = arch.fixed(d);
  // A base config or --set must describe the same model.
  // Expert counts under either key: transformers 5 writes num_local_experts for every MoE class.
  const fromWeights: Record<string, unknown> = arch.moe ? { ...fixed, num_local_experts: d.experts, num_experts: d.experts } : fixed;
  for (const key of ['vocab_size', 'hidden_size', arch.moe?.widthKey ?? 'intermediate_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'head_dim', ...(arch.moe ? ['num_local_experts', 'num_experts'] : [])]) {
    const b = numberSetting(opts, key);
    if (b !== undefined && b !== fromWeights[key]) problems.push({ severity: 'error', code: 'config-mismatch', message: `the weights say ${key} = ${fromWeights[key]}, the given config says ${b}.` });
  }
  const baseType = opts.baseConfig?.model_type;
  if (typeof baseType === 'string' && baseType !== arch.modelType) {
    problems.push({ severity: 'warning', code: 'config-mismatch', message: `the base config is a ${baseType} model; the export is ${arch.modelType} (${arch.name}). Its other settings are merged as given.` });
  }
  if (d.tied) problems.push({ severity: 'info', code: 'tied', message: 'no lm_head in the source: the export ties it to embed_tokens (tie_word_embeddings: true).' });

  const config: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(opts.baseConfig ?? {})) if (!NOT_INHERITED.has(key)) config[key] = v;
  const defaults = arch.defaults(d);
  for (const [key, v] of Object.entries(defaults)) {
    const given = setting(opts, key);
    config[key] = given !== undefined ? given : v;
    if (given === undefined && arch.mustKnow.includes(key)) {
      problems.push({ severity: 'warning', code: 'default-setting', message: `${key} is not in the weights; using ${arch.name}'s usual ${JSON.stringify(v)} (set it with --set ${key}=… or --config-from).` });
    }
  }
  for (const [key, v] of Object.entries(opts.set ?? {})) config[key] = v;
  const dtypes = new Set(tensors.map((t) => t.target.dtype));
  const dtype = TORCH_DTYPE[dtypes.size === 1 ? [...dtypes][0]! : 'F32'] ?? 'float32';
  Object.assign(config, fixed, { architectures: [arch.name], model_type: arch.modelType, torch_dtype: dtype, dtype });

  if (arch.moe) {
    checkTopK(config, d.experts ?? 0, problems);
    if (d.layers * (d.experts ?? 0) > MAX_LAYER_EXPERTS) {
      problems.push({ severity: 'error', code: 'shape', message: `${d.layers} layers of ${d.experts} experts is over the ${MAX_LAYER_EXPERTS.toLocaleString('en-US')} experts in all an export lists.` });
      return undefined;
    }
  }
  const expected = arch.expected(d);
  const byTarget = new Map(tensors.map((t) => [t.to, t]));
  for (const e of expected) {
    const got = byTarget.get(e.name);
    if (!got) problems.push({ severity: 'error', code: 'missing', tensor: e.name, message: `${arch.name} needs ${e.name} ${JSON.stringify(e.shape)}; no source tensor maps to it.` });
    else if (JSON.stringify(got.target.shape) !== JSON.stringify(e.shape)) {
      problems.push({ severity: 'error', code: 'shape', tensor: e.name, message: `${e.name} would be ${JSON.stringify(got.target.shape)} (from ${got.from}); ${arch.name} needs ${JSON.stringify(e.shape)}.` });
    }
  }
  const names = new Set(expected.map((e) => e.name));
  for (const t of tensors) {
    if (!names.has(t.to)) problems.push({ severity: 'error', code: 'unexpected', tensor: t.to, message: `${t.to} (from ${t.from}) is not a ${arch.name} tensor; vLLM refuses unknown names.` });
  }
  return config;
}

/** The router's top-k must be a whole number of the experts there are: vLLM asserts it, transformers' topk fails. */
function checkTopK(config: Record<string, unknown>, experts: number, problems: Problem[]): void {
  const k = config.num_experts_per_tok;
  if (!(typeof k === 'number' && Number.isInteger(k) && k >= 1 && k <= experts)) {
    problems.push({ severity: 'error', code: 'top-k', message: `num_experts_per_tok is ${JSON.stringify(k)}; it must be a whole number from 1 to the ${experts} experts each layer holds (set it with --set num_experts_per_tok=K).` });
  }
}

function numberSetting(opts: PlanOptions, key: string): number | undefined {
  const v = setting(opts, key);
  if (v === undefined || v === null) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new JaxServeError('E_USAGE', `${key} must be a number (got ${JSON.stringify(v)}).`);
  return n;
}

export function planHasErrors(plan: Plan): boolean {
  return plan.problems.some((p) => p.severity === 'error');
}
