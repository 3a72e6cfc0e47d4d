/** `jax-serve preflight DIR`: will vLLM / SGLang load this folder? Exit 1 when there are errors. */
import { JaxServeError, preflight, PREFLIGHT_ENGINES, preflightEngine, preflightEnginesTitle, preflightHasErrors, type NodeFileOpener } from '../core/index';
import type { Args } from './main';
import { print } from './output';

export const PREFLIGHT_OPTIONS = ['--engine', '--tp', '--json'];

export const PREFLIGHT_USAGE = `  preflight DIR [--engine vllm|sglang|sglang-jax|transformers-serve] [--tp N] [--json]
                                  Check an export folder the way the engine will load it (vLLM and
                                  SGLang without --engine): config, every tensor and shape, dtypes,
                                  tokenizer, chat template; SGLang-JAX's architectures and head_dim.
                                  Exit 1 on errors.
`;

export async function preflightCommand(args: Args, opener: NodeFileOpener): Promise<void> {
  if (args.positional.length !== 1) throw new JaxServeError('E_USAGE', 'preflight takes one DIR.');
  const name = args.values.get('--engine')?.at(-1);
  const engine = name === undefined ? undefined : preflightEngine(name);
  if (name !== undefined && !engine) throw new JaxServeError('E_USAGE', `--engine ${name}: choose one of ${PREFLIGHT_ENGINES.join(', ')}.`);
  const tpText = args.values.get('--tp')?.[0];
  const tp = tpText === undefined ? undefined : Number(tpText);
  if (tp !== undefined && !(Number.isInteger(tp) && tp >= 1)) throw new JaxServeError('E_USAGE', '--tp takes a whole number ≥ 1.');
  const report = await preflight(opener, args.positional[0]!, { engines: engine ? [engine] : undefined, tensorParallel: tp });
  if (args.json) print(JSON.stringify(report) + '\n');
  else {
    // One line per finding, "FILE: severity: message", which the VS Code problem matcher reads.
    for (const f of report.findings) print(`${f.file}: ${f.severity}: ${f.message}\n`);
    const errors = report.findings.filter((f) => f.severity === 'error').length;
    print(`${report.folder}: ${errors === 0 ? 'ready' : `${errors} error(s)`} for ${preflightEnginesTitle(report.engines)}${report.architecture ? ` (${report.architecture})` : ''}\n`);
  }
  if (preflightHasErrors(report)) process.exitCode = 1;
}
