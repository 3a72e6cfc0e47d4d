/**
 * The HF model classes an export can target, as the HF side sees them: the tensors transformers'
 * `state_dict()` holds (names, shapes; tested against transformers on the meta device) and the
 * config.json keys transformers 4.4x-5.x, vLLM and SGLang all read. Legacy `rope_theta` /
 * `torch_dtype` keys are written because vLLM's `patch_rope_parameters` maps them for both
 * transformers generations and transformers 5 still reads them
 * (../shared/reference/formats-and-layouts.md §9.2, §9.5).
 */
import type { DType } from '../dtype';

export type ArchitectureName = 'LlamaForCausalLM' | 'Qwen3ForCausalLM' | 'Gemma3ForCausalLM';

/** What the weights' shapes say about the model. */
export interface ModelDims {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  tied: boolean;
}

export interface ExpectedTensor {
  readonly name: string;
  readonly shape: readonly number[];
}

export interface Architecture {
  readonly name: ArchitectureName;
  readonly modelType: string;
  expected(d: ModelDims): ExpectedTensor[];
  /** Settings the shapes cannot tell, with the family's usual values. */
  defaults(d: ModelDims): Record<string, unknown>;
  /** Of those, the ones that change the model's outputs: a default is worth a warning. */
  readonly mustKnow: readonly string[];
  /** Keys fixed by the class (activation, biases), and the ones read off the shapes. */
  fixed(d: ModelDims): Record<string, unknown>;
}

function decoderLayers(d: ModelDims, extra: (p: string) => ExpectedTensor[]): ExpectedTensor[] {
  const out: ExpectedTensor[] = [{ name: 'model.embed_tokens.weight', shape: [d.vocabSize, d.hiddenSize] }];
  for (let i = 0; i < d.layers; i++) {
    const p = `model.layers.${i}.`;
    out.push(
      { name: `${p}self_attn.q_proj.weight`, shape: [d.heads * d.headDim, d.hiddenSize] },
      { name: `${p}self_attn.k_proj.weight`, shape: [d.kvHeads * d.headDim, d.hiddenSize] },
      { name: `${p}self_attn.v_proj.weight`, shape: [d.kvHeads * d.headDim, d.hiddenSize] },
      { name: `${p}self_attn.o_proj.weight`, shape: [d.hiddenSize, d.heads * d.headDim] },
      { name: `${p}mlp.gate_proj.weight`, shape: [d.intermediateSize, d.hiddenSize] },
      { name: `${p}mlp.up_proj.weight`, shape: [d.intermediateSize, d.hiddenSize] },
      { name: `${p}mlp.down_proj.weight`, shape: [d.hiddenSize, d.intermediateSize] },
      { name: `${p}input_layernorm.weight`, shape: [d.hiddenSize] },
      { name: `${p}post_attention_layernorm.weight`, shape: [d.hiddenSize] },
      ...extra(p),
    );
  }
  out.push({ name: 'model.norm.weight', shape: [d.hiddenSize] });
  if (!d.tied) out.push({ name: 'lm_head.weight', shape: [d.vocabSize, d.hiddenSize] });
  return out;
}

const qkNorm = (d: ModelDims) => (p: string) => [
  { name: `${p}self_attn.q_norm.weight`, shape: [d.headDim] },
  { name: `${p}self_attn.k_norm.weight`, shape: [d.headDim] },
];

function shapeKeys(d: ModelDims): Record<string, unknown> {
  return {
    vocab_size: d.vocabSize,
    hidden_size: d.hiddenSize,
    intermediate_size: d.intermediateSize,
    num_hidden_layers: d.layers,
    num_attention_heads: d.heads,
    num_key_value_heads: d.kvHeads,
    head_dim: d.headDim,
    tie_word_embeddings: d.tied,
  };
}

const TOKEN_IDS = { bos_token_id: null, eos_token_id: null };

export const LLAMA: Architecture = {
  name: 'LlamaForCausalLM',
  modelType: 'llama',
  expected: (d) => decoderLayers(d, () => []),
  defaults: () => ({ rope_theta: 500000, rms_norm_eps: 1e-5, max_position_embeddings: 131072, rope_scaling: null, ...TOKEN_IDS }),
  mustKnow: ['rope_theta', 'rms_norm_eps', 'max_position_embeddings'],
  fixed: (d) => ({ ...shapeKeys(d), hidden_act: 'silu', attention_bias: false, attention_dropout: 0.0, mlp_bias: false, use_cache: true }),
};

export const QWEN3: Architecture = {
  name: 'Qwen3ForCausalLM',
  modelType: 'qwen3',
  expected: (d) => decoderLayers(d, qkNorm(d)),
  defaults: () => ({ rope_theta: 1000000, rms_norm_eps: 1e-6, max_position_embeddings: 40960, rope_scaling: null, ...TOKEN_IDS }),
  mustKnow: ['rope_theta', 'rms_norm_eps', 'max_position_embeddings'],
  fixed: (d) => ({
    ...shapeKeys(d),
    hidden_act: 'silu',
    attention_bias: false,
    attention_dropout: 0.0,
    use_sliding_window: false,
    sliding_window: null,
    max_window_layers: d.layers,
    use_cache: true,
  }),
};

/** Gemma 3's pattern: five sliding-window layers, then one global (transformers' default). */
function gemmaLayerTypes(layers: number): string[] {
  return Array.from({ length: layers }, (_, i) => ((i + 1) % 6 === 0 ? 'full_attention' : 'sliding_attention'));
}

export const GEMMA3: Architecture = {
  name: 'Gemma3ForCausalLM',
  modelType: 'gemma3_text',
  expected: (d) =>
    decoderLayers(d, (p) => [
      ...qkNorm(d)(p),
      { name: `${p}pre_feedforward_layernorm.weight`, shape: [d.hiddenSize] },
      { name: `${p}post_feedforward_layernorm.weight`, shape: [d.hiddenSize] },
    ]),
  defaults: (d) => ({
    rope_theta: 1000000,
    rope_local_base_freq: 10000,
    rope_scaling: null,
    rms_norm_eps: 1e-6,
    max_position_embeddings: 32768,
    sliding_window: 512,
    layer_types: gemmaLayerTypes(d.layers),
    query_pre_attn_scalar: d.headDim,
    ...TOKEN_IDS,
  }),
  mustKnow: ['rope_theta', 'rope_local_base_freq', 'rms_norm_eps', 'max_position_embeddings', 'sliding_window', 'layer_types', 'query_pre_attn_scalar'],
  fixed: (d) => ({
    ...shapeKeys(d),
    hidden_activation: 'gelu_pytorch_tanh',
    attention_bias: false,
    attention_dropout: 0.0,
    final_logit_softcapping: null,
    attn_logit_softcapping: null,
    use_cache: true,
  }),
};

export const ARCHITECTURES: Readonly<Record<ArchitectureName, Architecture>> = {
  LlamaForCausalLM: LLAMA,
  Qwen3ForCausalLM: QWEN3,
  Gemma3ForCausalLM: GEMMA3,
};

export const TORCH_DTYPE: Partial<Record<DType, string>> = { F32: 'float32', BF16: 'bfloat16', F16: 'float16' };
