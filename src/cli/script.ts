/**
 * `jax-serve script DIR --engine NAME PROMPT...`: the offline inference script the editor's "Create
 * Offline Inference Script" writes (vLLM's LLM.generate, SGLang's and SGLang-JAX's Engine.generate,
 * transformers' generate), printed to stdout.
 */
import * as path from 'node:path';
import { engineById, ENGINES, JaxServeError, offlineScript, SGLANG_JAX_DEVICES, type EngineId } from '../core/index';
import type { Args, CommandSpec } from './args';
import { LAUNCH_OPTIONS } from './serve';

/** The sampling the script uses where no option says otherwise. */
const SAMPLING_DEFAULTS = { temperature: 0.7, topP: 1, maxTokens: 128 };

export const SCRIPT_COMMAND: CommandSpec = {
  name: 'script',
  synopsis: 'DIR PROMPT...',
  summary: 'Print a Python script that generates from the export in-process (no server) with these sampling parameters.',
  options: [
    { name: '--engine', value: Object.keys(ENGINES).join('|'), required: true, description: 'The engine the script runs.' },
    { name: '--chat', description: 'Apply the chat template to each prompt.' },
    { name: '--max-tokens', value: 'N', default: String(SAMPLING_DEFAULTS.maxTokens), description: 'Most tokens to generate.' },
    { name: '--temperature', value: 'T', default: String(SAMPLING_DEFAULTS.temperature), description: 'Sampling temperature.' },
    { name: '--top-p', value: 'P', default: String(SAMPLING_DEFAULTS.topP), description: 'Nucleus sampling mass.' },
    { name: '--stop', value: 'S', repeatable: true, description: 'A string that ends the generation.' },
    { name: '--seed', value: 'N', description: 'Sampling seed.' },
    ...LAUNCH_OPTIONS.map((o) => (o.name === '--device' ? { ...o, description: "SGLang-JAX: the script's default platform; the script takes --device too." } : o)),
    { name: '--arg', value: 'A', repeatable: true, description: "SGLang-JAX: engine arguments as the server takes them (--arg --max-running-requests --arg 8), passed to its Engine." },
  ],
};

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
  const device = args.values.get('--device')?.at(-1);
  if (device !== undefined && engine !== 'sglang-jax') throw new JaxServeError('E_USAGE', '--device applies to --engine sglang-jax only (the other engines pick their device themselves).');
  if (args.values.has('--arg') && engine !== 'sglang-jax') throw new JaxServeError('E_USAGE', '--arg applies to --engine sglang-jax only (its Engine takes the server\'s arguments).');
  if (device !== undefined && !(SGLANG_JAX_DEVICES as readonly string[]).includes(device)) throw new JaxServeError('E_USAGE', `--device ${device}: choose one of ${SGLANG_JAX_DEVICES.join(', ')}.`);
  process.stdout.write(
    offlineScript({
      engine: engine as EngineId,
      launch: { model: path.resolve(dir), dtype: args.values.get('--dtype')?.at(-1), maxModelLen: num(args, '--max-model-len'), tensorParallel: num(args, '--tp'), memoryFraction: num(args, '--memory-fraction'), device, extraArgs: args.values.get('--arg') },
      sampling: { temperature: num(args, '--temperature', SAMPLING_DEFAULTS.temperature)!, topP: num(args, '--top-p', SAMPLING_DEFAULTS.topP)!, maxTokens: num(args, '--max-tokens', SAMPLING_DEFAULTS.maxTokens)!, stop: args.values.get('--stop'), seed: num(args, '--seed') },
      prompts,
      chat: args.flags.has('--chat'),
    }),
  );
}
