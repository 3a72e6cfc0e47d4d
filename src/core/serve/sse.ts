/**
 * A Server-Sent Events parser (the WHATWG EventSource rules): bytes in as they arrive, events out.
 * UTF-8 split across reads is carried over; lines end in LF, CRLF or CR (a CR at the end of a read
 * waits for the next one); `:` lines are comments; `data` lines of one event join with LF; a blank
 * line ends the event; an event with no data is not dispatched.
 */
export interface SseEvent {
  /** The `event` field, 'message' when absent. */
  readonly type: string;
  readonly data: string;
  readonly id?: string;
}

export class SseParser {
  private readonly decoder = new TextDecoder('utf-8');
  private pending = '';
  private data: string[] = [];
  private type = '';
  private id: string | undefined;
  /** The last read ended in CR: an LF that starts the next read belongs to it. */
  private afterCr = false;

  /** Feeds one read; returns the events it completed. */
  push(bytes: Uint8Array): SseEvent[] {
    return this.lines(this.decoder.decode(bytes, { stream: true }));
  }

  /** The stream ended: an event without its blank line is dropped, as EventSource drops it. */
  end(): SseEvent[] {
    const out = this.lines(this.decoder.decode());
    this.pending = '';
    this.data = [];
    return out;
  }

  private lines(text: string): SseEvent[] {
    const out: SseEvent[] = [];
    let s = this.pending + text;
    if (this.afterCr && s.startsWith('\n')) s = s.slice(1);
    this.afterCr = false;
    let start = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.line(s.slice(start, i), out);
      if (c === 13) {
        if (i + 1 === s.length) this.afterCr = true;
        else if (s.charCodeAt(i + 1) === 10) i++;
      }
      start = i + 1;
    }
    this.pending = s.slice(start);
    return out;
  }

  private line(line: string, out: SseEvent[]): void {
    if (line === '') {
      if (this.data.length > 0) out.push({ type: this.type || 'message', data: this.data.join('\n'), ...(this.id !== undefined ? { id: this.id } : {}) });
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
