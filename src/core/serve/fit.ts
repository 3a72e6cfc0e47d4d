/**
 * Will this model fit these accelerators under this engine, and how? Weights per device under tensor
 * parallelism, KV cache bytes per token, the tokens and sequences the KV pool holds, the tensor-
 * parallel sizes the engine accepts and the smallest that fits. Pure arithmetic; every number carries
 * how it was computed. The engines' rules, from their source: ../shared/reference/gpu-memory-rules.md.
 */
import { JaxServeError } from '../errors';
import type { Accelerator } from './accelerators';
import { shapeTensors, type ModelShape, type ServingDType, type ShapeTensor } from './modelShape';

export type FitEngine = 'vllm' | 'sglang' | 'sglang-jax';
export const FIT_ENGINES: readonly FitEngine[] = ['vllm', 'sglang', 'sglang-jax'];

export interface FitInput {
  readonly shape: ModelShape;
  /** The export's tensors; none: counted from the architecture. */
  readonly tensors?: readonly ShapeTensor[];
  /** The dtype the tensors mostly hold, for `dtype: 'keep'`. */
  readonly tensorDType?: ServingDType;
  readonly engine: FitEngine;
  readonly accelerator: Accelerator;
  readonly count: number;
  /** Default: count. */
  readonly tp?: number;
  /** Default: the engine's own. */
  readonly memoryFraction?: number;
  /** Default: the config's max_position_embeddings. */
  readonly maxModelLen?: number;
  /** keep: the tensors' (or config's); auto: the engine's own choice (vLLM and SGLang serve an f32 model as bf16 on a GPU). */
  readonly dtype: ServingDType | 'keep' | 'auto';
  readonly kvDType: 'auto' | 'fp8';
  /** XLA_CLIENT_MEM_FRACTION / XLA_PYTHON_CLIENT_MEM_FRACTION as set for the server, if any. */
  readonly xlaMemFraction?: number;
}

export interface FitReport {
  readonly engine: FitEngine;
  readonly accelerator: string;
  readonly count: number;
  readonly dtype: ServingDType;
  readonly kvDtype: 'auto' | 'fp8';
  readonly memoryFraction: number;
  readonly paramCount: number;
  readonly paramsFrom: 'tensors' | 'config';
  readonly weightBytes: number;
  readonly tp: number;
  readonly weightBytesPerDevice: number;
  readonly deviceMemoryBytes: number;
  /** The part of a device the engine may use: memory × fraction (× XLA's limit for SGLang-JAX on a GPU). */
  readonly budgetBytesPerDevice: number;
  readonly reserveBytes: number;
  readonly poolBytesPerDevice: number;
  readonly kvBytesPerToken: number;
  readonly kvBytesPerTokenPerDevice: number;
  readonly maxModelLen: number;
  readonly kvBytesPerSequence: number;
  readonly kvBytesPerSequencePerDevice: number;
  readonly kvTokens: number;
  readonly maxConcurrency: number;
  /** The longest max length whose one sequence the pool holds at `tp` (sliding windows counted), 0 when none. */
  readonly longestMaxModelLen: number;
  /** The same for FEW_SEQUENCES sequences at once. */
  readonly longestMaxModelLenForFew: number;
  readonly validTp: readonly number[];
  readonly minTp: number | null;
  readonly fits: boolean;
  /** Why it does not fit (empty when it does). */
  readonly problems: readonly string[];
  /** How each number was computed, by field. */
  readonly reasons: Readonly<Record<string, string>>;
}

/** The engines' own defaults for their memory option. */
export const DEFAULT_MEMORY_FRACTION: Readonly<Record<FitEngine, number>> = { vllm: 0.9, sglang: 0.88, 'sglang-jax': 0.88 };

/** Fewer full-length sequences than this at once is worth a warning: it starts, but serves little in parallel. */
export const FEW_SEQUENCES = 4;

/** XLA's allocator limit on a GPU when no environment variable says otherwise (JAX's GPU memory docs). */
export const XLA_DEFAULT_FRACTION = 0.75;

const DTYPE_BYTES: Record<ServingDType, number> = { bf16: 2, f16: 2, f32: 4 };
const GiB = 2 ** 30;
/** vLLM's profile run: tokens per step (max_num_batched_tokens) and sequences sampled (max_num_seqs). */
const VLLM_PROFILE_TOKENS = 8192;
const VLLM_PROFILE_SEQS = 256;

