/**
 * The HF model classes an export can target, as the HF side sees them: the tensors transformers'
 * `state_dict()` holds (names, shapes; tested against transformers on the meta device) and the
 * config.json keys transformers 4.4x-5.x, vLLM and SGLang all read. Legacy `rope_theta` /
 * `torch_dtype` keys are written because vLLM's `patch_rope_parameters` maps them for both
 * transformers generations and transformers 5 still reads them
 * (../shared/reference/formats-and-layouts.md §9.2, §9.5).
 */
import type { DType } from '../dtype';

export type ArchitectureName = 'LlamaForCausalLM' | 'Qwen3ForCausalLM' | 'Gemma3ForCausalLM' | 'MixtralForCausalLM' | 'Qwen3MoeForCausalLM';

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
  /** Routed experts a layer holds (a mixture of experts); `intermediateSize` is then one expert's width. */
  experts?: number;
}

export interface ExpectedTensor {
  readonly name: string;
  readonly shape: readonly number[];
}

export interface Architecture {
  readonly name: ArchitectureName;
  readonly modelType: string;
  /** Layer 0's tensor whose rows are the MLP's width (one expert's, in a mixture of experts). */
  readonly mlpProbe: string;
  /** A mixture of experts: layer 0's router, whose rows are the experts, and the config key that counts them. */
  readonly moe?: { readonly router: string; readonly countKey: string; readonly widthKey: string };
  expected(d: ModelDims): ExpectedTensor[];
  /** Settings the shapes cannot tell, with the family's usual values. */
  defaults(d: ModelDims): Record<string, unknown>;
  /** Of those, the ones that change the model's outputs: a default is worth a warning. */
  readonly mustKnow: readonly string[];
  /** Keys fixed by the class (activation, biases), and the ones read off the shapes. */
  fixed(d: ModelDims): Record<string, unknown>;
}

/** Experts in all layers whose tensors are listed (DeepSeek-V3's 61 × 256 is 15,616): a list past it is refused, not built. */
export const MAX_LAYER_EXPERTS = 200_000;

/** A layer's feed-forward tensors: one MLP, or a router and its experts (under `block`, named by `names`). */
type Mlp = (p: string, d: ModelDims) => ExpectedTensor[];

const denseMlp: Mlp = (p, d) => [
  { name: `${p}mlp.gate_proj.weight`, shape: [d.intermediateSize, d.hiddenSize] },
  { name: `${p}mlp.up_proj.weight`, shape: [d.intermediateSize, d.hiddenSize] },
  { name: `${p}mlp.down_proj.weight`, shape: [d.hiddenSize, d.intermediateSize] },
];

/** Experts as the Hub's checkpoints name them, one tensor each (transformers 5 fuses them on load; vLLM and 4.x read these). */
function expertMlp(block: string, [gate, up, down]: readonly [string, string, string]): Mlp {
  return (p, d) => {
    const out: ExpectedTensor[] = [{ name: `${p}${block}.gate.weight`, shape: [d.experts ?? 0, d.hiddenSize] }];
    for (let e = 0; e < (d.experts ?? 0); e++) {
      const x = `${p}${block}.experts.${e}.`;
      out.push(
        { name: `${x}${gate}.weight`, shape: [d.intermediateSize, d.hiddenSize] },
        { name: `${x}${up}.weight`, shape: [d.intermediateSize, d.hiddenSize] },
        { name: `${x}${down}.weight`, shape: [d.hiddenSize, d.intermediateSize] },
      );
    }
    return out;
  };
}

