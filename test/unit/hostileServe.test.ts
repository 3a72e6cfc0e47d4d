/**
 * Hostile inference servers, by construction: a local server (loopback, an ephemeral port, on a
 * worker thread so the CLI can run under spawnSync) answers `jax-serve generate` with generated
 * misbehaviour — error statuses whose bodies carry escape sequences (CSI, OSC ended by BEL or ST or
 * not at all, C1 controls, bidi overrides, NUL), HTML error pages, JSON errors in the OpenAI, vLLM,
 * SGLang, FastAPI and transformers shapes with multi-line messages and Python tracebacks, errors
 * mid-stream, lines over and under the cap, endless and trickling bodies, every split of the bytes,
 * invalid UTF-8, odd JSON, and connections dropped mid-line. Each refusal is exit 2 with one clean
 * line naming the URL and carrying the server's message; each acceptable stream still works.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fc from 'fast-check';
import { MAX_SERVER_ERROR_BYTES, MAX_SERVER_REPLY_BYTES, MAX_SSE_LINE_BYTES, MAX_SSE_STREAM_BYTES } from '../../src/core/index';
import { assertCleanText, assertRefused, cli, fuzzRuns, fuzzSeed, runCli, type CliResult } from './hostile';
import { isRawReplayWorker, startRawReplay, type RawReplay, type RawReply } from './replayServer';

const enc = (s: string) => new TextEncoder().encode(s);
const cat = (...parts: (string | Uint8Array)[]) => new Uint8Array(Buffer.concat(parts.map((p) => (typeof p === 'string' ? enc(p) : p))));

/** `bytes` cut at `cuts` (sorted, deduplicated, inside the array): the reads the client sees. */
function cutAt(bytes: Uint8Array, cuts: number[]): { bytes: Uint8Array }[] {
  const at = [0, ...[...new Set(cuts.map((c) => c % Math.max(1, bytes.length)))].filter((c) => c > 0).sort((a, b) => a - b), bytes.length];
  const out: { bytes: Uint8Array }[] = [];
  for (let i = 0; i + 1 < at.length; i++) if (at[i]! < at[i + 1]!) out.push({ bytes: bytes.subarray(at[i], at[i + 1]) });
  return out;
}

// What servers put in error text that must not reach a terminal, with ordinary text between.
const ESCAPES = [
  '\x1b[31m',
  '\x1b[1;4;38;5;196m',
  '\x1b[2J\x1b[H',
  '\x1b[?25l',
  '\x1b]0;pwned\x07',
  '\x1b]8;;https://evil.example/\x1b\\link\x1b]8;;\x1b\\',
  '\x1b]52;c;SGVsbG8=\x07',
  '\x1b]2;no terminator',
  '\x1bP+q544e\x1b\\',
  '\x1b(0',
  '\x1b',
  '\x9b31m',
  '\x9d0;c1 title\x07',
  '\x85',
  '\x90',
  '\u202e',
  '\u2066',
  '\u2069',
  '\0',
  '\x07',
  '\x08\x08\x08',
  '\x7f',
  '\r',
  '\t',
];
const WORDS = ['CUDA', 'out of memory', 'héllo', '世界', '🙂', 'model', 'the request', 'KeyError:', 'ValueError: bad value', 'torch.OutOfMemoryError: CUDA', '    at Object.<anonymous> (/srv/x.js:1:2)'];
/** Bytes that are not UTF-8, stood in for by a private-use character until the body is encoded. */
const INVALID = ['\xff', '\xc3', '\x9b', '\xe2\x82', '\xed\xa0\x80', '\xf4\x90\x80\x80'];
const STAND_IN = '\ue000';

const fragment = fc.oneof(fc.constantFrom(...ESCAPES), fc.constantFrom(...WORDS), fc.constantFrom('\n', '\r\n', '\n\n'), fc.string({ maxLength: 12 }));
/**
 * Generated text: escapes and plain words, but no exception names or stack-like lines. A model may
 * write "ValueError:" in code it generates, and that text is passed on as written, controls aside.
 */
