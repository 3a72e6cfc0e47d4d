/**
 * `jax-serve check-served`: the comparison rules on fixed numbers (a near-tie kept, a clear margin
 * failed, an early stop, logprob warnings); the real `transformers serve` on the canonical export
 * (equal, exit 0, the --json shape); the same server behind a proxy that changes the k-th
 * generated token (caught at k, exit 1); an SGLang /generate reply with ids and logprobs built from
 * transformers' own greedy numbers, replayed through the injectable fetch; and bad input (exit 2,
 * one line).
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { checkRequestBody, compareServed, ENGINES, nearTieBound, overLength, parseCheckReply, type ReferenceRow, type ServedReply } from '../../src/core/index';
import { checkServed, freePort, ServerProcess } from '../../src/core/node/index';
import { canonicalFixtures } from '../fixtures/canonical';
import { cliAsync, tempDir, venvPython } from './helpers';
import { assertCleanText } from './hostile';

const ROOT = resolve(__dirname, '../../..');
const WATCHDOG = join(ROOT, 'dist/serverWatchdog.js');

const cli = cliAsync;

/** A reference row for n generated tokens that all agree, with room to change one position. */
function row(n: number, over: Partial<ReferenceRow> = {}): ReferenceRow {
  const ids = Array.from({ length: n }, (_, i) => 10 + i);
  return {
    promptIds: [0, 5, 6],
    ids,
    idsFrom: 'server',
    argmax: [...ids, 1],
    margin: Array(n + 1).fill(2),
    topLogit: Array(n + 1).fill(12),
    gap: Array(n).fill(0),
    logprob: Array(n).fill(-0.5),
    tokenText: ids.map((i) => `t${i}`),
    argmaxText: [...ids.map((i) => `t${i}`), '</s>'],
    eos: [1],
    prefixChars: Array.from({ length: n + 1 }, (_, i) => 3 * i),
    ...over,
  };
}
const reply = (n: number, over: Partial<ServedReply> = {}): ServedReply => ({ text: 'x'.repeat(3 * n), ids: row(n).ids, logprobs: undefined, finishReason: 'length', promptTokens: 3, ...over });