function decoderLayers(d: ModelDims, extra: (p: string) => ExpectedTensor[], mlp: Mlp = denseMlp): ExpectedTensor[] {
  const out: ExpectedTensor[] = [{ name: 'model.embed_tokens.weight', shape: [d.vocabSize, d.hiddenSize] }];
  for (let i = 0; i < d.layers; i++) {
    const p = `model.layers.${i}.`;
    out.push(
      { name: `${p}self_attn.q_proj.weight`, shape: [d.heads * d.headDim, d.hiddenSize] },
      { name: `${p}self_attn.k_proj.weight`, shape: [d.kvHeads * d.headDim, d.hiddenSize] },
      { name: `${p}self_attn.v_proj.weight`, shape: [d.kvHeads * d.headDim, d.hiddenSize] },
      { name: `${p}self_attn.o_proj.weight`, shape: [d.hiddenSize, d.heads * d.headDim] },
      ...mlp(p, d),
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

function withoutKey(o: Record<string, unknown>, key: string): Record<string, unknown> {
  const { [key]: _, ...rest } = o;
  return rest;
}

const TOKEN_IDS = { bos_token_id: null, eos_token_id: null };

const DENSE_PROBE = 'model.layers.0.mlp.gate_proj.weight';

export const LLAMA: Architecture = {
  name: 'LlamaForCausalLM',
  modelType: 'llama',
  mlpProbe: DENSE_PROBE,
  expected: (d) => decoderLayers(d, () => []),
  defaults: () => ({ rope_theta: 500000, rms_norm_eps: 1e-5, max_position_embeddings: 131072, rope_scaling: null, ...TOKEN_IDS }),
  mustKnow: ['rope_theta', 'rms_norm_eps', 'max_position_embeddings'],
  fixed: (d) => ({ ...shapeKeys(d), hidden_act: 'silu', attention_bias: false, attention_dropout: 0.0, mlp_bias: false, use_cache: true }),
};

export const QWEN3: Architecture = {
  name: 'Qwen3ForCausalLM',
  modelType: 'qwen3',
  mlpProbe: DENSE_PROBE,
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
  mlpProbe: DENSE_PROBE,
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

/**
 * Mixtral: Llama attention (half-split RoPE, no q/k norm) and a sparse block of SwiGLU experts w1
 * (gate), w3 (up), w2 (down) behind a softmax router whose top-k weights are renormalized.
 * `intermediate_size` is one expert's width; vLLM and transformers count experts by `num_local_experts`.
 */
export const MIXTRAL: Architecture = {
  name: 'MixtralForCausalLM',
  modelType: 'mixtral',
  mlpProbe: 'model.layers.0.block_sparse_moe.experts.0.w1.weight',
  moe: { router: 'model.layers.0.block_sparse_moe.gate.weight', countKey: 'num_local_experts', widthKey: 'intermediate_size' },
  expected: (d) => decoderLayers(d, () => [], expertMlp('block_sparse_moe', ['w1', 'w3', 'w2'])),
  defaults: () => ({ num_experts_per_tok: 2, rope_theta: 1000000, rms_norm_eps: 1e-5, max_position_embeddings: 32768, rope_scaling: null, sliding_window: null, ...TOKEN_IDS }),
  mustKnow: ['num_experts_per_tok', 'rope_theta', 'rms_norm_eps', 'max_position_embeddings'],
  fixed: (d) => ({ ...shapeKeys(d), num_local_experts: d.experts, hidden_act: 'silu', attention_dropout: 0.0, router_aux_loss_coef: 0.02, output_router_logits: false, use_cache: true }),
};

/**
 * Qwen3-MoE: Qwen3 attention (q/k norm) and, in every layer, experts gate/up/down_proj behind a
 * router. Written with the keys transformers 4.x and vLLM read (`num_experts`, not 5.x's
 * `num_local_experts` alone; `moe_intermediate_size`) and `norm_topk_prob: true`, as MaxText and
 * Tunix route (their top-k weights always sum to one); `decoder_sparse_step: 1` and no
 * `mlp_only_layers` make every layer sparse, so `intermediate_size` (a dense layer's) is unused.
 */
export const QWEN3_MOE: Architecture = {
  name: 'Qwen3MoeForCausalLM',
  modelType: 'qwen3_moe',
  mlpProbe: 'model.layers.0.mlp.experts.0.gate_proj.weight',
  moe: { router: 'model.layers.0.mlp.gate.weight', countKey: 'num_experts', widthKey: 'moe_intermediate_size' },
  expected: (d) => decoderLayers(d, qkNorm(d), expertMlp('mlp', ['gate_proj', 'up_proj', 'down_proj'])),
  // A dense layer's width: no layer is dense, so the base config's value is kept, else one expert's.
  defaults: (d) => ({ num_experts_per_tok: 8, rope_theta: 1000000, rms_norm_eps: 1e-6, max_position_embeddings: 40960, rope_scaling: null, intermediate_size: d.intermediateSize, ...TOKEN_IDS }),
  mustKnow: ['num_experts_per_tok', 'rope_theta', 'rms_norm_eps', 'max_position_embeddings'],
  fixed: (d) => ({
    ...withoutKey(QWEN3.fixed(d), 'intermediate_size'),
    num_experts: d.experts,
    moe_intermediate_size: d.intermediateSize,
    norm_topk_prob: true,
    decoder_sparse_step: 1,
    mlp_only_layers: [],
    router_aux_loss_coef: 0.001,
    output_router_logits: false,
  }),
};

export const ARCHITECTURES: Readonly<Record<ArchitectureName, Architecture>> = {
  LlamaForCausalLM: LLAMA,
  Qwen3ForCausalLM: QWEN3,
  Gemma3ForCausalLM: GEMMA3,
  MixtralForCausalLM: MIXTRAL,
  Qwen3MoeForCausalLM: QWEN3_MOE,
};

export const TORCH_DTYPE: Partial<Record<DType, string>> = { F32: 'float32', BF16: 'bfloat16', F16: 'float16' };
