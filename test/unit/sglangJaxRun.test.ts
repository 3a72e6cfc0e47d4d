/**
 * The GPU run of SGLang-JAX, replayed (scripts/gpu/sglang-jax-run.sh recorded it on the lent GPU;
 * scripts/gpu/import-records.sh made each test/fixtures/sglang-jax-<commit>-jax<version>-<date>/
 * folder that has `replies-good.json`). CI rebuilds the exports the run served from the same
 * script and seed, checks it got the same bytes, and then:
 *  - check-served against the recorded replies of every API: equal on the good export, and the
 *    broken-RoPE export caught at the same token the device run reported;
 *  - the recorded streams through `jax-serve generate`, with no --model (the recorded server
 *    refuses a request without one): the text equals transformers' greedy text recorded beside them;
 *  - the offline script's text equals transformers' greedy text.
 */
import * as assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { shapedLlamaFixtures } from '../fixtures/canonical';
import { venvPython } from './helpers';

const ROOT = resolve(__dirname, '../../..');
const CLI = join(ROOT, 'dist/cli.js');
const FIXTURES = join(ROOT, 'test/fixtures');
const PROMPTS = join(ROOT, 'scripts/gpu/prompts.json');

const runs = readdirSync(FIXTURES)
  .filter((d) => d.startsWith('sglang-jax-') && existsSync(join(FIXTURES, d, 'replies-good.json')))
  .map((d) => join(FIXTURES, d));

const json = (dir: string, file: string) => JSON.parse(readFileSync(join(dir, file), 'utf8'));

function cli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (status) => done({ status, stdout, stderr }));
  });
}

/**
 * The exports the run served, rebuilt here by the run's own steps (shaped_llama.py, then our
 * converter, once with the broken-RoPE rules), cached outside the clone; their sha256 must equal
 * what the device run recorded, or the replay would compare against another model.
 */
