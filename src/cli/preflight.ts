/** `jax-serve preflight DIR`: will vLLM / SGLang load this folder? Exit 1 when there are errors. */
import { JaxServeError, preflight, preflightHasErrors, type Engine, type NodeFileOpener } from '../core/index';
import type { Args } from './main';
import { print } from './output';

export const PREFLIGHT_OPTIONS = ['--engine', '--tp', '--json'];

export const PREFLIGHT_USAGE = `  preflight DIR [--engine vllm|sglang] [--tp N] [--json]
                                  Check an export folder the way vLLM / SGLang will load it: config,
                                  every tensor and shape, dtypes, tokenizer, chat template. Exit 1 on
                                  errors.
`;

export async function preflightCommand(args: Args, opener: NodeFileOpener): Promise<void> {
  if (args.positional.length !== 1) throw new JaxServeError('E_USAGE', 'preflight takes one DIR.');
  const engine = args.values.get('--engine')?.[0];
  if (engine !== undefined && engine !== 'vllm' && engine !== 'sglang') throw new JaxServeError('E_USAGE', `--engine ${engine}: choose vllm or sglang.`);
  const tpText = args.values.get('--tp')?.[0];
  const tp = tpText === undefined ? undefined : Number(tpText);
  if (tp !== undefined && !(Number.isInteger(tp) && tp >= 1)) throw new JaxServeError('E_USAGE', '--tp takes a whole number ≥ 1.');
  const report = await preflight(opener, args.positional[0]!, { engines: engine ? [engine as Engine] : undefined, tensorParallel: tp });
  if (args.json) print(JSON.stringify(report) + '\n');
  else {
    // One line per finding, "FILE: severity: message", which the VS Code problem matcher reads.
    for (const f of report.findings) print(`${f.file}: ${f.severity}: ${f.message}\n`);
    const errors = report.findings.filter((f) => f.severity === 'error').length;
    print(`${report.folder}: ${errors === 0 ? 'ready' : `${errors} error(s)`} for ${engine ?? 'vLLM and SGLang'}${report.architecture ? ` (${report.architecture})` : ''}\n`);
  }
  if (preflightHasErrors(report)) process.exitCode = 1;
}
