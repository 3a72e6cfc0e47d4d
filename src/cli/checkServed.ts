/**
 * `jax-serve check-served --url URL --source DIR`: does a running server generate what its export
 * computes? Each prompt greedy and non-streamed; the export's reference (transformers, with --entry
 * the JAX forward too) teacher-forces the server's tokens; exit 1 on a divergence that is not a
 * near-tie the serving dtype cannot resolve.
 */
import * as path from 'node:path';
import { apiLabel, CHECK_MAX_TOKENS, describePromptCheck, escapeControls, JaxServeError, parseJsonBytes, safeName, type CheckReport, type GenerateApi } from '../core/index';
import { checkServed, type NodeFileOpener } from '../core/node/index';
import { JSON_OPTION, oneValue as one, type Args, type CommandSpec } from './args';
import { API_KEY_HINT, print, printErr } from './output';

export const CHECK_SERVED_COMMAND: CommandSpec = {
  name: 'check-served',
  synopsis: '',
  summary: "Does the server generate what its export computes? Each prompt greedy, non-streamed, with logprobs; transformers (in --python) teacher-forces the server's tokens on DIR. Exit 1 when a token differs beyond a near-tie the serving dtype cannot resolve. An API key is read from JAX_SERVE_API_KEY.",
  options: [
    { name: '--url', value: 'URL', required: true, description: 'The server, e.g. http://127.0.0.1:8000.' },
    { name: '--source', value: 'DIR', required: true, description: 'The export folder the server serves.' },
    { name: '--prompts', value: 'FILE.json', description: 'A JSON list of prompts (default: a built-in few).' },
    { name: '--max-tokens', value: 'N', default: String(CHECK_MAX_TOKENS), description: 'Tokens generated per prompt, 1 to 4096.' },
    { name: '--api', value: 'generate|completions|chat', default: "SGLang's /generate when the server has it, else completions", description: 'The API asked.' },
    { name: '--model', value: 'NAME', default: 'the first at /v1/models', description: 'The served model.' },
    { name: '--dtype', value: 'D', default: "config.json's", description: 'The dtype the server computes in.' },
    { name: '--python', value: 'P', default: 'python3', description: 'Python with transformers, for the reference.' },
    { name: '--entry', value: 'FILE.py', description: 'With --checkpoint: the JAX forward over the same tokens must agree too.' },
    { name: '--checkpoint', value: 'CKPT', description: 'The JAX checkpoint --entry loads.' },
    { name: '--jax-python', value: 'P', default: 'the --python', description: 'Python with JAX, for --entry.' },
    { name: '--verbose', description: "A server's whole error text, not only its first line." },
    JSON_OPTION,
  ],
};

const API_NAMES: Readonly<Record<string, GenerateApi>> = { generate: 'sglang-generate', completions: 'completions', chat: 'chat' };


export async function checkServedCommand(args: Args, opener: NodeFileOpener, signal: AbortSignal): Promise<void> {
  if (args.positional.length > 0) throw new JaxServeError('E_USAGE', `check-served takes no positional arguments (got ${JSON.stringify(safeName(args.positional[0]!))}); the export is --source DIR.`);
  const url = one(args, '--url');
  if (!url) throw new JaxServeError('E_USAGE', 'check-served needs --url (the server, e.g. http://127.0.0.1:8000).');
  if (!/^https?:$/.test(URL.canParse(url) ? new URL(url).protocol : '')) throw new JaxServeError('E_USAGE', `--url takes an http:// or https:// address (e.g. http://127.0.0.1:8000), not ${JSON.stringify(safeName(url))}.`);
  const source = one(args, '--source');
  if (!source) throw new JaxServeError('E_USAGE', 'check-served needs --source DIR (the export folder the server serves).');
  let prompts: string[] | undefined;
  const promptsFile = one(args, '--prompts');
  if (promptsFile) {
    const list = parseJsonBytes(promptsFile, await opener.readSmall(promptsFile, 16 << 20), { what: 'the prompts file' });
    if (!Array.isArray(list) || list.length === 0 || !list.every((p) => typeof p === 'string' && p !== '')) throw new JaxServeError('E_FORMAT', `${safeName(promptsFile)}: expected a JSON list of non-empty prompt strings, e.g. ["Once upon a time"].`);
    prompts = list as string[];
  }
  const maxText = one(args, '--max-tokens');
  const maxTokens = maxText === undefined ? undefined : Number(maxText);
  if (maxTokens !== undefined && !(Number.isInteger(maxTokens) && maxTokens >= 1 && maxTokens <= 4096)) throw new JaxServeError('E_USAGE', '--max-tokens takes a whole number from 1 to 4096.');
  const apiName = one(args, '--api');
  if (apiName !== undefined && !Object.hasOwn(API_NAMES, apiName)) throw new JaxServeError('E_USAGE', `--api takes generate, completions or chat, not ${JSON.stringify(safeName(apiName))}.`);
  const entry = one(args, '--entry');
  const checkpoint = one(args, '--checkpoint');
  if ((entry === undefined) !== (checkpoint === undefined)) throw new JaxServeError('E_USAGE', '--entry FILE.py and --checkpoint CKPT go together (the JAX forward needs both).');
  const report = await checkServed({
    url,
    source,
    prompts,
    maxTokens,
    api: apiName === undefined ? undefined : API_NAMES[apiName],
    model: one(args, '--model'),
    dtype: one(args, '--dtype'),
    python: args.python,
    entry,
    checkpoint,
    jaxPython: one(args, '--jax-python'),
    apiKey: process.env.JAX_SERVE_API_KEY || undefined,
    apiKeyHint: API_KEY_HINT,
    packageRoot: path.join(__dirname, '..'),
    signal,
    log: args.flags.has('--verbose')
      ? { where: 'the server text above', append: (u, text) => process.stderr.write(`${u} said:\n${text.trimEnd()}\n`) }
      : { where: "the server's reply; --verbose prints it" },
    onStep: (s) => args.json || printErr(`${s}\n`),
  });
  print(args.json ? JSON.stringify(report) + '\n' : checkServedText(report) + '\n');
  if (!report.ok) process.exitCode = 1;
}

/** One line per prompt, then the verdict; every server or prompt text escaped for the terminal. */
export function checkServedText(r: CheckReport): string {
  const bad = r.prompts.filter((p) => !p.ok).length;
  const head = `${escapeControls(r.url)} (${apiLabel(r.api)}${r.model === undefined ? '' : `, model ${escapeControls(JSON.stringify(r.model))}`}) against ${escapeControls(r.source)} (${r.dtype}):`;
  const verdict = bad === 0 ? `the server generates what the export computes on ${r.prompts.length} prompt(s)` : `${bad} of ${r.prompts.length} prompt(s) diverge`;
  return [head, ...r.prompts.map((p) => `${p.ok ? '✓' : '✗'} ${escapeControls(describePromptCheck(p, r.dtype))}`), verdict].join('\n');
}
