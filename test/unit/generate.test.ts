/**
 * The streaming client against recorded engine responses (test/fixtures/transcripts, each citing
 * its reference section), replayed by a local server whole and cut into 1–5-byte writes; the SSE
 * parser under every split of a stream; abort, a dropped connection and a refused one.
 */
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { endpointUrl, generate, JaxServeError, listModels, MAX_SSE_LINE_BYTES, ServedModels, SseParser, type GenerateApi, type GenerateEvent, type SseEvent } from '../../src/core/index';
import { htmlText, serverText } from '../../src/core/serve/serverText';
import { cliAsync, rejectsWith } from './helpers';
import { loadTranscripts, startReplay, type Replay } from './replayServer';

const seed = Number(process.env.JAX_SERVE_FUZZ_SEED ?? 20261126);
const numRuns = Number(process.env.JAX_SERVE_FUZZ_RUNS ?? 200);

const apiOf = (endpoint: string): GenerateApi => (endpoint === '/generate' ? 'sglang-generate' : endpoint.endsWith('chat/completions') ? 'chat' : 'completions');

describe('SSE parser', () => {
  const stream = ': comment\r\ndata: héllo 世界\r\n\r\nevent: update\ndata: a\ndata: b 🙂\n\nid: 7\rdata: c\r\rdata: no blank line at the end';
  const whole = (() => {
    const p = new SseParser();
    return [...p.push(new TextEncoder().encode(stream)), ...p.end()];
  })();

  it('reads comments, CRLF/LF/CR line ends, event and id fields, multi-line data; drops an unterminated event', () => {
    assert.deepEqual(whole, [
      { type: 'message', data: 'héllo 世界' },
      { type: 'update', data: 'a\nb 🙂' },
      { type: 'message', data: 'c', id: '7' },
    ] satisfies SseEvent[]);
  });

  it(`gives the same events however the bytes are split across reads (seed ${seed}, ${numRuns} runs)`, () => {
    const bytes = new TextEncoder().encode(stream);
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 40 }), (cuts) => {
        const at = [0, ...cuts.sort((a, b) => a - b), bytes.length];
        const p = new SseParser();
        const events: SseEvent[] = [];
        for (let i = 0; i + 1 < at.length; i++) events.push(...p.push(bytes.subarray(at[i], at[i + 1])));
        events.push(...p.end());
        assert.deepEqual(events, whole);
      }),
      { seed, numRuns },
    );
  });
});

/**
 * The parser as it was before it was made linear (decode the whole stream, split lines on the
 * text): the reference its WHATWG semantics are held to.
 */
function referenceEvents(bytes: Uint8Array): SseEvent[] {
  const out: SseEvent[] = [];
  let data: string[] = [];
  let type = '';
  let id: string | undefined;
  const text = new TextDecoder('utf-8').decode(bytes);
  const lines = text.split(/\r\n|\r|\n/);
  lines.pop(); // an unfinished last line is dropped
  for (const line of lines) {
    if (line === '') {
      if (data.length > 0) out.push({ type: type || 'message', data: data.join('\n'), ...(id !== undefined ? { id } : {}) });
      data = [];
      type = '';
      continue;
    }
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') type = value;
    else if (field === 'id' && !value.includes('\0')) id = value;
  }
  return out;
}

/** Events from `bytes` pushed in pieces cut at `cuts`; the parser too, to read its counters. */
function parseInPieces(bytes: Uint8Array, cuts: number[], parser = new SseParser()): SseEvent[] {
  const at = [0, ...[...new Set(cuts)].filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b), bytes.length];
  const events: SseEvent[] = [];
  for (let i = 0; i + 1 < at.length; i++) events.push(...parser.push(bytes.subarray(at[i], at[i + 1])));
  events.push(...parser.end());
  return events;
}

