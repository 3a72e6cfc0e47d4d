/**
 * "Will vLLM / SGLang load this folder?" — checked from the files alone, in a second, instead of
 * minutes into `vllm serve`. What the engines read and how strict they are:
 * ../shared/reference/formats-and-layouts.md §9 (vLLM refuses unknown and missing weights and
 * asserts shapes; SGLang warns about unknown names and serves whatever is left uninitialised).
 */
import * as path from 'node:path';
import type { Checkpoint } from '../checkpoint';
import { describeError, JaxServeError } from '../errors';
import { parseJsonBytes } from '../json';
import { openerWithin, type FileOpener } from '../io/byteSource';
import { openCheckpoint } from '../formats/open';
import { checkTokenizerFolder } from './tokenizer';
import { ARCHITECTURES, MAX_LAYER_EXPERTS, type ArchitectureName, type ExpectedTensor, type ModelDims } from './architectures';
import { sglangJaxFindings } from './sglangJaxRules';
import { adapterFindings } from './preflightAdapter';
import { gib, tpProblems, type FitEngine } from '../serve/fit';
import { fitCheckpoint, type FitOptions } from '../serve/fitFolder';
import { SHAPE_LIMITS } from '../serve/modelShape';

/** The engines preflight knows the rules of (vLLM on TPU loads as vLLM does). */
export type Engine = 'vllm' | 'sglang' | 'sglang-jax' | 'transformers-serve';
export const PREFLIGHT_ENGINES: readonly Engine[] = ['vllm', 'sglang', 'sglang-jax', 'transformers-serve'];
/** What preflight checks when no engine is named: today's pair. */
export const DEFAULT_PREFLIGHT_ENGINES: readonly Engine[] = ['vllm', 'sglang'];

/** The engine whose rules apply to a serve engine id (vllm-tpu loads weights as vllm does), or undefined. */
export function preflightEngine(id: string): Engine | undefined {
  if (id === 'vllm-tpu') return 'vllm';
  return (PREFLIGHT_ENGINES as readonly string[]).includes(id) ? (id as Engine) : undefined;
}

/** What each engine's rules check, one line each: the editor's engine pick and the CLI's --engine help show it. */
export const PREFLIGHT_RULES: Readonly<Record<Engine, string>> = {
  vllm: 'vLLM (also on TPU): refuses unknown and missing weights.',
  sglang: 'SGLang (PyTorch).',
  'sglang-jax': 'SGLang-JAX: its registered architectures, head_dim a multiple of 128, bfloat16 on TPU.',
  'transformers-serve': 'transformers serve (CPU, small models).',
};

const ENGINE_TITLES: Record<Engine, string> = { vllm: 'vLLM', sglang: 'SGLang', 'sglang-jax': 'SGLang-JAX', 'transformers-serve': 'transformers serve' };

/** "vLLM and SGLang", "SGLang-JAX": the engines a report speaks for. */
export function preflightEnginesTitle(engines: readonly Engine[] = DEFAULT_PREFLIGHT_ENGINES): string {
  const t = engines.map((e) => ENGINE_TITLES[e]);
  return t.length > 1 ? `${t.slice(0, -1).join(', ')} and ${t.at(-1)}` : (t[0] ?? '');
}

export interface Finding {
  readonly severity: 'error' | 'warning' | 'info';
  readonly code: string;
  readonly message: string;
  /** The file the finding is about (for the Problems panel). */
  readonly file: string;
  readonly tensor?: string;
}

export interface PreflightOptions {
  readonly engines?: readonly Engine[];
  /** Tensor-parallel size the folder will be served with. */
  readonly tensorParallel?: number;
  /** The accelerators it will be served on: each engine's fit becomes a finding (the TP is tensorParallel's). */
  readonly fit?: Omit<FitOptions, 'engine' | 'tp'>;
  /** PEFT LoRA adapter folders to check against this base (--adapter); one that is not a folder throws. */
  readonly adapters?: readonly string[];
}

export interface PreflightReport {
  readonly folder: string;
  /** The engines whose rules were applied. */
  readonly engines: readonly Engine[];
  readonly architecture: string | undefined;
  readonly findings: readonly Finding[];
  /** The adapter folders checked against it (findings name their files). */
  readonly adapters?: readonly string[];
}

