/**
 * (e) Gemma 3 in the Tunix (google/tunix) NNX layout -> Gemma3ForCausalLM, text only (reference
 * §1.1, §5.3): `q_einsum.w` (N, D, H); `kv_einsum.w` (2, K, D, H) holding k then v, or
 * `qkv_einsum.w` (3, N, D, H) when N == K; `attn_vec_einsum.w` (N, H, D); Linear MLP; norms named
 * `scale` with the same 1 + scale meaning HF's Gemma3RMSNorm has, so they are copied unchanged;
 * the embedding is tied (the logits use it) and scaled by sqrt(D) in both forwards, not in the weights.
 */
import { TRANSPOSE_2D, type Rule } from '../rules';
import type { Transform } from '../transforms';
import type { Preset } from './preset';

/** (N, D, H) -> (N, H, D) -> (N·H, D). */
const NDH: readonly Transform[] = [{ op: 'transpose', axes: [0, 2, 1] }, { op: 'merge', axis: 0 }];
/** (N, H, D) -> (N·H, D) -> (D, N·H). */
const NHD: readonly Transform[] = [{ op: 'merge', axis: 0 }, { op: 'transpose', axes: [1, 0] }];

const NORMS: Record<string, string> = {
  pre_attention_norm: 'input_layernorm',
  post_attention_norm: 'post_attention_layernorm',
  pre_ffw_norm: 'pre_feedforward_layernorm',
  post_ffw_norm: 'post_feedforward_layernorm',
};

const rules: Rule[] = [
  { from: 'embedder.input_embedding', to: 'model.embed_tokens.weight', rank: 2 },
  { from: 'layers.{i}.attn.q_einsum.w', to: 'model.layers.{i}.self_attn.q_proj.weight', rank: 3, transforms: NDH },
  { from: 'layers.{i}.attn.kv_einsum.w', to: 'model.layers.{i}.self_attn.{kv}_proj.weight', rank: 4, unstack: { axis: 0, as: 'kv', names: ['k', 'v'] }, transforms: NDH },
  { from: 'layers.{i}.attn.qkv_einsum.w', to: 'model.layers.{i}.self_attn.{qkv}_proj.weight', rank: 4, unstack: { axis: 0, as: 'qkv', names: ['q', 'k', 'v'] }, transforms: NDH },
  { from: 'layers.{i}.attn.attn_vec_einsum.w', to: 'model.layers.{i}.self_attn.o_proj.weight', rank: 3, transforms: NHD },
  { from: 'layers.{i}.attn._query_norm.scale', to: 'model.layers.{i}.self_attn.q_norm.weight', rank: 1 },
  { from: 'layers.{i}.attn._key_norm.scale', to: 'model.layers.{i}.self_attn.k_norm.weight', rank: 1 },
  { from: 'layers.{i}.mlp.{p:gate_proj|up_proj|down_proj}.kernel', to: 'model.layers.{i}.mlp.{p}.weight', rank: 2, transforms: TRANSPOSE_2D },
  ...Object.entries(NORMS).map(([from, to]): Rule => ({ from: `layers.{i}.${from}.scale`, to: `model.layers.{i}.${to}.weight`, rank: 1 })),
  { from: 'final_norm.scale', to: 'model.norm.weight', rank: 1 },
];

export const TUNIX_GEMMA3: Preset = {
  id: 'tunix-gemma3',
  title: 'Gemma 3 text, Tunix NNX layout (einsum attention)',
  architecture: 'Gemma3ForCausalLM',
  source: 'google/tunix models/gemma3/params_safetensors.py (reference §1.1, §5.3)',
  rules,
};