describe('SSE parser: WHATWG semantics, linear work, caps', () => {
  const piece = fc.constantFrom('data', 'data:', 'data: ', 'event: ', 'event:update', 'id: 7', 'id: a\0b', 'id', 'retry: 10', ': comment', ':', 'x', 'héllo', '世界', '🙂', '\ufeff', '\n', '\r', '\r\n', '\n\n', '\r\r', 'data:{"a":1}', ' ', 'dat', 'a: ');
  const invalid = fc.constantFrom(Uint8Array.of(0xff), Uint8Array.of(0xc3), Uint8Array.of(0xe2, 0x82), Uint8Array.of(0xef, 0xbb, 0xbf), Uint8Array.of(0x9b));
  const stream = fc.array(fc.oneof({ weight: 5, arbitrary: piece.map((p) => new TextEncoder().encode(p)) }, { weight: 1, arbitrary: invalid }), { maxLength: 60 }).map((parts) => new Uint8Array(Buffer.concat(parts)));

  it(`gives the events of the reference parser for any stream, however it is split (BOM, CR/LF/CRLF across reads, comments, id with NUL, invalid UTF-8; seed ${seed}, ${numRuns} runs)`, () => {
    fc.assert(
      fc.property(fc.boolean(), stream, fc.array(fc.nat({ max: 400 }), { maxLength: 40 }), (bom, body, cuts) => {
        const bytes = bom ? new Uint8Array(Buffer.concat([Uint8Array.of(0xef, 0xbb, 0xbf), body])) : body;
        const parser = new SseParser();
        assert.deepEqual(parseInPieces(bytes, cuts, parser), referenceEvents(bytes));
        assert.ok(parser.bytesExamined <= 6 * bytes.length, `${parser.bytesExamined} bytes examined for ${bytes.length}`);
      }),
      { seed, numRuns: numRuns * 2 },
    );
  });

  it('looks at each byte a bounded number of times: a 40 MB line in 64 KiB reads, and a 1 MiB line in 1-byte reads', function () {
    this.timeout(60_000);
    // Counted, not timed: a parser that re-scans the pending line on every read looks at ~13 GB here.
    const line = new Uint8Array(40 * 1024 * 1024 + 2).fill(0x61);
    line.set(new TextEncoder().encode('data:'), 0);
    line[line.length - 2] = 10;
    line[line.length - 1] = 10;
    const parser = new SseParser({ maxLineBytes: 64 << 20, maxEventBytes: 64 << 20 });
    const t0 = performance.now();
    const events: SseEvent[] = [];
    for (let at = 0; at < line.length; at += 64 * 1024) events.push(...parser.push(line.subarray(at, at + 64 * 1024)));
    const ms = performance.now() - t0;
    assert.equal(events.length, 1);
    assert.equal(events[0]!.data.length, line.length - 7);
    assert.ok(parser.bytesExamined <= 6 * line.length, `${parser.bytesExamined} bytes examined for ${line.length}`);
    // And a generous wall-clock bound that the quadratic parser (109 s for 50 MB) cannot meet.
    assert.ok(ms < 30_000, `${ms.toFixed(0)} ms`);
    const small = new Uint8Array(1 << 20).fill(0x62);
    small.set(new TextEncoder().encode('data:'), 0);
    const p2 = new SseParser();
    for (let i = 0; i < small.length; i++) assert.deepEqual(p2.push(small.subarray(i, i + 1)), []);
    const [ev] = p2.push(Uint8Array.of(13, 13));
    assert.equal(ev!.data.length, small.length - 5);
    assert.ok(p2.bytesExamined <= 6 * (small.length + 2), `${p2.bytesExamined}`);
  });

  it(`a line over its cap, or bytes without a complete event over theirs, end the stream with E_SERVER naming the source and the cap; what came before is kept (seed ${seed})`, () => {
    const enc = (s: string) => new TextEncoder().encode(s);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3 }), fc.constantFrom('\n', '\r', '\r\n'), fc.array(fc.nat({ max: 2000 }), { maxLength: 20 }), (before, eol, cuts) => {
        const events = Array.from({ length: before }, (_, i) => `data: ${i}${eol}${eol}`).join('');
        // A line of exactly the cap is read; one byte more is not.
        const fits = enc(events + `data: ${'a'.repeat(100 - 6)}${eol}${eol}`);
        const got = parseInPieces(fits, cuts, new SseParser({ maxLineBytes: 100, maxEventBytes: 1000 }));
        assert.equal(got.length, before + 1);
        const over = enc(events + `data: ${'a'.repeat(100 - 5)}${eol}${eol}data: never${eol}${eol}`);
        const seen: SseEvent[] = [];
        const p = new SseParser({ source: 'http://h/v1/completions', maxLineBytes: 100, maxEventBytes: 1000 });
        assert.throws(
          () => {
            const at = [0, ...[...new Set(cuts)].filter((c) => c > 0 && c < over.length).sort((a, b) => a - b), over.length];
            for (let i = 0; i + 1 < at.length; i++) seen.push(...p.push(over.subarray(at[i], at[i + 1])));
            seen.push(...p.end());
          },
          (e: unknown) => e instanceof JaxServeError && e.code === 'E_SERVER' && e.message === 'http://h/v1/completions: a line of the event stream is over 100 bytes (the cap on one line); the server may be sending without end.',
        );
        assert.deepEqual(seen.map((e) => e.data), Array.from({ length: before }, (_, i) => String(i)));
        // Comments and fields that never make an event count against the event's cap.
        const idle = enc(events + `: ping${eol}event: x${eol}${eol}`.repeat(100));
        assert.throws(() => parseInPieces(idle, cuts, new SseParser({ maxLineBytes: 100, maxEventBytes: 1000 })), /sent over 1000 bytes without completing an event \(the cap on one event\)/);
      }),
      { seed, numRuns },
    );
    assert.equal(MAX_SSE_LINE_BYTES, 16 * 1024 * 1024, 'the cap the issue names');
  });
});