describe('check-served: the comparison (fixed numbers)', () => {
  it('equal tokens pass; a divergence with a clear margin fails at its index with both tokens named', () => {
    const ok = compareServed(reply(5), row(5), { prompt: 'p', dtype: 'float32', maxTokens: 5 });
    assert.equal(ok.ok, true);
    assert.equal(ok.tokensEqual, true);
    assert.equal(ok.firstDivergence, null);
    const r = row(5);
    const bad = compareServed(reply(5), { ...r, argmax: [10, 11, 99, 13, 14, 1], argmaxText: ['t10', 't11', 'nine', 't13', 't14', '</s>'], gap: [0, 0, 0.5, 0, 0] }, { prompt: 'p', dtype: 'bfloat16', maxTokens: 5 });
    assert.equal(bad.ok, false);
    assert.equal(bad.firstDivergence, 2);
    assert.deepEqual([bad.failure?.referenceText, bad.failure?.serverText, bad.failure?.gap], ['nine', 't12', 0.5]);
    assert.deepEqual(bad.divergenceSpan, [6, 9]);
  });

  it('a near-tie within the serving dtype\'s resolution is kept and the rest compared; the same gap in float32 fails', () => {
    // bfloat16 at |logit| 12: 2⁻⁸·12 ≈ 0.047. A gap of 0.03 is a tie a kernel can flip.
    const r = row(6, { argmax: [10, 11, 77, 13, 14, 15, 1], gap: [0, 0, 0.03, 0, 0, 0], margin: [2, 2, 0.03, 2, 2, 2, 2] });
    const bf16 = compareServed(reply(6), r, { prompt: 'p', dtype: 'bfloat16', maxTokens: 6 });
    assert.equal(bf16.ok, true);
    assert.equal(bf16.tokensEqual, false);
    assert.equal(bf16.firstDivergence, 2);
    assert.deepEqual(bf16.nearTies.map((t) => [t.index, t.gap]), [[2, 0.03]]);
    assert.ok(Math.abs(bf16.nearTies[0]!.bound - 12 / 256) < 1e-12);
    const f32 = compareServed(reply(6), r, { prompt: 'p', dtype: 'float32', maxTokens: 6 });
    assert.equal(f32.ok, false);
    assert.equal(f32.failure?.index, 2);
    // A second divergence after a near-tie, with a clear margin, is still the failure.
    const later = compareServed(reply(6), { ...r, argmax: [10, 11, 77, 13, 88, 15, 1], gap: [0, 0, 0.03, 0, 1.5, 0] }, { prompt: 'p', dtype: 'bfloat16', maxTokens: 6 });
    assert.equal(later.failure?.index, 4);
    assert.equal(later.firstDivergence, 2);
    assert.ok(nearTieBound('float32', 0.1) === 1e-4, 'logits near zero keep a floor of 1 on the scale');
  });

  it('a server that stops before max tokens where the reference goes on fails at the stop; one whose end the reference picks passes', () => {
    const early = compareServed(reply(3, { finishReason: 'stop' }), row(3, { argmax: [10, 11, 12, 40], argmaxText: ['t10', 't11', 't12', 'more'] }), { prompt: 'p', dtype: 'float32', maxTokens: 8 });
    assert.equal(early.ok, false);
    assert.deepEqual([early.failure?.why, early.failure?.index, early.firstDivergence], ['stopped-early', 3, 3]);
    assert.equal(compareServed(reply(3, { finishReason: 'stop' }), row(3), { prompt: 'p', dtype: 'float32', maxTokens: 8 }).ok, true, 'the reference picks </s> after the last token');
  });

  it('a server that sent fewer ids than asked stopped, whatever its finish reason says (length over an empty reply, or none)', () => {
    const goesOn = row(3, { argmax: [10, 11, 12, 40], argmaxText: ['t10', 't11', 't12', 'more'] });
    for (const finishReason of ['length', undefined]) {
      const c = compareServed(reply(3, { finishReason }), goesOn, { prompt: 'p', dtype: 'float32', maxTokens: 8 });
      assert.deepEqual([c.ok, c.failure?.why, c.failure?.index], [false, 'stopped-early', 3], String(finishReason));
    }
    const empty = compareServed(reply(0, { text: '', ids: [] }), row(0, { argmax: [40], argmaxText: ['more'] }), { prompt: 'p', dtype: 'float32', maxTokens: 4 });
    assert.deepEqual([empty.ok, empty.failure?.why, empty.firstDivergence], [false, 'stopped-early', 0], 'an empty reply that says "length" generated nothing');
    assert.equal(compareServed(reply(3, { finishReason: undefined }), row(3), { prompt: 'p', dtype: 'float32', maxTokens: 8 }).ok, true, 'the reference ends there too');
    // Re-tokenised text may count differently: only the server's own "stop" counts there.
    assert.equal(compareServed(reply(3, { ids: undefined }), { ...goesOn, idsFrom: 'text' }, { prompt: 'p', dtype: 'float32', maxTokens: 8 }).ok, true);
  });

  it('a reply with more tokens than asked, or ids that are not integers, is not taken as a generation', () => {
    assert.match(overLength(reply(5), 4) ?? '', /the reply has 5 tokens, but the request asked for at most 4/);
    assert.match(overLength(reply(0, { ids: undefined, logprobs: [-1, -1, -1] }), 2) ?? '', /3 tokens/);
    assert.equal(overLength(reply(4), 4), undefined);
    assert.deepEqual(parseCheckReply('sglang-generate', { text: 'a', output_ids: [5, -1], meta_info: {} })?.ids, [5, -1], 'kept, so the reference names the id outside the vocabulary');
    assert.equal(parseCheckReply('sglang-generate', { text: 'a', output_ids: [5, 1.5], meta_info: {} }), undefined);
    assert.equal(parseCheckReply('completions', { choices: [{ text: 'a', token_ids: ['5'] }] }), undefined);
    assert.equal(parseCheckReply('completions', { choices: [{ text: 'a', token_ids: null }] })?.ids, undefined);
  });

  it('logprobs: the max |Δ| over the tokens, a warning with its position over the bound, null when the server sends none', () => {
    const r = row(4);
    const c = compareServed(reply(4, { logprobs: [-0.5, -0.5004, -0.7, -0.5] }), r, { prompt: 'p', dtype: 'float32', maxTokens: 4 });
    assert.ok(Math.abs(c.maxAbsLogprobDelta! - 0.2) < 1e-9);
    assert.deepEqual(c.logprobWarnings.map((w) => w.index), [2], 'Δ 4e-4 is under the float32 bound of 1e-3, Δ 0.2 over it');
    assert.equal(c.ok, true, 'a logprob warning is not a failure');
    assert.equal(compareServed(reply(4), r, { prompt: 'p', dtype: 'float32', maxTokens: 4 }).maxAbsLogprobDelta, null);
  });

  it('reads the three APIs\' non-streamed replies, and asks transformers serve only for fields it knows', () => {
    const g = parseCheckReply('sglang-generate', { text: 'eaea', output_ids: [294, 294], meta_info: { finish_reason: { type: 'length', length: 2 }, prompt_tokens: 4, output_token_logprobs: [[-5.0, 294, 'ea'], [-4.9, 294, 'ea']] } });
    assert.deepEqual(g, { text: 'eaea', ids: [294, 294], logprobs: [-5.0, -4.9], finishReason: 'length', promptTokens: 4 });
    const c = parseCheckReply('completions', { choices: [{ text: 'ea', finish_reason: 'length', logprobs: { token_logprobs: [-5.0], tokens: ['ea'] } }], usage: { prompt_tokens: 4 } });
    assert.deepEqual(c, { text: 'ea', ids: undefined, logprobs: [-5.0], tokens: ['ea'], finishReason: 'length', promptTokens: 4 });
    // The token texts keep a special token the reply's text skips (SGLang-JAX's chat listed a
    // "<pad>" its content left out: test/fixtures/sglang-jax-cddbf6f1-jax0.11.2-2026-12-05/replies-good.json).
    const chat = parseCheckReply('chat', { choices: [{ message: { role: 'assistant', content: 'hif' }, finish_reason: 'stop', logprobs: { content: [{ token: 'hi', logprob: -1 }, { token: '<pad>', logprob: -2 }, { token: 'f', logprob: -3 }] } }] });
    assert.deepEqual(chat?.logprobs, [-1, -2, -3]);
    assert.deepEqual(chat?.tokens, ['hi', '<pad>', 'f']);
    assert.equal(parseCheckReply('completions', { detail: 'x' }), undefined);
    assert.deepEqual(Object.keys(checkRequestBody('completions', 'p', 4, 'm')).sort(), ['logprobs', 'max_tokens', 'model', 'prompt', 'stream', 'temperature']);
    assert.equal(checkRequestBody('sglang-generate', 'p', 4, undefined).return_logprob, true);
  });
});

