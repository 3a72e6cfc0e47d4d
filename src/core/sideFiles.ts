/**
 * The files beside a checkpoint that say what model it is: config.json's key facts, the tokenizer
 * files, a chat template, generation_config.json. Read as small JSON files; a file that does not
 * parse is reported as such, never thrown, so the viewer still shows the weights.
 */
import * as path from 'node:path';
import type { Checkpoint } from './checkpoint';
import { parseJsonBytes } from './json';
import { openerWithin, type FileOpener } from './io/byteSource';
import type { SideFiles } from './sideFilesResult';

export type { SideFiles } from './sideFilesResult';


const TOKENIZER_NAMES = ['tokenizer.json', 'tokenizer.model', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.json', 'merges.txt'];

async function json(opener: FileOpener, file: string): Promise<Record<string, unknown> | { error: string } | undefined> {
  // A side file that cannot be read (a link out of the folder, a FIFO) is shown as an error, never thrown.
  try {
    if ((await opener.kind(file)) !== 'file') return undefined;
    const v = parseJsonBytes(file, await opener.readSmall(file, 16 << 20));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : { error: `${path.basename(file)} is not a JSON object` };
  } catch (e) {
    return { error: (e as Error).message };
  }
}

const text = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));

function pick(obj: Record<string, unknown>, keys: readonly (readonly [string, string])[]): [string, string][] {
  return keys.filter(([k]) => obj[k] !== undefined && obj[k] !== null).map(([k, label]) => [label, text(obj[k])]);
}

const CONFIG_KEYS = [
  ['architectures', 'Architecture'],
  ['model_type', 'Model type'],
  ['hidden_size', 'Hidden size'],
  ['num_hidden_layers', 'Layers'],
  ['num_attention_heads', 'Heads'],
  ['num_key_value_heads', 'KV heads'],
  ['head_dim', 'Head dim'],
  ['intermediate_size', 'MLP size'],
  ['vocab_size', 'Vocabulary'],
  ['max_position_embeddings', 'Max positions'],
  ['tie_word_embeddings', 'Tied embeddings'],
  ['torch_dtype', 'dtype'],
  ['dtype', 'dtype'],
] as const;

const GENERATION_KEYS = [
  ['bos_token_id', 'BOS'],
  ['eos_token_id', 'EOS'],
  ['pad_token_id', 'PAD'],
  ['do_sample', 'Sampling'],
  ['temperature', 'Temperature'],
  ['top_p', 'Top-p'],
  ['max_new_tokens', 'Max new tokens'],
] as const;

/** The side files of the folder holding the checkpoint (the folder itself when it was opened as one). */
export async function readSideFiles(files: FileOpener, ck: Pick<Checkpoint, 'location' | 'files'>): Promise<SideFiles> {
  const folder = (await files.kind(ck.location)) === 'directory' ? ck.location : path.dirname(ck.files[0] ?? ck.location);
  // Side files are read only inside the checkpoint's folder, as its weights are.
  const opener = await openerWithin(files, folder);
  const config = await json(opener, path.join(folder, 'config.json'));
  const generation = await json(opener, path.join(folder, 'generation_config.json'));
  const tokenizer: string[] = [];
  const isFile = (f: string) => opener.kind(f).then((k) => k === 'file', () => false);
  for (const n of TOKENIZER_NAMES) if (await isFile(path.join(folder, n))) tokenizer.push(n);
  const tc = tokenizer.includes('tokenizer_config.json') ? await json(opener, path.join(folder, 'tokenizer_config.json')) : undefined;
  const chatTemplate = (tc !== undefined && !('error' in tc) && typeof tc.chat_template === 'string') || (await isFile(path.join(folder, 'chat_template.jinja')));
  const facts = (v: Record<string, unknown> | { error: string } | undefined, keys: readonly (readonly [string, string])[]) =>
    v === undefined ? undefined : 'error' in v && typeof v.error === 'string' ? { error: v.error } : pick(v, keys);
  return { folder, config: facts(config, CONFIG_KEYS), tokenizer, chatTemplate, generation: facts(generation, GENERATION_KEYS) };
}