describe('server text for a person', () => {
  it("an HTML error page is its title (nginx's 502), or its first text; entities decoded, then controls stripped", () => {
    const nginx = '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n';
    assert.equal(serverText(nginx, { contentType: 'text/html' }).line, '502 Bad Gateway (1 more line in the log)');
    assert.equal(htmlText('<!doctype html><style>p{}</style><script>"<b>x</b>"</script><h1>Bad &amp; worse &#27;[31m&#x110000;</h1>'), 'Bad & worse \x1b[31m\ufffd');
    assert.equal(serverText('<h1>Bad &#27;[31mred</h1>', { contentType: 'text/html' }).line, 'Bad red');
  });

  it("a Python traceback is its exception's message, the exception name after it; a chained one its last", () => {
    const tb = (exc: string) => `Traceback (most recent call last):\n  File "/a.py", line 3, in f\n    g()\n${exc}`;
    assert.equal(serverText(JSON.stringify({ error: { message: tb('ValueError: the prompt is too long') } })).line, 'the prompt is too long (ValueError) (3 more lines in the log)');
    const chained = `${tb("KeyError: 'ids'")}\n\nDuring handling of the above exception, another exception occurred:\n\n${tb('torch.OutOfMemoryError: CUDA out of memory\nsecond line')}`;
    assert.match(serverText(chained, { json: false, logHint: 'X' }).line, /^CUDA out of memory \(OutOfMemoryError\) \(\d+ more lines in X\)$/);
    assert.equal(serverText('Traceback (most recent call last): File "a.py", line 1 KeyError: a ValueError: b', { json: false }).line, 'a b (KeyError, ValueError)');
  });

  it('a long or hostile body costs time linear in its size (no backtracking over unclosed tags or dotted names)', () => {
    const t0 = performance.now();
    serverText('<title'.repeat(11_000), { contentType: 'text/html' });
    serverText('<'.repeat(65_536), { contentType: 'text/html' });
    serverText('a.'.repeat(32_768), { json: false });
    serverText(`Traceback (most recent call last)${'a.'.repeat(32_768)}`, { json: false });
    assert.ok(performance.now() - t0 < 2000, `${(performance.now() - t0).toFixed(0)} ms`);
  });
});