const align = (n: number, to: number) => Math.ceil(n / to) * to;
/** Bytes as GiB with `digits` decimals, as every fit message writes them. */
export const gib = (b: number, digits = 2) => `${(b / GiB).toFixed(digits)} GiB`;
const int = (n: number) => n.toLocaleString('en-US');

export function fit(input: FitInput): FitReport {
  const { shape: s, engine, accelerator: acc } = input;
  const count = input.count;
  const tp = input.tp ?? count;
  checkInput(input, tp);
  const reasons: Record<string, string> = {};
  const problems: string[] = [];
  const held = input.tensorDType ?? s.dtype;
  const keep = input.dtype === 'keep' || input.dtype === 'auto';
  // vLLM's and SGLang's dtype auto: a float32 model is served in bfloat16 on an accelerator.
  const downcast = input.dtype === 'auto' && held === 'f32' && engine !== 'sglang-jax';
  const dtype: ServingDType = keep ? (downcast ? 'bf16' : (held ?? 'bf16')) : (input.dtype as ServingDType);
  reasons.dtype = !keep
    ? `--dtype ${dtype}`
    : downcast
      ? `the model is f32; ${engine}'s dtype auto serves it as bf16`
      : input.tensorDType
        ? `the export's tensors are ${dtype}`
        : s.dtype
          ? `config.json's dtype is ${dtype}`
          : 'neither the tensors nor config.json name a dtype: bf16 assumed';
  const b = DTYPE_BYTES[dtype];
  const kvB = input.kvDType === 'fp8' ? 1 : b;

  const tensors = input.tensors ?? shapeTensors(s);
  const counted = countParams(tensors, s);
  const paramCount = counted.count;
  reasons.paramCount = input.tensors ? `${int(paramCount)} elements in the export's ${int(tensors.length)} tensors${counted.tiedSkipped ? ' (lm_head left out: tied to the embedding)' : ''}` : `${int(paramCount)} from config.json's shape (${s.layers} layers, hidden ${s.hidden}, MLP ${s.experts ? `${s.experts.count} experts × ${s.experts.intermediate}` : s.intermediate}, vocab ${s.vocab}${s.tied ? ', embeddings tied' : ''})${s.fromTextConfig ? '; the language model in text_config only, no vision tower' : ''}`;
  if (s.defaulted) reasons.defaults = s.defaulted;
  const weightBytes = paramCount * b;
  reasons.weightBytes = `${int(paramCount)} parameters × ${b} bytes (${dtype}) = ${gib(weightBytes)}`;

  const fraction = input.memoryFraction ?? DEFAULT_MEMORY_FRACTION[engine];
  const flag = engine === 'vllm' ? '--gpu-memory-utilization' : '--mem-fraction-static';
  reasons.memoryFraction = input.memoryFraction === undefined ? `${engine}'s default ${flag} ${fraction}${engine === 'sglang' ? ' (SGLang picks its default from the GPU and TP; 0.88 is its fallback)' : ''}` : `${flag} ${fraction}`;
  const xla = engine === 'sglang-jax' && acc.kind === 'gpu' ? (input.xlaMemFraction ?? XLA_DEFAULT_FRACTION) : 1;
  const budget = acc.memoryBytes * fraction * xla;
  reasons.budgetBytesPerDevice = `${gib(acc.memoryBytes)} × ${fraction}${xla !== 1 ? ` × ${xla} (XLA's allocator limit on a GPU${input.xlaMemFraction === undefined ? ', its default' : ', from XLA_CLIENT_MEM_FRACTION or XLA_PYTHON_CLIENT_MEM_FRACTION'}: SGLang-JAX's fraction applies inside it)` : ''} = ${gib(budget)}`;
  reasons.deviceMemoryBytes = `${acc.title}: ${acc.source}`;

  // KV cache: SGLang-JAX pads head_dim to a multiple of 128 (memory_pool.py); the others do not.
  const kvHeadDim = engine === 'sglang-jax' ? align(s.headDim, 128) : s.headDim;
  const perLayer = 2 * kvHeadDim * kvB;
  const kvBytesPerToken = s.layers * s.kvHeads * perLayer;
  const kvPerDevice = kvHeadsPerDevice(engine, s.kvHeads, tp);
  const kvBytesPerTokenPerDevice = s.layers * kvPerDevice * perLayer;
  const hd = kvHeadDim === s.headDim ? `head_dim ${s.headDim} (${s.headDimFrom})` : `head_dim ${s.headDim} aligned to ${kvHeadDim} (SGLang-JAX pads it to a multiple of 128)`;
  reasons.kvBytesPerToken = `${s.layers} layers × 2 (K and V) × ${s.kvHeads} KV heads × ${hd} × ${kvB} bytes (${input.kvDType === 'fp8' ? 'fp8' : dtype}) = ${int(kvBytesPerToken)} bytes`;
  reasons.kvBytesPerTokenPerDevice = `${s.layers} × 2 × ${kvPerDevice} KV heads per device (${kvRule(engine, s.kvHeads, tp)}) × ${kvHeadDim} × ${kvB} = ${int(kvBytesPerTokenPerDevice)} bytes`;

  const maxModelLen = input.maxModelLen ?? s.maxPositions;
  if (maxModelLen === undefined) throw new JaxServeError('E_FORMAT', `${s.file}: missing ${s.fromTextConfig ? 'text_config.' : ''}max_position_embeddings; give the max length (--max-model-len).`);
  reasons.maxModelLen = input.maxModelLen !== undefined ? `--max-model-len ${maxModelLen}` : `config.json's max_position_embeddings ${maxModelLen}`;
  const tokensKept = s.window.map((w) => (w === undefined ? maxModelLen : Math.min(maxModelLen, w)));
  const keptSum = tokensKept.reduce((a, n) => a + n, 0);
  const kvBytesPerSequence = keptSum * s.kvHeads * perLayer;
  const kvBytesPerSequencePerDevice = keptSum * kvPerDevice * perLayer;
  const sliding = s.window.filter((w) => w !== undefined).length;
  reasons.kvBytesPerSequence = `${maxModelLen} tokens${sliding ? ` on ${s.layers - sliding} full layers and min(${maxModelLen}, ${s.window.find((w) => w !== undefined)}) on ${sliding} sliding-window layers` : ` on ${s.layers} layers`} × 2 × ${s.kvHeads} × ${kvHeadDim} × ${kvB} = ${gib(kvBytesPerSequence)}`;

  const weightsAt = (t: number) => weightsPerDevice(tensors, s, engine, t, b);
  const reserveAt = (t: number) => reserve(engine, acc, s, t, b);
  const weightBytesPerDevice = weightsAt(tp);
  reasons.weightBytesPerDevice = tp === 1 ? `${gib(weightBytesPerDevice)}: every tensor on the one device` : `${gib(weightBytesPerDevice)} at TP ${tp}: every matrix split ${tp} ways (the vocabulary padded to a multiple of 64 first), K/V projections ${kvPerDevice > s.kvHeads / tp ? `replicated, ${kvPerDevice} head a device` : 'split with their heads'}, norms and biases whole on each device`;
  const reserveBytes = reserveAt(tp);
  reasons.reserveBytes = reserveReason(engine, acc, s, tp, b, reserveBytes);
  const poolAt = (t: number) => Math.max(0, budget - weightsAt(t) - reserveAt(t));
  const pool = poolAt(tp);
  reasons.poolBytesPerDevice = `${gib(budget)} − ${gib(weightBytesPerDevice)} of weights − ${gib(reserveBytes)} reserved = ${gib(pool)}${pool === 0 ? ' (nothing left)' : ''}`;
  const kvTokens = Math.floor(pool / kvBytesPerTokenPerDevice);
  reasons.kvTokens = `${gib(pool)} ÷ ${int(kvBytesPerTokenPerDevice)} bytes a token = ${int(kvTokens)} tokens`;
  const maxConcurrency = kvBytesPerSequencePerDevice > 0 ? pool / kvBytesPerSequencePerDevice : 0;
  reasons.maxConcurrency = `${gib(pool)} ÷ ${gib(kvBytesPerSequencePerDevice)} for one ${maxModelLen}-token sequence on a device = ${maxConcurrency.toFixed(2)}`;

  const longestMaxModelLen = longestFitting(s.window, pool, kvPerDevice * perLayer);
  const longestMaxModelLenForFew = longestFitting(s.window, pool / FEW_SEQUENCES, kvPerDevice * perLayer);
  reasons.longestMaxModelLen = `the longest L with Σ layers min(L, window) × ${int(kvPerDevice * perLayer)} bytes ≤ ${gib(pool)}`;

  const maxT = Math.max(8, count);
  const validTp = Array.from({ length: maxT }, (_, i) => i + 1).filter((t) => tpProblem(s, t) === undefined);
  reasons.validTp = `t in 1…${maxT} dividing ${s.heads} attention heads and the ${s.experts ? `experts' ${s.experts.intermediate}-wide MLPs` : `${s.intermediate}-wide MLP`} and the vocabulary padded to ${align(s.vocab, 64)}, with ${s.kvHeads} KV heads dividing by t or t by them`;
  const seqAt = (t: number) => keptSum * kvHeadsPerDevice(engine, s.kvHeads, t) * perLayer;
  const fitsAt = (t: number) => budget - weightsAt(t) - reserveAt(t) >= seqAt(t);
  // What the engine cannot do with this model here holds at every TP: then none fits.
  const incompatible = engineProblems(input, s);
  const minTp = incompatible.length ? null : (validTp.find(fitsAt) ?? null);
  reasons.minTp = incompatible.length ? `none: ${incompatible[0]}` : minTp === null ? `no TP up to ${maxT} leaves room for one ${maxModelLen}-token sequence` : `the smallest valid TP whose weights, reserve and one ${maxModelLen}-token sequence fit ${gib(budget)} a device`;

  problems.push(...incompatible);
  if (tp > count) problems.push(`TP ${tp} needs ${tp} devices; --count is ${count}.`);
  const bad = tpProblem(s, tp);
  if (bad) problems.push(`TP ${tp}: ${bad}.`);
  const longest = s.maxPositions === undefined ? undefined : Math.floor(s.maxPositions * s.ropeFactor);
  if (longest !== undefined && maxModelLen > longest) problems.push(`max length ${maxModelLen} is over the model's ${longest} (max_position_embeddings${s.ropeFactor > 1 ? ' × rope_scaling factor' : ''}): the engines refuse it.`);
  if (weightBytesPerDevice + reserveBytes > budget) {
    problems.push(`weights ${gib(weightBytesPerDevice)} + reserve ${gib(reserveBytes)} a device are over the ${gib(budget)} the engine may use on one ${acc.name}${minTp !== null && minTp !== tp ? `; TP ${minTp} fits` : ''}.`);
  } else if (pool < kvBytesPerSequencePerDevice) {
    problems.push(`the KV cache holds ${int(kvTokens)} tokens a device, less than one ${maxModelLen}-token sequence (${gib(kvBytesPerSequencePerDevice)}); --max-model-len ${longestMaxModelLen} fits${minTp !== null && minTp !== tp ? `, or TP ${minTp}` : ''}.`);
  }
  return {
    engine,
    accelerator: acc.name,
    count,
    dtype,
    kvDtype: input.kvDType,
    memoryFraction: fraction,
    paramCount,
    paramsFrom: input.tensors ? 'tensors' : 'config',
    weightBytes,
    tp,
    weightBytesPerDevice,
    deviceMemoryBytes: acc.memoryBytes,
    budgetBytesPerDevice: Math.floor(budget),
    reserveBytes,
    poolBytesPerDevice: Math.floor(pool),
    kvBytesPerToken,
    kvBytesPerTokenPerDevice,
    maxModelLen,
    kvBytesPerSequence,
    kvBytesPerSequencePerDevice,
    kvTokens,
    maxConcurrency,
    longestMaxModelLen,
    longestMaxModelLenForFew,
    validTp,
    minTp,
    fits: problems.length === 0,
    problems,
    reasons,
  };
}

