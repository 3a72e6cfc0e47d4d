/**
 * A local HTTP server that replays recorded engine responses (test/fixtures/transcripts): the
 * stand-in for servers that cannot run here. Each transcript cites the reference section it
 * follows. Bodies can be cut into small writes (to split UTF-8 and lines across reads) and the
 * connection can be dropped mid-stream, as a killed server drops it. `startRawReplay` serves
 * hand-built bytes from a worker thread, for the hostile-server suite.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

export interface Transcript {
  readonly source: string;
  readonly engine: string;
  readonly versions: string;
  readonly endpoint: string;
  readonly status: number;
  readonly contentType: string;
  readonly body: readonly string[];
  /** The reply to GET /v1/models, where the transcript has one (other transcripts answer every path alike). */
  readonly models?: ReplayReply;
  /** The reply to a request whose JSON body has no `model` (SGLang-JAX requires one). */
  readonly withoutModel?: ReplayReply;
  readonly expect: {
    readonly text?: string;
    readonly finishReason?: string;
    readonly usage?: { promptTokens?: number; completionTokens?: number };
    readonly tokenIds?: number[];
    readonly tokens?: number;
    readonly error?: string;
    readonly partialText?: string;
  };
}

/** One whole reply. */
export interface ReplayReply {
  readonly source: string;
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

/** test/fixtures/transcripts, found upwards from the bundle (unit and extension-host bundles sit at different depths). */
export const TRANSCRIPT_DIR = (() => {
  for (let d = __dirname; ; d = dirname(d)) {
    const t = join(d, 'test', 'fixtures', 'transcripts');
    if (existsSync(t)) return t;
    if (dirname(d) === d) return resolve(__dirname, '../../../test/fixtures/transcripts');
  }
})();

export function loadTranscripts(): Map<string, Transcript> {
  return new Map(
    readdirSync(TRANSCRIPT_DIR)
      .filter((f) => f.endsWith('.json'))
      .map((f) => [f.replace(/\.json$/, ''), JSON.parse(readFileSync(join(TRANSCRIPT_DIR, f), 'utf8')) as Transcript]),
  );
}

export interface ReplayOptions {
  /** Cut the body into writes of 1..n bytes (seeded), each flushed before the next. */
  readonly pieces?: number;
  readonly seed?: number;
  /** Drop the connection after this many body entries. */
  readonly dropAfter?: number;
  /** Wait this long between body entries, ms. */
  readonly delayMs?: number;
}

export interface Replay {
  readonly url: string;
  /** Requests received: path and parsed JSON body. */
  readonly requests: { path: string; body: unknown; headers: IncomingMessage['headers'] }[];
  /** The transcript the next requests get. */
  use(t: Transcript, opts?: ReplayOptions): void;
  close(): Promise<void>;
}

export async function startReplay(): Promise<Replay> {
  let current: { t: Transcript; opts: ReplayOptions } | undefined;
  const requests: Replay['requests'] = [];
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      let body: unknown = raw;
      try {
        body = JSON.parse(raw);
      } catch {
        // keep the text
      }
      requests.push({ path: req.url ?? '', body, headers: req.headers });
      void reply(res, req.url ?? '', body);
    });
  });
  const reply = async (res: import('node:http').ServerResponse, path: string, request: unknown) => {
    if (!current) {
      res.writeHead(500).end('no transcript');
      return;
    }
    const { t, opts } = current;
    const whole = path === '/v1/models' ? t.models : typeof request === 'object' && request !== null && !('model' in request) ? t.withoutModel : undefined;
    if (whole) {
      res.writeHead(whole.status, { 'content-type': whole.contentType }).end(whole.body);
      return;
    }
    res.socket?.setNoDelay(true);
    res.writeHead(t.status, { 'content-type': t.contentType });
    let seed = opts.seed ?? 1;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    for (let i = 0; i < t.body.length; i++) {
      if (opts.dropAfter !== undefined && i === opts.dropAfter) {
        res.socket?.destroy();
        return;
      }
      const bytes = Buffer.from(t.body[i]!, 'utf8');
      if (!opts.pieces) res.write(bytes);
      else {
        for (let at = 0; at < bytes.length; ) {
          const n = 1 + Math.floor(rand() * opts.pieces);
          res.write(bytes.subarray(at, at + n));
          at += n;
          await new Promise((r) => setImmediate(r));
        }
      }
      if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
    }
    res.end();
  };
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    use: (t, opts = {}) => (current = { t, opts }),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/**
 * A reply built byte by byte, for servers that misbehave: any status and headers, a body in pieces
 * (each flushed before the next, so the client reads them apart), then the body ends, the
 * connection drops, or bytes keep coming. Plain data: it crosses to the server's worker thread.
 */