describe('streaming client (vLLM, SGLang, transformers serve, as recorded)', function () {
  this.timeout(30_000);
  let replay: Replay;
  before(async () => (replay = await startReplay()));
  after(async () => replay?.close());

  for (const [name, t] of loadTranscripts()) {
    for (const pieces of [0, 5]) {
      it(`${name}${pieces ? ', cut into 1–5-byte writes' : ''}: ${t.source.split(':')[0]}`, async () => {
        replay.use(t, { pieces, seed: 7 });
        const seen: GenerateEvent[] = [];
        const req = { baseUrl: replay.url, api: apiOf(t.endpoint), model: 'tiny', prompt: 'Hello' };
        if (t.expect.error) {
          const err = await rejectsWith(generate(req, (e) => seen.push(e)), 'E_SERVER', new RegExp(t.expect.error.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
          assert.ok(err.message.startsWith(endpointUrl(req)), err.message);
          const partial = seen.map((e) => (e.kind === 'text' ? e.text : '')).join('');
          assert.equal(partial, t.expect.partialText ?? '', 'what arrived before the error was handed over');
          return;
        }
        const r = await generate(req, (e) => seen.push(e));
        assert.equal(r.text, t.expect.text);
        assert.equal(r.finishReason, t.expect.finishReason);
        if (t.expect.usage) assert.deepEqual(r.usage, t.expect.usage);
        if (t.expect.tokenIds) assert.deepEqual(r.tokenIds, t.expect.tokenIds);
        if (t.expect.tokens !== undefined) assert.equal(r.tokens, t.expect.tokens);
        assert.equal(replay.requests.at(-1)!.path, t.endpoint);
      });
    }
  }

  it('sends each API its own request: chat messages and usage option, completion prompt, SGLang sampling_params, no empty stop list; the API key as a bearer token', async () => {
    const t = loadTranscripts().get('vllm-chat-usage')!;
    replay.use(t);
    await generate({ baseUrl: `${replay.url}/v1/`, api: 'chat', model: 'm', prompt: 'p', maxTokens: 8, temperature: 0, topP: 0.9, stop: ['\n'], seed: 3, apiKey: 'sk-test' });
    const chat = replay.requests.at(-1)!;
    assert.equal(chat.path, '/v1/chat/completions');
    assert.equal(chat.headers.authorization, 'Bearer sk-test');
    assert.deepEqual(chat.body, { model: 'm', stream: true, max_tokens: 8, temperature: 0, top_p: 0.9, stop: ['\n'], seed: 3, messages: [{ role: 'user', content: 'p' }], stream_options: { include_usage: true } });
    replay.use(loadTranscripts().get('vllm-completions-token-ids')!);
    await generate({ baseUrl: replay.url, api: 'completions', model: 'tiny', prompt: 'once', maxTokens: 3, stop: [] });
    assert.deepEqual(replay.requests.at(-1)!.body, { model: 'tiny', stream: true, max_tokens: 3, prompt: 'once', stream_options: { include_usage: true } }, 'an empty stop list is not sent (transformers serve fails on it)');
    replay.use(loadTranscripts().get('sglang-generate-cumulative')!);
    await generate({ baseUrl: replay.url, api: 'sglang-generate', prompt: 'once', maxTokens: 3, temperature: 0 });
    assert.deepEqual(replay.requests.at(-1)!.body, { text: 'once', stream: true, sampling_params: { max_new_tokens: 3, temperature: 0 } });
  });

  it('measures time to first text and decode speed on its clock', async () => {
    replay.use(loadTranscripts().get('vllm-completions-token-ids')!);
    let clock = 0;
    const r = await generate({ baseUrl: replay.url, api: 'completions', model: 'tiny', prompt: 'x' }, undefined, fetch, () => (clock += 10));
    // t0 = 10; texts at 20, 30, 40; end 50: TTFT 10 ms; 2 tokens after the first in 20 ms.
    assert.equal(r.ttftMs, 10);
    assert.equal(r.totalMs, 40);
    assert.equal(r.tokensPerSecond, 100);
  });

  it('stops on abort with E_CANCELLED, keeping what arrived; a dropped connection is E_SERVER; a closed port is E_IO', async () => {
    const t = loadTranscripts().get('vllm-chat-usage')!;
    replay.use(t, { delayMs: 50 });
    const ac = new AbortController();
    let got = '';
    await rejectsWith(
      generate({ baseUrl: replay.url, api: 'chat', model: 'tiny', prompt: 'x', signal: ac.signal }, (e) => {
        if (e.kind === 'text') {
          got += e.text;
          ac.abort();
        }
      }),
      'E_CANCELLED',
      /Cancelled/,
    );
    assert.equal(got, 'héllo');
    replay.use(t, { dropAfter: 2, delayMs: 20 });
    got = '';
    await rejectsWith(generate({ baseUrl: replay.url, api: 'chat', model: 'tiny', prompt: 'x' }, (e) => (got += e.kind === 'text' ? e.text : '')), 'E_SERVER', /the connection broke after 2 chunks/);
    assert.equal(got, 'héllo');
    const closed = await startReplay();
    await closed.close();
    await rejectsWith(generate({ baseUrl: closed.url, api: 'chat', model: 'tiny', prompt: 'x' }), 'E_IO', /the connection was refused\. Is the server running and ready\?/);
  });

  it('jax-serve generate streams the text to stdout and TTFT, tokens/s and counts to stderr; a server error is one line, exit 2', async () => {
    const run = (...args: string[]) => cliAsync(['generate', '--url', replay.url, ...args]).then((r) => ({ code: r.status, out: r.stdout, err: r.stderr }));
    replay.use(loadTranscripts().get('vllm-chat-usage')!);
    const ok = await run('--chat', '--model', 'tiny', '--max-tokens', '3', '--temperature', '0', 'Hello');
    assert.equal(ok.code, 0, ok.err);
    assert.equal(ok.out, 'héllo 世界 🙂\n');
    assert.match(ok.err, /^TTFT \d+ ms · [\d.]+ tokens\/s · 3 tokens \(prompt 5\) · \d+ ms total · finish length\n$/);
    assert.deepEqual((replay.requests.at(-1)!.body as { messages: unknown }).messages, [{ role: 'user', content: 'Hello' }]);
    replay.use(loadTranscripts().get('vllm-nested-404')!);
    const bad = await run('--model', 'other', 'Hello');
    assert.equal(bad.code, 2);
    assert.match(bad.err, /^jax-serve: http:\/\/127\.0\.0\.1:\d+\/v1\/completions: HTTP 404: The model `other` does not exist\.\n$/);
    const usage = await run('--chat', '--sglang', 'x');
    assert.equal(usage.code, 2);
    assert.match(usage.err, /--chat and --sglang/);
  });

  describe('the model sent (SGLang-JAX requires one)', () => {
    const t = () => loadTranscripts().get('sglang-jax-cddbf6f1-completions-model-required')!;
    const cli = (...args: string[]) => cliAsync(['generate', '--url', replay.url, ...args]).then((r) => ({ code: r.status, out: r.stdout, err: r.stderr }));
    /** The requests since `from`: path and the model each sent. */
    const sent = (from: number) => replay.requests.slice(from).map((r) => [r.path, typeof r.body === 'object' && r.body !== null ? (r.body as { model?: unknown }).model : undefined]);

    it('as on the GPU, a request without `model` is refused with HTTP 400 "Field required"; jax-serve generate without --model sends the name /v1/models lists, and streams the recorded text', async () => {
      const rec = t();
      replay.use(rec);
      // The replay answers as SGLang-JAX's own validation handler did (the transcript cites how it was made).
      const refused = await fetch(`${replay.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'hello', stream: true }) });
      assert.equal(refused.status, 400);
      assert.match(((await refused.json()) as { message: string }).message, /'loc': \('body', 'model'\), 'msg': 'Field required'/);
      const listed = (JSON.parse(rec.models!.body) as { data: { id: string }[] }).data[0]!.id;
      const from = replay.requests.length;
      const ok = await cli('--max-tokens', '16', '--temperature', '0', 'hello');
      assert.equal(ok.code, 0, ok.err);
      assert.equal(ok.out, `${rec.expect.text}\n`, 'the text the GPU run printed (gen-completions.txt)');
      assert.match(ok.err, /^TTFT \d+ ms · [\d.]+ tokens\/s · 16 tokens · \d+ ms total · finish length\n$/);
      assert.deepEqual(sent(from), [['/v1/models', undefined], ['/v1/completions', listed]]);
      // --json names the model sent.
      const json = await cli('--json', '--max-tokens', '16', 'hello');
      assert.equal(json.code, 0, json.err);
      assert.equal((JSON.parse(json.out) as { model: string }).model, listed);
      // A name given is sent as it is, and nothing is listed.
      const given = replay.requests.length;
      assert.equal((await cli('--model', 'mine', 'hello')).code, 0);
      assert.deepEqual(sent(given), [['/v1/completions', 'mine']]);
    });

    it('without --model, a /v1/models that fails or lists nothing is one line saying so and to pass --model (exit 2); nothing is generated', async () => {
      const cases: [string, { status: number; body: string }, RegExp][] = [
        // FastAPI's own 404, as a server without the route answers.
        ['404', { status: 404, body: '{"detail":"Not Found"}' }, /^jax-serve: http:\/\/127\.0\.0\.1:\d+\/v1\/models: HTTP 404: Not Found\. No model name was given and the server's list could not be read: pass --model NAME \(for transformers serve, the folder it serves\)\.\n$/],
        // What transformers serve 5.23 lists when it serves a folder (serverProcess.test.ts reads it from the real server).
        ['an empty list', { status: 200, body: '{"object":"list","data":[]}' }, /^jax-serve: http:\/\/127\.0\.0\.1:\d+\/v1\/models lists no model, and the request needs a model name: pass --model NAME \(for transformers serve, the folder it serves\)\.\n$/],
        ['not a list', { status: 200, body: '{"object":"list"}' }, /^jax-serve: http:\/\/127\.0\.0\.1:\d+\/v1\/models: not a model list: .* pass --model NAME \(for transformers serve, the folder it serves\)\.\n$/],
        // vLLM's and SGLang's --api-key middleware (JSONResponse({"error": "Unauthorized"}, 401)): a model name would not help.
        ['401', { status: 401, body: '{"error":"Unauthorized"}' }, /^jax-serve: http:\/\/127\.0\.0\.1:\d+\/v1\/models: HTTP 401: Unauthorized\. The server asks for an API key: set JAX_SERVE_API_KEY to the key the server was started with\.\n$/],
      ];
      for (const [what, models, expected] of cases) {
        replay.use({ ...t(), models: { source: what, contentType: 'application/json', ...models } });
        const from = replay.requests.length;
        const r = await cli('--chat', 'hello');
        assert.equal(r.code, 2, what);
        assert.match(r.err, expected, what);
        assert.equal(r.out, '', what);
        assert.deepEqual(sent(from), [['/v1/models', undefined]], `${what}: no generation was sent`);
      }
    });

    it("SGLang's /generate takes no model: nothing is listed for it", async () => {
      replay.use(loadTranscripts().get('sglang-generate-cumulative')!);
      const from = replay.requests.length;
      const r = await generate({ baseUrl: replay.url, api: 'sglang-generate', prompt: 'once' });
      assert.equal(r.model, undefined);
      assert.deepEqual(sent(from), [['/generate', undefined]]);
    });

    it('reads /v1/models once per server while a ServedModels keeps it, again after forget(); vLLM\'s base model (listed before its LoRA adapters) is the one sent', async () => {
      // vLLM's show_available_models lists the served names, then one card per LoRA adapter.
      const vllmList = JSON.stringify({ object: 'list', data: [{ id: 'base', object: 'model', owned_by: 'vllm', root: '/exports/tiny', parent: null }, { id: 'sql-lora', object: 'model', owned_by: 'vllm', root: '/adapters/sql', parent: 'base' }] });
      replay.use({ ...t(), models: { source: 'vLLM', status: 200, contentType: 'application/json', body: vllmList } });
      const servedModels = new ServedModels();
      const from = replay.requests.length;
      for (let i = 0; i < 3; i++) assert.equal((await generate({ baseUrl: `${replay.url}/v1/`, api: 'completions', prompt: 'x', servedModels })).model, 'base');
      assert.deepEqual(sent(from), [['/v1/models', undefined], ['/v1/completions', 'base'], ['/v1/completions', 'base'], ['/v1/completions', 'base']]);
      servedModels.forget();
      const again = replay.requests.length;
      await generate({ baseUrl: replay.url, api: 'completions', prompt: 'x', servedModels });
      assert.deepEqual(sent(again), [['/v1/models', undefined], ['/v1/completions', 'base']]);
      // Bounded: the oldest server is dropped first.
      const few = new ServedModels(2);
      for (const root of ['a', 'b', 'c']) few.set(root, root);
      assert.deepEqual([few.get('a'), few.get('b'), few.get('c')], [undefined, 'b', 'c']);
    });

    it('a cancel while the list is read is E_CANCELLED; a refused connection says so, with what to do', async () => {
      replay.use(t(), { delayMs: 5000 });
      const ac = new AbortController();
      ac.abort();
      await rejectsWith(generate({ baseUrl: replay.url, api: 'chat', prompt: 'x', signal: ac.signal }), 'E_CANCELLED', /^Cancelled\.$/);
      const closed = await startReplay();
      await closed.close();
      await rejectsWith(generate({ baseUrl: closed.url, api: 'chat', prompt: 'x', modelHint: 'name it' }), 'E_IO', /\/v1\/models: the connection was refused\. Is the server running and ready\? No model name was given and the server's list could not be read: name it\.$/);
    });
  });

  it('takes a whole JSON reply where a server does not stream', async () => {
    replay.use({ ...loadTranscripts().get('vllm-nested-404')!, status: 200, body: [JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content: 'whole' }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 1 } })] });
    const r = await generate({ baseUrl: replay.url, api: 'chat', model: 'tiny', prompt: 'x' });
    assert.deepEqual([r.text, r.finishReason, r.usage], ['whole', 'stop', { promptTokens: 1, completionTokens: 1 }]);
  });
});

describe('replies bounded and messages clean (in process)', function () {
  this.timeout(30_000);
  type Handler = (res: import('node:http').ServerResponse) => void;
  let handler: Handler = (res) => res.end();
  let base = '';
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => handler(res));
  });
  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });
  /** Writes `chunk` until the client hangs up. */
  const endless = (status: number, contentType: string, chunk: string): Handler => (res) => {
    res.writeHead(status, { 'content-type': contentType });
    const b = Buffer.from(chunk.repeat(Math.ceil(65536 / chunk.length)));
    const more = () => {
      while (!res.destroyed && res.write(b));
      if (!res.destroyed) res.once('drain', more);
    };
    more();
  };

  it('lists model ids with controls and line breaks escaped, skipping ids that are not strings', async () => {
    handler = (res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ data: [{ id: 'm\x1b[31m1' }, { id: '\u202eevil\nname' }, { id: 5 }, null, { id: '\x1b]0;t\x07' }, { id: 'ok' }] }));
    assert.deepEqual(await listModels(base), ['m\\u001b[31m1', '\\u202eevil\\u000aname', '\\u001b]0;t\\u0007', 'ok']);
  });

  it('cuts off an endless model list at the cap and an endless error body at its own, hanging up', async () => {
    handler = endless(200, 'application/json', '{"data": [');
    await rejectsWith(listModels(base), 'E_SERVER', /\/v1\/models: the reply is over 64 MiB \(the cap on a whole reply\)/);
    handler = endless(500, 'text/plain', 'MARK line\n');
    await rejectsWith(listModels(base), 'E_SERVER', /\/v1\/models: HTTP 500: MARK line \(\d+ more lines in the server's reply\)$/);
  });

  it("an HTML page or a multi-line error is one line naming where the rest is; the log gets the whole text, controls stripped", async () => {
    const logged: [string, string][] = [];
    const log = { where: 'the channel', append: (url: string, text: string) => void logged.push([url, text]) };
    handler = (res) => res.writeHead(502, { 'content-type': 'text/html' }).end('<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n');
    await rejectsWith(listModels(base, undefined, fetch, undefined, log), 'E_SERVER', /^http:\/\/127\.0\.0\.1:\d+\/v1\/models: HTTP 502: 502 Bad Gateway \(1 more line in the channel\)$/);
    assert.deepEqual(logged.pop(), [`${base}/v1/models`, '502 Bad Gateway\nnginx/1.18.0']);
    handler = (res) => res.writeHead(200, { 'content-type': 'text/event-stream' }).end(`data: ${JSON.stringify({ choices: [{ index: 0, text: 'ok' }] })}\n\nevent: error\ndata: first \x1b[31mline\ndata: second\x07 line\n\n`);
    const err = await rejectsWith(generate({ baseUrl: base, api: 'completions', model: 'tiny', prompt: 'x', log }), 'E_SERVER', /: the server failed mid-stream after 1 chunks: first line \(1 more line in the channel\)$/);
    assert.ok(err.message.startsWith(`${base}/v1/completions: `));
    assert.deepEqual(logged.pop(), [`${base}/v1/completions`, 'first line\nsecond line']);
  });

  it('a reply that stalls or trickles is cut off at the idle limit; a cancel ends a stalled one at once', async () => {
    handler = (res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify({ choices: [{ index: 0, text: 'a' }] })}\n\n`);
      const t = setInterval(() => res.write(': ping\n'), 20);
      res.on('close', () => clearInterval(t));
    };
    let text = '';
    await rejectsWith(generate({ baseUrl: base, api: 'completions', model: 'tiny', prompt: 'x', idleTimeoutMs: 300 }, (e) => (text += e.kind === 'text' ? e.text : '')), 'E_SERVER', /nothing complete arrived for 0\.3 s \(the idle limit\) after 1 chunks/);
    assert.equal(text, 'a');
    handler = (res) => res.writeHead(200, { 'content-type': 'text/event-stream' }).flushHeaders();
    const ac = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ac.abort(), 200);
    await rejectsWith(generate({ baseUrl: base, api: 'completions', model: 'tiny', prompt: 'x', signal: ac.signal, idleTimeoutMs: 0 }), 'E_CANCELLED', /Cancelled/);
    assert.ok(Date.now() - t0 < 5000);
  });
});
