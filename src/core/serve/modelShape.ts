/**
 * What a config.json says about a decoder's size: the numbers that weights, KV cache and tensor
 * parallelism follow. A multimodal config's language model is its `text_config`. Every missing or
 * malformed field is an error naming the file and the field.
 */
import { JaxServeError } from '../errors';

export type ServingDType = 'bf16' | 'f16' | 'f32';

export interface ModelShape {
  /** The config.json it was read from (errors name it). */
  readonly file: string;
  readonly modelType: string;
  readonly vocab: number;
  readonly hidden: number;
  readonly intermediate: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  /** `head_dim` when the config has it, else hidden / heads. */
  readonly headDim: number;
  readonly headDimFrom: 'head_dim' | 'hidden_size / num_attention_heads';
  readonly tied: boolean;
  /** q, k and v projections carry biases (Qwen2, `attention_bias`). */
  readonly qkvBias: boolean;
  /** o_proj carries a bias (`attention_bias`). */
  readonly oBias: boolean;
  /** Per-head RMS norms on q and k (Qwen3, Gemma 3). */
  readonly qkNorm: boolean;
  /** RMS norms a layer holds, hidden wide each (Gemma: four; most: two). */
  readonly normsPerLayer: number;
  /** Mixture of experts: routed experts, each an MLP of `intermediate` wide; shared experts beside. */
  readonly experts?: { readonly count: number; readonly intermediate: number; readonly sharedIntermediate: number };
  /** Per layer: the tokens it keeps, or undefined for all of them. */
  readonly window: readonly (number | undefined)[];
  readonly maxPositions?: number;
  /** The config's own dtype (`torch_dtype` / `dtype`), when it names a float one. */
  readonly dtype?: ServingDType;
  /** rope_scaling's factor when it stretches the context (the engines' longest max length is max_position_embeddings × it). */
  readonly ropeFactor: number;
  /** Read from `text_config`. */
  readonly fromTextConfig: boolean;
  /** Fields the config left out, filled in as transformers does, said in words. */
  readonly defaulted?: string;
}

/**
 * The largest values read: a config past them is refused, not sized (no released model comes near;
 * the arithmetic stays exact in doubles and its loops short).
 */
export const SHAPE_LIMITS = { layers: 10_000, experts: 10_000, size: 1 << 24 } as const;

/**
 * Fields a family's config.json may leave out, as transformers' config class fills them in (the
 * published Gemma 3 configs give no vocab_size or max_position_embeddings in their text_config).
 */
const FAMILY_DEFAULTS: readonly [RegExp, string, Readonly<Record<string, number>>][] = [[/^gemma3/, 'Gemma3TextConfig', { vocab_size: 262208, max_position_embeddings: 131072, sliding_window: 4096 }]];

/** Configs `fit` does not size: their KV cache or experts follow rules it does not know. */
const UNSIZED: readonly [string, string][] = [
  ['kv_lora_rank', "multi-head latent attention (DeepSeek's kv_lora_rank) compresses the KV cache"],
  ['n_routed_experts', "DeepSeek's routed and shared experts"],
];

/** Model types whose embeddings are tied unless the config says otherwise (transformers' defaults). */
const TIED_BY_DEFAULT = /^gemma/;
const QK_NORM = /^(qwen3|gemma3)/;
const FOUR_NORMS = /^gemma(2|3)/;

const DTYPE_NAMES: Record<string, ServingDType> = { bfloat16: 'bf16', float16: 'f16', half: 'f16', float32: 'f32', float: 'f32' };

