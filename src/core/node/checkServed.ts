/**
 * `jax-serve check-served`, the glue: asks a running server for greedy, non-streamed generations,
 * has the export's reference (transformers in the interpreter verify uses; with an entry point, the
 * JAX forward too) teacher-force what it generated, and compares (../serve/checkServed.ts). The HTTP
 * calls go through an injectable fetch, so recorded replies replay without a server.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { JaxServeError } from '../errors';
import { parseJsonText } from '../json';
import { SERVER_IDLE_TIMEOUT_MS } from '../limits';
import { safeName } from '../text';
import { argmaxRows, checkRequestBody, CHECK_MAX_TOKENS, CHECK_PROMPTS, compareServed, overLength, parseCheckReply, servingDtype, type CheckReport, type PromptCheck, type ReferenceRow, type ServedReply, type ServingDtype } from '../serve/checkServed';
import { endpointUrl, modelToSend, type GenerateApi, type ServerTextLog } from '../serve/generate';
import { boundedRequest, serverRoot, type BoundedReply } from '../serve/request';
import { readServerJson, serverText } from '../serve/serverText';
import { readLogits, runVerifyPython, verifyScript } from './verify';

export interface CheckServedOptions {
  readonly url: string;
  /** The export folder the server serves. */
  readonly source: string;
  readonly prompts?: readonly string[];
  readonly maxTokens?: number;
  /** Default: SGLang's /generate when the server answers /get_model_info, else completions. */
  readonly api?: GenerateApi;
  /** Sent as `model`; default the first of /v1/models (OpenAI APIs). */
  readonly model?: string;
  /** The dtype the server computes in; default config.json's. */
  readonly dtype?: string;
  /** Interpreter with torch + transformers (the reference). */
  readonly python: string;
  /** With --entry: the JAX forward over the same tokens, in jaxPython (python when absent). */
  readonly entry?: string;
  readonly checkpoint?: string;
  readonly jaxPython?: string;
  readonly apiKey?: string;
  /** How the user gives the key, for a server that refuses without one (see GenerateRequest). */
  readonly apiKeyHint?: string;
  readonly packageRoot: string;
  readonly signal?: AbortSignal;
  readonly log?: ServerTextLog;
  readonly onStep?: (what: string) => void;
}

/** One request with the caller's cancel and the idle limit on the whole reply. */
function request(target: string, init: { method: 'GET' } | { method: 'POST'; json: unknown }, o: CheckServedOptions, fetchImpl: typeof fetch): Promise<BoundedReply> {
  return boundedRequest(target, { ...init, apiKey: o.apiKey, signal: o.signal, timeoutMs: SERVER_IDLE_TIMEOUT_MS }, fetchImpl);
}

/** SGLang (and SGLang-JAX) answer GET /get_model_info (serving-engines.md §2.2); the OpenAI-only servers do not. */
export async function defaultCheckApi(o: CheckServedOptions, fetchImpl: typeof fetch = fetch): Promise<GenerateApi> {
  const r = await request(serverRoot(o.url) + '/get_model_info', { method: 'GET' }, o, fetchImpl);
  if (r.status !== 200) return 'completions';
  const j = readServerJson(r.body);
  return j.ok && typeof j.value === 'object' && j.value !== null && 'model_path' in j.value ? 'sglang-generate' : 'completions';
}

/** One greedy, non-streamed generation. */
export async function servedReply(o: CheckServedOptions, api: GenerateApi, model: string | undefined, prompt: string, maxTokens: number, fetchImpl: typeof fetch = fetch): Promise<ServedReply> {
  const target = endpointUrl({ baseUrl: o.url, api });
  const url = safeName(target);
  const r = await request(target, { method: 'POST', json: checkRequestBody(api, prompt, maxTokens, model) }, o, fetchImpl);
  const fail = (what: string, opts: { json?: boolean } = {}) => {
    const t = serverText(r.body, { contentType: r.contentType, logHint: o.log?.where ?? "the server's reply", ...opts });
    o.log?.append?.(url, t.full);
    return new JaxServeError('E_SERVER', `${url}: ${what}${t.line}`);
  };
  if (r.status < 200 || r.status > 299) throw fail(`HTTP ${r.status}: `);
  const j = readServerJson(r.body);
  const reply = j.ok ? parseCheckReply(api, j.value) : undefined;
  if (!reply) throw fail(`not a ${api === 'sglang-generate' ? '/generate' : api} reply${j.ok ? '' : ` (it ${j.why})`}: `, { json: false });
  const over = overLength(reply, maxTokens);
  if (over) throw new JaxServeError('E_SERVER', `${url}: ${over}.`);
  return reply;
}