/** The largest L with Σ_layers min(L, window) × bytesPerTokenLayer ≤ pool (binary search: the sum grows with L). */
function longestFitting(window: readonly (number | undefined)[], pool: number, bytesPerTokenLayer: number): number {
  const bytes = (L: number) => window.reduce<number>((a, w) => a + (w === undefined ? L : Math.min(L, w)), 0) * bytesPerTokenLayer;
  if (bytesPerTokenLayer <= 0 || bytes(1) > pool) return 0;
  // Every layer windowed and the pool holds all windows: any length fits; report 2^31 as the bound.
  let lo = 1;
  let hi = 2 ** 31;
  if (bytes(hi) <= pool) return hi;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (bytes(mid) <= pool) lo = mid;
    else hi = mid;
  }
  return lo;
}

/** vLLM and SGLang: max(1, kv // tp), replicating when tp > kv; SGLang-JAX: 1 when tp ≥ kv, else ⌈kv / tp⌉ (zero-padded). */
export function kvHeadsPerDevice(engine: FitEngine, kv: number, tp: number): number {
  if (engine === 'sglang-jax') return tp >= kv ? 1 : Math.ceil(kv / tp);
  return Math.max(1, Math.floor(kv / tp));
}

function kvRule(engine: FitEngine, kv: number, tp: number): string {
  if (tp === 1) return 'TP 1';
  if (engine === 'sglang-jax') return tp >= kv ? `TP ${tp} ≥ ${kv}: one head each, replicated` : `⌈${kv} / ${tp}⌉`;
  return tp > kv ? `TP ${tp} > ${kv}: each head replicated` : `${kv} / ${tp}`;
}