/** The shape of the model `config` describes; `file` names it in errors. */
export function modelShape(config: Record<string, unknown>, file: string): ModelShape {
  const text = config.text_config;
  const fromTextConfig = typeof text === 'object' && text !== null && !Array.isArray(text);
  if (config.text_config !== undefined && !fromTextConfig) throw new JaxServeError('E_FORMAT', `${file}: text_config is ${JSON.stringify(config.text_config).slice(0, 40)}, not an object.`);
  const given = fromTextConfig ? (text as Record<string, unknown>) : config;
  const at = fromTextConfig ? 'text_config.' : '';
  const modelType = typeof given.model_type === 'string' ? given.model_type : typeof config.model_type === 'string' ? config.model_type : '';
  for (const [key, what] of UNSIZED) {
    if (given[key] !== undefined && given[key] !== null) throw new JaxServeError('E_UNSUPPORTED', `${file}: ${at}${key}: fit does not size this architecture (${what}); its numbers would be wrong.`);
  }
  const family = FAMILY_DEFAULTS.find(([re]) => re.test(modelType));
  const defaulted: string[] = [];
  const c: Record<string, unknown> = { ...given };
  for (const [key, v] of Object.entries(family?.[2] ?? {})) {
    if (c[key] === undefined || c[key] === null) {
      c[key] = v;
      defaulted.push(`${key} ${v}`);
    }
  }
  const int = (key: string, fallback?: number, max: number = SHAPE_LIMITS.size): number => {
    const v = c[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw new JaxServeError('E_FORMAT', `${file}: missing ${at}${key}; it is needed to size the model.`);
    }
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new JaxServeError('E_FORMAT', `${file}: ${at}${key} is ${JSON.stringify(v).slice(0, 40)}, not a whole number ≥ 1.`);
    if (v > max) throw new JaxServeError('E_FORMAT', `${file}: ${at}${key} is ${v}, over the ${max.toLocaleString('en-US')} fit sizes.`);
    return v;
  };
  const hidden = int('hidden_size');
  const heads = int('num_attention_heads');
  const layers = int('num_hidden_layers', undefined, SHAPE_LIMITS.layers);
  const kvHeads = int('num_key_value_heads', heads);
  const headDimGiven = c.head_dim !== undefined && c.head_dim !== null;
  if (!headDimGiven && hidden % heads !== 0) throw new JaxServeError('E_FORMAT', `${file}: ${at}hidden_size ${hidden} is not a multiple of num_attention_heads ${heads} and there is no head_dim.`);
  const headDim = headDimGiven ? int('head_dim') : hidden / heads;
  if (heads % kvHeads !== 0) throw new JaxServeError('E_FORMAT', `${file}: ${at}num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}.`);
  const expertCount = c.num_local_experts ?? c.num_experts;
  const experts =
    expertCount === undefined || expertCount === null || expertCount === 0
      ? undefined
      : { count: int(c.num_local_experts !== undefined ? 'num_local_experts' : 'num_experts', undefined, SHAPE_LIMITS.experts), intermediate: int(c.moe_intermediate_size !== undefined ? 'moe_intermediate_size' : 'intermediate_size'), sharedIntermediate: c.shared_expert_intermediate_size ? int('shared_expert_intermediate_size') : 0 };
  const tiedRaw = c.tie_word_embeddings ?? config.tie_word_embeddings;
  const bias = c.attention_bias === true;
  const dtypeName = (c.torch_dtype ?? c.dtype ?? config.torch_dtype ?? config.dtype) as unknown;
  return {
    file,
    modelType,
    vocab: int('vocab_size'),
    hidden,
    intermediate: int('intermediate_size'),
    layers,
    heads,
    kvHeads,
    headDim,
    headDimFrom: headDimGiven ? 'head_dim' : 'hidden_size / num_attention_heads',
    tied: typeof tiedRaw === 'boolean' ? tiedRaw : TIED_BY_DEFAULT.test(modelType),
    qkvBias: bias || /^qwen2/.test(modelType),
    oBias: bias,
    qkNorm: QK_NORM.test(modelType),
    normsPerLayer: FOUR_NORMS.test(modelType) ? 4 : 2,
    experts,
    window: layerWindows(c, layers, file, at, modelType),
    maxPositions: c.max_position_embeddings === undefined || c.max_position_embeddings === null ? undefined : int('max_position_embeddings', undefined, 2 ** 31),
    ropeFactor: ropeFactor(c.rope_scaling ?? c.rope_parameters),
    dtype: typeof dtypeName === 'string' ? DTYPE_NAMES[dtypeName.replace(/^torch\./, '')] : undefined,
    fromTextConfig,
    defaulted: family && defaulted.length ? `${defaulted.join(', ')} (transformers' ${family[1]} defaults: config.json leaves them out)` : undefined,
  };
}

/**
 * Which layers attend within a window, as transformers reads it: `layer_types` when present
 * ("sliding_attention"), else Gemma's `sliding_window_pattern` (every Nth layer global; Gemma 2's
 * default 2, Gemma 3's 6), else a `sliding_window` on every layer (Mistral) unless
 * `use_sliding_window` is false (Qwen2/3 carry a window they do not use).
 */
