/**
 * "Create Offline Inference Script": Python that loads an export in-process, without a server, with
 * the sampling parameters the user chose. vLLM: `LLM(...).generate` / `.chat` with `SamplingParams`
 * (serving-engines.md §1.7); SGLang: `sgl.Engine(...).generate` with a sampling-params dict (§2.6,
 * SGLang's offline engine docs: max_new_tokens, temperature, top_p, stop); SGLang-JAX: its own
 * `Engine(...).generate` (sgl_jax/srt/entrypoints/engine.py at cddbf6f1: ServerArgs fields as keyword
 * arguments, a sampling-params dict with the names of sgl_jax/srt/sampling/sampling_params.py);
 * transformers (the CPU engine here): `generate` on the loaded model. Values go in as JSON literals, which Python reads as
 * the same strings and numbers, so a path or prompt cannot break out of its literal.
 */
import { JaxServeError } from '../errors';
import type { EngineId, LaunchOptions } from './engines';

export interface SamplingOptions {
  readonly temperature: number;
  readonly topP: number;
  readonly maxTokens: number;
  readonly stop?: readonly string[];
  readonly seed?: number;
}

export interface OfflineScriptOptions {
  readonly engine: EngineId;
  /**
   * `device` (SGLang-JAX): the JAX platform the script runs on by default (its own `--device`
   * overrides it; without either, JAX_PLATFORMS or TPU, as the engine itself chooses). A launch
   * profile's device, where it has one, passes through.
   */
  readonly launch: Pick<LaunchOptions, 'model' | 'dtype' | 'maxModelLen' | 'tensorParallel' | 'memoryFraction' | 'extraArgs'> & { readonly device?: string };
  readonly sampling: SamplingOptions;
  readonly prompts: readonly string[];
  /** Through the model's chat template (vLLM `LLM.chat`; SGLang and transformers apply it first). */
  readonly chat: boolean;
}

/** The platforms SGLang-JAX runs on here; it must equal JAX_PLATFORMS when that is set (server_args.py). */
export const SGLANG_JAX_DEVICES = ['tpu', 'gpu', 'cuda', 'cpu'] as const;
export type SglangJaxDevice = (typeof SGLANG_JAX_DEVICES)[number];

/** A Python literal: JSON's strings and numbers are Python's; lists and dicts spaced as Python prints them. */
const py = (v: unknown): string => {
  if (Array.isArray(v)) return `[${v.map(py).join(', ')}]`;
  if (typeof v === 'object' && v !== null) return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}: ${py(x)}`).join(', ')}}`;
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  return JSON.stringify(v);
};

/** `name=value` for each defined value, in order. */
function kwargs(pairs: readonly (readonly [string, unknown])[]): string {
  return pairs.filter(([, v]) => v !== undefined && !(Array.isArray(v) && v.length === 0)).map(([k, v]) => `${k}=${py(v)}`).join(', ');
}

/**
 * Engine arguments as a launch takes them (`--max-running-requests 8 --enable-metrics`), as the
 * ServerArgs fields SGLang-JAX's Engine takes: dashes become underscores, numbers stay numbers, a
 * flag with no value is True, several values are a list (its argparse `nargs="+"` options).
 */
