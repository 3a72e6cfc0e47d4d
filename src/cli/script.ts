/**
 * `jax-serve script DIR --engine NAME PROMPT...`: the offline inference script the editor's "Create
 * Offline Inference Script" writes (vLLM's LLM.generate, SGLang's Engine.generate, transformers'
 * generate), printed to stdout.
 */
import * as path from 'node:path';
import { engineById, ENGINES, JaxServeError, offlineScript, type EngineId } from '../core/index';
import type { Args } from './main';

export const SCRIPT_OPTIONS = ['--engine', '--chat', '--max-tokens', '--temperature', '--top-p', '--stop', '--seed', '--dtype', '--max-model-len', '--tp', '--memory-fraction'];

export const SCRIPT_USAGE = `  script DIR --engine vllm|vllm-tpu|sglang|transformers-serve [--chat] [--max-tokens N]
         [--temperature T] [--top-p P] [--stop S]... [--seed N] [--dtype D] [--max-model-len N]
         [--tp N] [--memory-fraction F] PROMPT...
                                  Print a Python script that generates from the export in-process
                                  (no server) with these sampling parameters.
`;

function num(args: Args, flag: string, fallback?: number): number | undefined {
  const v = args.values.get(flag)?.at(-1);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new JaxServeError('E_USAGE', `${flag} takes a number.`);
  return n;
}

export function scriptCommand(args: Args): void {
  const [dir, ...prompts] = args.positional;
  if (!dir || prompts.length === 0) throw new JaxServeError('E_USAGE', 'script takes DIR (the export) and at least one PROMPT.');
  const engine = args.values.get('--engine')?.at(-1);
  if (!engine || !engineById(engine)) throw new JaxServeError('E_USAGE', `script needs --engine: one of ${Object.keys(ENGINES).join(', ')}.`);
  process.stdout.write(
    offlineScript({
      engine: engine as EngineId,
      launch: { model: path.resolve(dir), dtype: args.values.get('--dtype')?.at(-1), maxModelLen: num(args, '--max-model-len'), tensorParallel: num(args, '--tp'), memoryFraction: num(args, '--memory-fraction') },
      sampling: { temperature: num(args, '--temperature', 0.7)!, topP: num(args, '--top-p', 1)!, maxTokens: num(args, '--max-tokens', 128)!, stop: args.values.get('--stop'), seed: num(args, '--seed') },
      prompts,
      chat: args.flags.has('--chat'),
    }),
  );
}