/** What tensor parallelism divides: heads, KV heads, the MLP's width and the vocabulary. */
export type TpShape = Pick<ModelShape, 'heads' | 'kvHeads' | 'intermediate' | 'vocab'> & { readonly experts?: { readonly intermediate: number } };

/** Why `t` is not a tensor-parallel size the engines accept (vLLM's and SGLang's divide() asserts), empty when it is. */
export function tpProblems(s: TpShape, t: number): string[] {
  const out: string[] = [];
  if (s.heads % t !== 0) out.push(`${s.heads} attention heads do not divide by ${t}`);
  if (s.kvHeads % t !== 0 && t % s.kvHeads !== 0) out.push(`${s.kvHeads} KV heads and ${t} do not divide one another`);
  const width = s.experts ? s.experts.intermediate : s.intermediate;
  if (width % t !== 0) out.push(`the MLP width ${width} does not divide by ${t}`);
  if (align(s.vocab, 64) % t !== 0) out.push(`the vocabulary padded to ${align(s.vocab, 64)} does not divide by ${t}`);
  return out;
}

const tpProblem = (s: TpShape, t: number): string | undefined => tpProblems(s, t)[0];

function countParams(tensors: readonly ShapeTensor[], s: ModelShape): { count: number; tiedSkipped: boolean } {
  const hasEmbed = tensors.some((t) => EMBED.test(t.name));
  let count = 0;
  let tiedSkipped = false;
  for (const t of tensors) {
    if (s.tied && hasEmbed && LM_HEAD.test(t.name)) {
      tiedSkipped = true;
      continue;
    }
    count += t.shape.reduce((a, n) => a * n, 1) * (t.count ?? 1);
  }
  return { count, tiedSkipped };
}

