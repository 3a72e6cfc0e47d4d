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
import { MAX_TOKENS_SLACK, MAX_SERVER_ERROR_BYTES, MAX_SERVER_REPLY_BYTES, MAX_SSE_EMPTY_CHUNKS, MAX_SSE_STREAM_BYTES, SERVER_IDLE_TIMEOUT_MS } from '../limits';
import { isObject } from '../json';
import { safeName } from '../text';
import { adapterSelection } from './adapters';
import { engineById } from './engines';
import { readReply } from './replyBody';
import { authHeaders, boundedRequest, describeFetchError, serverRoot } from './request';
import { readServerJson, serverText } from './serverText';
import { formatCap, SseParser } from './sse';

export { errorMessage } from './serverText';

export type GenerateApi = 'chat' | 'completions' | 'sglang-generate';

export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

export interface GenerateRequest {
  /** The server's root, e.g. http://127.0.0.1:8000 (a trailing /v1 is accepted). */
  readonly baseUrl: string;
  readonly api: GenerateApi;
  /**
   * The served model name (OpenAI APIs); transformers serve takes a folder path here. Without it the
   * first id the server lists at /v1/models is sent (see modelToSend); SGLang's /generate takes none.
   */
  readonly model?: string;
  /** Names read from /v1/models, kept per server (the extension keeps one for the session). */
  readonly servedModels?: ServedModels;
  /**
   * A LoRA adapter the server was started with, by name, on a server of a known engine: the
   * engine's rule (EngineSpec.lora.requests) says what the request carries for it (see resolveRequest).
   */
  readonly adapter?: { readonly name: string; readonly engine: string };
  /** SGLang's `lora_path`, sent in the body (set from `adapter`). */
  readonly loraPath?: string;
  /** How the user gives a model name, for the message when none can be found ("pass --model NAME"). */
  readonly modelHint?: string;
  /** How the user gives the server's API key, for a 401 or 403 ("set JAX_SERVE_API_KEY"). */
  readonly apiKeyHint?: string;
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
  /** Where a server's whole error text goes; its message carries one line (see ServerTextLog). */
  readonly log?: ServerTextLog;
  /**
   * Milliseconds without a complete event (or, for a reply that does not stream, without its whole
   * body) before the request is cut off; default SERVER_IDLE_TIMEOUT_MS, 0 for none.
   */
  readonly idleTimeoutMs?: number;
}

/**
 * Where the whole text of a server's error goes when its message is cut to one line: the CLI's
 * stderr under --verbose, the extension's "JAX Serve: Server" channel.
 */
export interface ServerTextLog {
  /** Named in the message's "(N more lines in …)". */
  readonly where: string;
  /** Takes the URL and the server's whole text, controls stripped. Absent where nothing keeps it. */
  append?(url: string, text: string): void;
}

/** Where the rest of a server's text is when no log keeps it. */
const NO_LOG: ServerTextLog = { where: "the server's reply" };

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
  /** The model name sent (undefined for SGLang's /generate, which takes none). */
  readonly model: string | undefined;
  /** The LoRA adapter asked for, when one was. */
  readonly adapter?: string;
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

/** The API as a person names it: SGLang's native one by its path, the OpenAI ones by their names. */
export function apiLabel(api: GenerateApi): string {
  return api === 'sglang-generate' ? '/generate' : api;
}

export function endpointUrl(req: Pick<GenerateRequest, 'baseUrl' | 'api'>): string {
  return serverRoot(req.baseUrl) + (req.api === 'chat' ? '/v1/chat/completions' : req.api === 'completions' ? '/v1/completions' : '/generate');
}

