/**
 * Tokenizer files as vLLM and SGLang load them (AutoTokenizer from the model folder): a
 * tokenizers `tokenizer.json` or a SentencePiece `tokenizer.model`, `tokenizer_config.json` with the
 * chat template (or `chat_template.jinja`), checked against config.json: they parse, the special
 * token ids exist, no token id falls past the embedding, the chat template is there for
 * /v1/chat/completions. A vocabulary padded past the tokenizer's size is fine (ids never produced).
 */
import * as path from 'node:path';
import { JaxServeError } from '../errors';
import { parseJsonBytes, parseJsonText } from '../json';
import type { FileOpener } from '../io/byteSource';

export interface TokenizerFinding {
  readonly severity: 'error' | 'warning' | 'info';
  readonly code: string;
  readonly file: string;
  readonly message: string;
}

/** Token pieces by id, and the ids a SentencePiece model declares for its specials. */
interface Vocab {
  readonly pieces: Map<number, string>;
  readonly specials?: Readonly<Record<string, number>>;
}

async function readJson(opener: FileOpener, file: string, out: TokenizerFinding[]): Promise<Record<string, unknown> | undefined> {
  // A file that cannot be read at all (outside the folder, a FIFO, too large) stops the export.
  const bytes = await opener.readSmall(file, 64 << 20);
  try {
    const v = parseJsonBytes(file, bytes);
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
    out.push({ severity: 'error', code: 'bad-json', file, message: `${path.basename(file)} is not a JSON object.` });
  } catch (e) {
    out.push({ severity: 'error', code: 'bad-json', file, message: (e as Error).message });
  }
  return undefined;
}

/** Token ids of a tokenizers `tokenizer.json` (model vocab and added tokens). */
function tokenizerJsonVocab(tok: Record<string, unknown>): Vocab | undefined {
  const out = new Map<number, string>();
  const model = tok.model as { vocab?: unknown } | undefined;
  if (model && typeof model.vocab === 'object' && model.vocab !== null && !Array.isArray(model.vocab)) {
    for (const [piece, id] of Object.entries(model.vocab as Record<string, unknown>)) if (typeof id === 'number') out.set(id, piece);
  } else if (Array.isArray(model?.vocab)) {
    (model.vocab as unknown[]).forEach((entry, id) => out.set(id, String(Array.isArray(entry) ? entry[0] : entry)));
  }
  for (const t of (tok.added_tokens as { id?: unknown; content?: unknown }[] | undefined) ?? []) if (typeof t.id === 'number') out.set(t.id, String(t.content));
  return out.size > 0 ? { pieces: out } : undefined;
}

/** A protobuf reader just deep enough for SentencePiece's ModelProto. */
class Proto {
  at = 0;
  constructor(private readonly b: Uint8Array) {}
  get done(): boolean {
    return this.at >= this.b.length;
  }
  varint(): number {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.at >= this.b.length) throw new JaxServeError('E_FORMAT', 'truncated varint');
      const byte = this.b[this.at++]!;
      v += (byte & 0x7f) * mul;
      if (byte < 0x80) return v;
      mul *= 128;
    }
    throw new JaxServeError('E_FORMAT', 'varint too long');
  }
  bytes(): Uint8Array {
    const n = this.varint();
    if (this.at + n > this.b.length) throw new JaxServeError('E_FORMAT', 'field runs past the end');
    return this.b.subarray(this.at, (this.at += n));
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.at += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.at += 4;
    else throw new JaxServeError('E_FORMAT', `wire type ${wire} is not protobuf`);
    if (this.at > this.b.length) throw new JaxServeError('E_FORMAT', 'field runs past the end');
  }
}

/**
 * A SentencePiece `tokenizer.model` (ModelProto): pieces (field 1, each with its string in field
 * 1) and the trainer spec's special ids (field 2: unk 40, bos 41, eos 42, pad 43; defaults 0, 1, 2, -1).
 */
export function sentencePieceVocab(bytes: Uint8Array): Vocab {
  const top = new Proto(bytes);
  const pieces = new Map<number, string>();
  const specials: Record<string, number> = { unk_id: 0, bos_id: 1, eos_id: 2, pad_id: -1 };
  const ids: Record<number, string> = { 40: 'unk_id', 41: 'bos_id', 42: 'eos_id', 43: 'pad_id' };
  while (!top.done) {
    const key = top.varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (field === 1 && wire === 2) {
      const p = new Proto(top.bytes());
      let piece = '';
      while (!p.done) {
        const k = p.varint();
        if (k === (1 << 3) + 2) piece = new TextDecoder().decode(p.bytes());
        else p.skip(k & 7);
      }
      pieces.set(pieces.size, piece);
    } else if (field === 2 && wire === 2) {
      const p = new Proto(top.bytes());
      while (!p.done) {
        const k = p.varint();
        const name = ids[Math.floor(k / 8)];
        if (name && (k & 7) === 0) {
          const v = p.varint();
          specials[name] = v > 2 ** 31 ? v - 2 ** 64 : v; // int32 -1 is sent as a 10-byte varint
        } else p.skip(k & 7);
      }
    } else top.skip(wire);
  }
  if (pieces.size === 0) throw new JaxServeError('E_FORMAT', 'no pieces (field 1) in the model');
  return { pieces, specials };
}

/**
 * Checks the tokenizer files in `folder` against `config` (config.json as written or planned).
 * `forChat` reports a missing chat template as a warning (/v1/chat/completions needs it).
 */
