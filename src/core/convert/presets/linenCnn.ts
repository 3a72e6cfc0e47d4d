/**
 * (f) Flax Linen CNNs (ResNet/VGG style) -> a PyTorch `state_dict` in safetensors, for a PyTorch
 * twin of the model (vLLM and SGLang do not serve CNNs). Layer-type rules keep each module's path
 * and apply PyTorch's conventions (reference §1.1): Conv kernels HWIO -> OIHW (and the 1-D / 3-D
 * forms), Dense (in, out) -> (out, in), norm `scale` -> `weight`, BatchNorm statistics from
 * `batch_stats` -> `running_mean` / `running_var`, `embedding` -> `weight`. The first Dense after a
 * conv flatten needs its rows reordered from NHWC to NCHW (§10): the plan does that from --flatten
 * or from the shapes.
 */
import { TRANSPOSE_2D, type Rule } from '../rules';
import type { Preset } from './preset';

/** One rule per layer type, with and without Linen's `params.` wrapper. */
function layerRules(prefix: string): Rule[] {
  return [
    { from: `${prefix}{path:*}.kernel`, to: '{path}.weight', rank: 2, transforms: TRANSPOSE_2D },
    { from: `${prefix}{path:*}.kernel`, to: '{path}.weight', rank: 3, transforms: [{ op: 'transpose', axes: [2, 1, 0] }] },
    { from: `${prefix}{path:*}.kernel`, to: '{path}.weight', rank: 4, transforms: [{ op: 'transpose', axes: [3, 2, 0, 1] }] },
    { from: `${prefix}{path:*}.kernel`, to: '{path}.weight', rank: 5, transforms: [{ op: 'transpose', axes: [4, 3, 0, 1, 2] }] },
    { from: `${prefix}{path:*}.bias`, to: '{path}.bias' },
    { from: `${prefix}{path:*}.scale`, to: '{path}.weight', rank: 1 },
    { from: `${prefix}{path:*}.embedding`, to: '{path}.weight', rank: 2 },
  ];
}

export const LINEN_CNN: Preset = {
  id: 'linen-cnn',
  title: 'Flax Linen CNN → PyTorch state_dict (no server target)',
  architecture: 'state-dict',
  source: 'transformers modeling_flax_pytorch_utils.py rules; flax "Convert PyTorch models to Flax" (reference §1.1, §10)',
  rules: [
    { from: 'batch_stats.{path:*}.mean', to: '{path}.running_mean', rank: 1 },
    { from: 'batch_stats.{path:*}.var', to: '{path}.running_var', rank: 1 },
    ...layerRules('params.'),
    ...layerRules(''),
  ],
  // Only checkpoints with a convolution or BatchNorm statistics: the generic rules would otherwise map a language model's Dense kernels too.
  accepts: (tensors) => tensors.some((t) => (t.name.endsWith('.kernel') && t.shape.length >= 3 && t.shape.length <= 5 && !/attn|attention|einsum/.test(t.name)) || t.name.startsWith('batch_stats.')),
  note: 'No server target: the export is a PyTorch state_dict (model.safetensors) and mapping.json, for a PyTorch twin whose module names follow the Flax ones (rename with jax-serve.rules.json).',
};
