/**
 * (c) transformers 4.x Flax models (`FlaxLlamaForCausalLM.save_pretrained`: flax_model.msgpack,
 * sharded with flax_model.msgpack.index.json): the PyTorch names with Flax's leaf names, so the
 * rules are transformers' own Flax -> PyTorch ones (reference §1.2): `kernel` (in, out) ->
 * `weight` transposed, `embedding` -> `weight`; Llama's RMSNorm already says `weight`. RoPE is
 * rotate_half on both sides (no permutation).
 */
import { TRANSPOSE_2D } from '../rules';
import type { Preset } from './preset';

export const HF_FLAX_LLAMA: Preset = {
  id: 'hf-flax-llama',
  title: 'transformers 4.x FlaxLlamaForCausalLM (flax_model.msgpack)',
  architecture: 'LlamaForCausalLM',
  source: 'transformers modeling_flax_pytorch_utils.py load_flax_weights_in_pytorch_model (reference §1.2)',
  rules: [
    { from: 'model.embed_tokens.embedding', to: 'model.embed_tokens.weight', rank: 2 },
    { from: 'model.layers.{i}.{m:self_attn|mlp}.{p}.kernel', to: 'model.layers.{i}.{m}.{p}.weight', rank: 2, transforms: TRANSPOSE_2D },
    { from: 'model.layers.{i}.{n:input_layernorm|post_attention_layernorm}.weight', to: 'model.layers.{i}.{n}.weight', rank: 1 },
    { from: 'model.norm.weight', to: 'model.norm.weight', rank: 1 },
    { from: 'lm_head.kernel', to: 'lm_head.weight', rank: 2, transforms: TRANSPOSE_2D },
  ],
};