describe('check-served: against real servers', function () {
  this.timeout(300_000);
  let python: string;
  let model: string;
  let server: ServerProcess | undefined;

  before(async function () {
    python = venvPython(this);
    model = join(canonicalFixtures(python).dir, 'hf');
    server = await ServerProcess.start({ spec: ENGINES['transformers-serve'], launch: { model, host: '127.0.0.1', port: await freePort(), python, extraArgs: ['--device', 'cpu'] }, watchdog: WATCHDOG, onLine: () => undefined });
    await server.ready();
  });
  after(async () => {
    await server?.stop();
  });

  it('the real transformers serve on the canonical export: every prompt equal, exit 0, the --json shape', async () => {
    const r = await cli(['check-served', '--url', server!.url, '--source', model, '--model', model, '--python', python, '--max-tokens', '10', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { ok: boolean; api: string; prompts: { prompt: string; tokensEqual: boolean; firstDivergence: number | null; maxAbsLogprobDelta: number | null; compared: number; idsFrom: string }[] };
    assert.equal(report.ok, true);
    assert.equal(report.api, 'completions', 'transformers serve has no /get_model_info: completions');
    assert.deepEqual(report.prompts.map((p) => p.prompt), ['The quick brown fox jumps over the lazy dog.', 'Once upon a time', 'def add(a, b):\n    return']);
    for (const p of report.prompts) {
      assert.deepEqual([p.tokensEqual, p.firstDivergence, p.maxAbsLogprobDelta, p.compared, p.idsFrom], [true, null, null, 10, 'text'], JSON.stringify(p));
    }
    const text = await cli(['check-served', '--url', server!.url, '--source', model, '--model', model, '--python', python, '--max-tokens', '6', '--api', 'chat']);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /^✓ "Once upon a time": 6 tokens compared; all equal/m);
  });

  it('a proxy that changes the k-th generated token of the real server\'s reply is caught at k (exit 1)', async () => {
    const prompt = 'Once upon a time';
    const k = 4;
    // transformers' greedy ids for the prompt, and the text with token k replaced by another.
    const greedy = JSON.parse(execFileSync(python, [join(ROOT, 'python/fixtures/greedy.py'), model, '10'], { input: prompt, encoding: 'utf8', stdio: ['pipe', 'pipe', 'ignore'] })) as { ids: number[]; text: string };
    const changed = execFileSync(
      python,
      ['-c', 'import json,sys\nfrom transformers import AutoTokenizer\nt=AutoTokenizer.from_pretrained(sys.argv[1])\nids=json.loads(sys.argv[2]);k=int(sys.argv[3])\nz=t.convert_tokens_to_ids("Z")\nids[k]=z if ids[k]!=z else t.convert_tokens_to_ids("Q")\nprint(json.dumps(t.decode(ids,skip_special_tokens=True)))', model, JSON.stringify(greedy.ids), String(k)],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    );
    const replacement = JSON.parse(changed) as string;
    assert.notEqual(replacement, greedy.text);
    const target = new URL(server!.url);
    const proxy = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const up = httpRequest({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: { 'content-type': 'application/json' } }, (ur) => {
          let text = '';
          ur.on('data', (c) => (text += c));
          ur.on('end', () => {
            let out = text;
            if (req.url === '/v1/completions' && JSON.parse(body).prompt === prompt) {
              const j = JSON.parse(text);
              assert.equal(j.choices[0].text, greedy.text, 'the real server gives the greedy text');
              j.choices[0].text = replacement;
              out = JSON.stringify(j);
            }
            res.writeHead(ur.statusCode ?? 500, { 'content-type': ur.headers['content-type'] ?? 'application/json' }).end(out);
          });
        });
        up.end(body);
      });
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const tmp = tempDir();
    try {
      const prompts = join(tmp.path, 'prompts.json');
      writeFileSync(prompts, JSON.stringify(['def add(a, b):\n    return', prompt]));
      const url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
      const r = await cli(['check-served', '--url', url, '--source', model, '--model', model, '--python', python, '--max-tokens', '10', '--prompts', prompts, '--json']);
      assert.equal(r.status, 1, r.stderr);
      const report = JSON.parse(r.stdout) as { ok: boolean; prompts: { prompt: string; tokensEqual: boolean; firstDivergence: number | null; failure: { why: string } | null }[] };
      assert.equal(report.ok, false);
      assert.deepEqual(report.prompts.map((p) => [p.prompt, p.tokensEqual, p.firstDivergence]), [['def add(a, b):\n    return', true, null], [prompt, false, k]]);
      assert.equal(report.prompts[1]!.failure?.why, 'token');
      const human = await cli(['check-served', '--url', url, '--source', model, '--model', model, '--python', python, '--max-tokens', '10', '--prompts', prompts]);
      assert.equal(human.status, 1);
      assert.match(human.stdout, new RegExp(`^✗ "Once upon a time": 10 tokens compared; diverges at token ${k}: the reference picks .* the server "Z" .*margin`, 'm'));
      assert.match(human.stdout, /1 of 2 prompt\(s\) diverge$/m);
    } finally {
      proxy.close();
      tmp.remove();
    }
  });

  it('SGLang\'s /generate (found by /get_model_info): ids and logprobs from transformers\' own greedy pass; one id changed is caught there', async () => {
    const prompt = 'Once upon a time';
    // Greedy ids, text and log-softmax of each, from the export itself: a faithful server's reply.
    const made = JSON.parse(
      execFileSync(
        python,
        ['-c', 'import json,sys,torch\nfrom transformers import AutoTokenizer,AutoModelForCausalLM\nt=AutoTokenizer.from_pretrained(sys.argv[1]);m=AutoModelForCausalLM.from_pretrained(sys.argv[1],dtype=torch.float32)\np=t(sys.argv[2],return_tensors="pt")\no=m.generate(**p,do_sample=False,max_new_tokens=8)\nids=o[0,p["input_ids"].shape[1]:].tolist()\nlp=torch.log_softmax(m(o).logits[0].float(),-1)\nn=p["input_ids"].shape[1]\nprint(json.dumps({"ids":ids,"text":t.decode(ids,skip_special_tokens=True),"lp":[lp[n-1+i,x].item() for i,x in enumerate(ids)],"n":n}))', model, prompt],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
      ),
    ) as { ids: number[]; text: string; lp: number[]; n: number };
    const seen: string[] = [];
    const fakeFetch = (ids: number[]) =>
      (async (input: string | URL | Request, init?: RequestInit) => {
        const url = String(input);
        seen.push(url.replace(/^http:\/\/[^/]+/, ''));
        if (url.endsWith('/get_model_info')) return new Response(JSON.stringify({ model_path: model, tokenizer_path: model, is_generation: true }), { headers: { 'content-type': 'application/json' } });
        const body = JSON.parse(String(init?.body)) as Record<string, unknown>;
        assert.deepEqual(body, { text: prompt, stream: false, return_logprob: true, sampling_params: { max_new_tokens: 8, temperature: 0 } });
        return new Response(JSON.stringify({ text: made.text, output_ids: ids, meta_info: { finish_reason: { type: 'length', length: 8 }, prompt_tokens: made.n, output_token_logprobs: made.lp.map((l, i) => [l, ids[i], '']) } }), { headers: { 'content-type': 'application/json' } });
      }) as typeof fetch;
    const base = { url: 'http://replay.invalid', source: model, prompts: [prompt], maxTokens: 8, python, packageRoot: ROOT };
    const good = await checkServed(base, fakeFetch(made.ids));
    assert.deepEqual(seen, ['/get_model_info', '/generate']);
    assert.equal(good.api, 'sglang-generate');
    assert.equal(good.ok, true);
    assert.equal(good.model, undefined);
    const p = good.prompts[0]!;
    assert.deepEqual([p.idsFrom, p.tokensEqual, p.compared, p.notes], ['server', true, 8, []]);
    assert.ok(p.maxAbsLogprobDelta !== null && p.maxAbsLogprobDelta < 1e-4, `Δlogprob ${p.maxAbsLogprobDelta}`);
    const ids = [...made.ids];
    ids[5] = ids[5] === 70 ? 71 : 70;
    const bad = await checkServed(base, fakeFetch(ids));
    assert.equal(bad.ok, false);
    assert.equal(bad.prompts[0]!.firstDivergence, 5);
    assert.deepEqual(bad.prompts[0]!.logprobWarnings.map((w) => w.index).slice(0, 1), [5], 'the changed token\'s logprob is the first one off');
    // A name given (the panel's attached model) is not sent to /generate, so the report names none.
    seen.length = 0;
    const named = await checkServed({ ...base, model: 'served-name' }, fakeFetch(made.ids));
    assert.deepEqual(seen, ['/get_model_info', '/generate'], 'no /v1/models either');
    assert.equal(named.model, undefined);
  });
});

