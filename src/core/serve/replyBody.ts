/**
 * A server's reply read whole, with a byte cap applied while it streams: reading stops at the cap
 * and the request is cancelled, so an endless body costs no more than the cap (never `res.text()`,
 * which reads to the end, however far that is).
 */
import { JaxServeError } from '../errors';
import { formatCap } from './sse';

export interface ReadReplyOptions {
  /** Bytes kept at most. */
  readonly maxBytes: number;
  /**
   * Past the cap: 'cut' keeps the first `maxBytes` (an error body, whose message is at its start;
   * a read that fails keeps what arrived too); 'refuse' throws E_SERVER naming `source`.
   */
  readonly over: 'cut' | 'refuse';
  /** The URL, for the error. */
  readonly source: string;
}

/** The body's text (invalid UTF-8 replaced), read up to the cap. Read failures reject as they came, unless 'cut'. */
export async function readReply(res: Response, opts: ReadReplyOptions): Promise<string> {
  const reader = res.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      let r: Awaited<ReturnType<typeof reader.read>>;
      try {
        r = await reader.read();
      } catch (e) {
        if (opts.over === 'cut') break;
        throw e;
      }
      if (r.done) break;
      if (total + r.value.length > opts.maxBytes) {
        if (opts.over === 'refuse') throw new JaxServeError('E_SERVER', `${opts.source}: the reply is over ${formatCap(opts.maxBytes)} (the cap on a whole reply); the server may be sending without end.`);
        chunks.push(r.value.subarray(0, opts.maxBytes - total));
        total = opts.maxBytes;
        break;
      }
      chunks.push(r.value);
      total += r.value.length;
    }
  } finally {
    // Stops the transfer (the connection is dropped) when the body did not end by itself.
    await reader.cancel().catch(() => undefined);
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return new TextDecoder('utf-8').decode(bytes);
}