/**
 * Architectures whose expected tensors jax-serve knows, with the engines that serve them (vLLM's
 * model registry, SGLang's EntryClass lists, transformers' auto classes) and transformers' default
 * for tie_word_embeddings. SGLang-JAX's list is generated from its source (sglangJaxRules.ts).
 */
const CHECKED: Record<ArchitectureName, { engines: readonly Engine[]; tiedDefault: boolean }> = {
  LlamaForCausalLM: { engines: ['vllm', 'sglang', 'transformers-serve'], tiedDefault: false },
  Qwen3ForCausalLM: { engines: ['vllm', 'sglang', 'transformers-serve'], tiedDefault: false },
  Gemma3ForCausalLM: { engines: ['vllm', 'sglang', 'transformers-serve'], tiedDefault: true },
  MixtralForCausalLM: { engines: ['vllm', 'sglang', 'transformers-serve'], tiedDefault: false },
  Qwen3MoeForCausalLM: { engines: ['vllm', 'sglang', 'transformers-serve'], tiedDefault: false },
};

/** Element types vLLM and SGLang load into float weights. */
const SERVABLE_DTYPES = new Set(['F32', 'F16', 'BF16', 'F8_E4M3', 'F8_E5M2']);

function num(c: Record<string, unknown>, key: string, fallback?: number): number {
  const v = c[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new JaxServeError('E_FORMAT', `config.json: ${key} must be a positive whole number (is ${JSON.stringify(c[key])}).`);
  return v;
}

function expectedFromConfig(name: ArchitectureName, c: Record<string, unknown>): { dims: ModelDims; names: ExpectedTensor[] } {
  const heads = num(c, 'num_attention_heads');
  const hidden = num(c, 'hidden_size');
  const moe = ARCHITECTURES[name].moe;
  const dims: ModelDims = {
    vocabSize: num(c, 'vocab_size'),
    hiddenSize: hidden,
    intermediateSize: num(c, moe?.widthKey ?? 'intermediate_size'),
    layers: num(c, 'num_hidden_layers'),
    heads,
    kvHeads: num(c, 'num_key_value_heads', heads),
    headDim: num(c, 'head_dim', hidden / heads),
    tied: typeof c.tie_word_embeddings === 'boolean' ? c.tie_word_embeddings : CHECKED[name].tiedDefault,
    // transformers 5 writes num_local_experts for either class; 4.x and vLLM read the class's own key.
    ...(moe ? { experts: num(c, c[moe.countKey] === undefined && c.num_local_experts !== undefined ? 'num_local_experts' : moe.countKey) } : {}),
  };
  if (dims.layers > SHAPE_LIMITS.layers || dims.layers * (dims.experts ?? 1) > MAX_LAYER_EXPERTS) throw new JaxServeError('E_LIMIT', `config.json: ${dims.layers} layers${dims.experts ? ` of ${dims.experts} experts` : ''} is over what preflight checks (${SHAPE_LIMITS.layers} layers, ${MAX_LAYER_EXPERTS.toLocaleString('en-US')} experts in all).`);
  return { dims, names: ARCHITECTURES[name].expected(dims) };
}

export async function preflight(files: FileOpener, folder: string, opts: PreflightOptions = {}): Promise<PreflightReport> {
  // What the engines would load lies inside the folder: a link out of it is refused, as they would read it.
  const opener = await openerWithin(files, folder);
  const engines = opts.engines?.length ? opts.engines : DEFAULT_PREFLIGHT_ENGINES;
  const findings: Finding[] = [];
  const add = (severity: Finding['severity'], code: string, file: string, message: string, tensor?: string) => findings.push({ severity, code, file, message, ...(tensor ? { tensor } : {}) });
  const configFile = path.join(folder, 'config.json');
  const config = await readJsonFile(opener, configFile, add);
  const architecture = Array.isArray(config?.architectures) && typeof config.architectures[0] === 'string' ? (config.architectures[0] as string) : undefined;
  if (config && !architecture) add('error', 'no-architecture', configFile, 'config.json has no "architectures": ["…"]; vLLM and SGLang pick the model class from its first entry.');

  await checkFiles(opener, folder, add);
  let ck: Checkpoint | undefined;
  try {
    ck = await openCheckpoint(opener, folder);
  } catch (e) {
    add('error', 'weights', folder, `the weights do not open: ${describeError(e)}`);
  }
  if (ck && ck.format !== 'safetensors' && ck.format !== 'safetensors-sharded') {
    add('error', 'weights-format', ck.location, `the weights are ${ck.format}; vLLM and SGLang load *.safetensors (convert them first).`);
    ck = undefined;
  }
  if (ck) checkDtypes(ck, add);

  const known = architecture && architecture in CHECKED ? CHECKED[architecture as ArchitectureName] : undefined;
  if (config && architecture && !known) {
    add('warning', 'unchecked-architecture', configFile, `${architecture}: jax-serve does not know its tensors, so names and shapes are not checked (known: ${Object.keys(CHECKED).join(', ')}).`);
  }
  // The config alone says whether the heads divide and which engines serve the class: said even when the weights do not open.
  if (config && known) {
    try {
      const { dims, names } = expectedFromConfig(architecture as ArchitectureName, config);
      if (ck) checkTensors(ck, names, dims, configFile, add);
      if (ck && dims.experts !== undefined) checkExperts(ck, config, dims, configFile, add);
      checkHeads(dims, opts.tensorParallel, configFile, add);
      for (const e of engines) if (e !== 'sglang-jax' && !known.engines.includes(e)) add('error', 'engine-architecture', configFile, `${ENGINE_TITLES[e]} does not serve ${architecture}.`);
      const dtype = config.dtype ?? config.torch_dtype;
      if (architecture === 'Gemma3ForCausalLM' && dtype === 'float16') add('warning', 'dtype-gemma', configFile, 'Gemma 3 overflows in float16; vLLM refuses it and serves bfloat16 or float32 only (export with --dtype bf16).');
    } catch (e) {
      add('error', 'config', configFile, describeError(e));
    }
  }
  if (config && engines.includes('sglang-jax')) for (const f of sglangJaxFindings(config)) add(f.severity, f.code, configFile, f.message);
  if (config && opts.fit) fitFindings(config, configFile, ck, engines, { ...opts.fit, tp: opts.tensorParallel }, add);
  if (config) for (const f of await checkTokenizerFolder(opener, folder, config)) add(f.severity, f.code, f.file, f.message);
  // Each adapter is read through the caller's opener: it lies outside the base folder.
  for (const dir of opts.adapters ?? []) findings.push(...(await adapterFindings(files, dir, { folder, architecture, weights: ck }, engines)));
  return { folder, engines, architecture, findings, ...(opts.adapters?.length ? { adapters: opts.adapters } : {}) };
}

type Add = (severity: Finding['severity'], code: string, file: string, message: string, tensor?: string) => void;

async function readJsonFile(opener: FileOpener, file: string, add: Add): Promise<Record<string, unknown> | undefined> {
  if ((await opener.kind(file)) !== 'file') {
    add('error', 'missing-file', file, `${path.basename(file)} is missing; vLLM and SGLang read it first.`);
    return undefined;
  }
  const bytes = await opener.readSmall(file, 16 << 20);
  try {
    const v = parseJsonBytes(file, bytes);
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
    add('error', 'bad-json', file, `${path.basename(file)} is not a JSON object.`);
  } catch (e) {
    add('error', 'bad-json', file, (e as Error).message);
  }
  return undefined;
}

/** Files that change what the engines load (reference §12 P8). */
/** Files of an export checked one by one for being readable (more are left to the engines). */
const MAX_CHECKED_FILES = 10_000;

async function checkFiles(opener: FileOpener, folder: string, add: Add): Promise<void> {
  const names = opener.list ? await opener.list(folder) : [];
  // The engines read every file they know by name (weights, config, tokenizer, chat template): one
  // that is a FIFO or device would block them, one that links out of the folder or to nothing
  // would fail or read what was not exported. Opening checks all of that without reading a byte.
  for (const name of names.slice(0, MAX_CHECKED_FILES)) {
    const file = path.join(folder, name);
    try {
      if ((await opener.kind(file)) !== 'file') continue;
      await (await opener.open(file)).close();
    } catch (e) {
      add('error', 'unreadable-file', file, e instanceof Error ? e.message : String(e));
    }
  }
  const consolidated = names.filter((n) => /^consolidated.*\.safetensors$/.test(n));
  if (consolidated.length) add('error', 'consolidated', path.join(folder, consolidated[0]!), `${consolidated[0]} makes vLLM's --load-format auto switch to the Mistral format and ignore the HF weights; remove it.`);
  if (names.some((n) => n.endsWith('.bin')) && names.some((n) => n.endsWith('.safetensors'))) {
    add('warning', 'bin-and-safetensors', folder, 'the folder holds both *.bin and *.safetensors weights; vLLM prefers safetensors, older tools may load both.');
  }
}

function checkDtypes(ck: Checkpoint, add: Add): void {
  const bad = ck.tensors.filter((t) => !SERVABLE_DTYPES.has(t.dtype));
  if (bad.length) add('error', 'dtype', ck.location, `${bad.length} tensor(s) are ${[...new Set(bad.map((t) => t.dtype))].join('/')}, e.g. ${bad[0]!.name}; weights must be F32, F16, BF16 (or F8).`, bad[0]!.name);
  if (ck.metadata.format === undefined) add('warning', 'no-format-metadata', ck.location, 'the safetensors header has no __metadata__ {"format": "pt"}; transformers before 4.48.2 fails on that.');
  else if (ck.metadata.format !== 'pt') add('error', 'format-metadata', ck.location, `__metadata__.format is ${JSON.stringify(ck.metadata.format)}, not "pt": these may be Flax-layout weights (kernels (in, out)), which load as garbage; convert them.`);
}

function checkTensors(ck: Checkpoint, expected: readonly ExpectedTensor[], dims: ModelDims, configFile: string, add: Add): void {
  const have = new Map(ck.tensors.map((t) => [t.name, t]));
  const want = new Set(expected.map((e) => e.name));
  for (const e of expected) {
    const t = have.get(e.name);
    if (!t) add('error', 'missing-tensor', ck.location, `${e.name} ${JSON.stringify(e.shape)} is missing: vLLM stops ("weights were not initialized"), SGLang serves garbage.`, e.name);
    else if (JSON.stringify(t.shape) !== JSON.stringify(e.shape)) add('error', 'tensor-shape', ck.location, `${e.name} is ${JSON.stringify(t.shape)}; config.json makes it ${JSON.stringify(e.shape)}.`, e.name);
  }
  for (const t of ck.tensors) {
    if (want.has(t.name) || /rotary_emb\.inv_freq$/.test(t.name)) continue;
    if (t.name === 'lm_head.weight' && dims.tied) {
      add('warning', 'tied-lm-head', configFile, 'tie_word_embeddings is true but lm_head.weight is present: it is ignored (older vLLM raised KeyError on it).', t.name);
      continue;
    }
    add('error', 'unexpected-tensor', ck.location, `${t.name} is not a weight of this architecture: vLLM refuses it ("no module or parameter named"), SGLang drops it with a warning.`, t.name);
  }
  if (!dims.tied && !have.has('lm_head.weight')) {
    add('info', 'untied', configFile, 'tie_word_embeddings is false, so lm_head.weight must be in the weights (reported above); if the model shares it with embed_tokens, set tie_word_embeddings: true.');
  }
}

/**
 * A mixture of experts: top-k against the expert count (vLLM asserts it), shared experts the class
 * has no place for, and every expert of every layer present; a missing one is named once, with
 * the layers that lack it, beside the per-tensor findings.
 */
function checkExperts(ck: Checkpoint, config: Record<string, unknown>, d: ModelDims, configFile: string, add: Add): void {
  const experts = d.experts!;
  const k = config.num_experts_per_tok;
  if (!(typeof k === 'number' && Number.isInteger(k) && k >= 1 && k <= experts)) add('error', 'top-k', configFile, `num_experts_per_tok is ${JSON.stringify(k)}; it must be a whole number from 1 to the ${experts} experts a layer holds.`);
  const shared = Number(config.shared_expert_intermediate_size ?? 0) > 0 || ck.tensors.some((t) => /\.shared_experts?\./.test(t.name));
  if (shared) add('error', 'shared-experts', configFile, `${String(config.architectures && (config.architectures as unknown[])[0])} has no shared experts, but ${config.shared_expert_intermediate_size ? 'config.json sets shared_expert_intermediate_size' : 'the weights hold shared_expert tensors'}: this looks like another model (Qwen2-MoE and DeepSeek have shared experts).`);
  // An expert is whole when its three tensors are there; counted once per (layer, expert) by name.
  const perExpert = new Map<string, number>();
  for (const t of ck.tensors) {
    const m = /^model\.layers\.(\d+)\.(?:mlp|block_sparse_moe)\.experts\.(\d+)\.\w+\.weight$/.exec(t.name);
    if (m) perExpert.set(`${Number(m[1])}.${Number(m[2])}`, (perExpert.get(`${Number(m[1])}.${Number(m[2])}`) ?? 0) + 1);
  }
  const missing = new Map<number, { layers: number[]; none: boolean }>();
  for (let e = 0; e < experts; e++) {
    for (let i = 0; i < d.layers; i++) {
      const n = perExpert.get(`${i}.${e}`) ?? 0;
      if (n >= 3) continue;
      const m = missing.get(e) ?? { layers: [], none: true };
      m.layers.push(i);
      m.none &&= n === 0;
      missing.set(e, m);
    }
  }
  for (const [e, { layers, none }] of [...missing].slice(0, 8)) {
    const where = layers.length === d.layers ? 'every layer' : `layer${layers.length > 1 ? 's' : ''} ${layers.slice(0, 8).join(', ')}${layers.length > 8 ? ', …' : ''}`;
    add('error', 'missing-expert', ck.location, `experts.${e} is ${none ? 'missing' : 'incomplete'} in ${where}: config.json says ${experts} experts a layer; vLLM stops, transformers routes tokens to random weights.`);
  }
  if (missing.size === 0 && typeof k === 'number') add('info', 'experts', configFile, `${experts} experts a layer, top-${k}, no shared experts: all present in all ${d.layers} layers.`);
}

function checkHeads(d: ModelDims, tp: number | undefined, configFile: string, add: Add): void {
  if (d.heads % d.kvHeads !== 0) add('error', 'gqa', configFile, `num_attention_heads ${d.heads} is not a multiple of num_key_value_heads ${d.kvHeads}.`);
  if (!tp || tp <= 1) return;
  // vLLM shards KV heads when there are enough, else replicates them: either tp | kv or kv | tp (fit's rule).
  for (const p of tpProblems({ heads: d.heads, kvHeads: d.kvHeads, intermediate: d.intermediateSize, vocab: d.vocabSize }, tp)) add('error', 'tensor-parallel', configFile, `tensor-parallel size ${tp}: ${p}.`);
}

const FIT_ENGINE: Partial<Record<Engine, FitEngine>> = { vllm: 'vllm', sglang: 'sglang', 'sglang-jax': 'sglang-jax' };

/** One finding per engine that sizes memory: an error when the launch will not fit, else how it fits. */
function fitFindings(config: Record<string, unknown>, configFile: string, ck: Checkpoint | undefined, engines: readonly Engine[], opts: Omit<FitOptions, 'engine'>, add: Add): void {
  for (const e of engines) {
    const engine = FIT_ENGINE[e];
    if (!engine) continue;
    let r;
    try {
      r = fitCheckpoint(config, configFile, ck, { ...opts, engine });
    } catch (err) {
      add('error', 'fit', configFile, `${ENGINE_TITLES[e]}: not sized: ${describeError(err)}`);
      continue;
    }
    const on = `${r.count === 1 ? 'one' : `${r.count} ×`} ${opts.accelerator.name} at ${r.dtype} for ${ENGINE_TITLES[e]} (TP ${r.tp}, max length ${r.maxModelLen})`;
    if (r.fits) add('info', 'fit', configFile, `fits ${on}: ${gib(r.weightBytesPerDevice, 1)} of weights a device, KV cache for ${r.kvTokens.toLocaleString('en-US')} tokens (${r.maxConcurrency.toFixed(1)} sequences at once).`);
    else add('error', 'fit', configFile, `does not fit ${on}: ${gib(r.weightBytes, 1)} of weights; ${r.problems.join(' ')}${r.minTp !== null && r.minTp !== r.tp && !r.problems.join(' ').includes(`TP ${r.minTp} fits`) ? ` TP ${r.minTp} fits.` : ''}`);
  }
}

export function preflightHasErrors(r: PreflightReport): boolean {
  return r.findings.some((f) => f.severity === 'error');
}