export async function checkTokenizerFolder(opener: FileOpener, folder: string, config: Readonly<Record<string, unknown>> | undefined): Promise<TokenizerFinding[]> {
  const out: TokenizerFinding[] = [];
  const file = (n: string) => path.join(folder, n);
  const hasJson = (await opener.kind(file('tokenizer.json'))) === 'file';
  const hasModel = (await opener.kind(file('tokenizer.model'))) === 'file';
  if (!hasJson && !hasModel) {
    out.push({ severity: 'error', code: 'no-tokenizer', file: folder, message: 'no tokenizer.json or tokenizer.model: the engines load the tokenizer from the model folder unless --tokenizer is given (convert with --tokenizer-from DIR).' });
    return out;
  }
  let vocab: Vocab | undefined;
  let vocabFile = file('tokenizer.json');
  if (hasJson) {
    const tok = await readJson(opener, vocabFile, out);
    if (tok) vocab = tokenizerJsonVocab(tok);
  } else {
    vocabFile = file('tokenizer.model');
    const bytes = await opener.readSmall(vocabFile, 64 << 20);
    try {
      vocab = sentencePieceVocab(bytes);
    } catch (e) {
      out.push({ severity: 'error', code: 'bad-tokenizer-model', file: vocabFile, message: `tokenizer.model is not a SentencePiece model: ${(e as Error).message}.` });
    }
  }
  const tcFile = file('tokenizer_config.json');
  const tc = (await opener.kind(tcFile)) === 'file' ? await readJson(opener, tcFile, out) : undefined;
  const template = typeof tc?.chat_template === 'string' || Array.isArray(tc?.chat_template) || (await opener.kind(file('chat_template.jinja'))) === 'file' || (await opener.kind(file('chat_template.json'))) === 'file';
  if (!template) out.push({ severity: 'warning', code: 'no-chat-template', file: folder, message: 'no chat template (tokenizer_config.json chat_template or chat_template.jinja): /v1/chat/completions will fail; completions still work.' });
  if (tc?.tokenizer_class === 'TokenizersBackend') {
    out.push({ severity: 'warning', code: 'tokenizer-class', file: tcFile, message: 'tokenizer_class "TokenizersBackend" is transformers 5\'s name; vLLM or SGLang running on transformers 4.x cannot load it. Set "PreTrainedTokenizerFast" for them.' });
  }
  if (!vocab) return out;
  const vocabSize = typeof config?.vocab_size === 'number' ? config.vocab_size : undefined;
  const top = Math.max(-1, ...vocab.pieces.keys());
  if (vocabSize !== undefined && top >= vocabSize) {
    out.push({ severity: 'error', code: 'vocab-size', file: vocabFile, message: `the tokenizer has token id ${top} but vocab_size is ${vocabSize}: that token would index past the embedding.` });
  } else if (vocabSize !== undefined && top + 1 < vocabSize) {
    out.push({ severity: 'info', code: 'vocab-padded', file: vocabFile, message: `the embedding has ${vocabSize} rows for ${top + 1} tokens (padded, as for TPU-friendly sizes): ids ${top + 1}..${vocabSize - 1} are never produced.` });
  }
  for (const key of ['bos_token_id', 'eos_token_id', 'pad_token_id']) {
    for (const id of ([] as unknown[]).concat(config?.[key] ?? [])) {
      if (typeof id === 'number' && !vocab.pieces.has(id)) out.push({ severity: 'error', code: 'special-token', file: vocabFile, message: `config.json ${key} ${id} is not a token of ${path.basename(vocabFile)}.` });
    }
  }
  if (vocab.specials && config) {
    for (const [key, cfgKey] of [['bos_id', 'bos_token_id'], ['eos_id', 'eos_token_id']] as const) {
      const sp = vocab.specials[key]!;
      const ids = ([] as unknown[]).concat(config[cfgKey] ?? []);
      if (sp >= 0 && ids.length > 0 && !ids.includes(sp)) out.push({ severity: 'warning', code: 'special-token', file: vocabFile, message: `tokenizer.model's ${key} is ${sp}, config.json ${cfgKey} says ${JSON.stringify(config[cfgKey])}.` });
    }
  }
  return out;
}

/**
 * tokenizer_config.json as both transformers generations read it. transformers 5 writes
 * `"tokenizer_class": "TokenizersBackend"` and `extra_special_tokens` as a list; transformers 4.x
 * (what many vLLM / SGLang installs run) fails on both ("Tokenizer class TokenizersBackend does not
 * exist"; `'list' object has no attribute 'keys'`). `PreTrainedTokenizerFast` and
 * `additional_special_tokens` load the same tokenizer in both. Returns the text and what changed.
 */
export function compatTokenizerConfig(text: string, file = 'tokenizer_config.json'): { text: string; changed: string[] } {
  let json: Record<string, unknown>;
  try {
    json = parseJsonText(file, text) as Record<string, unknown>;
    if (typeof json !== 'object' || json === null) return { text, changed: [] };
  } catch {
    return { text, changed: [] }; // the check reports it; the file is copied as it is
  }
  const changed: string[] = [];
  if (json.tokenizer_class === 'TokenizersBackend') {
    json.tokenizer_class = 'PreTrainedTokenizerFast';
    changed.push('tokenizer_class TokenizersBackend → PreTrainedTokenizerFast');
  }
  if (Array.isArray(json.extra_special_tokens)) {
    if (json.additional_special_tokens === undefined) json.additional_special_tokens = json.extra_special_tokens;
    delete json.extra_special_tokens;
    changed.push('extra_special_tokens (a list) → additional_special_tokens');
  }
  return changed.length ? { text: JSON.stringify(json, null, 2) + '\n', changed } : { text, changed };
}
