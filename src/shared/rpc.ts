/**
 * One typed request/reply channel over postMessage, used by both ends of every webview (the host
 * and the page swap the type parameters). Unlike a fire-and-forget channel, a request whose handler
 * throws rejects on the other side with the error's code and message, and every request times out.
 */

export interface Envelope<T> {
  /** Set on requests (a reply is expected) and on replies (`replyTo`). */
  readonly id?: number;
  readonly replyTo?: number;
  readonly body?: T;
  readonly error?: { readonly code: string; readonly message: string };
}

export class RpcError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = 'RpcError';
  }
}

type Handler<TIn, TOut> = (body: TIn) => Promise<TOut | undefined> | TOut | undefined;

export const DEFAULT_RPC_TIMEOUT_MS = 30_000;

export class Rpc<TOut extends { type: string }, TIn extends { type: string }> {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: TIn) => void; reject: (e: Error) => void; timer: ReturnType<typeof setTimeout> }>();
  private disposed = false;

  /**
   * @param post sends one envelope to the other side
   * @param handle answers an inbound message; what it returns is sent back when the message was a request
   * @param validate rejects inbound bodies of the wrong shape before `handle` sees them
   */
  constructor(
    private readonly post: (e: Envelope<TOut>) => void,
    private readonly handle: Handler<TIn, TOut>,
    private readonly validate: (body: unknown) => body is TIn,
    private readonly timeoutMs = DEFAULT_RPC_TIMEOUT_MS,
  ) {}

  /** Sends a message that expects no reply. */
  send(body: TOut): void {
    if (!this.disposed) this.post({ body });
  }

  /** Sends a request; resolves with the reply body, rejects with its error or after the timeout. */
  request(body: TOut, timeoutMs = this.timeoutMs): Promise<TIn> {
    if (this.disposed) return Promise.reject(new RpcError('E_DISPOSED', 'The view was closed.'));
    const id = this.nextId++;
    return new Promise<TIn>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RpcError('E_TIMEOUT', `No reply to ${body.type} within ${timeoutMs} ms.`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.post({ id, body });
    });
  }

  /** Feed every inbound message here. Unknown shapes are dropped (and reported when they were requests). */
  async receive(raw: unknown): Promise<void> {
    if (this.disposed || typeof raw !== 'object' || raw === null) return;
    const env = raw as Envelope<unknown>;
    if (typeof env.replyTo === 'number') {
      const p = this.pending.get(env.replyTo);
      if (!p) return;
      this.pending.delete(env.replyTo);
      clearTimeout(p.timer);
      if (env.error) p.reject(new RpcError(String(env.error.code), String(env.error.message)));
      else if (this.validate(env.body)) p.resolve(env.body);
      else p.reject(new RpcError('E_PROTOCOL', 'Malformed reply.'));
      return;
    }
    const id = typeof env.id === 'number' ? env.id : undefined;
    if (!this.validate(env.body)) {
      if (id !== undefined) this.post({ replyTo: id, error: { code: 'E_PROTOCOL', message: 'Malformed message.' } });
      return;
    }
    try {
      const reply = await this.handle(env.body);
      if (id !== undefined && !this.disposed) {
        if (reply === undefined) this.post({ replyTo: id, error: { code: 'E_PROTOCOL', message: `No reply for ${env.body.type}.` } });
        else this.post({ replyTo: id, body: reply });
      }
    } catch (e) {
      if (id !== undefined && !this.disposed) {
        const code = typeof (e as { code?: unknown })?.code === 'string' ? (e as { code: string }).code : 'E_INTERNAL';
        this.post({ replyTo: id, error: { code, message: e instanceof Error ? e.message : String(e) } });
      }
    }
  }

  dispose(): void {
    this.disposed = true;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new RpcError('E_DISPOSED', 'The view was closed.'));
    }
    this.pending.clear();
  }
}
