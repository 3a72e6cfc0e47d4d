/**
 * One streaming client for the servers we start or attach to: OpenAI-compatible
 * `/v1/chat/completions` and `/v1/completions` (vLLM, SGLang, `transformers serve`) and SGLang's
 * native `/generate`. What each sends is in ../shared/reference/serving-engines.md: incremental
 * deltas ending in `[DONE]` (vLLM §1.4, SGLang §2.4) or just ending (transformers serve §3.5); a
 * usage chunk with no choices; SGLang's cumulative `text` (§2.3); errors mid-stream as a `data:`
 * object with an `error` key (object or string), and before it as nested `{"error":{…}}` (vLLM ≥
 * 0.10.1), flat `{"object":"error",…}` (older vLLM, SGLang) or FastAPI's `{"detail":…}` (§1.5).
 */
import { JaxServeError } from '../errors';
import { SseParser } from './sse';

export type GenerateApi = 'chat' | 'completions' | 'sglang-generate';

export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

export interface GenerateRequest {
  /** The server's root, e.g. http://127.0.0.1:8000 (a trailing /v1 is accepted). */
  readonly baseUrl: string;
  readonly api: GenerateApi;
  /** The served model name (OpenAI APIs); transformers serve takes a folder path here. */
  readonly model?: string;
  /** The prompt (completions, /generate), or the user message when `messages` is not given (chat). */
  readonly prompt: string;
  readonly messages?: readonly ChatMessage[];
  readonly maxTokens?: number;
  readonly temperature?: number;
  readonly topP?: number;
  readonly stop?: readonly string[];
  readonly seed?: number;
  /** Sent as `Authorization: Bearer …`. */
  readonly apiKey?: string;
  readonly signal?: AbortSignal;
}

export interface Usage {
  readonly promptTokens?: number;
  readonly completionTokens?: number;
}

export type GenerateEvent =
  /** New text (a delta, whatever the server sent), and new token ids when the server sends them. */
  | { readonly kind: 'text'; readonly text: string; readonly tokenIds?: readonly number[] }
  | { readonly kind: 'finish'; readonly reason: string }
  | { readonly kind: 'usage'; readonly usage: Usage };

export interface GenerateResult {
  readonly text: string;
  readonly tokenIds: readonly number[] | undefined;
  readonly finishReason: string | undefined;
  readonly usage: Usage | undefined;
  /** Request sent to first text, ms. */
  readonly ttftMs: number | undefined;
  /** Request sent to stream end, ms. */
  readonly totalMs: number;
  /** Completion tokens: the server's count, else token ids seen, else text chunks. */
  readonly tokens: number;
  /** Tokens after the first, over the time after the first (decode speed; undefined under two tokens). */
  readonly tokensPerSecond: number | undefined;
}

/** Bytes of an error body kept for its message. */
const MAX_ERROR_BODY = 64 << 10;

export function endpointUrl(req: Pick<GenerateRequest, 'baseUrl' | 'api'>): string {
  const root = req.baseUrl.replace(/\/+$/, '').replace(/\/v1$/, '');
  return root + (req.api === 'chat' ? '/v1/chat/completions' : req.api === 'completions' ? '/v1/completions' : '/generate');
}

export function requestBody(req: GenerateRequest): Record<string, unknown> {
  // An empty stop list is left out: transformers 5.23 serve fails the request on `stop: []`
  // ("Stop string preprocessing was unable to identify tokens…"), seen from the Serve panel.
  const defined = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && !(Array.isArray(v) && v.length === 0)));
  // SGLang's native API has no seed among the sampling parameters the reference lists (§2.3).
  if (req.api === 'sglang-generate') return { text: req.prompt, stream: true, sampling_params: defined({ max_new_tokens: req.maxTokens, temperature: req.temperature, top_p: req.topP, stop: req.stop }) };
  const common = defined({ model: req.model, stream: true, max_tokens: req.maxTokens, temperature: req.temperature, top_p: req.topP, stop: req.stop, seed: req.seed });
  // A final usage chunk (vLLM, SGLang); transformers serve ignores the option and sends usage anyway.
  const usage = { stream_options: { include_usage: true } };
  return req.api === 'chat' ? { ...common, messages: req.messages ?? [{ role: 'user', content: req.prompt }], ...usage } : { ...common, prompt: req.prompt, ...usage };
}

