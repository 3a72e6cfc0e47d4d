/**
 * "Will vLLM / SGLang load this LoRA adapter over this base?" — a PEFT adapter folder checked
 * against the base export it was made for, from the files alone. The rules are the engines' own:
 * vLLM 0.32 (lora/peft_helper.py: required fields, the features it refuses, the rank against
 * --max-lora-rank; lora/lora_model.py and lora/utils.py: every tensor key is
 * `base_model.model.<module>.lora_A.weight` / `lora_B.weight` / `lora_embedding_A` / `lora_embedding_B`
 * of a module the model supports), SGLang (lora/lora_config.py, lora/utils.py: target_modules a
 * list, or the string "all" / "all-linear"; no rsLoRA scaling), and PEFT's, for what
 * transformers + peft computes from the same folder (target_modules selects the wrapped modules,
 * tensors load into (r, in) and (out, r) of the base weight's (out, in)).
 */
import { MAX_ADAPTER_CONFIG_BYTES } from '../limits';
import * as path from 'node:path';
import type { Checkpoint, TensorRef } from '../checkpoint';
import { describeError, JaxServeError } from '../errors';
import { isObject, parseJsonBytes } from '../json';
import { openerWithin, type FileOpener } from '../io/byteSource';
import { openCheckpoint } from '../formats/open';
import type { Engine, Finding } from './preflight';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';

/** vLLM's --max-lora-rank choices (config/lora.py) and its default. */
export const VLLM_LORA_RANKS: readonly number[] = [1, 8, 16, 32, 64, 128, 256, 320, 512];
export const VLLM_DEFAULT_MAX_LORA_RANK = 16;

/** Tensors of one adapter checked one by one: all-linear on a 405B (126 layers × 7 modules × 2) is under 2,000. */
const MAX_ADAPTER_TENSORS = 100_000;
/** rank_pattern, alpha_pattern and modules_to_save entries read: a real config has tens (one per module at most). */
const MAX_PATTERN_ENTRIES = 10_000;
/** target_modules entries read: each is matched against every module of the base, so fewer. */
const MAX_TARGETS = 1_000;
/** Findings of one kind spelled out; the rest are counted in one more. */
const MAX_PER_CODE = 8;
/** adapter_config.json is a few KiB; rank_pattern of every module of a large model stays far under this. */
const MAX_CONFIG_BYTES = MAX_ADAPTER_CONFIG_BYTES;

/**
 * Module leaves vLLM and SGLang put LoRA on in the dense classes preflight knows (vLLM: every
 * linear layer, q/k/v and gate/up through the packed qkv_proj and gate_up_proj, plus the
 * embeddings; SGLang's normalised names are the same set).
 */