export interface RawReply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  /** Written in order; a piece with `times` is written that many times (a long line without a long message). */
  readonly pieces: readonly { readonly bytes: Uint8Array; readonly times?: number }[];
  /**
   * After the pieces: 'end' ends the body; 'drop' destroys the connection; 'endless' writes
   * `repeat` as fast as the client reads, until it hangs up; 'trickle' writes it every
   * `intervalMs`; 'stall' writes nothing more and keeps the connection open; 'silent' sends not even
   * the status line.
   */
  readonly then: 'end' | 'drop' | 'endless' | 'trickle' | 'stall' | 'silent';
  readonly repeat?: Uint8Array;
  readonly intervalMs?: number;
}

export interface RawReplayStats {
  /** Body bytes written for the last request. */
  readonly written: number;
  /** The client hung up before the body ended (it stopped reading an endless reply). */
  readonly clientClosed: boolean;
  /** The last request is over (ended, dropped, or hung up on). */
  readonly done: boolean;
}

export interface RawReplay {
  readonly url: string;
  /** The reply the next requests get. */
  use(r: RawReply): Promise<void>;
  stats(): Promise<RawReplayStats>;
  close(): Promise<void>;
}

const RAW_REPLAY = 'jax-serve raw replay server';

/** True in the worker thread that serves raw replies (the test file must then define no tests). */
export const isRawReplayWorker = !isMainThread && workerData === RAW_REPLAY;

/**
 * Starts a raw-reply server on a worker thread of this bundle: the CLI runs under spawnSync, which
 * blocks this thread, so the server needs an event loop of its own.
 */
export async function startRawReplay(): Promise<RawReplay> {
  const worker = new Worker(__filename, { workerData: RAW_REPLAY });
  let next = 0;
  const waiting = new Map<number, (m: { port?: number; stats?: RawReplayStats }) => void>();
  worker.on('message', (m: { id: number; port?: number; stats?: RawReplayStats }) => {
    waiting.get(m.id)?.(m);
    waiting.delete(m.id);
  });
  const ask = (msg: object) =>
    new Promise<{ port?: number; stats?: RawReplayStats }>((resolve) => {
      const id = next++;
      waiting.set(id, resolve);
      worker.postMessage({ ...msg, id });
    });
  const { port } = await ask({ type: 'start' });
  return {
    url: `http://127.0.0.1:${port}`,
    use: async (r) => void (await ask({ type: 'use', reply: r })),
    stats: async () => (await ask({ type: 'stats' })).stats!,
    close: async () => {
      await ask({ type: 'close' });
      await worker.terminate();
    },
  };
}

if (isRawReplayWorker) serveRawReplies();

function serveRawReplies(): void {
  let reply: RawReply | undefined;
  let stats: RawReplayStats = { written: 0, clientClosed: false, done: true };
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => void send(res));
  });
  const send = async (res: import('node:http').ServerResponse) => {
    const r = reply;
    let written = 0;
    let closed = false;
    stats = { written, clientClosed: false, done: false };
    res.on('close', () => {
      closed = true;
      stats = { written, clientClosed: !res.writableFinished, done: true };
    });
    if (!r) {
      res.writeHead(500).end('no reply');
      return;
    }
    res.socket?.setNoDelay(true);
    if (r.then === 'silent') return;
    res.writeHead(r.status, r.headers);
    // Sent now, even when no body byte follows (Node holds them for the first write otherwise).
    res.flushHeaders();
    const write = async (b: Uint8Array) => {
      written += b.length;
      stats = { ...stats, written };
      if (!res.write(b)) {
        await new Promise<void>((ok) => {
          if (closed) return ok();
          const done = () => {
            res.off('drain', done);
            res.off('close', done);
            ok();
          };
          res.on('drain', done);
          res.on('close', done);
        });
      } else await new Promise((ok) => setImmediate(ok));
    };
    for (const p of r.pieces) for (let i = 0; i < (p.times ?? 1) && !closed; i++) await write(p.bytes);
    if (closed) return;
    if (r.then === 'end') res.end();
    else if (r.then === 'drop') res.socket?.destroy();
    else if (r.then === 'endless') while (!closed) await write(r.repeat!);
    else if (r.then === 'trickle') {
      while (!closed) {
        await write(r.repeat!);
        await new Promise((ok) => setTimeout(ok, r.intervalMs ?? 50));
      }
    }
    // 'stall': nothing more; the client's hang-up closes it.
  };
  parentPort!.on('message', (m: { id: number; type: string; reply?: RawReply }) => {
    if (m.type === 'start') server.listen(0, '127.0.0.1', () => parentPort!.postMessage({ id: m.id, port: (server.address() as AddressInfo).port }));
    else if (m.type === 'use') {
      reply = m.reply;
      parentPort!.postMessage({ id: m.id });
    } else if (m.type === 'stats') parentPort!.postMessage({ id: m.id, stats });
    else if (m.type === 'close') {
      server.closeAllConnections();
      server.close(() => parentPort!.postMessage({ id: m.id }));
    }
  });
}
