/**
 * (b) NNX models in the jax-ml/bonsai style (reference §5.3, §6): attention projections as einsum
 * kernels — q/k/v `(D, N, H)` ("BTD,DNH->BTNH"), o `(N, H, D)` — or 2-D `(in, out)` Linear kernels
 * (bonsai's Llama 3.2), MLP as Linear, `nnx.RMSNorm` weights named `scale`, half-split RoPE (so no
 * permutation). Qwen3 adds per-head `q_norm`/`k_norm` `(H,)`, applied before RoPE.
 */
import { TRANSPOSE_2D, type Rule } from '../rules';
import type { Preset } from './preset';

/** (D, N, H) -> (D, N·H) -> (N·H, D): the same bytes as transpose(1, 2, 0) then reshape, in a form the tiled executor streams. */
export const EINSUM_IN = [{ op: 'merge', axis: 1 }, { op: 'transpose', axes: [1, 0] }] as const;
/** (N, H, D) -> (N·H, D) -> (D, N·H). */
export const EINSUM_OUT = [{ op: 'merge', axis: 0 }, { op: 'transpose', axes: [1, 0] }] as const;

const ATTN = '{a:attn|self_attn}';

const LLAMA_RULES: readonly Rule[] = [
  { from: 'embedder.embedding', to: 'model.embed_tokens.weight', rank: 2 },
  { from: `layers.{i}.${ATTN}.{p:q_proj|k_proj|v_proj}.kernel`, to: 'model.layers.{i}.self_attn.{p}.weight', rank: 3, transforms: EINSUM_IN },
  { from: `layers.{i}.${ATTN}.o_proj.kernel`, to: 'model.layers.{i}.self_attn.o_proj.weight', rank: 3, transforms: EINSUM_OUT },
  { from: `layers.{i}.${ATTN}.{p:q_proj|k_proj|v_proj|o_proj}.kernel`, to: 'model.layers.{i}.self_attn.{p}.weight', rank: 2, transforms: TRANSPOSE_2D },
  { from: 'layers.{i}.mlp.{p:gate_proj|up_proj|down_proj}.kernel', to: 'model.layers.{i}.mlp.{p}.weight', rank: 2, transforms: TRANSPOSE_2D },
  { from: 'layers.{i}.{n:input_layernorm|post_attention_layernorm}.scale', to: 'model.layers.{i}.{n}.weight', rank: 1 },
  { from: 'final_norm.scale', to: 'model.norm.weight', rank: 1 },
  { from: 'lm_head.kernel', to: 'lm_head.weight', rank: 2, transforms: TRANSPOSE_2D },
];

export const BONSAI_LLAMA: Preset = {
  id: 'bonsai-llama',
  title: 'NNX Llama, bonsai style (einsum or Linear attention kernels)',
  architecture: 'LlamaForCausalLM',
  source: 'jax-ml/bonsai llama3 / tpu-inference llama3 parameter names (reference §5.3, §6, §7)',
  rules: LLAMA_RULES,
};

export const BONSAI_QWEN3: Preset = {
  id: 'bonsai-qwen3',
  title: 'NNX Qwen3, bonsai style (einsum attention, q_norm/k_norm)',
  architecture: 'Qwen3ForCausalLM',
  source: 'jax-ml/bonsai qwen3/params.py (reference §6)',
  rules: [...LLAMA_RULES, { from: `layers.{i}.${ATTN}.{n:q_norm|k_norm}.scale`, to: 'model.layers.{i}.self_attn.{n}.weight', rank: 1 }],
};
