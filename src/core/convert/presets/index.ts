/**
 * Presets: the rule sets for one JAX layout family, each with the HF class it targets. Detection
 * scores every preset by the number of source tensors its rules map (after stripping a wrapper
 * prefix such as Linen's `params.`); the best one wins, and ties go to the earlier preset.
 */
import type { Preset } from './preset';
import { BONSAI_LLAMA, BONSAI_QWEN3 } from './bonsai';
import { HF_FLAX_LLAMA } from './hfFlax';
import { LINEN_CNN } from './linenCnn';
import { MAXTEXT_LLAMA2, MAXTEXT_LLAMA31 } from './maxtext';
import { MAXTEXT_MIXTRAL, MAXTEXT_QWEN3_MOE } from './maxtextMoe';
import { TALK_NNX_LLAMA } from './talkNnxLlama';
import { TUNIX_GEMMA3 } from './tunixGemma3';
import { TUNIX_QWEN3, TUNIX_QWEN3_MOE } from './tunixQwen3';

export type { Preset } from './preset';

export const PRESETS: readonly Preset[] = [TALK_NNX_LLAMA, BONSAI_LLAMA, BONSAI_QWEN3, MAXTEXT_LLAMA31, MAXTEXT_LLAMA2, MAXTEXT_MIXTRAL, MAXTEXT_QWEN3_MOE, TUNIX_GEMMA3, TUNIX_QWEN3, TUNIX_QWEN3_MOE, HF_FLAX_LLAMA, LINEN_CNN];

export function presetById(id: string): Preset | undefined {
  return PRESETS.find((p) => p.id === id);
}
