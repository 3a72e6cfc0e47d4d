/**
 * A Server-Sent Events parser (the WHATWG EventSource rules): bytes in as they arrive, events out.
 * Lines end in LF, CRLF or CR (a CR at the end of a read waits for the next one); `:` lines are
 * comments; `data` lines of one event join with LF; a blank line ends the event; an event with no
 * data is not dispatched; a BOM at the start of the stream is dropped.
 *
 * Work is linear in the bytes received: each read is scanned once for line ends from where the last
 * one stopped, and the unfinished line is copied into a buffer that grows by doubling (a parser that
 * re-scans the pending line on every read took 109 s over one 50 MB line). Lines are cut at ASCII
 * CR/LF bytes, which never occur inside a UTF-8 sequence, and each is decoded whole, so UTF-8 split
 * across reads decodes as one stream would. A line, or the bytes before an event completes, over
 * its cap ends the stream with E_SERVER naming the source.
 */
import { JaxServeError } from '../errors';
import { MAX_SSE_EVENT_BYTES, MAX_SSE_LINE_BYTES } from '../limits';

export interface SseEvent {
  /** The `event` field, 'message' when absent. */
  readonly type: string;
  readonly data: string;
  readonly id?: string;
}

export interface SseParserOptions {
  /** What the stream is, for errors (the URL). */
  readonly source?: string;
  /** Bytes of one line (default MAX_SSE_LINE_BYTES). */
  readonly maxLineBytes?: number;
  /** Bytes received without completing an event (default MAX_SSE_EVENT_BYTES). */
  readonly maxEventBytes?: number;
}

/** "16 MiB" for a byte count that is a whole number of MiB, else bytes. */
export function formatCap(bytes: number): string {
  return bytes >= 1 << 20 && bytes % (1 << 20) === 0 ? `${bytes / (1 << 20)} MiB` : bytes % 1024 === 0 && bytes >= 1024 ? `${bytes / 1024} KiB` : `${bytes} bytes`;
}

export class SseParser {
  /** Decodes the first line (a BOM at its start is the stream's, and dropped). */
  private readonly firstDecoder = new TextDecoder('utf-8');
  /** Decodes every later line (U+FEFF there is text). Invalid UTF-8 becomes U+FFFD, as in EventSource. */
  private readonly decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  private first = true;
  /** The unfinished line: the tails of earlier reads, copied into one buffer that grows by doubling. */
  private pending = new Uint8Array(0);
  private pendingBytes = 0;
  /** Bytes of complete lines since the last dispatched event. */
  private sinceEvent = 0;
  private data: string[] = [];
  private type = '';
  private id: string | undefined;
  /** The last read ended in CR: an LF that starts the next read belongs to it. */
  private afterCr = false;
  /** Set when a cap tripped: the events before it were returned; every later call throws this. */
  private failure: JaxServeError | undefined;
  private examined = 0;
  private readonly source: string;
  private readonly maxLine: number;
  private readonly maxEvent: number;

  constructor(opts: SseParserOptions = {}) {
    this.source = opts.source ?? 'the event stream';
    this.maxLine = opts.maxLineBytes ?? MAX_SSE_LINE_BYTES;
    this.maxEvent = opts.maxEventBytes ?? MAX_SSE_EVENT_BYTES;
  }

  /**
   * Bytes looked at so far: scanned for line ends, copied (growing the buffer included) and
   * decoded. At most six times the bytes pushed, however they are split (the tests hold the
   * parser to that).
   */
  get bytesExamined(): number {
    return this.examined;
  }

