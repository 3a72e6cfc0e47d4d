/**
 * (d) MaxText Llama (reference §8.1, §8.2): with `scan_layers` every layer lives in one tensor
 * whose axis 1 (`param_scan_axis`) is the layer; unscanned runs name them `layers_{i}`. The query
 * kernel was divided by sqrt(head_dim) at import (MaxText folds the attention scale into it), so
 * export multiplies it back. Llama 3.1-style MaxText rotates interleaved pairs (`LLaMARotaryEmbedding`),
 * so q and k are de-interleaved per head for HF's rotate_half; Llama 2 / Mistral runs use half-split
 * RoPE already and need no permutation.
 */
import { TRANSPOSE_2D, type Rule } from '../rules';
import type { Layout, Transform } from '../transforms';
import type { Preset } from './preset';

/** A (D, N, H) kernel (one layer's q/k/v) -> (N·H, D); `rope` de-interleaves head_dim first. */
function qkv(rope: boolean, scaled: boolean): (s: Layout) => Transform[] {
  return (s) => [
    ...(rope ? [{ op: 'deinterleave', axis: 2 } as const] : []),
    { op: 'merge', axis: 1 },
    { op: 'transpose', axes: [1, 0] },
    ...(scaled ? [{ op: 'scale', factor: Math.sqrt(s.shape[2]!) } as const] : []),
  ];
}

const OUT: readonly Transform[] = [{ op: 'merge', axis: 0 }, { op: 'transpose', axes: [1, 0] }];

/** One decoder-layer tensor: MaxText name under the layer, HF name under `model.layers.N.`, rank of one layer's slice, chain. */
export type LayerTensor = readonly [from: string, to: string, rank: number, transforms: Rule['transforms']];

/**
 * Rules for layer tensors, scanned (`decoder.layers.X` with the layer on axis 1: `param_scan_axis`)
 * and unscanned (`decoder.layers_N.X`). `stacked` tensors hold one slice per expert on axis 0 too:
 * scanned they are (experts, layers, …), unscanned (experts, …); `{e}` in the HF name takes the expert.
 */
export function layerRules(perLayer: readonly LayerTensor[], stacked: readonly LayerTensor[] = []): Rule[] {
  return [
    ...perLayer.map(([f, t, r, x]): Rule => ({ from: `decoder.layers.${f}`, to: `model.layers.{l}.${t}`, rank: r + 1, unstack: { axis: 1, as: 'l' }, transforms: x })),
    ...perLayer.map(([f, t, r, x]): Rule => ({ from: `decoder.layers_{i}.${f}`, to: `model.layers.{i}.${t}`, rank: r, transforms: x })),
    ...stacked.map(([f, t, r, x]): Rule => ({ from: `decoder.layers.${f}`, to: `model.layers.{l}.${t}`, rank: r + 2, unstack: [{ axis: 0, as: 'e' }, { axis: 1, as: 'l' }], transforms: x })),
    ...stacked.map(([f, t, r, x]): Rule => ({ from: `decoder.layers_{i}.${f}`, to: `model.layers.{i}.${t}`, rank: r + 1, unstack: { axis: 0, as: 'e' }, transforms: x })),
  ];
}

/** Attention and its norms; `rope` de-interleaves q and k, `scaled` undoes the query pre-scale. */
export function attentionTensors(rope: boolean, scaled: boolean): LayerTensor[] {
  return [
    ['self_attention.query.kernel', 'self_attn.q_proj.weight', 3, qkv(rope, scaled)],
    ['self_attention.key.kernel', 'self_attn.k_proj.weight', 3, qkv(rope, false)],
    ['self_attention.value.kernel', 'self_attn.v_proj.weight', 3, qkv(false, false)],
    ['self_attention.out.kernel', 'self_attn.o_proj.weight', 3, OUT],
    ['pre_self_attention_layer_norm.scale', 'input_layernorm.weight', 1, undefined],
    ['post_self_attention_layer_norm.scale', 'post_attention_layernorm.weight', 1, undefined],
  ];
}

/** The tensors outside the layers. */
export const MAXTEXT_TOP: readonly Rule[] = [
  { from: 'token_embedder.embedding', to: 'model.embed_tokens.weight', rank: 2 },
  { from: 'decoder.decoder_norm.scale', to: 'model.norm.weight', rank: 1 },
  { from: 'decoder.logits_dense.kernel', to: 'lm_head.weight', rank: 2, transforms: TRANSPOSE_2D },
];

function rules(rope: boolean): Rule[] {
  const mlp: LayerTensor[] = [
    ['mlp.wi_0.kernel', 'mlp.gate_proj.weight', 2, TRANSPOSE_2D],
    ['mlp.wi_1.kernel', 'mlp.up_proj.weight', 2, TRANSPOSE_2D],
    ['mlp.wo.kernel', 'mlp.down_proj.weight', 2, TRANSPOSE_2D],
  ];
  return [...MAXTEXT_TOP, ...layerRules([...attentionTensors(rope, true), ...mlp])];
}

const SOURCE = 'AI-Hypercomputer/maxtext param_mapping.py LLAMA31_MAXTEXT_TO_HF_PARAM_MAPPING and hooks (reference §8)';

export const MAXTEXT_LLAMA31: Preset = {
  id: 'maxtext-llama3.1',
  title: 'MaxText Llama 3.x (scanned or not; interleaved RoPE, pre-scaled query)',
  architecture: 'LlamaForCausalLM',
  source: SOURCE,
  rules: rules(true),
  note: 'MaxText layout: q and k are de-interleaved for HF RoPE, as MaxText does for llama3.1-style models (LLaMARotaryEmbedding). A llama2 or mistral MaxText run rotates half-split pairs: use --preset maxtext-llama2, or the export serves fluent garbage.',
};

export const MAXTEXT_LLAMA2: Preset = {
  id: 'maxtext-llama2',
  title: 'MaxText Llama 2 / Mistral (scanned or not; half-split RoPE, pre-scaled query)',
  architecture: 'LlamaForCausalLM',
  source: SOURCE,
  rules: rules(false),
  note: 'MaxText layout without RoPE permutation (llama2/mistral runs use half-split RoPE). A llama3.1-style run needs --preset maxtext-llama3.1.',
};