/** The message of an error body in any of the shapes servers use; the raw text when none fits. */
export function errorMessage(body: string): string {
  let j: unknown;
  try {
    j = JSON.parse(body);
  } catch {
    return body.trim().slice(0, 2000) || '(empty body)';
  }
  const o = j as Record<string, unknown> | null;
  if (o && typeof o === 'object') {
    const e = o.error;
    if (typeof e === 'string') return e;
    if (e && typeof e === 'object' && typeof (e as Record<string, unknown>).message === 'string') return (e as Record<string, unknown>).message as string;
    if (typeof o.message === 'string') return o.message;
    const d = o.detail;
    if (typeof d === 'string') return d;
    if (Array.isArray(d)) return d.map((x) => (x && typeof x === 'object' && 'msg' in x ? `${String((x as Record<string, unknown>).msg)}${'loc' in x ? ` (${JSON.stringify((x as Record<string, unknown>).loc)})` : ''}` : JSON.stringify(x))).join('; ');
  }
  return body.trim().slice(0, 2000);
}

async function readBounded(res: Response): Promise<string> {
  const text = await res.text().catch(() => '');
  return text.slice(0, MAX_ERROR_BODY);
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** Turns one parsed chunk into events; `state` carries SGLang's cumulative text and ids. */
function chunkEvents(api: GenerateApi, chunk: Record<string, unknown>, state: { text: string; ids: number[] }): GenerateEvent[] {
  const out: GenerateEvent[] = [];
  const usage = chunk.usage as Record<string, unknown> | null | undefined;
  if (api === 'sglang-generate') {
    const text = typeof chunk.text === 'string' ? chunk.text : '';
    const ids = Array.isArray(chunk.output_ids) ? (chunk.output_ids as number[]) : undefined;
    // Cumulative: the new part is what follows the text seen so far (§2.3).
    const delta = text.startsWith(state.text) ? text.slice(state.text.length) : text;
    state.text = text.startsWith(state.text) ? text : state.text + text;
    let newIds: number[] | undefined;
    if (ids) {
      // Cumulative too, unless the server runs with --stream-output (then only the new ones).
      const cumulative = ids.length >= state.ids.length && state.ids.every((x, i) => ids[i] === x);
      newIds = cumulative ? ids.slice(state.ids.length) : ids;
      state.ids = cumulative ? [...ids] : [...state.ids, ...ids];
    }
    if (delta || newIds?.length) out.push({ kind: 'text', text: delta, ...(newIds ? { tokenIds: newIds } : {}) });
    const meta = chunk.meta_info as Record<string, unknown> | undefined;
    const finish = meta?.finish_reason as Record<string, unknown> | null | undefined;
    if (finish && typeof finish === 'object') {
      out.push({ kind: 'finish', reason: String(finish.type ?? 'stop') });
      out.push({ kind: 'usage', usage: { promptTokens: num(meta?.prompt_tokens), completionTokens: num(meta?.completion_tokens) } });
    }
    return out;
  }
  const choices = Array.isArray(chunk.choices) ? (chunk.choices as Record<string, unknown>[]) : [];
  const c = choices[0];
  if (c) {
    const delta = c.delta as Record<string, unknown> | undefined;
    const text = api === 'chat' ? delta?.content : c.text;
    const ids = Array.isArray(c.token_ids) ? (c.token_ids as number[]) : undefined;
    if ((typeof text === 'string' && text !== '') || ids?.length) out.push({ kind: 'text', text: typeof text === 'string' ? text : '', ...(ids ? { tokenIds: ids } : {}) });
    if (typeof c.finish_reason === 'string') out.push({ kind: 'finish', reason: c.finish_reason });
  }
  if (usage && typeof usage === 'object') out.push({ kind: 'usage', usage: { promptTokens: num(usage.prompt_tokens), completionTokens: num(usage.completion_tokens) } });
  return out;
}

/**
 * Streams one generation. Throws E_SERVER with the server's own message for an HTTP error or an
 * error sent mid-stream, E_CANCELLED when `signal` aborts, E_IO when the connection fails.
 */
export async function* streamGenerate(req: GenerateRequest, fetchImpl: typeof fetch = fetch): AsyncGenerator<GenerateEvent> {
  const url = endpointUrl(req);
  let res: Response;
  try {
    res = await fetchImpl(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...(req.apiKey ? { authorization: `Bearer ${req.apiKey}` } : {}) },
      body: JSON.stringify(requestBody(req)),
      signal: req.signal,
    });
  } catch (e) {
    if (req.signal?.aborted) throw new JaxServeError('E_CANCELLED', 'Cancelled.');
    throw new JaxServeError('E_IO', `${url}: ${describeFetchError(e)}. Is the server running and ready?`, { cause: e });
  }
  if (!res.ok) throw new JaxServeError('E_SERVER', `${url}: HTTP ${res.status}: ${errorMessage(await readBounded(res))}`);
  const state = { text: '', ids: [] as number[] };
  // A server that does not stream (vLLM's beam search answers once) sends one JSON body.
  if (!(res.headers.get('content-type') ?? '').includes('text/event-stream')) {
    const body = await res.text();
    let j: Record<string, unknown>;
    try {
      j = JSON.parse(body) as Record<string, unknown>;
    } catch {
      throw new JaxServeError('E_SERVER', `${url}: the reply is neither an event stream nor JSON: ${body.slice(0, 200)}`);
    }
    if (j.error !== undefined) throw new JaxServeError('E_SERVER', `${url}: ${errorMessage(body)}`);
    // A whole chat reply carries `message` where a chunk carries `delta`.
    const choices = Array.isArray(j.choices) ? (j.choices as Record<string, unknown>[]).map((c) => ({ ...c, delta: c.delta ?? c.message })) : j.choices;
    yield* chunkEvents(req.api, { ...j, choices }, state);
    return;
  }
  const parser = new SseParser();
  const reader = res.body!.getReader();
  let chunks = 0;
  const handle = function* (data: string): Generator<GenerateEvent, boolean> {
    if (data === '[DONE]') return true;
    let chunk: Record<string, unknown>;
    try {
      chunk = JSON.parse(data) as Record<string, unknown>;
    } catch {
      throw new JaxServeError('E_SERVER', `${url}: chunk ${chunks + 1} is not JSON: ${data.slice(0, 200)}`);
    }
    if (chunk.error !== undefined && chunk.error !== null) throw new JaxServeError('E_SERVER', `${url}: the server failed mid-stream after ${chunks} chunks: ${errorMessage(data)}`);
    chunks++;
    yield* chunkEvents(req.api, chunk, state);
    return false;
  };
  try {
    for (;;) {
      let r: Awaited<ReturnType<typeof reader.read>>;
      try {
        r = await reader.read();
      } catch (e) {
        if (req.signal?.aborted) throw new JaxServeError('E_CANCELLED', 'Cancelled.');
        throw new JaxServeError('E_SERVER', `${url}: the connection broke after ${chunks} chunks (${describeFetchError(e)}); the server may have stopped.`, { cause: e });
      }
      const events = r.done ? parser.end() : parser.push(r.value);
      for (const ev of events) if (yield* handle(ev.data)) return;
      if (r.done) return;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

function describeFetchError(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (e instanceof Error ? e.message : String(e));
}

/**
 * Runs a generation to its end, handing each event to `onEvent`, and measures it: time to first
 * text and decode speed, on `now` (performance.now by default).
 */
export async function generate(req: GenerateRequest, onEvent: (e: GenerateEvent) => void = () => undefined, fetchImpl: typeof fetch = fetch, now: () => number = () => performance.now()): Promise<GenerateResult> {
  const t0 = now();
  let first: number | undefined;
  let last = t0;
  let text = '';
  let ids: number[] | undefined;
  let textChunks = 0;
  let finishReason: string | undefined;
  let usage: Usage | undefined;
  for await (const e of streamGenerate(req, fetchImpl)) {
    if (e.kind === 'text') {
      last = now();
      first ??= last;
      text += e.text;
      textChunks++;
      if (e.tokenIds) (ids ??= []).push(...e.tokenIds);
    } else if (e.kind === 'finish') finishReason = e.reason;
    else usage = { ...usage, ...Object.fromEntries(Object.entries(e.usage).filter(([, v]) => v !== undefined)) };
    onEvent(e);
  }
  const end = now();
  const tokens = usage?.completionTokens ?? ids?.length ?? textChunks;
  const decodeMs = first === undefined ? 0 : last - first;
  return {
    text,
    tokenIds: ids,
    finishReason,
    usage,
    ttftMs: first === undefined ? undefined : first - t0,
    totalMs: end - t0,
    tokens,
    tokensPerSecond: tokens >= 2 && decodeMs > 0 ? ((tokens - 1) * 1000) / decodeMs : undefined,
  };
}

/** The model ids a server lists at /v1/models (vLLM: the served names; transformers serve: hub ids). */
export async function listModels(baseUrl: string, apiKey?: string, fetchImpl: typeof fetch = fetch, signal?: AbortSignal): Promise<string[]> {
  const url = baseUrl.replace(/\/+$/, '').replace(/\/v1$/, '') + '/v1/models';
  let res: Response;
  try {
    res = await fetchImpl(url, { headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {}, signal: signal ?? AbortSignal.timeout(10_000) });
  } catch (e) {
    throw new JaxServeError('E_IO', `${url}: ${describeFetchError(e)}. Is the server running and ready?`, { cause: e });
  }
  const body = await readBounded(res);
  if (!res.ok) throw new JaxServeError('E_SERVER', `${url}: HTTP ${res.status}: ${errorMessage(body)}`);
  try {
    const data = (JSON.parse(body) as { data?: { id?: unknown }[] }).data ?? [];
    return data.map((m) => m.id).filter((id): id is string => typeof id === 'string');
  } catch {
    throw new JaxServeError('E_SERVER', `${url}: not a model list: ${body.slice(0, 200)}`);
  }
}
