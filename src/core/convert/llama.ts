/**
 * LlamaForCausalLM as the HF side sees it: the tensors transformers' `state_dict()` holds (names,
 * shapes) and the config.json keys transformers 4.4x-5.x, vLLM and SGLang all read
 * (../shared/reference/formats-and-layouts.md §9: legacy `rope_theta`/`torch_dtype` keys are mapped
 * by vLLM's `patch_rope_parameters` for both transformers generations).
 */
import type { DType } from '../tensor/dtype';

export interface LlamaDims {
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

export function llamaExpected(d: LlamaDims): ExpectedTensor[] {
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
    );
  }
  out.push({ name: 'model.norm.weight', shape: [d.hiddenSize] });
  if (!d.tied) out.push({ name: 'lm_head.weight', shape: [d.vocabSize, d.hiddenSize] });
  return out;
}

/** Settings shapes cannot tell, with Llama 3's values as defaults. */
export interface LlamaSettings {
  rope_theta: number;
  rms_norm_eps: number;
  max_position_embeddings: number;
  bos_token_id: number | null;
  eos_token_id: number | number[] | null;
  rope_scaling: Record<string, unknown> | null;
}

export const LLAMA_DEFAULTS: LlamaSettings = {
  rope_theta: 500000,
  rms_norm_eps: 1e-5,
  max_position_embeddings: 131072,
  bos_token_id: null,
  eos_token_id: null,
  rope_scaling: null,
};

const TORCH_DTYPE: Partial<Record<DType, string>> = { F32: 'float32', BF16: 'bfloat16', F16: 'float16' };

export function llamaConfig(d: LlamaDims, s: LlamaSettings, dtype: DType): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: d.vocabSize,
    hidden_size: d.hiddenSize,
    intermediate_size: d.intermediateSize,
    num_hidden_layers: d.layers,
    num_attention_heads: d.heads,
    num_key_value_heads: d.kvHeads,
    head_dim: d.headDim,
    hidden_act: 'silu',
    max_position_embeddings: s.max_position_embeddings,
    rms_norm_eps: s.rms_norm_eps,
    rope_theta: s.rope_theta,
    rope_scaling: s.rope_scaling,
    attention_bias: false,
    attention_dropout: 0.0,
    mlp_bias: false,
    tie_word_embeddings: d.tied,
    bos_token_id: s.bos_token_id,
    eos_token_id: s.eos_token_id,
    torch_dtype: TORCH_DTYPE[dtype] ?? 'float32',
    use_cache: true,
  };
}
