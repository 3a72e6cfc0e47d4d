/**
 * A local HTTP server that replays recorded engine responses (test/fixtures/transcripts): the
 * stand-in for servers that cannot run here. Each transcript cites the reference section it
 * follows. Bodies can be cut into small writes (to split UTF-8 and lines across reads) and the
 * connection can be dropped mid-stream, as a killed server drops it.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';

export interface Transcript {
  readonly source: string;
  readonly engine: string;
  readonly versions: string;
  readonly endpoint: string;
  readonly status: number;
  readonly contentType: string;
  readonly body: readonly string[];
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
      void reply(res);
    });
  });
  const reply = async (res: import('node:http').ServerResponse) => {
    if (!current) {
      res.writeHead(500).end('no transcript');
      return;
    }
    const { t, opts } = current;
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
