/**
 * `jax-serve generate --url URL PROMPT`: one streamed generation from a running server (vLLM,
 * SGLang, transformers serve). Text goes to stdout as it arrives; time to first token, tokens/s
 * and token counts go to stderr, so the text can be piped.
 *
 * What the server sends reaches the terminal without control characters: the text with line breaks
 * and tabs kept (--json carries it exactly, escaped), a server's error as one line. The CLI keeps no
 * log file, so "the log" of a long error is the server's reply itself: the line says how many more
 * lines it had, and --verbose prints them all (controls stripped) on stderr above it.
 */
import { ENGINES, engineById, generate, JaxServeError, safeName, SERVER_IDLE_TIMEOUT_MS, stripControls, type GenerateApi, type GenerateResult, type ServerTextLog } from '../core/index';
import { API_KEY_HINT, print } from './output';
import { JSON_OPTION, type Args, type CommandSpec } from './args';

/** The engines that serve LoRA adapters: the values of --engine. */
const LORA_ENGINES = Object.values(ENGINES).filter((e) => e.lora).map((e) => e.id);

export const GENERATE_COMMAND: CommandSpec = {
  name: 'generate',
  synopsis: 'PROMPT',
  summary: "Stream one generation from a running server: /v1/completions, or /v1/chat/completions with --chat (the chat template applies), or SGLang's /generate with --sglang. Text to stdout as it arrives; TTFT, tokens/s and counts to stderr. An API key is read from JAX_SERVE_API_KEY.",
  options: [
    { name: '--url', value: 'URL', required: true, description: 'The server, e.g. http://127.0.0.1:8000.' },
    { name: '--model', value: 'NAME', default: 'the first model the server lists at /v1/models', description: 'The served model.' },
    { name: '--chat', description: 'Use /v1/chat/completions (the chat template applies).' },
    { name: '--sglang', description: "Use SGLang's /generate." },
    { name: '--adapter', value: 'NAME', description: 'Generate with the LoRA adapter the server was started with under NAME (serve --adapter NAME=ADIR); needs --engine, since each engine names an adapter its own way.' },
    { name: '--engine', value: LORA_ENGINES.join('|'), description: "The server's engine, for --adapter: vLLM takes the adapter's name as the model, SGLang BASE:NAME, SGLang-JAX lora_path (completions and /generate only)." },
    { name: '--max-tokens', value: 'N', default: "the server's", description: 'Most tokens to generate.' },
    { name: '--temperature', value: 'T', default: "the server's", description: 'Sampling temperature.' },
    { name: '--top-p', value: 'P', default: "the server's", description: 'Nucleus sampling mass.' },
    { name: '--stop', value: 'S', repeatable: true, description: 'A string that ends the generation.' },
    { name: '--seed', value: 'N', description: 'Sampling seed.' },
    { name: '--idle-timeout', value: 'S', default: String(SERVER_IDLE_TIMEOUT_MS / 1000), description: 'Seconds without a complete event before giving up; 0 for none.' },
    { name: '--verbose', description: "A server's whole error text, not only its first line." },
    JSON_OPTION,
  ],
};

/** Generated text for a terminal: controls and escape sequences out, line breaks and tabs kept. */
function printable(text: string): string {
  // stripControls turns tabs into spaces; code a model writes keeps its tabs.
  return text.split('\t').map(stripControls).join('\t');
}

function numberOption(args: Args, flag: string, integer: boolean): number | undefined {
  const v = args.values.get(flag)?.at(-1);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < 0) throw new JaxServeError('E_USAGE', `${flag} takes a ${integer ? 'whole ' : ''}number ≥ 0.`);
  return n;
}