export function engineArgs(args: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const isFlag = (a: string) => a.startsWith('--') && !/^--?\d/.test(a);
  // A number as argparse's int or float would read it: "1e-3" and "2E+5" are floats there too (a
  // string would reach the ServerArgs field unconverted); "0x10" and " 7" stay text, as int() refuses them.
  const value = (v: string) => (/^[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?$/i.test(v) ? Number(v) : v);
  for (let i = 0; i < args.length; ) {
    const a = args[i]!;
    const name = /^--([A-Za-z][A-Za-z0-9-]*)$/.exec(a)?.[1];
    if (!name) throw new JaxServeError('E_USAGE', `Offline script: engine argument ${JSON.stringify(a)} is not an --option; give them as --name value or --flag.`);
    const values: unknown[] = [];
    for (i++; i < args.length && !isFlag(args[i]!); i++) values.push(value(args[i]!));
    out[name.replace(/-/g, '_')] = values.length === 0 ? true : values.length === 1 ? values[0] : values;
  }
  return out;
}

export function offlineScript(o: OfflineScriptOptions): string {
  if (!Number.isFinite(o.sampling.temperature) || !Number.isFinite(o.sampling.topP) || !Number.isInteger(o.sampling.maxTokens) || o.sampling.maxTokens < 1) {
    throw new JaxServeError('E_USAGE', 'Offline script: temperature and top_p must be numbers and max tokens a positive integer.');
  }
  if (o.prompts.length === 0) throw new JaxServeError('E_USAGE', 'Offline script: give at least one prompt.');
  switch (o.engine) {
    case 'vllm':
    case 'vllm-tpu':
      return vllmScript(o);
    case 'sglang':
      return sglangScript(o);
    case 'transformers-serve':
      return transformersScript(o);
    case 'sglang-jax':
      return sglangJaxScript(o);
  }
}

const header = (what: string, o: OfflineScriptOptions) => `#!/usr/bin/env python3
"""Offline inference on ${o.launch.model.replace(/"""|\\/g, '_')} with ${what}, written by jax-serve.

Run it with the Python environment where the engine is installed.
"""
`;

function vllmScript(o: OfflineScriptOptions): string {
  const s = o.sampling;
  const llm = kwargs([['model', o.launch.model], ['dtype', o.launch.dtype], ['max_model_len', o.launch.maxModelLen], ['tensor_parallel_size', o.launch.tensorParallel], ['gpu_memory_utilization', o.launch.memoryFraction]]);
  const params = kwargs([['temperature', s.temperature], ['top_p', s.topP], ['max_tokens', s.maxTokens], ['stop', s.stop], ['seed', s.seed]]);
  const run = o.chat
    ? `    # LLM.chat applies the model's chat template to each conversation.
    conversations = [[{"role": "user", "content": p}] for p in PROMPTS]
    outputs = llm.chat(conversations, params)`
    : `    outputs = llm.generate(PROMPTS, params)`;
  return `${header(`vLLM (LLM.${o.chat ? 'chat' : 'generate'})`, o)}
from vllm import LLM, SamplingParams

PROMPTS = ${py(o.prompts)}


def main() -> None:
    llm = LLM(${llm})
    params = SamplingParams(${params})
${run}
    for prompt, output in zip(PROMPTS, outputs):
        print(repr(prompt), "->", repr(output.outputs[0].text))


# vLLM starts worker processes: the guard keeps them from running this script again.
if __name__ == "__main__":
    main()
`;
}

function sglangScript(o: OfflineScriptOptions): string {
  const s = o.sampling;
  const engine = kwargs([['model_path', o.launch.model], ['dtype', o.launch.dtype], ['context_length', o.launch.maxModelLen], ['tp_size', o.launch.tensorParallel], ['mem_fraction_static', o.launch.memoryFraction], ['random_seed', s.seed]]);
  const params: Record<string, unknown> = { temperature: s.temperature, top_p: s.topP, max_new_tokens: s.maxTokens };
  if (s.stop?.length) params.stop = s.stop;
  const prompts = o.chat
    ? `    # The engine takes text: the chat template is applied here, as the server would.
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(${py(o.launch.model)})
    texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True) for p in PROMPTS]`
    : `    texts = PROMPTS`;
  return `${header('SGLang (sgl.Engine.generate)', o)}
import sglang as sgl

PROMPTS = ${py(o.prompts)}
SAMPLING_PARAMS = ${py(params)}


def main() -> None:
${prompts}
    llm = sgl.Engine(${engine})
    try:
        outputs = llm.generate(texts, SAMPLING_PARAMS)
        for prompt, output in zip(PROMPTS, outputs):
            print(repr(prompt), "->", repr(output["text"]))
    finally:
        llm.shutdown()


# SGLang starts scheduler processes: the guard keeps them from running this script again.
if __name__ == "__main__":
    main()
`;
}

function sglangJaxScript(o: OfflineScriptOptions): string {
  const s = o.sampling;
  const device = o.launch.device || undefined;
  if (device !== undefined && !(SGLANG_JAX_DEVICES as readonly string[]).includes(device)) throw new JaxServeError('E_USAGE', `Offline script: device ${JSON.stringify(device)}: choose one of ${SGLANG_JAX_DEVICES.join(', ')}.`);
  // ServerArgs field names (sgl_jax/srt/server_args.py); the device and attention backend are added at run time.
  const engine = kwargs([['model_path', o.launch.model], ['dtype', o.launch.dtype], ['context_length', o.launch.maxModelLen], ['tp_size', o.launch.tensorParallel], ['mem_fraction_static', o.launch.memoryFraction], ['random_seed', s.seed]]);
  const params: Record<string, unknown> = { temperature: s.temperature, top_p: s.topP, max_new_tokens: s.maxTokens };
  if (s.stop?.length) params.stop = s.stop;
  const inputs = o.chat
    ? `    # Engine has no chat method: the chat template is applied here, and the ids given as they are,
    # so no second BOS is added (as transformers' apply_chat_template does).
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(MODEL)
    texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True) for p in PROMPTS]
    inputs = {"input_ids": [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]}`
    : `    inputs = {"prompt": PROMPTS}`;
  return `${header('SGLang-JAX (Engine.generate)', o)}
import argparse
import os
import sys

MODEL = ${py(o.launch.model)}
PROMPTS = ${py(o.prompts)}
SAMPLING_PARAMS = ${py(params)}
DEVICES = ${py([...SGLANG_JAX_DEVICES])}
DEVICE = ${device === undefined ? 'None' : py(device)}
# The launch's extra engine arguments, as the ServerArgs fields Engine takes.
ENGINE_ARGS = ${py(engineArgs(o.launch.extraArgs ?? []))}


def main() -> None:
    parser = argparse.ArgumentParser(description="Generate with SGLang-JAX in-process.")
    parser.add_argument("--device", choices=DEVICES, default=DEVICE, help="the JAX platform (default: JAX_PLATFORMS, else tpu)")
    device = parser.parse_args().device or os.environ.get("JAX_PLATFORMS") or "tpu"
    # ServerArgs asserts that device equals JAX_PLATFORMS when that is set (server_args.py). It is
    # not set here: the weight loader asks jax for its cpu devices (model_loader/loader.py), which
    # JAX_PLATFORMS=cuda would leave out.
    platforms = os.environ.get("JAX_PLATFORMS", device)
    if platforms != device:
        sys.exit(f"--device {device} disagrees with JAX_PLATFORMS={platforms}: SGLang-JAX refuses to start; make them the same.")
    from sgl_jax.srt.entrypoints.engine import Engine

${inputs}
    # The default attention kernels (fa) are TPU Pallas kernels; elsewhere the native backend runs
    # (what served on the GPU). A few prompts do not repay precompiling every batch shape, nor need
    # room for more running requests than they are: sized by default for thousands, the native
    # backend asked a GPU for 127 GiB (test/fixtures/sglang-jax-cddbf6f1-jax0.11.2-2026-12-05/offline.engine.log).
    args = dict(${engine}, device=device, attention_backend="fa" if device == "tpu" else "native", disable_precompile=True, max_running_requests=max(len(PROMPTS), 1))
    args.update(ENGINE_ARGS)
    llm = Engine(**args)
    try:
        outputs = llm.generate(**inputs, sampling_params=SAMPLING_PARAMS)
        for prompt, output in zip(PROMPTS, outputs):
            print(repr(prompt), "->", repr(output["text"]))
    finally:
        llm.shutdown()


# SGLang-JAX starts scheduler and detokenizer processes: the guard keeps them from running this script again.
if __name__ == "__main__":
    main()
`;
}

function transformersScript(o: OfflineScriptOptions): string {
  const s = o.sampling;
  const greedy = s.temperature === 0;
  // generate() rejects temperature 0 with sampling on: greedy is do_sample=False.
  const gen = greedy ? kwargs([['max_new_tokens', s.maxTokens], ['stop_strings', s.stop]]) : kwargs([['max_new_tokens', s.maxTokens], ['do_sample', true], ['temperature', s.temperature], ['top_p', s.topP], ['stop_strings', s.stop]]);
  const encode = o.chat
    ? `tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True)`
    : `tokenizer(prompt, return_tensors="pt")`;
  return `${header('transformers (generate)', o)}
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

MODEL = ${py(o.launch.model)}
PROMPTS = ${py(o.prompts)}


def main() -> None:
${s.seed !== undefined ? `    torch.manual_seed(${py(s.seed)})\n` : ''}    tokenizer = AutoTokenizer.from_pretrained(MODEL)
    model = AutoModelForCausalLM.from_pretrained(MODEL${o.launch.dtype ? `, dtype=${py(o.launch.dtype)}` : ''})
    for prompt in PROMPTS:
        inputs = ${encode}
        with torch.no_grad():
            out = model.generate(**inputs, ${gen}${s.stop?.length ? ', tokenizer=tokenizer' : ''}, pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
        new = out[0, inputs["input_ids"].shape[1]:]
        print(repr(prompt), "->", repr(tokenizer.decode(new, skip_special_tokens=True)))


if __name__ == "__main__":
    main()
`;
}
