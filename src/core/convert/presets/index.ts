/**
 * Presets: the rule sets for one JAX layout family, each with the HF class it targets. Detection
 * scores every preset by the number of source tensors its rules map (after stripping a wrapper
 * prefix such as Linen's `params.`); the best one wins, and ties go to the earlier preset.
 */
import type { ArchitectureName } from '../architectures';
import type { Rule } from '../rules';
import { BONSAI_LLAMA, BONSAI_QWEN3 } from './bonsai';
import { HF_FLAX_LLAMA } from './hfFlax';
import { LINEN_CNN } from './linenCnn';
import { MAXTEXT_LLAMA2, MAXTEXT_LLAMA31 } from './maxtext';
import { TALK_NNX_LLAMA } from './talkNnxLlama';
import { TUNIX_GEMMA3 } from './tunixGemma3';

export interface Preset {
  readonly id: string;
  readonly title: string;
  /** The HF class the export is for, or 'state-dict' for a plain PyTorch state_dict (no server). */
  readonly architecture: ArchitectureName | 'state-dict';
  readonly rules: readonly Rule[];
  /** Where the layout comes from (shown in the plan). */
  readonly source: string;
  /** What the plan should tell the user whenever this preset is used (an assumption it makes). */
  readonly note?: string;
  /** Whether auto-detection may pick this preset for these tensors at all. */
  readonly accepts?: (tensors: readonly { readonly name: string; readonly shape: readonly number[] }[]) => boolean;
}

export const PRESETS: readonly Preset[] = [TALK_NNX_LLAMA, BONSAI_LLAMA, BONSAI_QWEN3, MAXTEXT_LLAMA31, MAXTEXT_LLAMA2, TUNIX_GEMMA3, HF_FLAX_LLAMA, LINEN_CNN];

export function presetById(id: string): Preset | undefined {
  return PRESETS.find((p) => p.id === id);
}