const textFragment = fc.oneof(fc.constantFrom(...ESCAPES), fc.constantFrom('héllo', '世界', '🙂', 'model', '\n', '\r\n'), fc.string({ maxLength: 12 }).map((s) => s.replace(/Error|Exception|Traceback|\bat\b/g, '')));
/** A message: a marker first (it must reach the error line), then hostile text, maybe over many lines. */
const message = fc.record({ marker: fc.nat({ max: 1e6 }).map((n) => `MARK${n}X`), rest: fc.array(fragment, { maxLength: 14 }), invalid: fc.array(fc.constantFrom(...INVALID), { maxLength: 3 }) }).map(({ marker, rest, invalid }) => ({
  marker,
  // Invalid bytes go after the marker, in place of stand-ins (so JSON can still carry them).
  text: `${marker} ${rest.join('')}${invalid.map(() => STAND_IN).join(' ')}`,
  invalid,
}));

const EXCEPTIONS = ['ValueError', 'RuntimeError', 'torch.OutOfMemoryError', 'KeyError', 'AssertionError', 'RecursionError', 'jinja2.exceptions.TemplateError'];
/** A Python traceback whose exception line carries the marker (what a server passes on raw). */
const traceback = fc.record({ m: message, exc: fc.constantFrom(...EXCEPTIONS), frames: fc.integer({ min: 1, max: 6 }), chained: fc.boolean() }).map(({ m, exc, frames, chained }) => {
  const stack = (n: number) => `Traceback (most recent call last):\n${Array.from({ length: n }, (_, i) => `  File "/srv/app/layer${i}.py", line ${10 + i}, in f${i}\n    x = g${i}(y)\n`).join('')}`;
  const inner = chained ? `${stack(2)}KeyError: 'input_ids'\n\nDuring handling of the above exception, another exception occurred:\n\n` : '';
  return { ...m, text: `${inner}${stack(frames)}${exc}: ${m.text}` };
});

/** The message's UTF-8 with the stand-ins replaced by invalid bytes. */
function bytesOf(text: string, invalid: readonly string[]): Uint8Array {
  const parts = text.split(STAND_IN);
  return cat(...parts.flatMap((p, i) => (i === 0 ? [p] : [Buffer.from(invalid[i - 1] ?? '', 'latin1'), p])));
}

type Shape = 'vllm-nested' | 'vllm-flat' | 'fastapi-detail' | 'fastapi-list' | 'transformers-string' | 'plain' | 'html-title' | 'html-h1';
const SHAPES: Shape[] = ['vllm-nested', 'vllm-flat', 'fastapi-detail', 'fastapi-list', 'transformers-string', 'plain', 'html-title', 'html-h1'];
const htmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** An error body in one of the shapes servers and proxies use, and its content type. */
function errorBody(shape: Shape, status: number, m: { text: string; invalid: readonly string[] }): { body: Uint8Array; contentType: string } {
  const json = (o: unknown) => ({ body: bytesOf(JSON.stringify(o), m.invalid), contentType: 'application/json' });
  switch (shape) {
    case 'vllm-nested':
      return json({ error: { message: m.text, type: 'BadRequestError', param: null, code: status } });
    case 'vllm-flat':
      return json({ object: 'error', message: m.text, type: 'BadRequestError', param: null, code: status });
    case 'fastapi-detail':
      return json({ detail: m.text });
    case 'fastapi-list':
      return json({ detail: [{ loc: ['body', 'max_tokens'], msg: m.text, type: 'value_error' }] });
    case 'transformers-string':
      return json({ error: m.text });
    case 'plain':
      return { body: bytesOf(m.text, m.invalid), contentType: 'text/plain; charset=utf-8' };
    case 'html-title':
      // nginx's 502 page, the title carrying the message.
      return { body: bytesOf(`<html>\r\n<head><title>${htmlEscape(m.text)}</title></head>\r\n<body>\r\n<center><h1>${status} Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n`, m.invalid), contentType: 'text/html' };
    case 'html-h1':
      return { body: bytesOf(`<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<style>body { color: red }</style>\n<script>var x = "<b>not text</b>";</script>\n</head>\n<body>\n<h1>${htmlEscape(m.text)}</h1>\n<p>Please try again &amp; later.</p>\n</body>\n</html>\n`, m.invalid), contentType: 'text/html; charset=utf-8' };
  }
}

