/**
 * The serve types other runtimes show (the Serve panel's page through src/shared): plain data, no
 * imports, so the webview's build can check against them without Node. Core's modules use them
 * from here; the page takes them through ../types.
 */

export type EngineId = 'vllm' | 'vllm-tpu' | 'sglang' | 'sglang-jax' | 'transformers-serve';
export type Phase = 'starting' | 'weights' | 'compile' | 'graphs' | 'kv-cache' | 'precompile' | 'http' | 'warmup' | 'ready';
export type ServerStatus = 'starting' | 'ready' | 'stopping' | 'stopped' | 'failed';

/** What an engine is, as data: its names and the options it takes (EngineSpec adds how to launch and watch it). */
export interface EngineFacts {
  readonly id: EngineId;
  /** The engine's name, no platform (the device is an option). */
  readonly title: string;
  /** A short name for tight places (the status bar). */
  readonly shortName: string;
  /** The flag LaunchOptions.memoryFraction becomes; none: the engine has no such option. */
  readonly memoryFlag?: string;
  /** The values of its --device; none: the engine takes no device option. */
  readonly devices?: readonly string[];
}

/** The engine options a saved profile and a launch alike carry. */
export interface EngineOptions {
  readonly dtype?: string;
  readonly maxModelLen?: number;
  readonly tensorParallel?: number;
  /** vLLM --gpu-memory-utilization, SGLang --mem-fraction-static. */
  readonly memoryFraction?: number;
  readonly servedName?: string;
  /** The engine's --device (only engines whose spec lists `devices`); none: the engine's default. */
  readonly device?: string;
}

/** A LoRA adapter served beside the base model: the name requests select it by, and its PEFT folder. */
export interface AdapterRef {
  readonly name: string;
  /** A folder holding adapter_config.json and adapter_model.safetensors (`jax-serve convert --lora adapter`). */
  readonly path: string;
}

export interface LaunchProfile extends EngineOptions {
  readonly name: string;
  readonly engine: EngineId;
  readonly model: string;
  readonly host: string;
  /** Empty: a free port chosen at start. */
  readonly port?: number;
  /** Engine arguments, as typed (split by splitWords). */
  readonly extraArgs?: string;
  /** KEY=VALUE lines. */
  readonly env?: string;
  /** The interpreter whose environment has the engine; empty: the one VS Code's Python uses. */
  readonly python?: string;
  /** A launch prefix replacing the engine's executable, e.g. `docker run --rm --gpus all -p 8000:8000 vllm/vllm-openai`. */
  readonly command?: string;
  /** The accelerator the launch is sized for (an `--gpu` name of jax-serve fit); empty: not sized. */
  readonly accelerator?: string;
  /** Devices of that accelerator (default: the tensor-parallel size, else 1). */
  readonly deviceCount?: number;
  /** LoRA adapters loaded beside the model (engines that take them: EngineSpec.lora). */
  readonly adapters?: readonly AdapterRef[];
}

/** The Serve panel's Fit section: a verdict, its reasons, and the changes that would make it fit. */
export interface FitView {
  /** green: fits; amber: fits, with few full-length sequences at once; red: does not fit; none: not sized. */
  readonly level: 'green' | 'amber' | 'red' | 'none';
  readonly headline: string;
  /** The numbers, one line each, with how they were computed. */
  readonly lines: readonly string[];
  readonly suggestTp?: number;
  readonly suggestMaxModelLen?: number;
}