export function requestBody(req: GenerateRequest): Record<string, unknown> {
  // An empty stop list is left out: transformers 5.23 serve fails the request on `stop: []`
  // ("Stop string preprocessing was unable to identify tokens…"), seen from the Serve panel.
  const defined = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && !(Array.isArray(v) && v.length === 0)));
  // SGLang's native API has no seed among the sampling parameters the reference lists (§2.3).
  if (req.api === 'sglang-generate') return { text: req.prompt, stream: true, sampling_params: defined({ max_new_tokens: req.maxTokens, temperature: req.temperature, top_p: req.topP, stop: req.stop }), ...defined({ lora_path: req.loraPath }) };
  const common = defined({ model: req.model, stream: true, max_tokens: req.maxTokens, temperature: req.temperature, top_p: req.topP, stop: req.stop, seed: req.seed, lora_path: req.loraPath });
  // A final usage chunk (vLLM, SGLang); transformers serve ignores the option and sends usage anyway.
  const usage = { stream_options: { include_usage: true } };
  return req.api === 'chat' ? { ...common, messages: req.messages ?? [{ role: 'user', content: req.prompt }], ...usage } : { ...common, prompt: req.prompt, ...usage };
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
 * Streams one generation. Throws E_SERVER with the server's own message (one clean line; the
 * whole text to `req.log`) for an HTTP error or an error sent mid-stream, and when the reply goes
 * over a cap or past the idle limit; E_CANCELLED when `signal` aborts; E_IO when the connection fails.
 */
