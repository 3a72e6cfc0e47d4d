/** `jax-serve preflight DIR`: will vLLM / SGLang load this folder? Exit 1 when there are errors. */
import { acceleratorNamed, DEFAULT_PREFLIGHT_ENGINES, JaxServeError, MAX_DEVICES, preflight, PREFLIGHT_ENGINES, PREFLIGHT_RULES, preflightEngine, preflightEnginesTitle, preflightHasErrors } from '../core/index';
import { type NodeFileOpener } from '../core/node/index';
import { JSON_OPTION, wholeOption, type Args, type CommandSpec } from './args';
import { print } from './output';

export const PREFLIGHT_COMMAND: CommandSpec = {
  name: 'preflight',
  synopsis: 'DIR',
  summary: "Check an export folder the way the engine will load it: config, every tensor and shape, dtypes, tokenizer, chat template; SGLang-JAX's architectures and head_dim; LoRA adapters against it (--adapter). Exit 1 on errors.",
  options: [
    { name: '--engine', value: PREFLIGHT_ENGINES.join('|'), default: DEFAULT_PREFLIGHT_ENGINES.join(' and '), description: `The engine to check for: ${PREFLIGHT_ENGINES.map((e) => `${e}: ${PREFLIGHT_RULES[e]}`).join(' ')}` },
    { name: '--tp', value: 'N', default: '1', description: 'Tensor-parallel size: heads and sizes must divide by it.' },
    { name: '--gpu', value: 'NAME', description: 'Also size the launch for this accelerator (as jax-serve fit): an error when it will not fit.' },
    { name: '--count', value: 'N', default: 'the --tp', description: 'Devices of --gpu.' },
    { name: '--max-model-len', value: 'L', default: "config.json's max_position_embeddings", description: 'Tokens one sequence may hold, for --gpu.' },
    { name: '--adapter', value: 'ADIR', repeatable: true, description: "Also check a PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors) against DIR as its base: the config fields and features vLLM and SGLang refuse, every tensor's key, module and shape against DIR's weights, r against the config and vLLM's --max-lora-rank, target_modules against the tensors, base_model_name_or_path. Exit 2 when ADIR is not a readable folder." },
    JSON_OPTION,
  ],
};

export async function preflightCommand(args: Args, opener: NodeFileOpener): Promise<void> {
  if (args.positional.length !== 1) throw new JaxServeError('E_USAGE', 'preflight takes one DIR.');
  const name = args.values.get('--engine')?.at(-1);
  const engine = name === undefined ? undefined : preflightEngine(name);
  if (name !== undefined && !engine) throw new JaxServeError('E_USAGE', `--engine ${name}: choose one of ${PREFLIGHT_ENGINES.join(', ')}.`);
  const tpText = args.values.get('--tp')?.[0];
  const tp = tpText === undefined ? undefined : Number(tpText);
  if (tp !== undefined && !(Number.isInteger(tp) && tp >= 1)) throw new JaxServeError('E_USAGE', '--tp takes a whole number ≥ 1.');
  const gpu = args.values.get('--gpu')?.at(-1);
  const fit = gpu === undefined ? undefined : { accelerator: acceleratorNamed(gpu), count: wholeOption(args, '--count', MAX_DEVICES) ?? tp ?? 1, maxModelLen: wholeOption(args, '--max-model-len'), dtype: 'keep' as const, kvDType: 'auto' as const };
  const adapters = args.values.get('--adapter');
  const report = await preflight(opener, args.positional[0]!, { engines: engine ? [engine] : undefined, tensorParallel: tp, fit, adapters });
  if (args.json) print(JSON.stringify(report) + '\n');
  else {
    // One line per finding, "FILE: severity: message", which the VS Code problem matcher reads.
    for (const f of report.findings) print(`${f.file}: ${f.severity}: ${f.message}\n`);
    const errors = report.findings.filter((f) => f.severity === 'error').length;
    print(`${report.folder}: ${errors === 0 ? 'ready' : `${errors} error(s)`} for ${preflightEnginesTitle(report.engines)}${report.architecture ? ` (${report.architecture})` : ''}${adapters?.length ? ` with ${adapters.length === 1 ? 'the adapter' : `${adapters.length} adapters`}` : ''}\n`);
  }
  if (preflightHasErrors(report)) process.exitCode = 1;
}
