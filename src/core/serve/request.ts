/**
 * One way to reach a server: its root (the URL a user typed, normalised once: no trailing `/`, no
 * `/v1`, so `…:8000/v1` and `…:8000` are one server, and /metrics is never asked at /v1/metrics),
 * its auth header, and one bounded request. The body is read up to a byte cap while it arrives
 * (readReply stops there and drops the connection), under a time limit and the caller's signal.
 */
import { JaxServeError } from '../errors';
import { MAX_SERVER_ERROR_BYTES, MAX_SERVER_REPLY_BYTES } from '../limits';
import { safeName } from '../text';
import { readReply } from './replyBody';

/** The server's root: http://host:port, whatever of `/`, `/v1` or `/v1/` the user added. */
export function serverRoot(url: string): string {
  return url.trim().replace(/\/+$/, '').replace(/\/v1$/, '');
}

/** `Authorization: Bearer …` when there is a key; nothing otherwise. */
export function authHeaders(apiKey: string | undefined): Record<string, string> {
  return apiKey ? { authorization: `Bearer ${apiKey}` } : {};
}

export interface BoundedRequestOptions {
  readonly method?: 'GET' | 'POST';
  /** Sent as JSON. */
  readonly json?: unknown;
  readonly apiKey?: string;
  /** The caller's cancel: E_CANCELLED. */
  readonly signal?: AbortSignal;
  /** The time limit on the whole request, body included. */
  readonly timeoutMs: number;
  /** Bytes of a 2xx body; over it the request is refused (E_SERVER). Default MAX_SERVER_REPLY_BYTES. */
  readonly maxBytes?: number;
}

export interface BoundedReply {
  readonly status: number;
  readonly ok: boolean;
  /** A 2xx body whole, or the start of an error body (its message is there). */
  readonly body: string;
  readonly contentType: string | undefined;
}

/**
 * One request whose reply is read with a cap: E_IO when the server cannot be reached, E_SERVER when
 * the body breaks off or a 2xx body goes over `maxBytes`, E_CANCELLED when `signal` aborts.
 */
export async function boundedRequest(target: string, o: BoundedRequestOptions, fetchImpl: typeof fetch = fetch): Promise<BoundedReply> {
  const url = safeName(target);
  const timeout = AbortSignal.timeout(o.timeoutMs);
  const signal = o.signal ? AbortSignal.any([o.signal, timeout]) : timeout;
  const cancelled = () => new JaxServeError('E_CANCELLED', 'Cancelled.');
  let res: Response;
  try {
    res = await fetchImpl(target, {
      method: o.method ?? (o.json === undefined ? 'GET' : 'POST'),
      headers: { ...(o.json === undefined ? {} : { 'content-type': 'application/json' }), ...authHeaders(o.apiKey) },
      ...(o.json === undefined ? {} : { body: JSON.stringify(o.json) }),
      signal,
    });
  } catch (e) {
    if (o.signal?.aborted) throw cancelled();
    throw new JaxServeError('E_IO', `${url}: ${describeFetchError(e)}. Is the server running and ready?`, { cause: e });
  }
  try {
    const body = await readReply(res, res.ok ? { maxBytes: o.maxBytes ?? MAX_SERVER_REPLY_BYTES, over: 'refuse', source: url } : { maxBytes: MAX_SERVER_ERROR_BYTES, over: 'cut', source: url });
    return { status: res.status, ok: res.ok, body, contentType: res.headers.get('content-type') ?? undefined };
  } catch (e) {
    if (o.signal?.aborted) throw cancelled();
    if (e instanceof JaxServeError) throw e;
    throw new JaxServeError('E_SERVER', `${url}: the reply broke off (${describeFetchError(e)}).`, { cause: e });
  }
}

/** What Node's HTTP client (undici, llhttp) means by its error codes, in words. */
const FETCH_ERRORS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'the connection was refused',
  ECONNRESET: 'the connection was reset',
  ENOTFOUND: 'the host name does not resolve',
  ETIMEDOUT: 'the connection timed out',
  EHOSTUNREACH: 'the host cannot be reached',
  UND_ERR_SOCKET: 'the connection closed before a whole reply arrived (or the reply began with an informational 1xx status Node does not take)',
  UND_ERR_HEADERS_OVERFLOW: "the reply's headers are larger than Node accepts",
  UND_ERR_HEADERS_TIMEOUT: 'the reply\'s headers did not arrive in time',
  UND_ERR_BODY_TIMEOUT: 'the reply\'s body stopped arriving',
  UND_ERR_CONNECT_TIMEOUT: 'the connection timed out',
  UND_ERR_CLOSED: 'the connection was closed',
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: 'the reply is shorter or longer than its content-length',
};

export function describeFetchError(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code;
  if (code && FETCH_ERRORS[code]) return FETCH_ERRORS[code]!;
  // llhttp's parse errors (HPE_…): the bytes that came back are not HTTP this client can read.
  if ((code && code.startsWith('HPE_')) || /\bHPE_[A-Z_]+/.test(cause?.message ?? '')) return 'the reply is not valid HTTP (a malformed status line, header or chunk)';
  if (code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR') return 'the reply\'s compressed body is corrupt';
  // || not ??: undici's network errors can carry an empty message (a 407 answer is one).
  return safeName(String(cause?.message || (e instanceof Error ? e.message : String(e)) || code || 'the request failed')).slice(0, 200);
}
