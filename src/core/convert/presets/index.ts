/**
 * Presets: the rule sets for one JAX layout family, each with the HF class it targets. Detection
 * scores every preset by the share of source tensors its rules map; the best one wins.
 */
import type { Rule } from '../rules';
import { TALK_NNX_LLAMA } from './talkNnxLlama';

export interface Preset {
  readonly id: string;
  readonly title: string;
  readonly architecture: 'LlamaForCausalLM';
  readonly rules: readonly Rule[];
  /** Where the layout comes from (shown in the plan). */
  readonly source: string;
}

export const PRESETS: readonly Preset[] = [TALK_NNX_LLAMA];

export function presetById(id: string): Preset | undefined {
  return PRESETS.find((p) => p.id === id);
}