  /**
   * Feeds one read; returns the events it completed. When a line or an event goes over its cap, the
   * events completed before it are returned and this call or the next throws E_SERVER.
   */
  push(bytes: Uint8Array): SseEvent[] {
    if (this.failure) throw this.failure;
    const out: SseEvent[] = [];
    const n = bytes.length;
    let start = 0;
    if (this.afterCr && n > 0) {
      this.afterCr = false;
      if (bytes[0] === 10) start = 1;
    }
    // The next LF and CR from where the scan stands (native searches; -1: none left in this read).
    let lf = -2;
    let cr = -2;
    for (;;) {
      if (lf !== -1 && lf < start) lf = bytes.indexOf(10, start);
      if (cr !== -1 && cr < start) cr = bytes.indexOf(13, start);
      const end = lf < 0 ? cr : cr < 0 ? lf : Math.min(lf, cr);
      if (end < 0) break;
      // Counted before the line is read: a blank line that dispatches an event sets it back to 0.
      this.sinceEvent += this.pendingBytes + end + 1 - start;
      if (!this.endLine(bytes.subarray(start, end), out)) return this.fail(out);
      let next = end + 1;
      if (bytes[end] === 13) {
        if (next === n) this.afterCr = true;
        else if (bytes[next] === 10) next++;
      }
      start = next;
    }
    // Each byte is passed by the LF search and the CR search once.
    this.examined += 2 * n;
    if (start < n) {
      this.append(bytes.subarray(start));
      if (this.pendingBytes > this.maxLine) {
        this.failure = this.lineError();
        return this.fail(out);
      }
    }
    if (this.sinceEvent + this.pendingBytes > this.maxEvent) {
      this.failure = new JaxServeError('E_SERVER', `${this.source}: the server sent over ${formatCap(this.maxEvent)} without completing an event (the cap on one event); it may be sending without end.`);
      return this.fail(out);
    }
    return out;
  }

  /** Adds to the unfinished line, growing its buffer by doubling (each byte is copied O(1) times overall). */
  private append(tail: Uint8Array): void {
    const need = this.pendingBytes + tail.length;
    if (need > this.pending.length) {
      const grown = new Uint8Array(Math.max(need, this.pending.length * 2, 256));
      grown.set(this.pending.subarray(0, this.pendingBytes));
      this.examined += this.pendingBytes;
      this.pending = grown;
    }
    this.pending.set(tail, this.pendingBytes);
    this.pendingBytes = need;
    this.examined += tail.length;
  }

  /** The stream ended: an unfinished line and an event without its blank line are dropped, as EventSource drops them. */
  end(): SseEvent[] {
    if (this.failure) throw this.failure;
    this.pending = new Uint8Array(0);
    this.pendingBytes = 0;
    this.data = [];
    return [];
  }

  /** Returns what completed before a cap tripped; throws at once when nothing did. */
  private fail(out: SseEvent[]): SseEvent[] {
    this.pending = new Uint8Array(0);
    this.pendingBytes = 0;
    if (out.length === 0) throw this.failure!;
    return out;
  }

  private lineError(): JaxServeError {
    return new JaxServeError('E_SERVER', `${this.source}: a line of the event stream is over ${formatCap(this.maxLine)} (the cap on one line); the server may be sending without end.`);
  }

  /** Ends the line whose last part is `tail`; false when it is over the cap. */
  private endLine(tail: Uint8Array, out: SseEvent[]): boolean {
    if (this.pendingBytes + tail.length > this.maxLine) {
      this.failure = this.lineError();
      return false;
    }
    let bytes = tail;
    if (this.pendingBytes > 0) {
      this.append(tail);
      bytes = this.pending.subarray(0, this.pendingBytes);
      this.pendingBytes = 0;
    }
    this.examined += bytes.length;
    const line = (this.first ? this.firstDecoder : this.decoder).decode(bytes);
    this.first = false;
    // A long line's buffer is let go; a short one is kept for the next line.
    if (this.pending.length > 64 * 1024) this.pending = new Uint8Array(0);
    this.line(line, out);
    return true;
  }

  private line(line: string, out: SseEvent[]): void {
    if (line === '') {
      if (this.data.length > 0) {
        out.push({ type: this.type || 'message', data: this.data.join('\n'), ...(this.id !== undefined ? { id: this.id } : {}) });
        this.sinceEvent = 0;
      }
      this.data = [];
      this.type = '';
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.type = value;
    else if (field === 'id' && !value.includes('\0')) this.id = value;
  }
}