const EMBED = /(^|\.)(embed_tokens|wte|word_embeddings)\.weight$/;
const LM_HEAD = /(^|\.)lm_head\.weight$/;
const KV_PROJ = /(^|\.)(k_proj|v_proj)\.(weight|bias)$/;

/** Bytes of weights one device holds at TP `t`. */
function weightsPerDevice(tensors: readonly ShapeTensor[], s: ModelShape, engine: FitEngine, t: number, b: number): number {
  const kvShare = kvHeadsPerDevice(engine, s.kvHeads, t) / s.kvHeads;
  const hasEmbed = tensors.some((x) => EMBED.test(x.name));
  let bytes = 0;
  for (const x of tensors) {
    if (s.tied && hasEmbed && LM_HEAD.test(x.name)) continue;
    const n = x.shape.reduce((a, d) => a * d, 1);
    let one: number;
    if (x.shape.length < 2) one = n * b;
    else if (KV_PROJ.test(x.name)) one = Math.ceil(n * kvShare) * b;
    else if ((EMBED.test(x.name) || LM_HEAD.test(x.name)) && x.shape[0] === s.vocab) one = (align(s.vocab, 64) / t) * (n / s.vocab) * b;
    else one = Math.ceil(n / t) * b;
    bytes += one * (x.count ?? 1);
  }
  return Math.ceil(bytes);
}