const LORA_LEAVES = new Set(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj', 'embed_tokens', 'lm_head']);
const DENSE = new Set(['LlamaForCausalLM', 'Qwen3ForCausalLM', 'Gemma3ForCausalLM']);
/** Leaves that are embeddings in these classes: their factors are lora_embedding_A (r, vocab) and lora_embedding_B (hidden, r). */
const EMBEDDING_LEAVES = new Set(['embed_tokens']);
/** Float types the engines cast LoRA factors from. */
const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16']);

/** What the adapter is checked against: the base folder and what preflight already read of it. */
export interface AdapterBase {
  readonly folder: string;
  readonly architecture?: string;
  /** The base's weights; undefined when they did not open (reported already), and module checks are skipped. */
  readonly weights?: Checkpoint;
}

type Add = (severity: Finding['severity'], code: string, file: string, message: string, tensor?: string) => void;

/** One adapted module as the tensors have it. */
interface Factors {
  a?: TensorRef;
  b?: TensorRef;
  embedding: boolean;
}

/**
 * The findings for adapter folder `dir` over `base`. An adapter folder that is not there (or not a
 * folder) throws: the caller named something that is not an adapter at all, unlike an adapter with
 * problems, which is what the findings are for.
 */
export async function adapterFindings(files: FileOpener, dir: string, base: AdapterBase, engines: readonly Engine[]): Promise<Finding[]> {
  const kind = await files.kind(dir);
  if (kind !== 'directory') throw new JaxServeError(kind ? 'E_USAGE' : 'E_NOT_FOUND', `${dir}: ${kind ? 'is a file, not a folder' : 'no such folder'}; --adapter takes a PEFT adapter folder (${ADAPTER_CONFIG_FILE}, ${ADAPTER_WEIGHTS_FILE}).`);
  const opener = await openerWithin(files, dir);
  // Listing it now makes an unreadable folder an error of its own, before any file is looked for.
  const names = opener.list ? await opener.list(dir) : [];
  const findings: Finding[] = [];
  const counts = new Map<string, number>();
  const add: Add = (severity, code, file, message, tensor) => {
    const n = (counts.get(code) ?? 0) + 1;
    counts.set(code, n);
    if (n <= MAX_PER_CODE) findings.push({ severity, code, file, message, ...(tensor ? { tensor } : {}) });
  };
  const configFile = path.join(dir, ADAPTER_CONFIG_FILE);
  const weightsFile = path.join(dir, ADAPTER_WEIGHTS_FILE);
  const vllm = engines.includes('vllm');
  const sglang = engines.includes('sglang');

  const config = await readConfig(opener, configFile, add);
  const cfg = config ? checkConfig(config, configFile, base, sglang, add) : undefined;
  const modules = await readFactors(opener, weightsFile, names, add);
  if (modules && cfg) checkModules(modules, cfg, base, weightsFile, configFile, vllm || sglang, add);
  if (modules && cfg && vllm) checkMaxRank(modules, cfg, configFile, add);

  // The count past the cap, so a folder with a thousand bad tensors says how many.
  for (const [code, n] of counts) {
    if (n <= MAX_PER_CODE) continue;
    const first = findings.find((f) => f.code === code)!;
    findings.push({ severity: first.severity, code, file: first.file, message: `… and ${n - MAX_PER_CODE} more like the above (${code}).` });
  }
  if (modules && cfg && !findings.some((f) => f.severity === 'error')) {
    const ranks = [...new Set([...modules.values()].map((m) => m.a?.shape[0]).filter((r) => r !== undefined))].sort((x, y) => x - y);
    findings.push({ severity: 'info', code: 'adapter', file: configFile, message: `LoRA adapter over ${base.folder}: ${modules.size} modules, r ${ranks.join('/')}, lora_alpha ${cfg.alpha}. Serve it with vLLM's --enable-lora --lora-modules NAME=${dir} --max-lora-rank ${vllmMaxLoraRank(cfg.maxRank) ?? cfg.maxRank}, or SGLang's --lora-paths NAME=${dir}.` });
  }
  return findings;
}

async function readConfig(opener: FileOpener, file: string, add: Add): Promise<Record<string, unknown> | undefined> {
  if ((await opener.kind(file)) !== 'file') {
    add('error', 'adapter-config', file, `${ADAPTER_CONFIG_FILE} is missing: vLLM, SGLang and PEFT read the adapter's r, lora_alpha and target_modules from it.`);
    return undefined;
  }
  try {
    const v = parseJsonBytes(file, await opener.readSmall(file, MAX_CONFIG_BYTES));
    if (isObject(v)) return v;
    add('error', 'adapter-config', file, `${ADAPTER_CONFIG_FILE} is not a JSON object.`);
  } catch (e) {
    add('error', 'adapter-config', file, describeError(e));
  }
  return undefined;
}

/** What the rest of the checks need from adapter_config.json. */
interface AdapterConfig {
  readonly r: number;
  readonly alpha: number;
  /** A list, or the string form (a regex, or "all-linear"), or undefined when missing. */
  readonly targets: readonly string[] | string | undefined;
  /** rank_pattern keys that are plain module names (or suffixes of them), with their rank. */
  readonly rankPattern: ReadonlyMap<string, number>;
  /** rank_pattern's keys with their place in the file, for the first-match lookup. */
  readonly rankOrder: ReadonlyMap<string, { readonly order: number; readonly r: number }>;
  /** Whether some rank_pattern key is a regex: ranks are then not checked per module. */
  readonly rankRegex: boolean;
  readonly layers: ReadonlySet<number> | undefined;
  /** The largest rank the config allows: r and every rank_pattern value. */
  readonly maxRank: number;
}

export const positiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;
const positive = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0;
/** A pattern key that is a module name or a dotted suffix of one, matched as such; anything else is a regex we do not run. */
const PLAIN_KEY = /^[\w.]+$/;

function checkConfig(c: Record<string, unknown>, file: string, base: AdapterBase, sglang: boolean, add: Add): AdapterConfig | undefined {
  if (c.peft_type !== 'LORA') add('error', 'adapter-peft-type', file, `peft_type is ${JSON.stringify(c.peft_type)}, not "LORA": PEFT picks the adapter kind from it, and vLLM and SGLang serve LoRA only.`);
  if (c.task_type !== 'CAUSAL_LM') add('warning', 'adapter-task-type', file, `task_type is ${JSON.stringify(c.task_type)}, not "CAUSAL_LM": PEFT wraps the model for another task, and what transformers + peft generates need not be what the engines serve.`);
  const need = (key: string, ok: boolean, what: string) => {
    if (!ok) add('error', 'adapter-config-field', file, `${key} is ${c[key] === undefined ? 'missing' : JSON.stringify(c[key])}; it must be ${what}: vLLM, SGLang and PEFT refuse the adapter without it.`);
    return ok;
  };
  const targetsOk = need('target_modules', (Array.isArray(c.target_modules) && c.target_modules.every((t) => typeof t === 'string')) || typeof c.target_modules === 'string', 'a list of module names (or a string)');
  const rOk = need('r', positiveInt(c.r), 'a positive whole number');
  const alphaOk = need('lora_alpha', positive(c.lora_alpha), 'a positive number');

  // The PEFT features each engine refuses, as vLLM's PEFTHelper words them.
  if (c.bias !== undefined && c.bias !== 'none') add('error', 'adapter-bias', file, `bias is ${JSON.stringify(c.bias)}: vLLM refuses it ("Adapter bias is not supported") and SGLang has no place for trained biases; export without biases (bias "none").`);
  if (c.use_dora === true) add('error', 'adapter-dora', file, 'use_dora is true: vLLM ("vLLM does not yet support DoRA") and SGLang serve plain LoRA only; merge the adapter into the base instead.');
  if (c.lora_bias === true) add('error', 'adapter-lora-bias', file, 'lora_bias is true: vLLM does not support LoRA bias, and SGLang neither.');
  const save = Array.isArray(c.modules_to_save) ? c.modules_to_save.slice(0, MAX_PATTERN_ENTRIES).filter((m) => m !== 'classifier' && m !== 'score') : [];
  if (save.length) add('error', 'adapter-modules-to-save', file, `modules_to_save is ${JSON.stringify(save.slice(0, 8))}: vLLM refuses full copies of modules (only "classifier"/"score" of classification models), SGLang ignores them; merge them into the base export instead.`);
  if (typeof c.init_lora_weights === 'string' && !['gaussian', 'eva', 'orthogonal', 'mica', 'lora_ga'].includes(c.init_lora_weights.toLowerCase())) {
    add('error', 'adapter-init', file, `init_lora_weights is ${JSON.stringify(c.init_lora_weights)}: that init changes the base weights when PEFT loads the adapter, so vLLM refuses it; convert it to a plain LoRA adapter (init_lora_weights true).`);
  }
  for (const key of ['alora_invocation_tokens', 'layer_replication', 'use_bdlora', 'use_qalora'] as const) {
    const v = c[key];
    if (v !== undefined && v !== null && v !== false && !(Array.isArray(v) && v.length === 0)) add('error', 'adapter-feature', file, `${key} is set: vLLM refuses the adapter (it serves plain LoRA).`);
  }
  if (c.use_rslora === true && sglang) add('warning', 'adapter-rslora', file, 'use_rslora is true: vLLM and PEFT scale by lora_alpha / sqrt(r), SGLang by lora_alpha / r, so SGLang serves a different model; fold the scale into lora_alpha (alpha · sqrt(r)) and set use_rslora false.');
  if (typeof c.target_modules === 'string' && c.target_modules !== 'all-linear' && c.target_modules !== 'all') {
    if (sglang) add('error', 'adapter-target-regex', file, `target_modules is the regex ${JSON.stringify(c.target_modules.slice(0, 200))}: SGLang accepts a list of module names, or "all" / "all-linear", only.`);
    add('info', 'adapter-target-unchecked', file, 'target_modules is a regex: jax-serve does not run regexes from files, so which modules it selects is not checked against the tensors.');
  }
  checkBasePath(c.base_model_name_or_path, file, base, add);

  const rankPattern = new Map<string, number>();
  let rankRegex = false;
  for (const key of ['rank_pattern', 'alpha_pattern'] as const) {
    const v = c[key];
    if (v === undefined || v === null) continue;
    if (!isObject(v)) {
      add('error', 'adapter-config-field', file, `${key} is ${JSON.stringify(v).slice(0, 80)}; it must be an object of module name → ${key === 'rank_pattern' ? 'rank' : 'alpha'}.`);
      continue;
    }
    for (const [k, x] of Object.entries(v).slice(0, MAX_PATTERN_ENTRIES)) {
      if (!(key === 'rank_pattern' ? positiveInt(x) : positive(x))) add('error', 'adapter-config-field', file, `${key}[${JSON.stringify(k)}] is ${JSON.stringify(x)}; it must be a positive ${key === 'rank_pattern' ? 'whole number (vLLM: "must be a positive integer")' : 'number'}.`);
      else if (key === 'rank_pattern') {
        if (PLAIN_KEY.test(k)) rankPattern.set(k, x as number);
        else rankRegex = true;
      }
    }
  }
  if (rankRegex) add('info', 'adapter-target-unchecked', file, 'rank_pattern has regex keys: jax-serve does not run regexes from files, so per-module ranks are checked against the tensors only where a key names the module.');
  const layers = c.layers_to_transform;
  const layerSet = positiveInt(layers) || layers === 0 ? new Set([layers]) : Array.isArray(layers) ? new Set(layers.slice(0, MAX_PATTERN_ENTRIES).filter((l): l is number => Number.isInteger(l))) : undefined;
  if (!targetsOk || !rOk || !alphaOk) return undefined;
  if (Array.isArray(c.target_modules) && c.target_modules.length > MAX_TARGETS) add('warning', 'adapter-limit', file, `target_modules has ${c.target_modules.length} entries: preflight matches the first ${MAX_TARGETS}.`);
  const targets = typeof c.target_modules === 'string' ? c.target_modules : (c.target_modules as string[]).slice(0, MAX_TARGETS);
  let maxRank = c.r as number;
  for (const r of rankPattern.values()) maxRank = Math.max(maxRank, r);
  const rankOrder = new Map([...rankPattern].map(([k, r], order) => [k, { order, r }]));
  return { r: c.r as number, alpha: c.lora_alpha as number, targets, rankPattern, rankOrder, rankRegex, layers: layerSet, maxRank };
}

/** PEFT's AutoPeftModel loads the base the config names; the engines load the one they are given. */
function checkBasePath(v: unknown, file: string, base: AdapterBase, add: Add): void {
  if (typeof v !== 'string' || v === '') {
    add('warning', 'adapter-base-path', file, `base_model_name_or_path is ${JSON.stringify(v)}: PEFT's AutoPeftModelForCausalLM cannot find the base; set it to ${path.resolve(base.folder)}.`);
    return;
  }
  if (path.resolve(v) === path.resolve(base.folder)) return;
  add('warning', 'adapter-base-path', file, `base_model_name_or_path is ${JSON.stringify(v)}, not ${path.resolve(base.folder)}: the adapter was made for another base (AutoPeftModelForCausalLM would load that one); vLLM and SGLang apply it to whatever --model they serve.`);
}

/** adapter_model.safetensors read into its modules; undefined when it does not open. */
async function readFactors(opener: FileOpener, file: string, names: readonly string[], add: Add): Promise<Map<string, Factors> | undefined> {
  if ((await opener.kind(file)) !== 'file') {
    const other = names.find((n) => n === 'adapter_model.bin' || n === 'adapter_model.pt');
    add('error', 'adapter-weights', file, other ? `${ADAPTER_WEIGHTS_FILE} is missing; ${other} is there (pickle): vLLM loads it, but jax-serve checks safetensors only and SGLang prefers them; save with safe_serialization.` : `${ADAPTER_WEIGHTS_FILE} is missing: vLLM stops ("doesn't contain tensors").`);
    return undefined;
  }
  let ck: Checkpoint;
  try {
    ck = await openCheckpoint(opener, file);
  } catch (e) {
    add('error', 'adapter-weights', file, `the adapter's weights do not open: ${describeError(e)}`);
    return undefined;
  }
  if (ck.format !== 'safetensors') {
    add('error', 'adapter-weights', file, `${ADAPTER_WEIGHTS_FILE} is ${ck.format}, not safetensors.`);
    return undefined;
  }
  if (ck.tensors.length > MAX_ADAPTER_TENSORS) add('error', 'adapter-limit', file, `${ck.tensors.length.toLocaleString('en-US')} tensors: preflight checks the first ${MAX_ADAPTER_TENSORS.toLocaleString('en-US')}.`);
  const modules = new Map<string, Factors>();
  for (const t of ck.tensors.slice(0, MAX_ADAPTER_TENSORS)) {
    const key = parseKey(t.name);
    if (typeof key === 'string') {
      add('error', 'adapter-key', file, `${t.name} ${key}`, t.name);
      continue;
    }
    if (!FLOAT_DTYPES.has(t.dtype)) add('error', 'adapter-dtype', file, `${t.name} is ${t.dtype}; LoRA factors must be F32, F16 or BF16.`, t.name);
    const m = modules.get(key.module) ?? { embedding: key.embedding };
    if (m.embedding !== key.embedding) add('error', 'adapter-key', file, `${key.module} has both lora_A/lora_B and lora_embedding_A/B tensors; a module is linear or an embedding.`, t.name);
    if (key.side === 'a') m.a = t;
    else m.b = t;
    modules.set(key.module, m);
  }
  for (const [module, m] of modules) {
    if (!m.a || !m.b) add('error', 'adapter-pair', file, `${module} has ${m.a ? 'lora_A' : 'lora_B'} but no ${m.a ? 'lora_B' : 'lora_A'}: a LoRA module needs both factors (PEFT leaves the other at its init, vLLM fails).`, (m.a ?? m.b)!.name);
  }
  return modules;
}

const PREFIX = 'base_model.model.';

/** A tensor key as vLLM's parse_fine_tuned_lora_name reads it, or why it is not a LoRA factor. */
function parseKey(name: string): { module: string; side: 'a' | 'b'; embedding: boolean } | string {
  if (!name.startsWith(PREFIX)) return `does not start with "${PREFIX}": PEFT's saved keys do, and vLLM reads the module name after it; this is not a PEFT adapter file.`;
  const rest = name.slice(PREFIX.length);
  let m = /^(.+)\.lora_([AB])\.weight$/.exec(rest);
  if (m) return { module: m[1]!, side: m[2] === 'A' ? 'a' : 'b', embedding: false };
  m = /^(.+)\.lora_embedding_([AB])$/.exec(rest);
  if (m) return { module: m[1]!, side: m[2] === 'A' ? 'a' : 'b', embedding: true };
  if (/\.lora_magnitude_vector$/.test(rest)) return 'is a DoRA magnitude: vLLM and SGLang serve plain LoRA only.';
  if (/\.lora_[AB]\.bias$/.test(rest)) return 'is a LoRA bias: vLLM refuses it ("does not support LoRA bias").';
  return 'is not a LoRA factor (<module>.lora_A.weight / lora_B.weight, or lora_embedding_A / _B): vLLM refuses the adapter ("is unsupported LoRA weight"), PEFT ignores it.';
}

/** PEFT's rule for a list: the module is named, or ends with "." + the name. */
const selectedBy = (module: string, target: string) => module === target || module.endsWith('.' + target);

/** The layer index PEFT's layers_to_transform reads (`….layers.N.…`), if any. */
function layerOf(module: string): number | undefined {
  const m = /\.(?:layers|h|blocks|layer)\.(\d+)\./.exec(`.${module}.`);
  return m ? Number(m[1]) : undefined;
}

/** Whether target_modules selects `module` (undefined where it is a regex we do not run). */
function selects(cfg: AdapterConfig, module: string): boolean | undefined {
  const t = cfg.targets;
  let hit: boolean | undefined;
  if (typeof t === 'string') {
    // "all-linear": every linear layer but the output layer; "all" is SGLang's alias for it.
    if (t === 'all-linear' || t === 'all') {
      const leaf = module.split('.').at(-1)!;
      hit = leaf !== 'lm_head' && !EMBEDDING_LEAVES.has(leaf);
    } else return undefined;
  } else hit = t!.some((x) => selectedBy(module, x));
  if (hit && cfg.layers) {
    const layer = layerOf(module);
    hit = layer !== undefined && cfg.layers.has(layer);
  }
  return hit;
}

/**
 * r for `module`: its rank_pattern entry (the first that names it, as PEFT and vLLM take it: the key
 * is the module or a dotted suffix of it), else r. Looked up by suffix, not by trying every key.
 */
function rankFor(cfg: AdapterConfig, module: string): number | undefined {
  const parts = module.split('.');
  let best: { order: number; r: number } | undefined;
  for (let k = 0; k < parts.length; k++) {
    const hit = cfg.rankOrder.get(parts.slice(k).join('.'));
    if (hit && (!best || hit.order < best.order)) best = hit;
  }
  if (best) return best.r;
  return cfg.rankRegex ? undefined : cfg.r;
}

function checkModules(modules: Map<string, Factors>, cfg: AdapterConfig, base: AdapterBase, file: string, configFile: string, engineRules: boolean, add: Add): void {
  const weights = base.weights ? new Map(base.weights.tensors.map((t) => [t.name, t])) : undefined;
  if (!weights) add('info', 'adapter-unchecked', file, `the base's weights did not open (reported above): the adapter's modules and shapes are not checked against them.`);
  const dense = base.architecture !== undefined && DENSE.has(base.architecture);
  if (engineRules && !dense) add('info', 'adapter-unchecked', file, `${base.architecture ?? 'the base'}: jax-serve does not know which of its modules vLLM and SGLang put LoRA on, so that is not checked.`);
  for (const [module, m] of modules) {
    const key = m.a?.name ?? m.b!.name;
    const leaf = module.split('.').at(-1)!;
    if (engineRules && dense && !LORA_LEAVES.has(leaf)) add('error', 'adapter-engine-module', file, `${module}: vLLM and SGLang put LoRA only on ${[...LORA_LEAVES].join(', ')} of ${base.architecture}; vLLM refuses the adapter ("expected target modules in …").`, key);
    const w = weights?.get(`${module}.weight`);
    if (weights && !w) {
      add('error', 'adapter-module', file, `${module}: the base has no ${module}.weight (${base.weights!.location}); the adapter was made for another model, or for other layer names.`, key);
      continue;
    }
    const want = rankFor(cfg, module);
    if (m.a && m.b) {
      const ra = m.a.shape[0];
      const rb = m.b.shape[1];
      if (m.a.shape.length !== 2 || m.b.shape.length !== 2 || ra !== rb) {
        add('error', 'adapter-shape', file, `${module}: lora_A is ${JSON.stringify(m.a.shape)} and lora_B ${JSON.stringify(m.b.shape)}; they must be (r, in) and (out, r) with the same r.`, key);
        continue;
      }
      if (want !== undefined && ra !== want) {
        const from = cfg.rankPattern.size && rankFor({ ...cfg, rankRegex: true }, module) !== undefined ? 'its rank_pattern entry' : 'r';
        add('error', 'adapter-rank', configFile, `${module} has rank ${ra} (lora_A ${JSON.stringify(m.a.shape)}), but adapter_config.json's ${from} says ${want}: PEFT fails to load it (size mismatch) and vLLM scales it by lora_alpha / ${want}.`, key);
      }
    }
    if (w && w.shape.length === 2) {
      // PEFT's layout: Linear A (r, in), B (out, r) against the weight's (out, in); an embedding's A (r, vocab), B (hidden, r) against (vocab, hidden).
      const [out, inp] = m.embedding ? [w.shape[1]!, w.shape[0]!] : [w.shape[0]!, w.shape[1]!];
      const names = m.embedding ? ['lora_embedding_A', 'lora_embedding_B'] : ['lora_A', 'lora_B'];
      if (m.a && m.a.shape[1] !== inp) add('error', 'adapter-shape', file, `${module}.${names[0]} is ${JSON.stringify(m.a.shape)}; the base's ${module}.weight ${JSON.stringify(w.shape)} makes it [r, ${inp}].`, m.a.name);
      if (m.b && m.b.shape[0] !== out) add('error', 'adapter-shape', file, `${module}.${names[1]} is ${JSON.stringify(m.b.shape)}; the base's ${module}.weight ${JSON.stringify(w.shape)} makes it [${out}, r].`, m.b.name);
    }
    const sel = selects(cfg, module);
    if (sel === false) add('error', 'adapter-target-unselected', configFile, `${module} has LoRA tensors, but target_modules does not select it: PEFT leaves it out (and transformers + peft computes without it) while vLLM applies it; add it to target_modules or drop its tensors.`, key);
  }
  if (!weights) return;
  // The other way: a module target_modules selects that has no tensors.
  const selected = base.weights!.tensors.filter((t) => t.shape.length === 2 && t.name.endsWith('.weight')).map((t) => t.name.slice(0, -'.weight'.length));
  for (const module of selected) {
    if (!modules.has(module) && selects(cfg, module) === true) add('warning', 'adapter-target-missing', configFile, `target_modules selects ${module}, but ${ADAPTER_WEIGHTS_FILE} has no tensors for it: PEFT starts it at zero and reports missing keys, vLLM and SGLang leave it unadapted; an adapter export that lost modules?`);
  }
  if (Array.isArray(cfg.targets)) {
    for (const t of cfg.targets) if (!selected.some((m) => selectedBy(m, t))) add('warning', 'adapter-target-missing', configFile, `target_modules names ${JSON.stringify(t)}, which matches no module of the base; PEFT refuses the adapter when no entry matches.`);
  }
}

/** vLLM's --max-lora-rank for a largest adapter rank: the smallest value it takes that reaches it; undefined past 512. */
export function vllmMaxLoraRank(rank: number): number | undefined {
  return VLLM_LORA_RANKS.find((x) => x >= rank);
}

function checkMaxRank(modules: Map<string, Factors>, cfg: AdapterConfig, file: string, add: Add): void {
  // vLLM compares r and every rank_pattern value with --max-lora-rank; the tensors' ranks can only be higher when the config is wrong (reported above).
  let seen = cfg.maxRank;
  for (const m of modules.values()) seen = Math.max(seen, m.a?.shape[0] ?? 0);
  const need = vllmMaxLoraRank(seen);
  if (need === undefined) add('error', 'adapter-max-rank', file, `rank ${seen} is over the largest --max-lora-rank vLLM accepts (${VLLM_LORA_RANKS.at(-1)}).`);
  else if (seen > VLLM_DEFAULT_MAX_LORA_RANK) add('warning', 'adapter-max-rank', file, `rank ${seen} is over vLLM's default --max-lora-rank ${VLLM_DEFAULT_MAX_LORA_RANK}: vLLM refuses the adapter ("LoRA rank ${seen} is greater than max_lora_rank") unless served with --max-lora-rank ${need}.`);
}