function rebuiltExports(python: string, run: string): Record<'export128' | 'export128-broken-rope', string> {
  const m = shapedLlamaFixtures(python, { headDim: 128, heads: 4, kvHeads: 2 });
  const rules = join(ROOT, 'scripts/gpu/broken-rope.rules.json');
  const key = createHash('sha256').update(m.dir).update(readFileSync(CLI)).update(readFileSync(rules)).digest('hex').slice(0, 12);
  const base = join(process.env.JAX_SERVE_CACHE ?? join(homedir(), '.cache', 'jax-serve'), 'fixtures', `gpu-run-exports-${key}`);
  const out = { export128: join(base, 'export128'), 'export128-broken-rope': join(base, 'export128-broken-rope') };
  if (!existsSync(join(base, 'done'))) {
    const tmp = `${base}.partial-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    const convert = (name: string, extra: string[]) =>
      execFileSync(process.execPath, [CLI, 'convert', join(m.dir, 'jax/nnx.msgpack'), '-o', join(tmp, name), '--config-from', join(m.dir, 'hf'), '--tokenizer-from', join(m.dir, 'hf'), ...extra], { stdio: 'pipe' });
    convert('export128', []);
    convert('export128-broken-rope', ['--rules', rules]);
    rmSync(base, { recursive: true, force: true });
    renameSync(tmp, base);
    execFileSync('touch', [join(base, 'done')]);
  }
  const recorded = readFileSync(join(run, 'exports.sha256'), 'utf8');
  for (const [name, dir] of Object.entries(out)) {
    for (const file of ['model.safetensors', 'config.json', 'tokenizer.json']) {
      const want = new RegExp(`^([0-9a-f]{64})\\s+${name.replace(/[-.]/g, '\\$&')}/${file.replace('.', '\\.')}$`, 'm').exec(recorded)?.[1];
      const got = createHash('sha256').update(readFileSync(join(dir, file))).digest('hex');
      assert.equal(got, want, `${name}/${file} rebuilt here differs from the one the GPU run served (${join(run, 'exports.sha256')})`);
    }
  }
  return out;
}

/**
 * A server that answers as the recorded SGLang-JAX did: the recorded reply for each prompt and API
 * (non-streamed), the recorded raw stream for "hello" (streamed), /get_model_info, /v1/models, and
 * the recorded 400 for an OpenAI request without `model`.
 */
async function replay(run: string, replies: string): Promise<{ url: string; server: Server; seen: Record<string, unknown>[] }> {
  const r = json(run, replies) as Record<'generate' | 'completions' | 'chat', Record<string, unknown>>;
  const seen: Record<string, unknown>[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const send = (status: number, text: string, type = 'application/json') => res.writeHead(status, { 'content-type': type }).end(text);
      if (req.method === 'GET' && req.url === '/get_model_info') return send(200, readFileSync(join(run, 'get-model-info.json'), 'utf8'));
      if (req.method === 'GET' && req.url === '/v1/models') return send(200, readFileSync(join(run, replies === 'replies-good.json' ? 'v1-models.json' : 'v1-models-broken.json'), 'utf8'));
      const b = JSON.parse(body || '{}') as Record<string, unknown>;
      seen.push({ url: req.url, ...b });
      const api = req.url === '/generate' ? 'generate' : req.url === '/v1/completions' ? 'completions' : req.url === '/v1/chat/completions' ? 'chat' : undefined;
      if (!api) return send(404, '{"detail":"Not Found"}');
      if (api !== 'generate' && typeof b.model !== 'string') return send(400, readFileSync(join(run, 'e-completions-no-model.json'), 'utf8'));
      const prompt = api === 'generate' ? b.text : api === 'completions' ? b.prompt : (b.messages as { content: string }[])[0]!.content;
      if (b.stream) {
        if (prompt !== 'hello') return send(404, '{"detail":"not recorded"}');
        return send(200, readFileSync(join(run, `t-${api}.sse`), 'utf8'), 'text/event-stream');
      }
      const reply = r[api][String(prompt)];
      return reply ? send(200, JSON.stringify(reply)) : send(404, '{"detail":"not recorded"}');
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, seen };
}

for (const run of runs) {
  describe(`SGLang-JAX on the GPU, replayed: ${run.split('/').pop()}`, function () {
    this.timeout(600_000);
    let python: string;
    let exports: ReturnType<typeof rebuiltExports>;
    before(function () {
      python = venvPython(this);
      exports = rebuiltExports(python, run);
    });

    for (const api of ['generate', 'completions', 'chat'] as const) {
      it(`check-served over the recorded ${api} replies: every prompt's tokens equal the export's, exit 0`, async () => {
        const s = await replay(run, 'replies-good.json');
        try {
          const r = await cli(['check-served', '--url', s.url, '--source', exports.export128, '--prompts', PROMPTS, '--api', api, '--python', python, '--json']);
          assert.equal(r.status, 0, r.stdout + r.stderr);
          const report = JSON.parse(r.stdout) as { ok: boolean; model: string; prompts: { prompt: string; tokensEqual: boolean; firstDivergence: number | null; idsFrom: string }[] };
          assert.equal(report.ok, true);
          assert.deepEqual(report.prompts.map((p) => p.prompt), JSON.parse(readFileSync(PROMPTS, 'utf8')));
          for (const p of report.prompts) assert.equal(p.tokensEqual, true, p.prompt);
          if (api !== 'generate') assert.equal(report.model, json(run, 'v1-models.json').data[0].id, 'the model sent is the one /v1/models lists');
        } finally {
          s.server.close();
        }
      });
    }

    it('check-served catches the broken-RoPE export at the token the device run reported, exit 1', async () => {
      const s = await replay(run, 'replies-broken.json');
      try {
        const r = await cli(['check-served', '--url', s.url, '--source', exports.export128, '--prompts', PROMPTS, '--python', python, '--json']);
        assert.equal(r.status, 1, r.stdout + r.stderr);
        const here = JSON.parse(r.stdout) as { ok: boolean; prompts: { prompt: string; firstDivergence: number | null }[] };
        const there = json(run, 'check-broken.json') as typeof here;
        assert.equal(here.ok, false);
        assert.deepEqual(here.prompts.map((p) => [p.prompt, p.firstDivergence]), there.prompts.map((p) => [p.prompt, p.firstDivergence]));
        assert.ok(here.prompts.some((p) => p.firstDivergence !== null));
      } finally {
        s.server.close();
      }
    });

    it('the recorded streams through jax-serve generate, no --model given: the text is transformers\' greedy text', async () => {
      const greedy = json(run, 'greedy.json').export128 as Record<string, { text: string; ids: number[] }>;
      const s = await replay(run, 'replies-good.json');
      try {
        for (const [flag, key] of [['--sglang', 'hello'], [undefined, 'hello'], ['--chat', 'chat:hello']] as const) {
          const r = await cli(['generate', '--url', s.url, ...(flag ? [flag] : []), '--max-tokens', '16', '--temperature', '0', '--json', 'hello']);
          assert.equal(r.status, 0, r.stderr);
          const out = JSON.parse(r.stdout) as { text: string; tokens: number };
          assert.equal(out.text, greedy[key]!.text, `${flag ?? 'completions'}: the stream's text`);
          // The server's token count. Not its streamed ids: SGLang-JAX's streamed /generate lists a
          // token whose text is an incomplete UTF-8 sequence twice (18 ids for 16 tokens in
          // t-generate.sse), which is why check-served asks without streaming.
          assert.equal(out.tokens, greedy[key]!.ids.length, `${flag ?? 'completions'}: tokens`);
        }
        const openai = s.seen.filter((b) => b.url !== '/generate');
        assert.ok(openai.length >= 2 && openai.every((b) => b.model === json(run, 'v1-models.json').data[0].id), 'completions and chat sent the listed model');
      } finally {
        s.server.close();
      }
    });

    it('the offline script (Engine.generate) printed transformers\' greedy text', function () {
      if (!existsSync(join(run, 'offline.stdout'))) return this.skip();
      const greedy = json(run, 'greedy.json').export128 as Record<string, { text: string }>;
      const out = readFileSync(join(run, 'offline.stdout'), 'utf8');
      assert.match(out, /^exit=0$/m, out);
      // The script prints repr(prompt) -> repr(text): Python reads them back.
      const read = 'import ast, json, sys\nprint(json.dumps([[ast.literal_eval(x) for x in l.split(" -> ", 1)] for l in sys.stdin.read().splitlines() if " -> " in l]))';
      const printed = JSON.parse(execFileSync(python, ['-c', read], { input: out, encoding: 'utf8' })) as [string, string][];
      assert.deepEqual(printed, [['hello', greedy.hello!.text]]);
    });
  });
}