/**
 * The source's config.json, read once: its torch_dtype (transformers 4) or dtype (5), undefined when
 * it names none or does not parse (the reference then says what is wrong with the folder). Missing,
 * it is said in one line before any request: a wrong folder (the panel's picker, a mistyped
 * --source) is not left to the reference's traceback.
 */
async function configDtype(source: string): Promise<string | undefined> {
  const file = path.join(source, 'config.json');
  if (!(await stat(file).catch(() => undefined))?.isFile()) throw new JaxServeError('E_NOT_FOUND', `${safeName(source)}: no config.json; the source is the export folder the server serves.`);
  try {
    const c = parseJsonText(file, await readFile(file, 'utf8')) as Record<string, unknown> | null;
    const d = c?.torch_dtype ?? c?.dtype;
    return typeof d === 'string' ? d : undefined;
  } catch {
    return undefined;
  }
}

export async function checkServed(o: CheckServedOptions, fetchImpl: typeof fetch = fetch): Promise<CheckReport> {
  // Bad options are said before the server is asked anything.
  if (o.entry && !o.checkpoint) throw new JaxServeError('E_USAGE', '--entry needs --checkpoint CKPT (the JAX checkpoint the export came from).');
  const configured = await configDtype(o.source);
  const prompts = o.prompts?.length ? o.prompts : CHECK_PROMPTS;
  const maxTokens = o.maxTokens ?? CHECK_MAX_TOKENS;
  const dtypeName = o.dtype ?? configured;
  const dtype: ServingDtype | undefined = servingDtype(dtypeName ?? 'float32');
  if (!dtype) throw new JaxServeError('E_USAGE', `${dtypeName}: not a dtype a server computes in here (float32, bfloat16, float16); pass --dtype.`);
  const api = o.api ?? (await defaultCheckApi(o, fetchImpl));
  // The one rule every surface follows: the name given, else the first the server lists. /generate
  // takes none (checkRequestBody), so the report names none for it: its `model` is the model sent.
  const model = api === 'sglang-generate' ? undefined : await modelToSend({ baseUrl: o.url, api, model: o.model, prompt: '', apiKey: o.apiKey, signal: o.signal, log: o.log, modelHint: 'pass --model NAME', apiKeyHint: o.apiKeyHint }, fetchImpl);
  const replies: ServedReply[] = [];
  for (const [k, prompt] of prompts.entries()) {
    o.onStep?.(`server: prompt ${k + 1} of ${prompts.length} (${api === 'sglang-generate' ? '/generate' : api}, greedy, ${maxTokens} tokens)`);
    replies.push(await servedReply(o, api, model, prompt, maxTokens, fetchImpl));
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'jax-serve-check-'));
  try {
    const script = verifyScript(o.packageRoot);
    const requests = { prompts: prompts.map((p, k) => ({ prompt: p, chat: api === 'chat', ids: replies[k]!.ids ?? null, tokens: replies[k]!.tokens ?? null, text: replies[k]!.text })) };
    await writeFile(path.join(dir, 'requests.json'), JSON.stringify(requests));
    o.onStep?.(`reference: the same tokens through transformers on ${path.basename(o.source)}`);
    await runVerifyPython(o.python, [script, 'served', o.source, path.join(dir, 'requests.json'), path.join(dir, 'reference.json')], o.signal, 'the reference (transformers)');
    const rows = (JSON.parse(await readFile(path.join(dir, 'reference.json'), 'utf8')) as { prompts: ReferenceRow[] }).prompts;
    let jax: number[][] | undefined;
    if (o.entry && o.checkpoint) {
      o.onStep?.(`JAX: the same tokens through ${path.basename(o.entry)}`);
      await writeFile(path.join(dir, 'ids.json'), JSON.stringify(rows.map((r) => [...r.promptIds, ...r.ids])));
      await runVerifyPython(o.jaxPython ?? o.python, [script, 'jax', o.entry, o.checkpoint, path.join(o.source, 'config.json'), dir], o.signal, 'the JAX side (your entry point)');
      jax = [];
      for (const [k, r] of rows.entries()) {
        const l = await readLogits(path.join(dir, `jax-${k}.npy`));
        jax.push(argmaxRows(l.values, l.vocab).slice(r.promptIds.length - 1));
      }
    }
    const checks: PromptCheck[] = rows.map((r, k) => compareServed(replies[k]!, r, { prompt: prompts[k]!, dtype, maxTokens, ...(jax ? { jaxArgmax: jax[k]! } : {}) }));
    return { ok: checks.every((c) => c.ok), url: safeName(o.url), source: o.source, api, model, dtype, prompts: checks };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
