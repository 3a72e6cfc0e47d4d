/**
 * (a) The talk's NNX Llama (jax-ml/jax-ai-stack "Serving JAX Models with vLLM & SGLang", reference
 * §5.2): every projection an `nnx.Linear` with an (in, out) kernel, RMSNorm weights named
 * `norm_weights`, attention under `attention` where HF says `self_attn`, HF-style rotate_half RoPE
 * (so no RoPE permutation). Targets LlamaForCausalLM.
 */
import { TRANSPOSE_2D } from '../rules';
import type { Preset } from './preset';

export const TALK_NNX_LLAMA: Preset = {
  id: 'talk-nnx-llama',
  title: "NNX Llama (the talk's notebook layout)",
  architecture: 'LlamaForCausalLM',
  source: 'jax-ai-stack "Serving JAX with vLLM/SGLang" notebook: model_state_to_HF_weights',
  rules: [
    { from: 'token_embed.embedding', to: 'model.embed_tokens.weight', rank: 2 },
    { from: 'layers.{i}.attention.{p:q_proj|k_proj|v_proj|o_proj}.kernel', to: 'model.layers.{i}.self_attn.{p}.weight', rank: 2, transforms: TRANSPOSE_2D },
    { from: 'layers.{i}.mlp.{p:gate_proj|up_proj|down_proj}.kernel', to: 'model.layers.{i}.mlp.{p}.weight', rank: 2, transforms: TRANSPOSE_2D },
    { from: 'layers.{i}.{n:input_layernorm|post_attention_layernorm}.norm_weights', to: 'model.layers.{i}.{n}.weight', rank: 1 },
    { from: 'norm.norm_weights', to: 'model.norm.weight', rank: 1 },
    { from: 'lm_head.kernel', to: 'lm_head.weight', rank: 2, transforms: TRANSPOSE_2D },
  ],
};
