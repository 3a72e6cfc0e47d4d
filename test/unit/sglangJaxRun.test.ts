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
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, GPU_RUN_PROMPTS as PROMPTS, gpuRuns, rebuiltExports, replay, runJson as json } from './gpuRunReplay';
import { venvPython } from './helpers';

const runs = gpuRuns();

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
