/**
 * MaxText mixtures of experts (reference: MaxText's `ckpt_conversion` mappings for Mixtral and
 * Qwen3-MoE, and its `RoutedMoE` layer). The experts are bare arrays under the MoE block: `wi_0`
 * (gate) and `wi_1` (up) (E, D, F), `wo` (down) (E, F, D), stacked (E, L, …) when scanned, and the
 * router `gate.kernel` (D, E), scanned (D, L, E). Each expert of each layer becomes its own HF
 * tensor, read slice by slice: never the whole stack. Both models rotate half-split pairs, as HF
 * does, so q and k are not permuted (auto-detect must not take them for MaxText Llama 3.1, which
 * would de-interleave them).
 */
import { TRANSPOSE_2D } from '../rules';
import { attentionTensors, layerRules, MAXTEXT_TOP, type LayerTensor } from './maxtext';
import type { Preset } from './preset';

/** The router and the three expert stacks of `block`, to the HF block's names for gate, up and down. */
function moeTensors(block: string, hf: string, [gate, up, down]: readonly [string, string, string]): { perLayer: LayerTensor[]; stacked: LayerTensor[] } {
  return {
    perLayer: [[`${block}.gate.kernel`, `${hf}.gate.weight`, 2, TRANSPOSE_2D]],
    stacked: [
      [`${block}.wi_0`, `${hf}.experts.{e}.${gate}.weight`, 2, TRANSPOSE_2D],
      [`${block}.wi_1`, `${hf}.experts.{e}.${up}.weight`, 2, TRANSPOSE_2D],
      [`${block}.wo`, `${hf}.experts.{e}.${down}.weight`, 2, TRANSPOSE_2D],
    ],
  };
}

const SOURCE = 'AI-Hypercomputer/maxtext ckpt_conversion param_mapping.py (MIXTRAL_ and QWEN_MAXTEXT_TO_HF_PARAM_MAPPING) and layers/moe.py RoutedMoE';

const mixtral = moeTensors('MoeBlock_0', 'block_sparse_moe', ['w1', 'w3', 'w2']);

/** Mixtral: the query kernel holds MaxText's 1/sqrt(head_dim) (undone); half-split RoPE. */
export const MAXTEXT_MIXTRAL: Preset = {
  id: 'maxtext-mixtral',
  title: 'MaxText Mixtral (scanned or not; experts stacked, pre-scaled query)',
  architecture: 'MixtralForCausalLM',
  source: SOURCE,
  rules: [...MAXTEXT_TOP, ...layerRules([...attentionTensors(false, true), ...mixtral.perLayer], mixtral.stacked)],
  note: 'MaxText Mixtral: experts unstacked into block_sparse_moe.experts.N.w1/w3/w2; the query pre-scale is undone, RoPE needs no permutation. The router top-k (num_experts_per_tok) is not in the weights: pass it with --set or --config-from.',
};

const qwen = moeTensors('moe_block', 'mlp', ['gate_proj', 'up_proj', 'down_proj']);

/** Qwen3-MoE: per-head q/k norms; the attention scale is applied at run time, so the query is as stored. */
export const MAXTEXT_QWEN3_MOE: Preset = {
  id: 'maxtext-qwen3-moe',
  title: 'MaxText Qwen3-MoE (scanned or not; experts stacked, q/k norms)',
  architecture: 'Qwen3MoeForCausalLM',
  source: SOURCE,
  rules: [
    ...MAXTEXT_TOP,
    ...layerRules(
      [...attentionTensors(false, false), ['self_attention.query_norm.scale', 'self_attn.q_norm.weight', 1, undefined], ['self_attention.key_norm.scale', 'self_attn.k_norm.weight', 1, undefined], ...qwen.perLayer],
      qwen.stacked,
    ),
  ],
  note: 'MaxText Qwen3-MoE: experts unstacked into mlp.experts.N.gate/up/down_proj; written with norm_topk_prob true (MaxText always renormalizes the top-k weights). The router top-k (num_experts_per_tok) is not in the weights: pass it with --set or --config-from.',
};
