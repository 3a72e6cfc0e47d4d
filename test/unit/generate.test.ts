/**
 * The streaming client against recorded engine responses (test/fixtures/transcripts, each citing
 * its reference section), replayed by a local server whole and cut into 1–5-byte writes; the SSE
 * parser under every split of a stream; abort, a dropped connection and a refused one.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { endpointUrl, generate, SseParser, type GenerateApi, type GenerateEvent, type SseEvent } from '../../src/core/index';
import { rejectsWith } from './helpers';
import { loadTranscripts, startReplay, type Replay } from './replayServer';

const CLI = join(resolve(__dirname, '../../..'), 'dist/cli.js');
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
    await generate({ baseUrl: replay.url, api: 'completions', prompt: 'once', maxTokens: 3, stop: [] });
    assert.deepEqual(replay.requests.at(-1)!.body, { stream: true, max_tokens: 3, prompt: 'once', stream_options: { include_usage: true } }, 'an empty stop list is not sent (transformers serve fails on it)');
    replay.use(loadTranscripts().get('sglang-generate-cumulative')!);
    await generate({ baseUrl: replay.url, api: 'sglang-generate', prompt: 'once', maxTokens: 3, temperature: 0 });
    assert.deepEqual(replay.requests.at(-1)!.body, { text: 'once', stream: true, sampling_params: { max_new_tokens: 3, temperature: 0 } });
  });

  it('measures time to first text and decode speed on its clock', async () => {
    replay.use(loadTranscripts().get('vllm-completions-token-ids')!);
    let clock = 0;
    const r = await generate({ baseUrl: replay.url, api: 'completions', prompt: 'x' }, undefined, fetch, () => (clock += 10));
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
      generate({ baseUrl: replay.url, api: 'chat', prompt: 'x', signal: ac.signal }, (e) => {
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
    await rejectsWith(generate({ baseUrl: replay.url, api: 'chat', prompt: 'x' }, (e) => (got += e.kind === 'text' ? e.text : '')), 'E_SERVER', /the connection broke after 2 chunks/);
    assert.equal(got, 'héllo');
    const closed = await startReplay();
    await closed.close();
    await rejectsWith(generate({ baseUrl: closed.url, api: 'chat', prompt: 'x' }), 'E_IO', /ECONNREFUSED\. Is the server running and ready\?/);
  });

  it('jax-serve generate streams the text to stdout and TTFT, tokens/s and counts to stderr; a server error is one line, exit 2', async () => {
    const run = (...args: string[]) =>
      new Promise<{ code: number | null; out: string; err: string }>((done) => {
        const p = spawn(process.execPath, [CLI, 'generate', '--url', replay.url, ...args]);
        let out = '';
        let err = '';
        p.stdout.on('data', (d) => (out += d));
        p.stderr.on('data', (d) => (err += d));
        p.on('close', (code) => done({ code, out, err }));
      });
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

  it('takes a whole JSON reply where a server does not stream', async () => {
    replay.use({ ...loadTranscripts().get('vllm-nested-404')!, status: 200, body: [JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content: 'whole' }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 1 } })] });
    const r = await generate({ baseUrl: replay.url, api: 'chat', prompt: 'x' });
    assert.deepEqual([r.text, r.finishReason, r.usage], ['whole', 'stop', { promptTokens: 1, completionTokens: 1 }]);
  });
});