describe('check-served: a text-only server that writes special tokens as text', function () {
  this.timeout(120_000);
  it('"</s>" after the greedy text is the EOS id at its place: n + 1 tokens compared, the divergence at n names </s>; the greedy text alone is equal', async function () {
    const python = venvPython(this);
    const model = join(canonicalFixtures(python).dir, 'hf');
    const prompt = 'Once upon a time';
    const greedy = JSON.parse(execFileSync(python, [join(ROOT, 'python/fixtures/greedy.py'), model, '6'], { input: prompt, encoding: 'utf8', stdio: ['pipe', 'pipe', 'ignore'] })) as { ids: number[]; text: string };
    assert.equal(greedy.ids.length, 6);
    let text = '';
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.url === '/get_model_info') return res.writeHead(404).end();
        if (req.url === '/v1/models') return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ data: [{ id: 'm' }] }));
        return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ choices: [{ text, finish_reason: 'stop' }] }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const base = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, source: model, prompts: [prompt], maxTokens: 8, python, packageRoot: ROOT };
      text = greedy.text + '</s>';
      const p = (await checkServed(base)).prompts[0]!;
      assert.deepEqual([p.compared, p.firstDivergence, p.failure?.serverText, p.failure?.serverId, p.idsFrom], [7, 6, '</s>', 1, 'text'], JSON.stringify(p));
      text = greedy.text;
      const plain = (await checkServed({ ...base, maxTokens: 6 })).prompts[0]!;
      assert.deepEqual([plain.ok, plain.compared, plain.tokensEqual], [true, 6, true], JSON.stringify(plain));
    } finally {
      server.close();
    }
  });
});

