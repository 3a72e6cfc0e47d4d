/**
 * `jax-serve verify EXPORT --source CKPT --entry FILE.py`: does the export compute what the JAX
 * model computes? Logits of both per prompt, compared (max |Δ|, KL, top-1/top-5 agreement); exit 1
 * when a prompt's KL is over --max-kl. `--template PRESET` writes an entry point to start from.
 */
import * as path from 'node:path';
import { JaxServeError, parseJsonBytes } from '../core/index';
import { verifyExport, verifyTemplate, type NodeFileOpener, type VerifyReport } from '../core/node/index';
import { JSON_OPTION, oneValue as one, type Args, type CommandSpec } from './args';
import { print, printErr } from './output';
import { renderTable } from './render';

export const VERIFY_COMMAND: CommandSpec = {
  name: 'verify',
  synopsis: 'EXPORT',
  summary: "Run prompts through the export (transformers, in --python) and through FILE.py's load()/forward() over the JAX checkpoint (in --jax-python): max |Δlogit|, KL, top-1/top-5 agreement per prompt. Exit 1 when a KL is over --max-kl. With --template PRESET [-o FILE.py] instead: write an entry point for the preset's layout to start from.",
  options: [
    { name: '--source', value: 'CKPT', required: true, description: 'The JAX checkpoint the export came from.' },
    { name: '--entry', value: 'FILE.py', required: true, description: 'Your load()/forward() over the JAX checkpoint (--template writes one).' },
    { name: '--prompt', value: 'TEXT', repeatable: true, description: 'A prompt to compare on.' },
    { name: '--prompts', value: 'FILE.json', description: 'A JSON list of prompts, added to --prompt (default: a built-in few when neither is given).' },
    { name: '--python', value: 'P', default: 'python3', description: 'Python with transformers, for the export.' },
    { name: '--jax-python', value: 'P', default: 'the --python', description: 'Python with JAX, for FILE.py.' },
    { name: '--max-kl', value: 'X', default: '1e-3', description: 'The largest KL a prompt may have.' },
    { name: '--template', value: 'PRESET', description: "Write an entry point for the preset's layout instead of verifying." },
    { name: '--out', alias: '-o', value: 'FILE.py', default: 'stdout', description: 'Where --template writes.' },
    JSON_OPTION,
  ],
};

const packageRoot = () => path.join(__dirname, '..');


export async function verifyCommand(args: Args, opener: NodeFileOpener): Promise<void> {
  const template = one(args, '--template');
  if (template) {
    const text = await verifyTemplate(packageRoot(), template);
    const out = one(args, '--out');
    if (!out) {
      print(text);
      return;
    }
    if ((await opener.kind(out)) !== undefined) throw new JaxServeError('E_USAGE', `${out} already exists; choose another name.`);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(out, text);
    print(`wrote ${path.resolve(out)} (edit forward() to call your model)\n`);
    return;
  }
  if (args.positional.length !== 1) throw new JaxServeError('E_USAGE', 'verify takes one EXPORT folder (or --template PRESET).');
  const source = one(args, '--source');
  const entry = one(args, '--entry');
  if (!source || !entry) throw new JaxServeError('E_USAGE', 'verify needs --source CKPT (the JAX checkpoint) and --entry FILE.py (jax-serve verify --template PRESET writes one).');
  const maxKl = Number(one(args, '--max-kl') ?? 1e-3);
  if (!(maxKl >= 0)) throw new JaxServeError('E_USAGE', '--max-kl takes a number ≥ 0.');
  const prompts = [...(args.values.get('--prompt') ?? [])];
  const promptsFile = one(args, '--prompts');
  if (promptsFile) {
    const list = parseJsonBytes(promptsFile, await opener.readSmall(promptsFile, 16 << 20), { what: 'the prompts file' });
    if (!Array.isArray(list) || !list.every((p) => typeof p === 'string')) throw new JaxServeError('E_FORMAT', `${promptsFile}: expected a JSON list of prompt strings.`);
    prompts.push(...(list as string[]));
  }
  const exportDir = args.positional[0]!;
  if ((await opener.kind(path.join(exportDir, 'config.json'))) !== 'file') throw new JaxServeError('E_NOT_FOUND', `${exportDir}: no config.json; verify takes an export folder.`);
  const report = await verifyExport({
    exportDir,
    checkpoint: source,
    entry,
    prompts,
    hfPython: args.python,
    jaxPython: one(args, '--jax-python'),
    packageRoot: packageRoot(),
    onStep: (s) => args.json || printErr(`${s}\n`),
  });
  print(args.json ? JSON.stringify(report) + '\n' : verifyText(report, maxKl) + '\n');
  if (report.prompts.some((p) => !(p.kl <= maxKl))) process.exitCode = 1;
}

export function verifyText(r: VerifyReport, maxKl: number): string {
  const rows = r.prompts.map((p) => [
    JSON.stringify(p.prompt.length > 40 ? p.prompt.slice(0, 37) + '...' : p.prompt),
    String(p.tokens),
    p.maxAbsDiff.toExponential(2),
    p.kl.toExponential(2),
    `${(p.top1 * 100).toFixed(1)}%`,
    `${(p.top5 * 100).toFixed(1)}%`,
    p.kl <= maxKl ? 'ok' : 'DIFFERS',
  ]);
  const bad = r.prompts.filter((p) => !(p.kl <= maxKl)).length;
  return [renderTable(['prompt', 'tokens', 'max |Δlogit|', 'KL', 'top-1', 'top-5', ''], rows), '', bad === 0 ? `${r.exportDir}: matches the JAX model on ${r.prompts.length} prompt(s) (KL ≤ ${maxKl})` : `${r.exportDir}: ${bad} of ${r.prompts.length} prompt(s) differ (KL > ${maxKl}): check the preset (RoPE pairing, query scale) and config.json`].join('\n');
}