export async function* streamGenerate(request: GenerateRequest, fetchImpl: typeof fetch = fetch): AsyncGenerator<GenerateEvent> {
  const req = await resolveRequest(request, fetchImpl);
  const target = endpointUrl(req);
  // The URL is the user's, but it reaches a terminal in every message: no controls either.
  const url = safeName(target);
  const log = req.log ?? NO_LOG;
  const idleMs = req.idleTimeoutMs ?? SERVER_IDLE_TIMEOUT_MS;
  // One controller ends the request, whoever stops it: the caller, the idle limit, or a cap (the
  // reader's cancel in `finally` drops the connection too).
  const ac = new AbortController();
  const stop = () => ac.abort();
  if (req.signal?.aborted) ac.abort();
  else req.signal?.addEventListener('abort', stop, { once: true });
  let idle = false;
  let deadline = Infinity;
  /** Awaits `p` until the deadline; past it the request is aborted, which rejects `p`. */
  const beforeDeadline = async <T>(p: Promise<T>): Promise<T> => {
    if (!(idleMs > 0 && Number.isFinite(deadline))) return p;
    let timer: ReturnType<typeof setTimeout> | undefined;
    // The deadline rejects by itself: a read that an abort does not end (undici leaves a read of a
    // broken gzip body pending for good) must not leave the caller waiting on nothing.
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        idle = true;
        ac.abort();
        // The abort normally ends the read (keeping what arrived); this only ends one it does not.
        timer = setTimeout(() => reject(new JaxServeError('E_SERVER', `${url}: nothing arrived for ${idleMs / 1000} s (the idle limit).`)), ABORT_GRACE_MS);
      }, Math.max(0, deadline - Date.now()));
    });
    try {
      return await Promise.race([p, late]);
    } finally {
      clearTimeout(timer);
    }
  };
  const restartClock = () => (deadline = idleMs > 0 && idleMs < 2 ** 31 ? Date.now() + idleMs : Infinity);
  let chunks = 0;
  /** What a failed read means: the caller's cancel, the idle limit, a cap, or a dropped connection. */
  const readFailure = (e: unknown): JaxServeError => {
    if (req.signal?.aborted) return new JaxServeError('E_CANCELLED', 'Cancelled.');
    if (idle) return new JaxServeError('E_SERVER', `${url}: nothing complete arrived for ${idleMs / 1000} s (the idle limit) after ${chunks} chunks; the server may be stuck, or sending without finishing.`);
    if (e instanceof JaxServeError) return e;
    return new JaxServeError('E_SERVER', `${url}: the connection broke after ${chunks} chunks (${describeFetchError(e)}); the server may have stopped.`, { cause: e });
  };
  /** E_SERVER for a server's own error text: one clean line in the message, the whole text to the log. */
  const serverError = (what: string, body: string, opts: { contentType?: string; json?: boolean } = {}): JaxServeError => {
    const t = serverText(body, { ...opts, logHint: log.where });
    log.append?.(url, t.full);
    return new JaxServeError('E_SERVER', `${url}: ${what}${t.line}`);
  };
  try {
    let res: Response;
    // The clock runs from the request: a server that never answers is cut off like one that stops.
    restartClock();
    try {
      res = await beforeDeadline(
        fetchImpl(target, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...authHeaders(req.apiKey) },
          body: JSON.stringify(requestBody(req)),
          signal: ac.signal,
        }),
      );
    } catch (e) {
      if (req.signal?.aborted) throw new JaxServeError('E_CANCELLED', 'Cancelled.');
      if (idle) throw new JaxServeError('E_SERVER', `${url}: no answer for ${idleMs / 1000} s (the idle limit); the server may be stuck or busy.`);
      throw new JaxServeError('E_IO', `${url}: ${describeFetchError(e)}. Is the server running and ready?`, { cause: e });
    }
    restartClock();
    const contentType = res.headers.get('content-type') ?? '';
    if (!res.ok) {
      // Only its start is read (the message is there); a body that trickles is cut off at the deadline.
      // A body that cannot be read (corrupt compression, a stall) still leaves the status to report.
      const body = await beforeDeadline(readReply(res, { maxBytes: MAX_SERVER_ERROR_BYTES, over: 'cut', source: url })).catch(() => '');
      if (req.signal?.aborted) throw new JaxServeError('E_CANCELLED', 'Cancelled.');
      throw serverError(`HTTP ${res.status}: `, body.trim() === '' ? `${res.statusText || 'no readable body'}` : body, { contentType });
    }
    const state = { text: '', ids: [] as number[] };
    // A server that does not stream (vLLM's beam search answers once) sends one JSON body.
    if (!contentType.includes('text/event-stream')) {
      let body: string;
      try {
        body = await beforeDeadline(readReply(res, { maxBytes: MAX_SERVER_REPLY_BYTES, over: 'refuse', source: url }));
      } catch (e) {
        throw readFailure(e);
      }
      const j = readServerJson(body);
      if (!j.ok || !isObject(j.value)) throw serverError(`the reply is neither an event stream nor a JSON object${j.ok ? '' : ` (it ${j.why})`}: `, body, { contentType, json: false });
      const o = j.value;
      if (o.error !== undefined && o.error !== null) throw serverError('', body, { contentType });
      // A whole chat reply carries `message` where a chunk carries `delta`.
      const choices = Array.isArray(o.choices) ? o.choices.map((c: unknown) => (isObject(c) ? { ...c, delta: c.delta ?? c.message } : c)) : o.choices;
      yield* chunkEvents(req.api, { ...o, choices }, state);
      return;
    }
    const parser = new SseParser({ source: url });
    const reader = res.body!.getReader();
    let received = 0;
    /** Chunks in a row without text. */
    let empty = 0;
    /** Chunks with text: a server sends at most one a token, so more than max_tokens means it ignores the limit. */
    let withText = 0;
    const textCap = req.maxTokens === undefined ? undefined : req.maxTokens + MAX_TOKENS_SLACK;
    const handle = function* (ev: { type: string; data: string }): Generator<GenerateEvent, boolean> {
      // An SSE `error` event carries the message as its data (JSON in a known shape, or text).
      if (ev.type === 'error') throw serverError(`the server failed mid-stream after ${chunks} chunks: `, ev.data);
      if (ev.data === '[DONE]') return true;
      const j = readServerJson(ev.data);
      if (!j.ok) throw serverError(`chunk ${chunks + 1} ${j.why}: `, ev.data, { json: false });
      if (!isObject(j.value)) throw serverError(`chunk ${chunks + 1} is not a JSON object: `, ev.data, { json: false });
      const chunk = j.value;
      if (chunk.error !== undefined && chunk.error !== null) throw serverError(`the server failed mid-stream after ${chunks} chunks: `, ev.data);
      chunks++;
      const out = chunkEvents(req.api, chunk, state);
      const hasText = out.some((e) => e.kind === 'text');
      empty = hasText ? 0 : empty + 1;
      if (hasText && textCap !== undefined && ++withText > textCap) {
        throw new JaxServeError('E_SERVER', `${url}: the server sent ${withText} chunks of text for max_tokens ${req.maxTokens}; it ignores the limit, so the stream was cut off.`);
      }
      if (empty > MAX_SSE_EMPTY_CHUNKS) throw new JaxServeError('E_SERVER', `${url}: the server sent ${MAX_SSE_EMPTY_CHUNKS} chunks in a row without text (the cap), after ${chunks - empty} chunks with text; it may be sending without end.`);
      yield* out;
      return false;
    };
    try {
      for (;;) {
        let r: Awaited<ReturnType<typeof reader.read>>;
        try {
          r = await beforeDeadline(reader.read());
        } catch (e) {
          throw readFailure(e);
        }
        if (!r.done) {
          received += r.value.length;
          if (received > MAX_SSE_STREAM_BYTES) throw new JaxServeError('E_SERVER', `${url}: the event stream is over ${formatCap(MAX_SSE_STREAM_BYTES)} (the cap on one reply) after ${chunks} chunks; the server may be sending without end.`);
        }
        const events = r.done ? parser.end() : parser.push(r.value);
        for (const ev of events) if (yield* handle(ev)) return;
        // The clock counts the server's time, not the caller's: it starts again after the events are taken.
        if (events.length > 0) restartClock();
        if (r.done) return;
      }
    } finally {
      await reader.cancel().catch(() => undefined);
    }
  } finally {
    req.signal?.removeEventListener('abort', stop);
    ac.abort();
  }
}