describe('check-served: bad input (exit 2, one line)', function () {
  this.timeout(60_000);
  it('a /generate reply with more tokens than asked, or a token id outside the vocabulary: exit 2, one line naming the server or the id', async function () {
    this.timeout(120_000);
    const python = venvPython(this);
    const model = join(canonicalFixtures(python).dir, 'hf');
    let ids: unknown[] = [];
    const server = createServer((req, res) => {
      const json = (v: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(v));
      if (req.url === '/get_model_info') return json({ model_path: model });
      req.resume();
      return req.on('end', () => json({ text: 'ab', output_ids: ids, meta_info: { finish_reason: { type: 'length' } } }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const tmp = tempDir();
    try {
      const prompts = join(tmp.path, 'prompts.json');
      writeFileSync(prompts, JSON.stringify(['hi']));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const cases: [unknown[], RegExp][] = [
        [Array(9).fill(5), /\/generate: the reply has 9 tokens, but the request asked for at most 4: the server did not honour its length limit\.$/],
        [[5, -1], /token id -1, outside the export's vocabulary/],
        [[5, 1e9], /token id 1000000000, outside the export's vocabulary/],
      ];
      for (const [sent, message] of cases) {
        ids = sent;
        const r = await cli(['check-served', '--url', url, '--source', model, '--python', python, '--max-tokens', '4', '--prompts', prompts]);
        assert.equal(r.status, 2, `${JSON.stringify(sent)}: ${r.stderr}`);
        const errors = r.stderr.split('\n').filter((l) => l.startsWith('jax-serve:'));
        assert.equal(errors.length, 1, r.stderr);
        assert.match(errors[0]!, message);
      }
    } finally {
      server.close();
      tmp.remove();
    }
  });

  it('an export folder transformers cannot load (no tokenizer files, weights that are not safetensors): one line naming the folder, no traceback', async function () {
    this.timeout(120_000);
    const python = venvPython(this);
    const model = join(canonicalFixtures(python).dir, 'hf');
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.url === '/get_model_info') return res.writeHead(404).end();
        if (req.url === '/v1/models') return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ data: [{ id: 'm' }] }));
        return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ choices: [{ text: ' the', finish_reason: 'length' }] }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const tmp = tempDir();
    try {
      const prompts = join(tmp.path, 'prompts.json');
      writeFileSync(prompts, JSON.stringify(['hi']));
      const noTokenizer = join(tmp.path, 'no-tokenizer');
      const badWeights = join(tmp.path, 'bad-weights');
      mkdirSync(noTokenizer);
      mkdirSync(badWeights);
      for (const f of ['config.json', 'model.safetensors']) copyFileSync(join(model, f), join(noTokenizer, f));
      for (const f of readdirSync(model).filter((f) => f !== 'model.safetensors')) copyFileSync(join(model, f), join(badWeights, f));
      writeFileSync(join(badWeights, 'model.safetensors'), 'not safetensors');
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      for (const [source, what] of [[noTokenizer, 'tokenizer'], [badWeights, 'model']] as const) {
        const r = await cli(['check-served', '--url', url, '--source', source, '--python', python, '--max-tokens', '2', '--prompts', prompts]);
        const errors = r.stderr.split('\n').filter((l) => !/^(server|reference): /.test(l) && l !== '');
        assert.deepEqual([r.status, errors.length], [2, 1], r.stderr);
        assert.match(errors[0]!, new RegExp(`^jax-serve: ${source.replace(/[/.]/g, '\\$&')}: transformers cannot load the export's ${what} \\(.+\\); give the export folder`));
        assert.doesNotMatch(errors[0]!, /--help/);
        assertCleanText(r.stderr, 'check-served');
      }
    } finally {
      server.close();
      tmp.remove();
    }
  });

  it('a prompts file that is not a list, no such source, an unreachable URL, a bad --api', async function () {
    const python = venvPython(this);
    const model = join(canonicalFixtures(python).dir, 'hf');
    const tmp = tempDir();
    try {
      const prompts = join(tmp.path, 'prompts.json');
      writeFileSync(prompts, '{"prompt": "hi"}');
      const port = await freePort();
      const cases: [string[], RegExp][] = [
        [['--url', `http://127.0.0.1:${port}`, '--source', model, '--prompts', prompts], /prompts\.json: expected a JSON list of non-empty prompt strings/],
        [['--url', `http://127.0.0.1:${port}`, '--source', join(tmp.path, 'nothing')], /nothing: no config\.json; the source is the export folder the server serves\.$/m],
        [['--url', `http://127.0.0.1:${port}`, '--source', model], /127\.0\.0\.1:\d+\/get_model_info: the connection was refused\. Is the server running and ready\?/],
        [['--url', `http://127.0.0.1:${port}`, '--source', model, '--api', 'grpc'], /--api takes generate, completions or chat/],
        // A name every object has (Object.prototype's) is no API either.
        [['--url', `http://127.0.0.1:${port}`, '--source', model, '--api', 'constructor'], /--api takes generate, completions or chat, not "constructor"\./],
        [['--url', 'ftp://x', '--source', model], /--url takes an http/],
      ];
      for (const [args, message] of cases) {
        const r = await cli(['check-served', '--python', python, ...args]);
        assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
        assert.equal(r.stdout, '');
        assert.equal(r.stderr.split('\n').filter((l) => l !== '').length, 1, r.stderr);
        assert.match(r.stderr, /^jax-serve: /);
        assert.match(r.stderr, message);
      }
    } finally {
      tmp.remove();
    }
  });
});
