/**
 * The conversion plan (dry run): every source tensor's target name, transforms, output shape and
 * dtype; what no rule maps; what two sources would both write; what the target class expects but
 * nobody provides; and the config.json to write. The same object is shown before writing, printed
 * by `--dry-run`, executed, and checked by tests.
 */
import type { Checkpoint } from '../checkpoint';
import { JaxServeError } from '../errors';
import type { DType } from '../tensor/dtype';
import { LLAMA_DEFAULTS, llamaConfig, llamaExpected, type LlamaDims, type LlamaSettings } from './llama';
import { PRESETS, presetById, type Preset } from './presets/index';
import { compileRule, matchRule, type CompiledRule, type Rule } from './rules';
import { layoutAfter, layoutBytes, type Layout, type Transform } from './transforms';

export interface PlannedTensor {
  readonly from: string;
  readonly to: string;
  readonly transforms: readonly Transform[];
  readonly source: Layout;
  readonly target: Layout;
  readonly bytes: number;
}

export type Severity = 'error' | 'warning' | 'info';

export interface Problem {
  readonly severity: Severity;
  readonly code: string;
  readonly message: string;
  readonly tensor?: string;
}

export interface Plan {
  readonly source: string;
  readonly preset: { readonly id: string; readonly title: string; readonly source: string };
  readonly architecture: string;
  readonly tensors: readonly PlannedTensor[];
  readonly unmapped: readonly string[];
  readonly problems: readonly Problem[];
  /** config.json to write; undefined when the shapes could not be settled (see problems). */
  readonly config: Record<string, unknown> | undefined;
}

export interface PlanOptions {
  /** A preset id, or 'auto' (default): the preset whose rules map the most tensors. */
  readonly preset?: string;
  /** Rules tried before the preset's (a user rule file extends or overrides a preset). */
  readonly userRules?: readonly Rule[];
  /** Output element type: 'keep' (default) or a float type every float tensor is cast to. */
  readonly dtype?: 'keep' | DType;
  /** A base model's config.json (--config-from): heads, RoPE and token ids come from it. */
  readonly baseConfig?: Readonly<Record<string, unknown>>;
  /** Single settings (--set KEY=VALUE), over the base config. */
  readonly set?: Readonly<Record<string, unknown>>;
}

/**
 * transformers 5 writes `rope_parameters: {rope_theta, rope_type, …}` and `dtype`; 4.x wrote
 * `rope_theta`, `rope_scaling` and `torch_dtype`. Read either.
 */
function normalizeBaseConfig(base: Readonly<Record<string, unknown>> | undefined): Readonly<Record<string, unknown>> | undefined {
  if (!base) return base;
  const out: Record<string, unknown> = { ...base };
  const rp = base.rope_parameters as Record<string, unknown> | undefined;
  if (rp && typeof rp === 'object') {
    if (out.rope_theta === undefined && rp.rope_theta !== undefined) out.rope_theta = rp.rope_theta;
    if (out.rope_scaling === undefined && rp.rope_type !== undefined && rp.rope_type !== 'default') {
      const { rope_theta: _theta, ...scaling } = rp;
      out.rope_scaling = scaling;
    }
  }
  return out;
}

export function planConversion(ck: Checkpoint, options: PlanOptions = {}): Plan {
  const opts = { ...options, baseConfig: normalizeBaseConfig(options.baseConfig) };
  const user = (opts.userRules ?? []).map(compileRule);
  const preset = choosePreset(ck, opts.preset ?? 'auto', user);
  const rules = [...user, ...preset.rules.map(compileRule)];
  const problems: Problem[] = [];
  const tensors: PlannedTensor[] = [];
  const unmapped: string[] = [];
  const byTarget = new Map<string, string>();
  for (const t of ck.tensors) {
    const m = matchRule(rules, t.name, t.shape.length);
    if (!m) {
      unmapped.push(t.name);
      problems.push({ severity: 'error', code: 'unmapped', tensor: t.name, message: `${t.name} ${t.dtype}${JSON.stringify(t.shape)}: no rule of ${preset.id} maps it (add one in jax-serve.rules.json).` });
      continue;
    }
    const earlier = byTarget.get(m.target);
    if (earlier !== undefined) {
      problems.push({ severity: 'error', code: 'duplicate', tensor: t.name, message: `${t.name} and ${earlier} both map to ${m.target}.` });
      continue;
    }
    byTarget.set(m.target, t.name);
    const transforms = [...(m.rule.transforms ?? []), ...castTo(t.dtype, opts.dtype)];
    try {
      const source = { shape: t.shape, dtype: t.dtype };
      const target = layoutAfter(source, transforms);
      tensors.push({ from: t.name, to: m.target, transforms, source, target, bytes: layoutBytes(target) });
    } catch (e) {
      problems.push({ severity: 'error', code: 'transform', tensor: t.name, message: `${t.name}: ${(e as Error).message}` });
    }
  }
  const config = settleLlama(tensors, opts, problems);
  return {
    source: ck.location,
    preset: { id: preset.id, title: preset.title, source: preset.source },
    architecture: preset.architecture,
    tensors,
    unmapped,
    problems,
    config,
  };
}


function castTo(from: DType, to: PlanOptions['dtype']): Transform[] {
  if (!to || to === 'keep' || to === from) return [];
  const float = (d: DType) => d === 'F32' || d === 'F16' || d === 'BF16' || d === 'F64';
  return float(from) ? [{ op: 'cast', dtype: to }] : [];
}