/** How long a read may take to end after its request is aborted before it is given up on. */
const ABORT_GRACE_MS = 1000;


/**
 * Runs a generation to its end, handing each event to `onEvent`, and measures it: time to first
 * text and decode speed, on `now` (performance.now by default).
 */
export async function generate(request: GenerateRequest, onEvent: (e: GenerateEvent) => void = () => undefined, fetchImpl: typeof fetch = fetch, now: () => number = () => performance.now()): Promise<GenerateResult> {
  // Resolved here, before the clock starts, so the result can name it (streamGenerate keeps a given name).
  const req = await resolveRequest(request, fetchImpl);
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
      // A loop, not push(...ids): a chunk may carry more ids than a call takes arguments.
      if (e.tokenIds) for (const id of e.tokenIds) (ids ??= []).push(id);
    } else if (e.kind === 'finish') finishReason = e.reason;
    else usage = { ...usage, ...Object.fromEntries(Object.entries(e.usage).filter(([, v]) => v !== undefined)) };
    onEvent(e);
  }
  const end = now();
  const tokens = usage?.completionTokens ?? ids?.length ?? textChunks;
  const decodeMs = first === undefined ? 0 : last - first;
  return {
    model: req.model,
    ...(request.adapter ? { adapter: request.adapter.name } : {}),
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

/**
 * The model ids a server lists at /v1/models (vLLM: the served names; transformers serve: hub
 * ids), as a terminal or a quick pick may show them: no controls, no line breaks.
 */
export async function listModels(baseUrl: string, apiKey?: string, fetchImpl: typeof fetch = fetch, signal?: AbortSignal, log: ServerTextLog = NO_LOG): Promise<string[]> {
  const target = serverRoot(baseUrl) + '/v1/models';
  const url = safeName(target);
  // The time limit covers the body too: a body that trickles is cut off with the request.
  const { ok, status, body, contentType } = await boundedRequest(target, { apiKey, signal, timeoutMs: MODEL_LIST_TIMEOUT_MS }, fetchImpl);
  const fail = (what: string, opts: { json?: boolean } = {}) => {
    const t = serverText(body, { contentType, logHint: log.where, ...opts });
    log.append?.(url, t.full);
    return new JaxServeError('E_SERVER', `${url}: ${what}${t.line}`);
  };
  if (!ok) throw fail(`HTTP ${status}: `);
  const j = readServerJson(body);
  const data = j.ok && isObject(j.value) ? j.value.data : undefined;
  if (!Array.isArray(data)) throw fail(`not a model list${j.ok ? '' : ` (it ${j.why})`}: `, { json: false });
  return data
    .map((m: unknown) => (isObject(m) ? m.id : undefined))
    .filter((id): id is string => typeof id === 'string')
    .map(safeName)
    .filter((id) => id.trim() !== '');
}

/** How long /v1/models may take, body included: it is a short list, answered at once. */
const MODEL_LIST_TIMEOUT_MS = 10_000;

/**
 * Model names read from servers' /v1/models, one per server root: read once, not before every
 * request. Bounded (the oldest goes first); only a name found is kept, so a server that was not up
 * yet is asked again. Forget them when a server may have changed (a new attach, a restart).
 */
export class ServedModels {
  private readonly names = new Map<string, string>();
  constructor(private readonly max = 16) {}

  get(root: string): string | undefined {
    return this.names.get(root);
  }

  set(root: string, name: string): void {
    this.names.delete(root);
    this.names.set(root, name);
    while (this.names.size > this.max) this.names.delete(this.names.keys().next().value!);
  }

  forget(): void {
    this.names.clear();
  }
}

/**
 * The request as sent: its model resolved (modelToSend), and a LoRA adapter turned into what its
 * engine reads (./adapters.ts): the adapter's name as the model (vLLM), `<base>:<name>` (SGLang's
 * OpenAI APIs), or the base model with `lora_path` in the body (SGLang's /generate, SGLang-JAX).
 * The base is the model given, else the first the server lists, as without an adapter. One rule
 * for the CLI, the Serve panel and the editor commands; E_USAGE where the engine cannot select an
 * adapter on that API.
 */
export async function resolveRequest(req: GenerateRequest, fetchImpl: typeof fetch = fetch): Promise<GenerateRequest> {
  if (!req.adapter) return { ...req, model: await modelToSend(req, fetchImpl) };
  const { name, engine } = req.adapter;
  const spec = engineById(engine);
  if (!spec) throw new JaxServeError('E_USAGE', `Unknown engine "${safeName(engine)}" for LoRA adapter "${safeName(name)}".`);
  const how = adapterSelection(spec, req.api, name);
  const plain = { ...req, adapter: undefined };
  const base = how.model === 'name' ? undefined : await modelToSend(plain, fetchImpl);
  const model = how.model === 'name' ? name : how.model === 'base:name' ? `${base}:${name}` : base;
  return { ...plain, model, loraPath: how.loraPath ? name : undefined };
}

/**
 * The model an OpenAI-compatible request sends: one rule for the CLI, the Serve panel, Attach and
 * the editor commands. SGLang-JAX refuses a request without one: its `CompletionRequest` and
 * `ChatCompletionRequest` declare `model: str` with no default
 * (sgl_jax/srt/entrypoints/openai/protocol.py at cddbf6f1), and the GPU run of 2026-12-04 got HTTP
 * 400 "Field required" from both (../shared/gpu-kit/README.md). So the name given is sent, else the
 * first id the server lists at /v1/models: SGLang and SGLang-JAX list their one served name
 * (http_server.py `available_models`), vLLM its base model before any LoRA adapter. transformers
 * serve lists the models of the local Hugging Face cache, not the folder it serves (an empty list
 * with an empty cache, seen on 5.23): there the folder must be given, as a server we start gives it.
 * SGLang's native /generate takes no model and nothing is read for it.
 */
export async function modelToSend(req: GenerateRequest, fetchImpl: typeof fetch = fetch): Promise<string | undefined> {
  if (req.api === 'sglang-generate') return req.model;
  if (req.model !== undefined && req.model.trim() !== '') return req.model;
  const root = serverRoot(req.baseUrl);
  const known = req.servedModels?.get(root);
  if (known !== undefined) return known;
  const hint = req.modelHint ?? 'give the model name';
  let ids: string[];
  try {
    ids = await listModels(root, req.apiKey, fetchImpl, req.signal, req.log);
  } catch (e) {
    if (req.signal?.aborted) throw new JaxServeError('E_CANCELLED', 'Cancelled.');
    if (!(e instanceof JaxServeError)) throw e;
    // One line: the list's failure, then what to do about it.
    const said = /[.?!)]$/.test(e.message) ? e.message : `${e.message}.`;
    // A server that wants a key refuses every request without it: a model name would not help.
    if (e.code === 'E_SERVER' && /\/v1\/models: HTTP 40[13]: /.test(e.message)) {
      const keyHint = req.apiKeyHint ?? 'give the API key it was started with';
      throw new JaxServeError(e.code, `${said} The server asks for an API key${req.apiKey ? ' and refused the one given' : ''}: ${keyHint}.`, { cause: e });
    }
    throw new JaxServeError(e.code, `${said} No model name was given and the server's list could not be read: ${hint}.`, { cause: e });
  }
  const first = ids[0];
  if (first === undefined) throw new JaxServeError('E_SERVER', `${safeName(root)}/v1/models lists no model, and the request needs a model name: ${hint}.`);
  req.servedModels?.set(root, first);
  return first;
}