export async function generateCommand(args: Args, signal: AbortSignal): Promise<void> {
  const url = args.values.get('--url')?.at(-1);
  if (!url) throw new JaxServeError('E_USAGE', 'generate needs --url (the server, e.g. http://127.0.0.1:8000).');
  if (!/^https?:$/.test(URL.canParse(url) ? new URL(url).protocol : '')) throw new JaxServeError('E_USAGE', `--url takes an http:// or https:// address (e.g. http://127.0.0.1:8000), not ${JSON.stringify(safeName(url))}.`);
  if (args.positional.length !== 1) throw new JaxServeError('E_USAGE', 'generate takes one PROMPT (quote it).');
  if (args.flags.has('--chat') && args.flags.has('--sglang')) throw new JaxServeError('E_USAGE', '--chat and --sglang pick different APIs; give one.');
  const api: GenerateApi = args.flags.has('--chat') ? 'chat' : args.flags.has('--sglang') ? 'sglang-generate' : 'completions';
  const idle = numberOption(args, '--idle-timeout', false);
  const adapter = args.values.get('--adapter')?.at(-1);
  const engine = args.values.get('--engine')?.at(-1);
  if (engine !== undefined && !engineById(engine)) throw new JaxServeError('E_USAGE', `--engine ${JSON.stringify(safeName(engine))}: one of ${LORA_ENGINES.join(', ')}.`);
  if (adapter !== undefined && engine === undefined) throw new JaxServeError('E_USAGE', `--adapter needs --engine (${LORA_ENGINES.join(', ')}): each engine names an adapter in a request its own way.`);
  if (engine !== undefined && adapter === undefined) throw new JaxServeError('E_USAGE', '--engine goes with --adapter NAME.');
  const log: ServerTextLog = args.flags.has('--verbose')
    ? { where: 'the server text above', append: (url, text) => process.stderr.write(`${url} said:\n${text.trimEnd()}\n`) }
    : { where: "the server's reply; --verbose prints it" };
  const request = {
    baseUrl: url,
    api,
    model: args.values.get('--model')?.at(-1),
    adapter: adapter === undefined ? undefined : { name: adapter, engine: engine! },
    modelHint: 'pass --model NAME (for transformers serve, the folder it serves)',
    apiKeyHint: API_KEY_HINT,
    prompt: args.positional[0]!,
    maxTokens: numberOption(args, '--max-tokens', true),
    temperature: numberOption(args, '--temperature', false),
    topP: numberOption(args, '--top-p', false),
    stop: args.values.get('--stop'),
    seed: numberOption(args, '--seed', true),
    apiKey: process.env.JAX_SERVE_API_KEY || undefined,
    signal,
    log,
    idleTimeoutMs: idle === undefined ? undefined : idle * 1000,
  };
  // Text is written in batches (a server may send a million one-character chunks). Each chunk is
  // sanitized on its own: an escape sequence left open in one chunk cannot swallow the next one's
  // text (one split across chunks leaves printable remnants, no control character).
  let pending = '';
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (pending) process.stdout.write(pending);
    pending = '';
  };
  let r: GenerateResult;
  try {
    r = await generate(request, (e) => {
      if (e.kind !== 'text' || args.json) return;
      pending += printable(e.text);
      if (pending.length >= 64 * 1024) flush();
      else if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
  } finally {
    // What arrived stays printed, whatever ended the stream.
    flush();
  }
  if (args.json) {
    print(JSON.stringify(r) + '\n');
    return;
  }
  process.stdout.write('\n');
  const ms = (v: number | undefined) => (v === undefined ? '—' : `${v.toFixed(0)} ms`);
  const speed = r.tokensPerSecond === undefined ? '—' : `${r.tokensPerSecond.toFixed(1)} tokens/s`;
  process.stderr.write(`TTFT ${ms(r.ttftMs)} · ${speed} · ${r.tokens} tokens${r.usage?.promptTokens !== undefined ? ` (prompt ${r.usage.promptTokens})` : ''} · ${ms(r.totalMs)} total · finish ${r.finishReason === undefined ? '—' : safeName(r.finishReason).slice(0, 100)}\n`);
}
