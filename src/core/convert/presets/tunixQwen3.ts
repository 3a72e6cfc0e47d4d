/**
 * Qwen3 and Qwen3-MoE in the Tunix (google/tunix models/qwen3/model.py) NNX layout: einsum attention
 * `attn.q_proj.w` (D, N, H), `k_proj.w`/`v_proj.w` (D, K, H), `o_proj.w` (N, H, D), per-head
 * `q_norm.w`/`k_norm.w`; RMSNorms named `w` (x · w, as HF's); half-split RoPE and the query scaled at
 * run time, so nothing is permuted or rescaled. The dense MLP is `nnx.Linear` (`mlp.gate_proj.kernel`
 * (D, F)); the MoE layer holds the router `mlp.router.kernel` (D, E) and bare expert stacks
 * `mlp.gate_proj`/`up_proj` (E, D, F), `down_proj` (E, F, D), routed softmax → top-k → renormalized
 * (HF's `norm_topk_prob: true`). The layers are unscanned (`layers.{i}`); `lm_head.w` is (D, V), absent
 * when the embedding is tied.
 */
import { TRANSPOSE_2D, type Rule } from '../rules';
import type { Transform } from '../transforms';
import type { Preset } from './preset';

/** (D, N, H) -> (D, N·H) -> (N·H, D). */
const DNH: readonly Transform[] = [{ op: 'merge', axis: 1 }, { op: 'transpose', axes: [1, 0] }];
/** (N, H, D) -> (N·H, D) -> (D, N·H). */
const NHD: readonly Transform[] = [{ op: 'merge', axis: 0 }, { op: 'transpose', axes: [1, 0] }];

const COMMON: Rule[] = [
  { from: 'embedder.input_embedding', to: 'model.embed_tokens.weight', rank: 2 },
  { from: 'layers.{i}.attn.{p:q_proj|k_proj|v_proj}.w', to: 'model.layers.{i}.self_attn.{p}.weight', rank: 3, transforms: DNH },
  { from: 'layers.{i}.attn.o_proj.w', to: 'model.layers.{i}.self_attn.o_proj.weight', rank: 3, transforms: NHD },
  { from: 'layers.{i}.attn.{n:q_norm|k_norm}.w', to: 'model.layers.{i}.self_attn.{n}.weight', rank: 1 },
  { from: 'layers.{i}.{n:input_layernorm|post_attention_layernorm}.w', to: 'model.layers.{i}.{n}.weight', rank: 1 },
  { from: 'final_norm.w', to: 'model.norm.weight', rank: 1 },
  { from: 'lm_head.w', to: 'lm_head.weight', rank: 2, transforms: TRANSPOSE_2D },
];

const SOURCE = 'google/tunix models/qwen3/model.py (Attention, MLP, MoELayer) and params.py';

export const TUNIX_QWEN3: Preset = {
  id: 'tunix-qwen3',
  title: 'Qwen3, Tunix NNX layout (einsum attention)',
  architecture: 'Qwen3ForCausalLM',
  source: SOURCE,
  rules: [...COMMON, { from: 'layers.{i}.mlp.{p:gate_proj|up_proj|down_proj}.kernel', to: 'model.layers.{i}.mlp.{p}.weight', rank: 2, transforms: TRANSPOSE_2D }],
};

export const TUNIX_QWEN3_MOE: Preset = {
  id: 'tunix-qwen3-moe',
  title: 'Qwen3-MoE, Tunix NNX layout (einsum attention, stacked experts)',
  architecture: 'Qwen3MoeForCausalLM',
  source: SOURCE,
  rules: [
    ...COMMON,
    { from: 'layers.{i}.mlp.router.kernel', to: 'model.layers.{i}.mlp.gate.weight', rank: 2, transforms: TRANSPOSE_2D },
    { from: 'layers.{i}.mlp.{p:gate_proj|up_proj|down_proj}', to: 'model.layers.{i}.mlp.experts.{e}.{p}.weight', rank: 3, unstack: { axis: 0, as: 'e' }, transforms: TRANSPOSE_2D },
  ],
  note: 'Tunix Qwen3-MoE: experts unstacked into mlp.experts.N.gate/up/down_proj; written with norm_topk_prob true (Tunix renormalizes the top-k weights). The router top-k (num_experts_per_tok) is not in the weights: pass it with --set or --config-from.',
};
