/**
 * What readSideFiles finds beside a checkpoint, in its own file free of Node imports: the checkpoint
 * editor's page shows it as it is (its protocol takes the type through ./types.ts).
 */
export interface SideFiles {
  readonly folder: string;
  /** Key facts of config.json as [label, value] text, or why they could not be read. */
  readonly config?: readonly (readonly [string, string])[] | { readonly error: string };
  readonly tokenizer: readonly string[];
  readonly chatTemplate: boolean;
  readonly generation?: readonly (readonly [string, string])[] | { readonly error: string };
}