/** The most devices and TP fit sizes for: the valid TPs are tried up to max(8, count). */
export const MAX_DEVICES = 1024;

function checkInput(input: FitInput, tp: number): void {
  const whole = (v: number, what: string, max: number) => {
    if (!Number.isSafeInteger(v) || v < 1 || v > max) throw new JaxServeError('E_USAGE', `${what} ${v}: give a whole number from 1 to ${max.toLocaleString('en-US')}.`);
  };
  whole(input.count, 'the device count', MAX_DEVICES);
  whole(tp, 'the tensor-parallel size', MAX_DEVICES);
  if (input.maxModelLen !== undefined) whole(input.maxModelLen, 'the max length', 2 ** 31);
  const f = input.memoryFraction;
  if (f !== undefined && !(f > 0 && f <= 1)) throw new JaxServeError('E_USAGE', `the memory fraction ${f}: give a number above 0 and at most 1.`);
  if (!(input.accelerator.memoryBytes > 0) || !Number.isSafeInteger(input.accelerator.memoryBytes)) throw new JaxServeError('E_USAGE', `${input.accelerator.name}: its memory must be a whole number of bytes above 0.`);
}

/**
 * What the engine keeps inside its fraction besides weights and KV cache. vLLM: its profile run's
 * activations and the CUDA context (everything lives inside --gpu-memory-utilization). SGLang: the
 * CUDA context (activations and graphs live outside --mem-fraction-static). SGLang-JAX: nothing
 * (XLA's limit excludes the context; its log's KV pool is exactly limit × fraction − weights).
 */
function reserve(engine: FitEngine, acc: Accelerator, s: ModelShape, t: number, b: number): number {
  if (engine === 'sglang-jax') return 0;
  if (engine === 'sglang') return GiB;
  const width = (s.experts ? s.experts.intermediate : s.intermediate) / t;
  return GiB + VLLM_PROFILE_TOKENS * 2 * width * b + VLLM_PROFILE_SEQS * s.vocab * 4;
}

function reserveReason(engine: FitEngine, acc: Accelerator, s: ModelShape, t: number, b: number, bytes: number): string {
  if (engine === 'sglang-jax') return `none: SGLang-JAX's KV pool is XLA's limit × the fraction − the weights (its CUDA context is outside XLA's limit${acc.kind === 'tpu' ? '; on a TPU, the whole HBM' : ''})`;
  if (engine === 'sglang') return `1 GiB for the CUDA context and allocator; SGLang keeps activations and CUDA graphs outside --mem-fraction-static`;
  const width = (s.experts ? s.experts.intermediate : s.intermediate) / t;
  return `1 GiB (${acc.kind === 'tpu' ? 'the runtime and its compiled graphs' : 'CUDA context, NCCL, CUDA graphs'}) + vLLM's profile run: ${VLLM_PROFILE_TOKENS} tokens × 2 × ${width} MLP width × ${b} bytes + ${VLLM_PROFILE_SEQS} sequences × ${s.vocab} logits × 4 bytes = ${gib(bytes)}`;
}

/** What the engine cannot do with this model on this accelerator, whatever the memory. */
function engineProblems(input: FitInput, s: ModelShape): string[] {
  const out: string[] = [];
  if (input.engine === 'sglang' && input.accelerator.kind === 'tpu') out.push('SGLang (PyTorch) does not run on TPUs; use sglang-jax or vllm.');
  if (input.engine === 'sglang-jax' && input.kvDType === 'fp8') out.push("SGLang-JAX's --kv-cache-dtype takes auto or bf16 (no fp8).");
  // Recorded on an H100 (test/fixtures/sglang-jax-cddbf6f1-jax0.11.2-2026-12-06): a head_dim-64 model
  // allocated its KV cache padded to 128, then failed at its first request in the attention kernel.
  if (input.engine === 'sglang-jax' && s.headDim % 128 !== 0) out.push(`SGLang-JAX's attention needs head_dim a multiple of 128; this model's is ${s.headDim} (it allocates the cache, then fails at the first request).`);
  return out;
}
