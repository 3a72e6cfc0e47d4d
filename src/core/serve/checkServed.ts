/**
 * `jax-serve check-served`, the part that decides: what to send a server for a greedy, non-streamed
 * generation with logprobs; what its reply says (text, token ids, logprobs); and whether the tokens
 * it generated are the tokens the export's reference picks when fed the same sequence (teacher
 * forcing: python/verify/jax_serve_verify.py `served` gives the reference's numbers). Pure: no
 * Node built-ins, no I/O, so every rule here is tested with fixed numbers.
 *
 * Non-streamed on purpose: SGLang-JAX's streamed /generate repeats the ids and logprobs of earlier
 * chunks in `meta_info.output_token_logprobs` (recorded-2026-12-04/t-generate.sse: the second chunk
 * carries 3 entries for 2 tokens), so only a whole reply gives one entry per token.
 */
import { isObject } from '../json';
import type { GenerateApi } from './generate';

/** Prompts used when none are given: short, plain, and different in length (as verify's). */
export const CHECK_PROMPTS: readonly string[] = ['The quick brown fox jumps over the lazy dog.', 'Once upon a time', 'def add(a, b):\n    return'];

export const CHECK_MAX_TOKENS = 16;

/** The body of one greedy, non-streamed request, with logprobs where the API has them. */
export function checkRequestBody(api: GenerateApi, prompt: string, maxTokens: number, model: string | undefined): Record<string, unknown> {
  // SGLang's native API (serving-engines.md §2.3): `return_logprob` gives
  // meta_info.output_token_logprobs as [logprob, id, text] per generated token.
  if (api === 'sglang-generate') return { text: prompt, stream: false, return_logprob: true, sampling_params: { max_new_tokens: maxTokens, temperature: 0 } };
  // Only fields every OpenAI-compatible server here knows: `logprobs` is in the OpenAI schema, which
  // transformers serve accepts and ignores (its UNUSED_*_FIELDS), while an unknown key such as
  // vLLM's `return_token_ids` is refused with 422 (test/fixtures/transcripts/transformers-422-unexpected-fields.json).
  const common = { ...(model === undefined ? {} : { model }), stream: false, max_tokens: maxTokens, temperature: 0 };
  return api === 'chat' ? { ...common, messages: [{ role: 'user', content: prompt }], logprobs: true } : { ...common, prompt, logprobs: 1 };
}

