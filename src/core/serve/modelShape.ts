/**
 * What a config.json says about a decoder's size: the numbers that weights, KV cache and tensor
 * parallelism follow. A multimodal config's language model is its `text_config`. Every missing or
 * malformed field is an error naming the file and the field.
 */
import { JaxServeError } from '../errors';

export type ServingDType = 'bf16' | 'f16' | 'f32';

export interface ModelShape {
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
  /** Read from `text_config`. */
  readonly fromTextConfig: boolean;
}

/** Model types whose embeddings are tied unless the config says otherwise (transformers' defaults). */
const TIED_BY_DEFAULT = /^gemma/;
const QK_NORM = /^(qwen3|gemma3)/;
const FOUR_NORMS = /^gemma(2|3)/;

const DTYPE_NAMES: Record<string, ServingDType> = { bfloat16: 'bf16', float16: 'f16', half: 'f16', float32: 'f32', float: 'f32' };

/** The shape of the model `config` describes; `file` names it in errors. */
export function modelShape(config: Record<string, unknown>, file: string): ModelShape {
  const text = config.text_config;
  const fromTextConfig = typeof text === 'object' && text !== null && !Array.isArray(text);
  const c = fromTextConfig ? (text as Record<string, unknown>) : config;
  const at = fromTextConfig ? 'text_config.' : '';
  const int = (key: string, fallback?: number): number => {
    const v = c[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw new JaxServeError('E_FORMAT', `${file}: missing ${at}${key}; it is needed to size the model.`);
    }
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new JaxServeError('E_FORMAT', `${file}: ${at}${key} is ${JSON.stringify(v).slice(0, 40)}, not a whole number ≥ 1.`);
    return v;
  };
  const modelType = typeof c.model_type === 'string' ? c.model_type : typeof config.model_type === 'string' ? config.model_type : '';
  const hidden = int('hidden_size');
  const heads = int('num_attention_heads');
  const layers = int('num_hidden_layers');
  const kvHeads = int('num_key_value_heads', heads);
  const headDimGiven = c.head_dim !== undefined && c.head_dim !== null;
  if (!headDimGiven && hidden % heads !== 0) throw new JaxServeError('E_FORMAT', `${file}: ${at}hidden_size ${hidden} is not a multiple of num_attention_heads ${heads} and there is no head_dim.`);
  const headDim = headDimGiven ? int('head_dim') : hidden / heads;
  if (heads % kvHeads !== 0) throw new JaxServeError('E_FORMAT', `${file}: ${at}num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}.`);
  const expertCount = c.num_local_experts ?? c.num_experts;
  const experts =
    expertCount === undefined || expertCount === null || expertCount === 0
      ? undefined
      : { count: int(c.num_local_experts !== undefined ? 'num_local_experts' : 'num_experts'), intermediate: int(c.moe_intermediate_size !== undefined ? 'moe_intermediate_size' : 'intermediate_size'), sharedIntermediate: c.shared_expert_intermediate_size ? int('shared_expert_intermediate_size') : 0 };
  const tiedRaw = c.tie_word_embeddings ?? config.tie_word_embeddings;
  const bias = c.attention_bias === true;
  const dtypeName = (c.torch_dtype ?? c.dtype ?? config.torch_dtype ?? config.dtype) as unknown;
  return {
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
    maxPositions: c.max_position_embeddings === undefined || c.max_position_embeddings === null ? undefined : int('max_position_embeddings'),
    dtype: typeof dtypeName === 'string' ? DTYPE_NAMES[dtypeName.replace(/^torch\./, '')] : undefined,
    fromTextConfig,
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

/** A tensor of the model, as `fit` counts it. */
export interface ShapeTensor {
  readonly name: string;
  readonly shape: readonly number[];
}

/**
 * The language model's tensors as the architecture implies them (HF names), for a config with no
 * weights beside it. A vision tower, when the config has one, is not counted.
 */
export function shapeTensors(s: ModelShape): ShapeTensor[] {
  const out: ShapeTensor[] = [{ name: 'model.embed_tokens.weight', shape: [s.vocab, s.hidden] }];
  const q = s.heads * s.headDim;
  const kv = s.kvHeads * s.headDim;
  for (let i = 0; i < s.layers; i++) {
    const p = `model.layers.${i}.`;
    out.push(
      { name: `${p}self_attn.q_proj.weight`, shape: [q, s.hidden] },
      { name: `${p}self_attn.k_proj.weight`, shape: [kv, s.hidden] },
      { name: `${p}self_attn.v_proj.weight`, shape: [kv, s.hidden] },
      { name: `${p}self_attn.o_proj.weight`, shape: [s.hidden, q] },
    );
    if (s.qkvBias) out.push({ name: `${p}self_attn.q_proj.bias`, shape: [q] }, { name: `${p}self_attn.k_proj.bias`, shape: [kv] }, { name: `${p}self_attn.v_proj.bias`, shape: [kv] });
    if (s.oBias) out.push({ name: `${p}self_attn.o_proj.bias`, shape: [s.hidden] });
    if (s.qkNorm) out.push({ name: `${p}self_attn.q_norm.weight`, shape: [s.headDim] }, { name: `${p}self_attn.k_norm.weight`, shape: [s.headDim] });
    if (s.experts) {
      const e = s.experts;
      out.push({ name: `${p}mlp.gate.weight`, shape: [e.count, s.hidden] });
      for (let j = 0; j < e.count; j++) out.push(...mlp(`${p}mlp.experts.${j}.`, s.hidden, e.intermediate));
      if (e.sharedIntermediate) out.push(...mlp(`${p}mlp.shared_expert.`, s.hidden, e.sharedIntermediate), { name: `${p}mlp.shared_expert_gate.weight`, shape: [1, s.hidden] });
    } else out.push(...mlp(`${p}mlp.`, s.hidden, s.intermediate));
    for (let n = 0; n < s.normsPerLayer; n++) out.push({ name: `${p}norm${n}.weight`, shape: [s.hidden] });
  }
  out.push({ name: 'model.norm.weight', shape: [s.hidden] });
  if (!s.tied) out.push({ name: 'lm_head.weight', shape: [s.vocab, s.hidden] });
  return out;
}

function mlp(p: string, hidden: number, width: number): ShapeTensor[] {
  return [
    { name: `${p}gate_proj.weight`, shape: [width, hidden] },
    { name: `${p}up_proj.weight`, shape: [width, hidden] },
    { name: `${p}down_proj.weight`, shape: [hidden, width] },
  ];
}