function layerWindows(c: Record<string, unknown>, layers: number, file: string, at: string, modelType: string): (number | undefined)[] {
  const w = c.sliding_window;
  const none = Array.from({ length: layers }, (): number | undefined => undefined);
  if (c.use_sliding_window === false || w === undefined || w === null) return none;
  if (typeof w !== 'number' || !Number.isSafeInteger(w) || w < 1) throw new JaxServeError('E_FORMAT', `${file}: ${at}sliding_window is ${JSON.stringify(w).slice(0, 40)}, not a whole number ≥ 1.`);
  const types = c.layer_types;
  if (Array.isArray(types)) {
    if (types.length !== layers) throw new JaxServeError('E_FORMAT', `${file}: ${at}layer_types has ${types.length} entries for ${layers} layers.`);
    return types.map((t) => (t === 'sliding_attention' ? w : undefined));
  }
  const given = c.sliding_window_pattern ?? c._sliding_window_pattern;
  // transformers' defaults when a config names no pattern: Gemma 2 alternates, Gemma 3 keeps every sixth layer global.
  const pattern = typeof given === 'number' && Number.isSafeInteger(given) && given >= 1 ? given : GEMMA_PATTERN.find(([re]) => re.test(modelType))?.[1];
  if (pattern !== undefined) return none.map((_, i) => ((i + 1) % pattern === 0 ? undefined : w));
  return none.map(() => w);
}

const GEMMA_PATTERN: readonly [RegExp, number][] = [
  [/^gemma2/, 2],
  [/^gemma3/, 6],
];

/** The factor a rope_scaling entry stretches the context by (1 when none). */
function ropeFactor(r: unknown): number {
  const f = typeof r === 'object' && r !== null ? (r as Record<string, unknown>).factor : undefined;
  return typeof f === 'number' && Number.isFinite(f) && f > 1 && f < 1e6 ? f : 1;
}

/** A tensor of the model, as `fit` counts it; `count` of them when given (every layer's, every expert's). */
export interface ShapeTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly count?: number;
}

/**
 * The language model's tensors as the architecture implies them (HF names), for a config with no
 * weights beside it. A vision tower, when the config has one, is not counted.
 */
export function shapeTensors(s: ModelShape): ShapeTensor[] {
  const out: ShapeTensor[] = [{ name: 'model.embed_tokens.weight', shape: [s.vocab, s.hidden] }];
  const q = s.heads * s.headDim;
  const kv = s.kvHeads * s.headDim;
  // One entry per kind of tensor, `count` of it: the work does not grow with layers or experts.
  const n = s.layers;
  const p = 'model.layers.*.';
  out.push(
    { name: `${p}self_attn.q_proj.weight`, shape: [q, s.hidden], count: n },
    { name: `${p}self_attn.k_proj.weight`, shape: [kv, s.hidden], count: n },
    { name: `${p}self_attn.v_proj.weight`, shape: [kv, s.hidden], count: n },
    { name: `${p}self_attn.o_proj.weight`, shape: [s.hidden, q], count: n },
  );
  if (s.qkvBias) out.push({ name: `${p}self_attn.q_proj.bias`, shape: [q], count: n }, { name: `${p}self_attn.k_proj.bias`, shape: [kv], count: n }, { name: `${p}self_attn.v_proj.bias`, shape: [kv], count: n });
  if (s.oBias) out.push({ name: `${p}self_attn.o_proj.bias`, shape: [s.hidden], count: n });
  if (s.qkNorm) out.push({ name: `${p}self_attn.q_norm.weight`, shape: [s.headDim], count: n }, { name: `${p}self_attn.k_norm.weight`, shape: [s.headDim], count: n });
  if (s.experts) {
    const e = s.experts;
    out.push({ name: `${p}mlp.gate.weight`, shape: [e.count, s.hidden], count: n }, ...mlp(`${p}mlp.experts.*.`, s.hidden, e.intermediate, n * e.count));
    if (e.sharedIntermediate) out.push(...mlp(`${p}mlp.shared_expert.`, s.hidden, e.sharedIntermediate, n), { name: `${p}mlp.shared_expert_gate.weight`, shape: [1, s.hidden], count: n });
  } else out.push(...mlp(`${p}mlp.`, s.hidden, s.intermediate, n));
  out.push({ name: `${p}norms.weight`, shape: [s.hidden], count: n * s.normsPerLayer });
  out.push({ name: 'model.norm.weight', shape: [s.hidden] });
  if (!s.tied) out.push({ name: 'lm_head.weight', shape: [s.vocab, s.hidden] });
  return out;
}

function mlp(p: string, hidden: number, width: number, count: number): ShapeTensor[] {
  return [
    { name: `${p}gate_proj.weight`, shape: [width, hidden], count },
    { name: `${p}up_proj.weight`, shape: [width, hidden], count },
    { name: `${p}down_proj.weight`, shape: [hidden, width], count },
  ];
}
