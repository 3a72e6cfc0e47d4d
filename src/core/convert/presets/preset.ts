/**
 * What a preset is: the rule set for one JAX layout family and the HF class it targets. Its own
 * module, so each preset imports the type without importing the list of every preset.
 */
import type { ArchitectureName } from '../architectures';
import type { Rule } from '../rules';

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