function choosePreset(ck: Checkpoint, id: string, user: readonly CompiledRule[]): Preset {
  if (id !== 'auto') {
    const p = presetById(id);
    if (!p) throw new JaxServeError('E_USAGE', `unknown preset ${JSON.stringify(id)} (known: ${PRESETS.map((x) => x.id).join(', ')}, auto).`);
    return p;
  }
  let best: { preset: Preset; mapped: number } | undefined;
  for (const preset of PRESETS) {
    const rules = [...user, ...preset.rules.map(compileRule)];
    const mapped = ck.tensors.filter((t) => matchRule(rules, t.name, t.shape.length)).length;
    if (!best || mapped > best.mapped) best = { preset, mapped };
  }
  if (!best || best.mapped === 0) {
    throw new JaxServeError('E_UNSUPPORTED', `${ck.location}: no preset recognizes these tensor names (tried ${PRESETS.map((p) => p.id).join(', ')}); name one with --preset or describe the layout in jax-serve.rules.json.`);
  }
  return best.preset;
}

/** A number from --set, else the base config, else undefined. */
function setting(opts: PlanOptions, key: string): unknown {
  if (opts.set && key in opts.set) return opts.set[key];
  if (opts.baseConfig && key in opts.baseConfig) return opts.baseConfig[key];
  return undefined;
}

/** Reads the model's dimensions off the planned tensors and settles the config; records what it cannot. */
function settleLlama(tensors: readonly PlannedTensor[], opts: PlanOptions, problems: Problem[]): Record<string, unknown> | undefined {
  const shape = (name: string) => tensors.find((t) => t.to === name)?.target.shape;
  const embed = shape('model.embed_tokens.weight');
  const gate = shape('model.layers.0.mlp.gate_proj.weight');
  const q = shape('model.layers.0.self_attn.q_proj.weight');
  const k = shape('model.layers.0.self_attn.k_proj.weight');
  if (!embed || !gate || !q || !k) {
    problems.push({ severity: 'error', code: 'shape-unknown', message: 'the embedding, layer 0 q/k projections and MLP are needed to read the model size; some are missing (see the unmapped tensors).' });
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
    problems.push({
      severity: 'error',
      code: 'heads-unknown',
      message: `q_proj has ${q[0]} rows, which is heads × head_dim, and shapes cannot tell them apart (a wrong split serves garbage): pass --set num_attention_heads=N, or --config-from the base model's folder.`,
    });
    return undefined;
  }
  const headDim = headDimSet ?? q[0]! / heads!;
  const d: LlamaDims = {
    vocabSize: embed[0]!,
    hiddenSize: embed[1]!,
    intermediateSize: gate[0]!,
    layers,
    heads: heads ?? q[0]! / headDim,
    kvHeads: k[0]! / headDim,
    headDim,
    tied: !tensors.some((t) => t.to === 'lm_head.weight'),
  };
  for (const [key, v] of [['num_attention_heads', d.heads], ['num_key_value_heads', d.kvHeads], ['head_dim', d.headDim]] as const) {
    if (!Number.isInteger(v) || v <= 0) {
      problems.push({ severity: 'error', code: 'heads-mismatch', message: `${key} would be ${v}: q_proj has ${q[0]} rows and k_proj ${k[0]}; check num_attention_heads / head_dim.` });
      return undefined;
    }
  }
  // A base config must describe the same model.
  const given: Record<string, number> = { vocab_size: d.vocabSize, hidden_size: d.hiddenSize, intermediate_size: d.intermediateSize, num_hidden_layers: d.layers, num_key_value_heads: d.kvHeads };
  for (const [key, v] of Object.entries(given)) {
    const b = numberSetting(opts, key);
    if (b !== undefined && b !== v) {
      problems.push({ severity: 'error', code: 'config-mismatch', message: `the weights say ${key} = ${v}, the given config says ${b}.` });
    }
  }
  if (d.tied) problems.push({ severity: 'info', code: 'tied', message: 'no lm_head in the source: the export ties it to embed_tokens (tie_word_embeddings: true).' });
  const s = { ...LLAMA_DEFAULTS } as LlamaSettings & Record<string, unknown>;
  for (const key of Object.keys(LLAMA_DEFAULTS) as (keyof LlamaSettings)[]) {
    const v = setting(opts, key);
    if (v !== undefined) (s as Record<string, unknown>)[key] = v;
    else if (key === 'rope_theta' || key === 'rms_norm_eps' || key === 'max_position_embeddings') {
      problems.push({ severity: 'warning', code: 'default-setting', message: `${key} is not in the weights; using Llama 3's ${JSON.stringify(LLAMA_DEFAULTS[key])} (set it with --set ${key}=… or --config-from).` });
    }
  }
  const dtypes = new Set(tensors.map((t) => t.target.dtype));
  const dtype = dtypes.size === 1 ? [...dtypes][0]! : 'F32';
  for (const e of llamaExpected(d)) {
    const got = tensors.find((t) => t.to === e.name);
    if (!got) problems.push({ severity: 'error', code: 'missing', tensor: e.name, message: `LlamaForCausalLM needs ${e.name} ${JSON.stringify(e.shape)}; no source tensor maps to it.` });
    else if (JSON.stringify(got.target.shape) !== JSON.stringify(e.shape)) {
      problems.push({ severity: 'error', code: 'shape', tensor: e.name, message: `${e.name} would be ${JSON.stringify(got.target.shape)} (from ${got.from}); LlamaForCausalLM needs ${JSON.stringify(e.shape)}.` });
    }
  }
  const expected = new Set(llamaExpected(d).map((e) => e.name));
  for (const t of tensors) {
    if (!expected.has(t.to)) problems.push({ severity: 'error', code: 'unexpected', tensor: t.to, message: `${t.to} (from ${t.from}) is not a LlamaForCausalLM tensor; vLLM refuses unknown names.` });
  }
  return llamaConfig(d, s, dtype);
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