/** What one reply says about the generation. */
export interface ServedReply {
  readonly text: string;
  /** The server's token ids, when it sends them (SGLang /generate; vLLM's token_ids). */
  readonly ids: readonly number[] | undefined;
  /** One logprob per generated token, when the server sends them. */
  readonly logprobs: readonly number[] | undefined;
  /**
   * The text of each generated token, from the OpenAI logprobs (`tokens`, `content[].token`): with
   * no ids, they keep what the text drops, such as a special token skipped in decoding.
   */
  readonly tokens?: readonly string[];
  readonly finishReason: string | undefined;
  /** Prompt tokens as the server counted them. */
  readonly promptTokens: number | undefined;
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
/**
 * Token ids as sent: absent (null or missing) is undefined; a list of integers is kept as it is, a
 * negative or too-large one included, so the reference refuses it by name (outside the vocabulary)
 * rather than the check quietly re-tokenising the text; anything else is no reply at all (null).
 */
const ints = (v: unknown): number[] | undefined | null => (v === undefined || v === null ? undefined : Array.isArray(v) && v.every((x) => Number.isSafeInteger(x)) ? (v as number[]) : null);

/** Reads a non-streamed reply; undefined when it has none of the shapes the APIs answer with. */
export function parseCheckReply(api: GenerateApi, body: unknown): ServedReply | undefined {
  if (!isObject(body)) return undefined;
  if (api === 'sglang-generate') {
    if (typeof body.text !== 'string') return undefined;
    const meta = isObject(body.meta_info) ? body.meta_info : {};
    const entries = Array.isArray(meta.output_token_logprobs) ? meta.output_token_logprobs : undefined;
    const logprobs = entries?.every((e) => Array.isArray(e) && finite(e[0])) ? entries.map((e) => (e as number[])[0]!) : undefined;
    const finish = isObject(meta.finish_reason) ? meta.finish_reason.type : meta.finish_reason;
    const ids = ints(body.output_ids);
    if (ids === null) return undefined;
    return { text: body.text, ids, logprobs, finishReason: typeof finish === 'string' ? finish : undefined, promptTokens: finite(meta.prompt_tokens) ? meta.prompt_tokens : undefined };
  }
  const choice = Array.isArray(body.choices) && isObject(body.choices[0]) ? body.choices[0] : undefined;
  if (!choice) return undefined;
  const text = api === 'chat' ? (isObject(choice.message) ? choice.message.content : undefined) : choice.text;
  if (typeof text !== 'string') return undefined;
  // Completions: logprobs.token_logprobs; chat: logprobs.content[].logprob (OpenAI's shapes).
  const lp = isObject(choice.logprobs) ? choice.logprobs : undefined;
  const raw = api === 'chat' ? (Array.isArray(lp?.content) ? lp.content.map((c: unknown) => (isObject(c) ? c.logprob : undefined)) : undefined) : lp?.token_logprobs;
  const logprobs = Array.isArray(raw) && raw.length > 0 && raw.every(finite) ? (raw as number[]) : undefined;
  const rawTokens = api === 'chat' ? (Array.isArray(lp?.content) ? lp.content.map((c: unknown) => (isObject(c) ? c.token : undefined)) : undefined) : lp?.tokens;
  const tokens = Array.isArray(rawTokens) && rawTokens.length > 0 && rawTokens.every((t) => typeof t === 'string') ? (rawTokens as string[]) : undefined;
  const usage = isObject(body.usage) ? body.usage : {};
  const ids = ints(choice.token_ids);
  if (ids === null) return undefined;
  return { text, ids, logprobs, ...(tokens ? { tokens } : {}), finishReason: typeof choice.finish_reason === 'string' ? choice.finish_reason : undefined, promptTokens: finite(usage.prompt_tokens) ? usage.prompt_tokens : undefined };
}

/**
 * Why a reply cannot be a generation of at most `maxTokens` tokens, or undefined: a server that sends
 * more ids or logprobs than it was asked for did not honour the request, and comparing its extra
 * tokens would blame the export for it.
 */
export function overLength(reply: ServedReply, maxTokens: number): string | undefined {
  const n = Math.max(reply.ids?.length ?? 0, reply.logprobs?.length ?? 0, reply.tokens?.length ?? 0);
  return n > maxTokens ? `the reply has ${n} tokens, but the request asked for at most ${maxTokens}: the server did not honour its length limit` : undefined;
}

/** The reference's view of one prompt (python/verify/jax_serve_verify.py `served`). */
export interface ReferenceRow {
  readonly promptIds: readonly number[];
  /** The generated ids compared: the server's, or recovered from its text. */
  readonly ids: readonly number[];
  readonly idsFrom: 'server' | 'text';
  /** n + 1 entries: the reference's pick for each generated token, then for the one after the last. */
  readonly argmax: readonly number[];
  /** n + 1: top logit minus the second. */
  readonly margin: readonly number[];
  /** n + 1: |top logit|, the scale the serving dtype resolves at. */
  readonly topLogit: readonly number[];
  /** n: top logit minus the logit of the server's token (0 where they agree). */
  readonly gap: readonly number[];
  /** n: the reference's log-softmax of the server's token. */
  readonly logprob: readonly number[];
  readonly tokenText: readonly string[];
  readonly argmaxText: readonly string[];
  readonly eos: readonly number[];
  /** n + 1: characters of the decoded text before each generated token (and the whole, last). */
  readonly prefixChars?: readonly number[];
}

export type ServingDtype = 'float32' | 'bfloat16' | 'float16';

/** The dtype named in a config.json or by --dtype, as one of the three a server computes in. */
export function servingDtype(name: string | undefined): ServingDtype | undefined {
  const n = (name ?? '').toLowerCase().replace(/^torch\./, '');
  if (n === 'float32' || n === 'fp32' || n === 'f32') return 'float32';
  if (n === 'bfloat16' || n === 'bf16') return 'bfloat16';
  if (n === 'float16' || n === 'fp16' || n === 'f16' || n === 'half') return 'float16';
  return undefined;
}

/**
 * The smallest logit gap a server computing in `dtype` is sure to resolve, for a logit of size
 * `scale`. bfloat16 keeps 8 significant bits: one step of a logit of size L is 2⁻⁷·L, rounding
 * moves it by up to half that, 2⁻⁸·L, and two logits each rounded (and summed in different orders
 * by different kernels) can swap when they are that close: 2⁻⁸·L. float16 keeps 11 bits: 2⁻¹¹·L
 * by the same count. float32 keeps 24 bits (2⁻²⁴ per rounding), but a logit is a dot product over
 * the hidden size after tens of layers, each summed in a kernel's own order: relative error grows
 * to ~1e-6..1e-5 in practice (verify's max |Δlogit| on the canonical export is 3e-6 at |L| ≈ 1), so
 * 1e-4·L leaves a margin of ten for larger models and still calls any real difference a failure.
 * A floor of 1 on the scale keeps logits near zero from making the bound vanish.
 */
export function nearTieBound(dtype: ServingDtype, scale: number): number {
  const rel = dtype === 'bfloat16' ? 2 ** -8 : dtype === 'float16' ? 2 ** -11 : 1e-4;
  return rel * Math.max(1, Math.abs(scale));
}

/**
 * How far a server's logprob may be from the reference's before it is worth a warning (nats).
 * A logprob is a logit minus log-sum-exp; both carry the logit error above, so for logits of size
 * ~10 (typical) bfloat16 gives 2⁻⁸·10 ≈ 0.04 on each side: 0.1 covers that; float16 0.02; float32
 * 1e-3 (the kernels' ~1e-5 relative error, plus a server's own log-softmax in float32).
 */
export function logprobBound(dtype: ServingDtype): number {
  return dtype === 'bfloat16' ? 0.1 : dtype === 'float16' ? 0.02 : 1e-3;
}

export interface NearTie {
  readonly index: number;
  /** The reference's top-2 margin there, and the gap to the server's token. */
  readonly margin: number;
  readonly gap: number;
  readonly bound: number;
}

export interface LogprobWarning {
  readonly index: number;
  readonly server: number;
  readonly reference: number;
  readonly delta: number;
}

export interface Divergence {
  readonly index: number;
  /** The server's token (undefined where the server stopped: it generated an end instead). */
  readonly serverId: number | undefined;
  readonly serverText: string;
  readonly referenceId: number;
  readonly referenceText: string;
  /** The reference's top-2 margin there, and the gap to the server's token (undefined at a stop). */
  readonly margin: number;
  readonly gap: number | undefined;
  readonly bound: number;
  readonly why: 'token' | 'stopped-early';
}

export interface PromptCheck {
  readonly prompt: string;
  /** Every generated token equals the reference's pick (near-ties count as differing here). */
  readonly tokensEqual: boolean;
  /** 0-based index among the generated tokens of the first that differs, near-tie or not; null if none. */
  readonly firstDivergence: number | null;
  /** The first divergence that is not a near-tie (a failure), or null. */
  readonly failure: Divergence | null;
  readonly nearTies: readonly NearTie[];
  /** Max |server logprob − reference logprob| over the tokens; null when the server sent no logprobs. */
  readonly maxAbsLogprobDelta: number | null;
  readonly logprobWarnings: readonly LogprobWarning[];
  readonly logprobBound: number;
  /** Generated tokens compared. */
  readonly compared: number;
  readonly idsFrom: 'server' | 'text';
  readonly finishReason: string | undefined;
  /** Notes worth reading: a prompt tokenised differently, logprobs that cannot be aligned. */
  readonly notes: readonly string[];
  /** With --entry: the first index where the JAX forward's argmax differs from the server's token beyond a near-tie, or null. */
  readonly jaxFirstDisagreement?: number | null;
  /** The server's text. */
  readonly text: string;
  /** Characters of `text` the first divergence spans ([start, end); empty at a stop), when known. */
  readonly divergenceSpan?: readonly [number, number];
  /** No failure: tokens equal up to near-ties, the stop agrees, and the JAX forward agrees where run. */
  readonly ok: boolean;
}

export interface CompareOptions {
  readonly prompt: string;
  readonly dtype: ServingDtype;
  readonly maxTokens: number;
  /** The JAX entry point's argmax at the same n + 1 positions, with --entry. */
  readonly jaxArgmax?: readonly number[];
}

/** Teacher-forced comparison of one prompt's generation with the reference's picks. */
export function compareServed(reply: ServedReply, ref: ReferenceRow, o: CompareOptions): PromptCheck {
  const n = ref.ids.length;
  const notes: string[] = [];
  const nearTies: NearTie[] = [];
  let firstDivergence: number | null = null;
  let failure: Divergence | null = null;
  const eos = new Set(ref.eos);
  for (let i = 0; i < n && failure === null; i++) {
    const s = ref.ids[i]!;
    const a = ref.argmax[i]!;
    if (s === a) continue;
    firstDivergence ??= i;
    const bound = nearTieBound(o.dtype, ref.topLogit[i]!);
    const gap = ref.gap[i]!;
    // The gap to the server's own token decides (it is the top-2 margin when the server took the
    // runner-up): a kernel can swap two logits that close; teacher forcing already fed the
    // server's token on, so the rest is compared as it is.
    if (gap <= bound) nearTies.push({ index: i, margin: ref.margin[i]!, gap, bound });
    else failure = { index: i, serverId: s, serverText: ref.tokenText[i] ?? '', referenceId: a, referenceText: ref.argmaxText[i] ?? '', margin: ref.margin[i]!, gap, bound, why: 'token' };
  }
  // A server that ended by itself before max tokens generated an end where the reference, after
  // the same tokens, picks this. (One whose last id is an end token had it compared above.)
  // Ids the server sent count its tokens exactly: fewer than asked is a stop, whatever its finish
  // reason says ("length" over an empty reply, or none at all). Ids re-tokenised from text may
  // merge differently, so there only the server's word counts.
  const stopped = reply.finishReason === 'stop' || reply.finishReason === 'eos_token' || (ref.idsFrom === 'server' && n < o.maxTokens);
  if (failure === null && stopped && n < o.maxTokens && !(n > 0 && eos.has(ref.ids[n - 1]!))) {
    const a = ref.argmax[n]!;
    if (!eos.has(a)) {
      firstDivergence ??= n;
      failure = { index: n, serverId: undefined, serverText: '', referenceId: a, referenceText: ref.argmaxText[n] ?? '', margin: ref.margin[n]!, gap: undefined, bound: nearTieBound(o.dtype, ref.topLogit[n]!), why: 'stopped-early' };
    }
  }
  const lpBound = logprobBound(o.dtype);
  let maxAbsLogprobDelta: number | null = null;
  const logprobWarnings: LogprobWarning[] = [];
  if (reply.logprobs) {
    if (reply.logprobs.length !== n) notes.push(`the server sent ${reply.logprobs.length} logprobs for ${n} tokens${ref.idsFrom === 'text' ? ' (ids re-tokenised from its text)' : ''}; logprobs not compared`);
    else {
      maxAbsLogprobDelta = 0;
      for (let i = 0; i < n; i++) {
        const delta = Math.abs(reply.logprobs[i]! - ref.logprob[i]!);
        maxAbsLogprobDelta = Math.max(maxAbsLogprobDelta, delta);
        if (delta > lpBound) logprobWarnings.push({ index: i, server: reply.logprobs[i]!, reference: ref.logprob[i]!, delta });
      }
    }
  }
  if (reply.promptTokens !== undefined && reply.promptTokens !== ref.promptIds.length) {
    notes.push(`the server counted ${reply.promptTokens} prompt tokens, the export's tokenizer ${ref.promptIds.length}`);
  }
  if (ref.idsFrom === 'text') notes.push('token ids re-tokenised from the text (the server sent none)');
  let jaxFirstDisagreement: number | null | undefined;
  if (o.jaxArgmax) {
    jaxFirstDisagreement = null;
    for (let i = 0; i < n; i++) {
      const j = o.jaxArgmax[i];
      if (j === ref.ids[i]) continue;
      // The JAX forward runs in float32 on the same tokens: its pick may swap a near-tie the
      // reference resolved, nothing more.
      if (j === ref.argmax[i] && ref.gap[i]! <= nearTieBound(o.dtype, ref.topLogit[i]!)) continue;
      if (ref.margin[i]! <= nearTieBound('float32', ref.topLogit[i]!) && ref.ids[i] === ref.argmax[i]) continue;
      jaxFirstDisagreement = i;
      break;
    }
  }
  return {
    prompt: o.prompt,
    tokensEqual: firstDivergence === null,
    firstDivergence,
    failure,
    nearTies,
    maxAbsLogprobDelta,
    logprobWarnings,
    logprobBound: lpBound,
    compared: n,
    idsFrom: ref.idsFrom,
    finishReason: reply.finishReason,
    notes,
    ...(jaxFirstDisagreement === undefined ? {} : { jaxFirstDisagreement }),
    text: reply.text,
    ...(firstDivergence !== null && ref.prefixChars?.[firstDivergence] !== undefined
      ? { divergenceSpan: [Math.min(ref.prefixChars[firstDivergence]!, reply.text.length), Math.min(ref.prefixChars[firstDivergence + 1] ?? reply.text.length, reply.text.length)] as const }
      : {}),
    ok: failure === null && (jaxFirstDisagreement ?? null) === null,
  };
}

export interface CheckReport {
  readonly ok: boolean;
  readonly url: string;
  readonly source: string;
  readonly api: GenerateApi;
  readonly model: string | undefined;
  readonly dtype: ServingDtype;
  readonly prompts: readonly PromptCheck[];
}

/** The argmax of each row of a (rows × vocab) logits array. */
export function argmaxRows(values: ArrayLike<number>, vocab: number): number[] {
  const out: number[] = [];
  for (let r = 0; r * vocab < values.length; r++) {
    let best = 0;
    for (let k = 1; k < vocab; k++) if (values[r * vocab + k]! > values[r * vocab + best]!) best = k;
    out.push(best);
  }
  return out;
}

const quote = (s: string) => JSON.stringify(s);
const short = (s: string) => (s.length > 40 ? s.slice(0, 37) + '...' : s);

/** One prompt's verdict in one line (raw text: the CLI escapes it, the panel sets it as text). */
export function describePromptCheck(p: PromptCheck, dtype: ServingDtype): string {
  const parts = [`${quote(short(p.prompt))}: ${p.compared} tokens compared`];
  const f = p.failure;
  if (f?.why === 'token') parts.push(`diverges at token ${f.index}: the reference picks ${quote(f.referenceText)} (id ${f.referenceId}), the server ${quote(f.serverText)} (id ${f.serverId}); the reference's top-2 margin there is ${f.margin.toPrecision(3)}, its gap to the server's token ${f.gap!.toPrecision(3)} (over the ${dtype} near-tie bound ${f.bound.toPrecision(2)})`);
  else if (f?.why === 'stopped-early') parts.push(`the server stopped after token ${f.index - 1}; the reference goes on with ${quote(f.referenceText)} (id ${f.referenceId}, margin ${f.margin.toPrecision(3)})`);
  else parts.push(p.tokensEqual ? 'all equal' : 'equal up to near-ties');
  for (const t of p.nearTies) parts.push(`near-tie at token ${t.index} (gap ${t.gap.toPrecision(2)} ≤ ${t.bound.toPrecision(2)}), kept the server's token`);
  if (p.maxAbsLogprobDelta !== null) parts.push(`max |Δlogprob| ${p.maxAbsLogprobDelta.toExponential(2)}`);
  for (const w of p.logprobWarnings.slice(0, 3)) parts.push(`warning: logprob at token ${w.index} is ${w.server.toFixed(4)}, the reference ${w.reference.toFixed(4)} (Δ ${w.delta.toExponential(2)} > ${p.logprobBound})`);
  if (p.logprobWarnings.length > 3) parts.push(`${p.logprobWarnings.length - 3} more logprob warnings (--json lists them)`);
  if (p.jaxFirstDisagreement !== undefined && p.jaxFirstDisagreement !== null) parts.push(`the JAX forward disagrees at token ${p.jaxFirstDisagreement}`);
  parts.push(...p.notes);
  return parts.join('; ');
}
