/**
 * SGLang-JAX as it really ran on a GPU (every recorded run in test/fixtures/sglang-jax-NAME/): the log
 * reader finds the phases, weights k/N and the KV cache size of the start, and the cause of the
 * head_dim-16 failure; the CLI, on a stand-in that replays the recorded output (tqdm bars redrawn
 * with CR, HTTP from the Uvicorn line, the engine's own SIGKILL), prints each phase once and one
 * "ready at", or one first `jax-serve:` line with the cause and the preflight hint. And --device is
 * checked against JAX_PLATFORMS before anything is spawned.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describeExit, ENGINES, ServerLog } from '../../src/core/index';
import { tempDir } from './helpers';
import { readServerLog, recordedRuns, REPLAY_LOG, serveReplayed as serve, type RunExpect } from './recordedRuns';

const CLI = resolve(__dirname, '../../../dist/cli.js');
const SPEC = ENGINES['sglang-jax'];

function read(text: string, expect: RunExpect): ServerLog {
  const log = readServerLog(text);
  const s = log.state;
  assert.deepEqual(s.phases.map((p) => p.phase), expect.phases);
  if (expect.progress) assert.deepEqual(s.progress, { done: expect.progress[0], total: expect.progress[1] });
  for (const [phase, detail] of Object.entries(expect.details ?? {})) assert.equal(s.phases.find((p) => p.phase === phase)?.detail, detail, phase);
  assert.equal(s.readyLine, expect.ready);
  assert.ok(s.phases.every((p, i) => i === 0 || p.at > s.phases[i - 1]!.at), 'phase times rise');
  return log;
}

const runs = recordedRuns();

describe('SGLang-JAX recorded on a GPU: the log reader', () => {
  it('finds at least one recorded run', () => assert.ok(runs.length >= 1));

  for (const run of runs) {
    it(`${run.name}: the start reads as ${run.startup.phases.join(' → ')}, weights ${run.startup.progress?.join('/')}, the KV size; the KeyboardInterrupt tracebacks of our stop are no cause`, () => {
      const log = read(run.engineText(run.startup.log), run.startup);
      assert.equal(log.traceback(), undefined);
      assert.deepEqual(log.explain(), []);
    });

    it(`${run.name}: the head_dim-16 failure names ${run.failure.traceback?.place}, its exception, and the head_dim cause with the preflight hint`, () => {
      const log = read(run.engineText(run.failure.log), run.failure);
      assert.deepEqual(log.traceback(), run.failure.traceback);
      assert.deepEqual(log.explain().map((c) => c.cause.cause), run.failure.causes);
      assert.ok(log.explain().every((c) => c.cause.preflight));
      assert.equal(log.killedItself(), run.failure.killedItself);
      const first = describeExit(SPEC, log, null, 'SIGKILL').split('\n')[0]!;
      assert.ok(first.includes(`${run.failure.traceback!.place}: ${run.failure.traceback!.exception}`), first);
      assert.match(first, /jax-serve preflight DIR --engine sglang-jax/);
      assert.match(first, /^SGLang-JAX ended its own processes \(SIGKILL\) after one of them failed, before it was ready: /);
      assert.doesNotMatch(first, /killed by SIGKILL/);
    });
  }

  it('precompile: a synthetic line in the engine\'s wording (sgl_jax/srt/managers/scheduler.py:556-558; the recordings ran with --disable-precompile) is its own phase, between KV cache and HTTP', () => {
    const log = new ServerLog(SPEC);
    log.push(
      [
        '[2026-12-04 04:31:00] JAX Fused KV Cache allocated. #tokens: 1000, Fused KV size: 0.50 GB',
        '[2026-12-04 04:31:00] [Scheduler] Begins to run worker precompile.', // synthetic
        '[2026-12-04 04:31:30] [Scheduler] Completes worker precompile.', // synthetic
        '[2026-12-04 04:31:31] INFO:     Uvicorn running on http://127.0.0.1:30000 (Press CTRL+C to quit)',
        '',
      ].join('\n'),
    );
    assert.deepEqual(log.state.phases.map((p) => p.phase), ['starting', 'kv-cache', 'precompile', 'http']);
    assert.equal(log.state.phases[1]!.detail, '0.50 GB, 1,000 tokens');
  });
});

describe('SGLang-JAX recorded on a GPU: `jax-serve serve` on the replayed run', function () {
  this.timeout(60_000);
  let model: ReturnType<typeof tempDir>;
  before(() => {
    assert.ok(existsSync(CLI), 'dist/cli.js is built (node esbuild.mjs)');
    model = tempDir('jax-serve-sgljax-');
  });
  after(() => model.remove());

  for (const run of runs) {
    it(`${run.name}: each phase once, in order, weights ${run.startup.progress?.join('/')} and the KV size, then one "ready at" with the model name; Ctrl-C stops it`, async () => {
      const answers: unknown[] = [];
      const r = await serve([model.path, '--engine', 'sglang-jax', '--device', 'cuda', '--served-name', 'tiny', '--command', `${JSON.stringify(process.execPath)} ${JSON.stringify(REPLAY_LOG)} ${JSON.stringify(run.dir)}`], {}, async (url) => {
        for (const path of ['/v1/models', '/get_model_info', '/metrics']) {
          const res = await fetch(url + path);
          answers.push([res.status, await res.json()]);
        }
      });
      // The stand-in answers as SGLang-JAX does: the served name; the model path; /metrics 404 without --enable-metrics.
      const [[, models], [, info], [metrics]] = answers as [[number, { data: { id: string }[] }], [number, { model_path: string }], [number]];
      assert.deepEqual(models.data.map((m) => m.id), ['tiny']);
      assert.equal(info.model_path, model.path);
      assert.equal(metrics, 404);
      const lines = r.out.trimEnd().split('\n');
      const phases = lines.filter((l) => /^\[\d+\.\d s\] /.test(l)).map((l) => l.replace(/^\[\d+\.\d s\] /, ''));
      const want = run.startup.phases.map((p) => [p, p === 'weights' ? run.startup.progress!.join('/') : run.startup.details?.[p]].filter((x) => x !== undefined).join(' '));
      assert.deepEqual(phases, [...want, 'stopping', 'stopped'], r.out + r.err);
      assert.equal(lines.filter((l) => l.startsWith('ready at ')).length, 1, r.out);
      assert.match(r.out, /\nready at http:\/\/127\.0\.0\.1:\d+ \(model "tiny"\)\n/);
      assert.ok(r.err.includes('\nLoading Regular Weights: 100%|'), 'the engine\'s bar reached stderr, one line per CR redraw');
      // A recording whose log holds the engine's stop (multiprocessing's "Process …:" and the
      // KeyboardInterrupt tracebacks) replays it on SIGINT.
      if (/^Process [\w-]+:$/m.test(run.engineText(run.startup.log))) assert.match(r.err, /KeyboardInterrupt/, 'the recorded stop was replayed on SIGINT');
      assert.equal(r.code, 0, r.err.slice(-2000));
    });

    it(`${run.name}: the failed start exits non-zero; its first jax-serve: line names the place, the exception and the preflight hint, and no SIGKILL "killed by"`, async () => {
      const r = await serve([model.path, '--engine', 'sglang-jax', '--device', 'cuda', '--command', `${JSON.stringify(process.execPath)} ${JSON.stringify(REPLAY_LOG)} ${JSON.stringify(run.dir)}`], { REPLAY_MODE: 'fail' });
      assert.notEqual(r.code, 0);
      const first = r.err.split('\n').find((l) => l.startsWith('jax-serve:'));
      assert.ok(first, r.err.slice(-2000));
      assert.ok(first.includes(run.failure.traceback!.place), first);
      assert.ok(first.includes(run.failure.traceback!.exception), first);
      assert.match(first, /jax-serve preflight DIR --engine sglang-jax/);
      assert.doesNotMatch(first, /killed by SIGKILL/);
      assert.doesNotMatch(r.out, /ready/);
      const phases = r.out.split('\n').filter((l) => /^\[\d+\.\d s\] /.test(l)).map((l) => l.replace(/^\[\d+\.\d s\] /, '').split(' ')[0]);
      assert.deepEqual(phases, [...run.failure.phases, 'failed']);
    });
  }

  it('--device must equal JAX_PLATFORMS when that is set: refused before anything is spawned (exit 2, one line naming both)', () => {
    const marker = join(model.path, 'spawned');
    const command = `${JSON.stringify(process.execPath)} -e ${JSON.stringify(`require('fs').writeFileSync(${JSON.stringify(marker)}, '')`)}`;
    const r = spawnSync(process.execPath, [CLI, 'serve', model.path, '--engine', 'sglang-jax', '--device', 'cuda', '--command', command], { encoding: 'utf8', env: { ...process.env, JAX_PLATFORMS: 'tpu' } });
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^jax-serve: SGLang-JAX refuses device "cuda" while JAX_PLATFORMS="tpu": they must be equal\./);
    assert.ok(!existsSync(marker), 'nothing was spawned');
    const vllm = spawnSync(process.execPath, [CLI, 'serve', model.path, '--engine', 'vllm', '--device', 'cuda', '--command', command], { encoding: 'utf8', env: { ...process.env, JAX_PLATFORMS: 'cuda' } });
    assert.equal(vllm.status, 2);
    assert.match(vllm.stderr, /^jax-serve: vLLM takes no device option/);
    const odd = spawnSync(process.execPath, [CLI, 'serve', model.path, '--engine', 'sglang-jax', '--device', 'gpu0', '--command', command], { encoding: 'utf8', env: { ...process.env, JAX_PLATFORMS: 'gpu0' } });
    assert.equal(odd.status, 2);
    assert.match(odd.stderr, /device "gpu0" is not one of tpu, gpu, cuda, cpu/);
    assert.ok(!existsSync(marker));
  });
});