type Eol = '\n' | '\r\n' | '\r';
const eol = fc.constantFrom<Eol>('\n', '\r\n', '\r');
/** One SSE event of `data` lines, with the stream's line ends. */
const event = (e: Eol, data: string, type?: string) => `${type ? `event: ${type}${e}` : ''}${data.split('\n').map((l) => `data: ${l}${e}`).join('')}${e}`;
const textChunk = (text: string) => JSON.stringify({ id: 'cmpl-1', object: 'text_completion', created: 1, model: 'tiny', choices: [{ index: 0, text, logprobs: null, finish_reason: null }] });
const SSE = { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' };

/** Runs `jax-serve generate` against the server (the default API, /v1/completions). */
const generateCli = (url: string, ...args: string[]): CliResult => runCli(['generate', '--url', url, '--model', 'tiny', ...args, 'Hello'], { timeoutMs: 30_000 });

/** Refused: exit 2, one clean line naming the URL; `also` must appear in it. */
function refused(r: CliResult, url: string, also?: string | RegExp): string {
  assertRefused(r, url, 'jax-serve generate');
  const line = r.stderr.trimEnd();
  if (typeof also === 'string') assert.ok(line.includes(also), `the error should carry ${also}: ${JSON.stringify(line)}`);
  else if (also) assert.match(line, also);
  return line;
}

async function hungUp(server: RawReplay): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    const s = await server.stats();
    if (s.done) return s.clientClosed;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

if (!isRawReplayWorker) {
  describe('hostile inference servers: jax-serve generate', function () {
    this.timeout(300_000);
    let server: RawReplay;
    let url: string;
    before(async () => {
      server = await startRawReplay();
      url = server.url;
    });
    after(async () => server?.close());

    it(`an error status with a hostile body in any shape is one clean line carrying the message (seed ${fuzzSeed})`, async () => {
      await fc.assert(
        // 407 is left out: fetch turns it into a network error ("fetch failed"), body unread.
        fc.asyncProperty(fc.integer({ min: 400, max: 599 }).filter((s) => s !== 407), fc.constantFrom(...SHAPES), fc.oneof(message, traceback), fc.array(fc.nat(), { maxLength: 6 }), async (status, shape, m, cuts) => {
          const { body, contentType } = errorBody(shape, status, m);
          await server.use({ status, headers: { 'content-type': contentType }, pieces: cutAt(body, cuts), then: 'end' });
          const line = refused(generateCli(url), url, `HTTP ${status}: `);
          assert.ok(line.includes(m.marker), `the error should carry the server's message (${m.marker}): ${JSON.stringify(line)}`);
          assert.ok(!/<\/?(?:html|head|title|body|center|h1)\b/i.test(line), `an HTML page is its text, not its tags: ${JSON.stringify(line)}`);
        }),
        { seed: fuzzSeed, numRuns: fuzzRuns(10) },
      );
    });

    it('a 407 (fetch reads no body) is still one clean line', async () => {
      await server.use({ status: 407, headers: { 'content-type': 'text/plain' }, pieces: [{ bytes: enc('\x1b]0;x\x07proxy auth') }], then: 'end' });
      refused(generateCli(url), url, /fetch failed\. Is the server running and ready\?$/);
    });

    it('a URL that is not http(s) is refused before any request, naming it clean', () => {
      assertRefused(runCli(['generate', '--url', 'localhost:8000\x1b[31m', 'Hello']), 'localhost:8000', 'jax-serve generate');
    });

    it('--verbose prints the whole server text, controls stripped, above the one-line error', async () => {
      const m = { marker: 'MARK1X', text: 'MARK1X first\x1b[31m line\nsecond \x1b]0;t\x07line\nValueError: third', invalid: [] };
      const { body, contentType } = errorBody('vllm-nested', 500, m);
      await server.use({ status: 500, headers: { 'content-type': contentType }, pieces: [{ bytes: body }], then: 'end' });
      const quiet = generateCli(url);
      refused(quiet, url, /MARK1X first line \(2 more lines in the server's reply; --verbose prints it\)$/);
      const loud = generateCli(url, '--verbose');
      assert.equal(loud.status, 2);
      // The whole text as the server sent it (an exception name included), less its controls.
      assert.ok(!/[\x00-\x08\x0b-\x1f\x7f-\x9f]/.test(loud.stderr.replace(/\n/g, '')), JSON.stringify(loud.stderr));
      const lines = loud.stderr.trimEnd().split('\n');
      assert.ok(lines.includes('second line') && lines.includes('ValueError: third'), loud.stderr);
      assert.match(lines.at(-1)!, /^jax-serve: http:\/\/127\.0\.0\.1:\d+\/v1\/completions: HTTP 500: MARK1X first line \(2 more lines in the server text above\)$/);
    });

    it(`an error in the middle of a stream is one clean line; the text before it arrives clean (seed ${fuzzSeed})`, async () => {
      const kinds = ['data-object', 'data-string', 'event-error'] as const;
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.array(textFragment, { maxLength: 5 }), { maxLength: 4 }),
          fc.constantFrom(...kinds),
          fc.oneof(message, traceback),
          eol,
          fc.boolean(),
          fc.array(fc.nat(), { maxLength: 12 }),
          async (texts, kind, m, e, done, cuts) => {
            const words = texts.map((_, i) => `w${i}w`);
            const stream = texts.map((t, i) => event(e, textChunk(`${words[i]} ${t.join('')}`))).join('');
            const msg = m.text;
            const error =
              kind === 'data-object' ? event(e, JSON.stringify({ error: { object: 'error', message: msg, type: 'BadRequestError', param: null, code: 400 } })) : kind === 'data-string' ? event(e, JSON.stringify({ error: msg })) : event(e, msg, 'error');
            const bytes = bytesOf(stream + error + (done ? event(e, '[DONE]') : ''), m.invalid);
            await server.use({ status: 200, headers: SSE, pieces: cutAt(bytes, cuts), then: 'end' });
            const r = generateCli(url);
            refused(r, url, `the server failed mid-stream after ${texts.length} chunks: `);
            assert.ok(r.stderr.includes(m.marker), `the error should carry the server's message (${m.marker}): ${JSON.stringify(r.stderr)}`);
            let at = 0;
            for (const w of words) {
              const i = r.stdout.indexOf(w, at);
              assert.ok(i >= at, `the text before the error (${w}) reaches stdout in order: ${JSON.stringify(r.stdout)}`);
              at = i;
            }
          },
        ),
        { seed: fuzzSeed, numRuns: fuzzRuns(10) },
      );
    });

    it(`a stream split at any byte boundary, with any line ends, comments and UTF-8, gives the same text (seed ${fuzzSeed})`, async () => {
      const piece = fc.constantFrom('héllo', ' 世界', ' 🙂', 'a', '\n', '\t', 'x\r\ny', 'é', '"quoted"', '\\');
      await fc.assert(
        fc.asyncProperty(fc.array(fc.array(piece, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 6 }), eol, fc.boolean(), fc.array(fc.nat(), { maxLength: 30 }), async (chunks, e, comments, cuts) => {
          const texts = chunks.map((c) => c.join(''));
          const body = `${comments ? `: ping${e}${e}` : ''}${texts.map((t) => `${comments ? `: keep-alive${e}` : ''}${event(e, textChunk(t))}`).join('')}${event(e, JSON.stringify({ choices: [], usage: { prompt_tokens: 2, completion_tokens: texts.length } }))}${event(e, '[DONE]')}`;
          const bytes = enc(body);
          await server.use({ status: 200, headers: SSE, pieces: cutAt(bytes, cuts), then: 'end' });
          const r = generateCli(url);
          assert.equal(r.status, 0, r.stderr);
          // The text as sent, but for CR (a control) dropped on the way to the terminal.
          assert.equal(r.stdout, texts.join('').replace(/\r/g, '') + '\n');
          assert.match(r.stderr, new RegExp(`· ${texts.length} tokens \\(prompt 2\\)`));
        }),
        { seed: fuzzSeed, numRuns: fuzzRuns(5) },
      );
      // And one byte per read, everywhere.
      const bytes = enc(`${event('\r\n', textChunk('héllo 世界 🙂'))}${event('\r', textChunk(' end'))}${event('\n', '[DONE]')}`);
      await server.use({ status: 200, headers: SSE, pieces: Array.from(bytes, (b) => ({ bytes: Uint8Array.of(b) })), then: 'end' });
      const r = generateCli(url);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, 'héllo 世界 🙂 end\n');
    });

    it(`generated text with escape sequences and invalid UTF-8 is accepted and reaches stdout clean (seed ${fuzzSeed})`, async () => {
      const generated = fc.record({ marker: fc.nat({ max: 1e6 }).map((n) => `MARK${n}X`), rest: fc.array(textFragment, { maxLength: 10 }), invalid: fc.array(fc.constantFrom(...INVALID), { maxLength: 3 }) }).map(({ marker, rest, invalid }) => ({ marker, text: `${marker} ${rest.join('')}${invalid.map(() => STAND_IN).join(' ')}`, invalid }));
      await fc.assert(
        fc.asyncProperty(fc.array(generated, { minLength: 1, maxLength: 4 }), eol, fc.array(fc.nat(), { maxLength: 8 }), async (ms, e, cuts) => {
          const body = ms.map((m) => event(e, textChunk(m.text))).join('') + event(e, '[DONE]');
          const bytes = bytesOf(body, ms.flatMap((m) => m.invalid));
          await server.use({ status: 200, headers: SSE, pieces: cutAt(bytes, cuts), then: 'end' });
          const r = generateCli(url);
          assert.equal(r.status, 0, r.stderr);
          assertCleanText(r.stdout.replace(/\t/g, ' '), 'the generated text');
          for (const m of ms) assert.ok(r.stdout.includes(m.marker), `${m.marker} in ${JSON.stringify(r.stdout)}`);
        }),
        { seed: fuzzSeed, numRuns: fuzzRuns(4) },
      );
    });

    it(`a line under the cap is read; one over it (${MAX_SSE_LINE_BYTES / 2 ** 20} MiB) ends the stream with an error naming the cap (seed ${fuzzSeed})`, async () => {
      const block = enc('a'.repeat(64 * 1024));
      const longLine = (length: number, e: string): RawReply => {
        const times = Math.floor(length / block.length);
        return {
          status: 200,
          headers: SSE,
          pieces: [{ bytes: enc(`data: {"choices":[{"index":0,"text":"`) }, { bytes: block, times }, { bytes: enc('a'.repeat(length - times * block.length)) }, { bytes: enc(`"}]}${e}${e}data: [DONE]${e}${e}`) }],
          then: 'end',
        };
      };
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 1 << 20, max: MAX_SSE_LINE_BYTES - 64 }), fc.integer({ min: MAX_SSE_LINE_BYTES + 1, max: 40 << 20 }), fc.constantFrom('\n', '\r\n', '\r'), async (under, over, e) => {
          await server.use(longLine(under, e));
          const ok = generateCli(url, '--json');
          assert.equal(ok.status, 0, ok.stderr);
          assert.equal((JSON.parse(ok.stdout) as { text: string }).text.length, under);
          await server.use(longLine(over, e));
          refused(generateCli(url), url, /a line of the event stream is over 16 MiB \(the cap on one line\)/);
        }),
        { seed: fuzzSeed, numRuns: fuzzRuns(2) },
      );
    });

    it('endless replies are cut off: a line without end, events that never complete, JSON, HTML and error bodies without end', async () => {
      const endless = (headers: Record<string, string>, start: string, repeat: string, status = 200): RawReply => ({ status, headers, pieces: [{ bytes: enc(start) }], then: 'endless', repeat: enc(repeat.repeat(Math.ceil(65536 / repeat.length))) });
      const cases: [string, RawReply, RegExp][] = [
        ['an SSE line without end', endless(SSE, 'data: {"choices":[{"text":"', 'a'), /a line of the event stream is over 16 MiB/],
        ['SSE comments without an event', endless(SSE, '', ': keep-alive\n'), /sent over 16 MiB without completing an event/],
        ['SSE blank lines and fields without data', endless(SSE, 'data: {"choices":[{"index":0,"text":"ok"}]}\n\n', 'event: x\nid: 1\n\n'), /sent over 16 MiB without completing an event/],
        ['a JSON reply without end', endless({ 'content-type': 'application/json' }, '{"choices":[', '{"index":0,"text":"x"},'), /the reply is over 64 MiB \(the cap on a whole reply\)/],
        ['an HTML page without end, status 200', endless({ 'content-type': 'text/html' }, '<html><head><title>portal</title></head><body>', '<p>more</p>\n'), /the reply is over 64 MiB/],
        ['text chunks without end', endless(SSE, '', event('\n', textChunk('x'.repeat(4000)))), /the event stream is over 64 MiB \(the cap on one reply\) after \d+ chunks/],
        ['empty chunks without end', endless(SSE, event('\n', textChunk('ok')), event('\n', '{"choices": []}')), /sent 10000 chunks in a row without text \(the cap\), after 1 chunks with text/],
        ['an error body without end', endless({ 'content-type': 'text/plain' }, 'MARK9X the engine died\n', 'Traceback line\n', 500), /HTTP 500: MARK9X the engine died \(\d+ more lines in the server's reply; --verbose prints it\)$/],
        ['a JSON error body without end', endless({ 'content-type': 'application/json' }, '{"error": {"message": "MARK8X', ' and more', 503), /HTTP 503: \{"error": \{"message": "MARK8X and more/],
      ];
      for (const [what, reply, expected] of cases) {
        await server.use(reply);
        const t0 = Date.now();
        // --json: the text of an endless stream is not printed (it would be the cap's size).
        const r = generateCli(url, '--json');
        refused(r, url, expected);
        assert.ok(await hungUp(server), `${what}: the client stopped reading and hung up`);
        const written = (await server.stats()).written;
        // Reading stops at the cap: what was written beyond it is only what the sockets buffered.
        const cap = reply.status !== 200 ? MAX_SERVER_ERROR_BYTES : reply.headers['content-type'] === SSE['content-type'] ? MAX_SSE_STREAM_BYTES : MAX_SERVER_REPLY_BYTES;
        assert.ok(written < cap + (32 << 20), `${what}: ${written} bytes written for a cap of ${cap}`);
        assert.ok(Date.now() - t0 < 25_000, `${what}: took ${Date.now() - t0} ms`);
      }
    });

    it('a server that trickles or stalls is cut off at the idle limit; Ctrl-C is not needed', async () => {
      const cases: [string, RawReply, RegExp][] = [
        ['an SSE line trickled a byte at a time', { status: 200, headers: SSE, pieces: [{ bytes: enc('data: {"choices":[{"text":"') }], then: 'trickle', repeat: enc('a'), intervalMs: 20 }, /nothing complete arrived for 1 s \(the idle limit\) after 0 chunks/],
        ['comments trickled after one chunk', { status: 200, headers: SSE, pieces: [{ bytes: enc(event('\n', textChunk('w0w'))) }], then: 'trickle', repeat: enc(': ping\n'), intervalMs: 20 }, /nothing complete arrived for 1 s \(the idle limit\) after 1 chunks/],
        ['headers, then nothing', { status: 200, headers: SSE, pieces: [], then: 'stall' }, /nothing complete arrived for 1 s/],
        ['no answer at all', { status: 200, headers: SSE, pieces: [], then: 'silent' }, /no answer for 1 s \(the idle limit\)/],
        ['a JSON reply that stalls', { status: 200, headers: { 'content-type': 'application/json' }, pieces: [{ bytes: enc('{"choices": [') }], then: 'stall' }, /nothing complete arrived for 1 s/],
        ['an error body trickled', { status: 502, headers: { 'content-type': 'text/plain' }, pieces: [{ bytes: enc('MARK7X upstream\n') }], then: 'trickle', repeat: enc('.'), intervalMs: 20 }, /HTTP 502: MARK7X upstream/],
      ];
      for (const [what, reply, expected] of cases) {
        await server.use(reply);
        const t0 = Date.now();
        const r = generateCli(url, '--idle-timeout', '1');
        refused(r, url, expected);
        assert.ok(Date.now() - t0 < 15_000, `${what}: took ${Date.now() - t0} ms`);
        assert.ok(await hungUp(server), `${what}: the client hung up`);
      }
    });

    it('Ctrl-C ends a trickling stream at once, keeping the text that arrived (exit 130)', async () => {
      await server.use({ status: 200, headers: SSE, pieces: [{ bytes: enc(event('\n', textChunk('w0w')) + 'data: {"choices":[{"text":"') }], then: 'trickle', repeat: enc('a'), intervalMs: 20 });
      const p = spawn(process.execPath, [cli, 'generate', '--url', url, '--model', 'tiny', 'Hello'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      p.stdout.on('data', (d: Buffer) => (out += d.toString()));
      p.stderr.on('data', (d: Buffer) => (err += d.toString()));
      // Interrupted once the first text is out: the request is under way and trickling.
      await new Promise<void>((ok) => p.stdout.once('data', () => ok()));
      const t0 = Date.now();
      p.kill('SIGINT');
      const code = await new Promise<number | null>((ok) => p.on('close', ok));
      assert.equal(code, 130, err);
      assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
      assert.equal(out, 'w0w');
      assert.equal(err, 'jax-serve: Cancelled.\n');
      assert.ok(await hungUp(server), 'the client hung up');
    });

    it(`a connection dropped mid-line, mid-event or mid-UTF-8 is one clean line (seed ${fuzzSeed})`, async () => {
      const bytes = enc(event('\n', textChunk('héllo 世界 🙂')) + event('\n', textChunk(' more text')) + event('\n', '[DONE]'));
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 1, max: bytes.length - 1 - event('\n', '[DONE]').length }), async (at) => {
          await server.use({ status: 200, headers: SSE, pieces: [{ bytes: bytes.subarray(0, at) }], then: 'drop' });
          refused(generateCli(url), url, /the connection broke after [012] chunks/);
        }),
        { seed: fuzzSeed, numRuns: fuzzRuns(4) },
      );
    });

    it('odd JSON: chunks that are not objects, nesting deeper than any reply, a reply that is not JSON, are one clean line', async () => {
      const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
      const cases: [RawReply, RegExp][] = [
        ...['null', '"text"', '[1, 2]'].map((d): [RawReply, RegExp] => [{ status: 200, headers: SSE, pieces: [{ bytes: enc(event('\n', d)) }], then: 'end' }, /chunk 1 is not a JSON object: /]),
        [{ status: 200, headers: SSE, pieces: [{ bytes: enc(event('\n', '{"choices": [{"text": "a"')) }], then: 'end' }, /chunk 1 is not JSON: \{"choices"/],
        [{ status: 200, headers: SSE, pieces: [{ bytes: enc(event('\n', `{"choices": [{"text": "a", "logprobs": ${deep(100_000)}}]}`)) }], then: 'end' }, /chunk 1 nests deeper than 128 levels/],
        [{ status: 200, headers: SSE, pieces: [{ bytes: enc(event('\n', `{"error": {"message": "MARK6X", "detail": ${deep(100_000)}}}`)) }], then: 'end' }, /chunk 1 nests deeper than 128 levels/],
        [{ status: 500, headers: { 'content-type': 'application/json' }, pieces: [{ bytes: enc(`{"detail": ${deep(30_000)}}`) }], then: 'end' }, /HTTP 500: \{"detail": \[\[\[/],
        [{ status: 422, headers: { 'content-type': 'application/json' }, pieces: [{ bytes: enc(`{"detail": [${deep(200)}]}`) }], then: 'end' }, /HTTP 422: \{"detail"/],
        [{ status: 200, headers: { 'content-type': 'application/json' }, pieces: [{ bytes: enc('[1, 2, 3]') }], then: 'end' }, /the reply is neither an event stream nor a JSON object: \[1, 2, 3\]/],
        [{ status: 200, headers: { 'content-type': 'application/json' }, pieces: [{ bytes: enc(JSON.stringify({ error: { message: 'MARK5X line one\nline two\n\x1b[31mline three' } })) }], then: 'end' }, /: MARK5X line one \(2 more lines in the server's reply; --verbose prints it\)$/],
        [{ status: 200, headers: { 'content-type': 'text/html' }, pieces: [{ bytes: enc('<!doctype html>\n<html>\n<head>\n<title>Sign in &amp; continue</title>\n</head>\n<body>\n<p>captive portal</p>\n</body>\n</html>\n') }], then: 'end' }, /neither an event stream nor a JSON object \(it is not JSON\): Sign in & continue \(1 more line in/],
        [{ status: 200, headers: { 'content-type': 'text/plain' }, pieces: [], then: 'end' }, /neither an event stream nor a JSON object \(it is not JSON\): \(empty\)/],
      ];
      for (const [reply, expected] of cases) {
        await server.use(reply);
        refused(generateCli(url), url, expected);
      }
    });

    it('odd but harmless chunks are accepted: null choices, a null error, unknown fields, an empty stream', async () => {
      const body = [JSON.stringify({ choices: null }), JSON.stringify({ choices: [null] }), JSON.stringify({ error: null, choices: [{ index: 0, text: 'ok', finish_reason: 'stop\x1b[31m' }] }), JSON.stringify({ choices: [{ index: 0, text: '!', extra: { nested: [1, [2]] } }] })].map((d) => event('\n', d)).join('') + event('\n', '[DONE]');
      await server.use({ status: 200, headers: SSE, pieces: [{ bytes: enc(body) }], then: 'end' });
      const r = generateCli(url);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, 'ok!\n');
      assertCleanText(r.stderr, 'the timing line');
      assert.match(r.stderr, /finish stop\\u001b\[31m\n$/);
      await server.use({ status: 200, headers: SSE, pieces: [], then: 'end' });
      const empty = generateCli(url);
      assert.equal(empty.status, 0, empty.stderr);
      assert.equal(empty.stdout, '\n');
    });
  });
}
