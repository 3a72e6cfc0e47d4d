/**
 * Preflight of a PEFT LoRA adapter against its base: the folders are the real converter's output
 * (`convert lora_linear.msgpack --lora adapter`, tiny_lora.py's nnx.LoRALinear adapter over the
 * canonical tiny Llama), a clean one passes, and each way an adapter breaks vLLM, SGLang or
 * transformers + peft is reported with its code, its file and the module or key it is about.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { preflight, type Engine, type Finding } from '../../src/core/index';
import { NodeFileOpener } from '../../src/core/node/index';
import { loraFixtures } from '../fixtures/canonical';
import { canonicalSuite } from './canonicalSuite';
import { rewriteSafetensors } from './helpers';

const ROOT = resolve(__dirname, '../../..');
const CLI = join(ROOT, 'dist/cli.js');
const files = new NodeFileOpener();

interface Spec {
  name: string;
  dtype: string;
  shape: number[];
}

describe('preflight --adapter', function () {
  const suite = canonicalSuite();
  let base: string;
  let adapter: string;

  before(function () {
    this.timeout(600_000);
    const lora = loraFixtures(suite.python, suite.fx);
    base = join(suite.dir, 'base');
    adapter = join(suite.dir, 'adapter');
    const hf = join(suite.fx.dir, 'hf');
    const r = spawnSync(process.execPath, [CLI, 'convert', join(lora.dir, lora.manifest.variants.lora_linear.file), '-o', base, '--lora', 'adapter', '--adapter-out', adapter, '--config-from', hf, '--tokenizer-from', hf], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  /** A copy of the converter's adapter folder changed by `edit`, checked against the base. */
  async function check(name: string, edit: (d: string) => Promise<void> | void, engines?: Engine[]): Promise<{ dir: string; findings: Finding[] }> {
    const dir = join(suite.dir, name);
    cpSync(adapter, dir, { recursive: true });
    await edit(dir);
    const r = await preflight(files, base, { adapters: [dir], engines });
    return { dir, findings: r.findings.filter((f) => f.file.startsWith(dir)) };
  }

  const editConfig = (d: string, change: (c: Record<string, unknown>) => void) => {
    const file = join(d, 'adapter_config.json');
    const c = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    change(c);
    writeFileSync(file, JSON.stringify(c, null, 2));
  };

  /** Rewrites the adapter's adapter_model.safetensors with `change` applied to its tensor list. */
  const rewrite = (d: string, change: (ts: Spec[]) => Spec[]) => rewriteSafetensors(join(d, 'adapter_model.safetensors'), change);

  const codes = (fs: Finding[]) => fs.filter((f) => f.severity !== 'info').map((f) => `${f.severity}:${f.code}`).sort();
  const one = (fs: Finding[], code: string) => {
    const f = fs.filter((x) => x.code === code);
    assert.ok(f.length > 0, `no ${code} among ${JSON.stringify(fs.map((x) => x.code))}`);
    return f[0]!;
  };
  const Q0 = 'model.layers.0.self_attn.q_proj';

  it("passes the converter's adapter over its base: every module, shape and rank fits, and says how to serve it", async () => {
    const cfg = JSON.parse(readFileSync(join(adapter, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(cfg.r, 4);
    const { dir, findings } = await check('clean', () => {});
    assert.deepEqual(codes(findings), []);
    const summary = one(findings, 'adapter');
    assert.match(summary.message, /8 modules, r 4, lora_alpha 4\. Serve it with vLLM's --enable-lora --lora-modules NAME=.* --max-lora-rank 8/);
    assert.equal(summary.file, join(dir, 'adapter_config.json'));
    // The base's own findings are there too, unchanged by the adapter.
    const all = await preflight(files, base, { adapters: [dir] });
    assert.deepEqual(all.adapters, [dir]);
    assert.ok(!all.findings.some((f) => f.severity === 'error'));
  });

  it('warns about a module target_modules selects that has no tensors (an export that lost it)', async () => {
    const m = 'model.layers.1.self_attn.v_proj';
    const { dir, findings } = await check('lost-module', (d) => rewrite(d, (ts) => ts.filter((t) => !t.name.includes(`.${m}.`))));
    assert.deepEqual(codes(findings), ['warning:adapter-target-missing']);
    const f = one(findings, 'adapter-target-missing');
    assert.match(f.message, new RegExp(`target_modules selects ${m.replace(/\./g, '\\.')}, but adapter_model\\.safetensors has no tensors for it`));
    assert.equal(f.file, join(dir, 'adapter_config.json'));
  });

  it('reports a factor whose shape does not fit the base weight, naming the tensor', async () => {
    const { dir, findings } = await check('shape', (d) => rewrite(d, (ts) => ts.map((t) => (t.name === `base_model.model.${Q0}.lora_A.weight` ? { ...t, shape: [4, 32] } : t))));
    assert.deepEqual(codes(findings), ['error:adapter-shape']);
    const f = one(findings, 'adapter-shape');
    assert.match(f.message, /model\.layers\.0\.self_attn\.q_proj\.lora_A is \[4,32\]; the base's model\.layers\.0\.self_attn\.q_proj\.weight \[\d+,(\d+)\] makes it \[r, \1\]/);
    assert.equal(f.tensor, `base_model.model.${Q0}.lora_A.weight`);
    assert.equal(f.file, join(dir, 'adapter_model.safetensors'));
  });

  it("reports tensors of a higher rank than the config's r, module by module", async () => {
    const { findings } = await check('rank', (d) => editConfig(d, (c) => (c.r = 2)));
    assert.deepEqual([...new Set(codes(findings))], ['error:adapter-rank']);
    assert.equal(findings.filter((f) => f.code === 'adapter-rank').length, 8, 'one per module');
    assert.match(one(findings, 'adapter-rank').message, /has rank 4 \(lora_A \[4,\d+\]\), but adapter_config\.json's r says 2: PEFT fails to load it/);
  });

  it("takes a module's rank from rank_pattern, and names --max-lora-rank when it is over vLLM's default", async () => {
    const { findings } = await check('rank-pattern', async (d) => {
      editConfig(d, (c) => (c.rank_pattern = { [Q0]: 32 }));
      await rewrite(d, (ts) => ts.map((t) => (t.name === `base_model.model.${Q0}.lora_A.weight` ? { ...t, shape: [32, t.shape[1]!] } : t.name === `base_model.model.${Q0}.lora_B.weight` ? { ...t, shape: [t.shape[0]!, 32] } : t)));
    });
    assert.deepEqual(codes(findings), ['warning:adapter-max-rank']);
    assert.match(one(findings, 'adapter-max-rank').message, /rank 32 is over vLLM's default --max-lora-rank 16: .* --max-lora-rank 32/);
    // SGLang sizes its rank from the adapters: no such warning for it.
    assert.deepEqual(codes((await check('rank-pattern-sglang', async (d) => cpSync(join(suite.dir, 'rank-pattern'), d, { recursive: true }), ['sglang'])).findings), []);
  });

  it('reports the PEFT features the engines refuse: bias "all", DoRA, modules_to_save, a PiSSA init', async () => {
    const bias = await check('bias', (d) => editConfig(d, (c) => (c.bias = 'all')));
    assert.deepEqual(codes(bias.findings), ['error:adapter-bias']);
    assert.match(one(bias.findings, 'adapter-bias').message, /bias is "all": vLLM refuses it \("Adapter bias is not supported"\)/);
    const dora = await check('dora', (d) => editConfig(d, (c) => (c.use_dora = true)));
    assert.deepEqual(codes(dora.findings), ['error:adapter-dora']);
    assert.match(one(dora.findings, 'adapter-dora').message, /use_dora is true/);
    const save = await check('save', (d) => editConfig(d, (c) => (c.modules_to_save = ['lm_head', 'score'])));
    assert.deepEqual(codes(save.findings), ['error:adapter-modules-to-save']);
    assert.match(one(save.findings, 'adapter-modules-to-save').message, /modules_to_save is \["lm_head"\]/);
    const init = await check('pissa', (d) => editConfig(d, (c) => (c.init_lora_weights = 'pissa')));
    assert.deepEqual(codes(init.findings), ['error:adapter-init']);
  });

  it('reports a key that is not a LoRA factor, and a DoRA magnitude, by name', async () => {
    const extra = `base_model.model.${Q0}.weight`;
    const magnitude = `base_model.model.${Q0}.lora_magnitude_vector`;
    const { findings } = await check('keys', (d) =>
      rewrite(d, (ts) => [...ts, { name: extra, dtype: 'F32', shape: [2, 2] }, { name: magnitude, dtype: 'F32', shape: [4] }, { name: 'model.layers.0.mlp.up_proj.lora_A.weight', dtype: 'F32', shape: [4, 4] }]),
    );
    assert.deepEqual(codes(findings), ['error:adapter-key', 'error:adapter-key', 'error:adapter-key']);
    const byTensor = new Map(findings.map((f) => [f.tensor, f.message]));
    assert.match(byTensor.get(extra)!, /is not a LoRA factor .* vLLM refuses the adapter \("is unsupported LoRA weight"\)/);
    assert.match(byTensor.get(magnitude)!, /is a DoRA magnitude/);
    assert.match(byTensor.get('model.layers.0.mlp.up_proj.lora_A.weight')!, /does not start with "base_model\.model\."/);
  });

  it('reports a module the base does not have, and one the engines put no LoRA on', async () => {
    const { findings } = await check('modules', (d) =>
      rewrite(d, (ts) =>
        ts.map((t) => ({ ...t, name: t.name.replace('model.layers.1.self_attn.q_proj.', 'model.layers.7.self_attn.q_proj.').replace('model.layers.1.self_attn.o_proj.', 'model.layers.1.input_layernorm.') })),
      ),
    );
    const lacks = findings.find((f) => f.code === 'adapter-module')!;
    assert.match(lacks.message, /^model\.layers\.7\.self_attn\.q_proj: the base has no model\.layers\.7\.self_attn\.q_proj\.weight/);
    const unsupported = one(findings, 'adapter-engine-module');
    assert.match(unsupported.message, /^model\.layers\.1\.input_layernorm: vLLM and SGLang put LoRA only on q_proj, .* of LlamaForCausalLM/);
    // The modules the renamed tensors left behind, and the one target_modules does not select.
    assert.deepEqual(codes(findings), ['error:adapter-engine-module', 'error:adapter-module', 'error:adapter-target-unselected', 'warning:adapter-target-missing', 'warning:adapter-target-missing']);
  });

  it('reports tensors target_modules does not select (PEFT drops them, vLLM applies them)', async () => {
    const { dir, findings } = await check('unselected', (d) => editConfig(d, (c) => (c.target_modules = ['q_proj', 'v_proj', 'model.layers.0.self_attn.o_proj', 'down_proj'])));
    assert.deepEqual(codes(findings), ['error:adapter-target-unselected']);
    const f = one(findings, 'adapter-target-unselected');
    assert.match(f.message, /^model\.layers\.1\.self_attn\.o_proj has LoRA tensors, but target_modules does not select it/);
    assert.equal(f.file, join(dir, 'adapter_config.json'));
  });

  it("applies SGLang's rules only for SGLang: a regex target_modules, rsLoRA", async () => {
    const edit = (d: string) => editConfig(d, (c) => ((c.target_modules = '.*\\.(q|v|o|down)_proj'), (c.use_rslora = true)));
    const sglang = await check('regex-sglang', edit, ['sglang']);
    assert.deepEqual(codes(sglang.findings), ['error:adapter-target-regex', 'warning:adapter-rslora']);
    const vllm = await check('regex-vllm', edit, ['vllm']);
    assert.deepEqual(codes(vllm.findings), []);
    assert.ok(vllm.findings.some((f) => f.code === 'adapter-target-unchecked'), 'says the regex was not run');
  });

  it('warns when base_model_name_or_path names another base, and reports missing required fields', async () => {
    const other = await check('other-base', (d) => editConfig(d, (c) => (c.base_model_name_or_path = 'meta-llama/Llama-3.2-1B')));
    assert.deepEqual(codes(other.findings), ['warning:adapter-base-path']);
    assert.match(one(other.findings, 'adapter-base-path').message, /"meta-llama\/Llama-3\.2-1B", not .*base: the adapter was made for another base/);
    const fields = await check('fields', (d) => editConfig(d, (c) => ((c.peft_type = 'LOHA'), delete c.lora_alpha, (c.task_type = 'SEQ_CLS'))));
    assert.deepEqual(codes(fields.findings), ['error:adapter-config-field', 'error:adapter-peft-type', 'warning:adapter-task-type']);
    assert.match(one(fields.findings, 'adapter-config-field').message, /^lora_alpha is missing/);
  });

  it('reports an adapter folder without adapter_config.json or without weights', async () => {
    const noConfig = await check('no-config', (d) => rmSync(join(d, 'adapter_config.json')));
    assert.deepEqual(codes(noConfig.findings), ['error:adapter-config']);
    assert.equal(noConfig.findings[0]!.file, join(noConfig.dir, 'adapter_config.json'));
    const noWeights = await check('no-weights', (d) => rmSync(join(d, 'adapter_model.safetensors')));
    assert.deepEqual(codes(noWeights.findings), ['error:adapter-weights']);
    const bad = await check('bad-json', (d) => writeFileSync(join(d, 'adapter_config.json'), '{"r": 4,'));
    assert.match(one(bad.findings, 'adapter-config').message, /adapter_config\.json.*not valid JSON/);
  });

  it('CLI: FILE lines and exit 1 on errors, exit 0 on a clean adapter, exit 2 and one line for an ADIR that is not a folder', () => {
    const run = (...args: string[]) => spawnSync(process.execPath, [CLI, 'preflight', base, ...args], { encoding: 'utf8' });
    const ok = run('--adapter', adapter);
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /ready for vLLM and SGLang \(LlamaForCausalLM\) with the adapter\n$/);
    const bias = join(suite.dir, 'bias');
    const bad = run('--adapter', adapter, '--adapter', bias);
    assert.equal(bad.status, 1);
    assert.ok(bad.stdout.split('\n').includes(`${join(bias, 'adapter_config.json')}: error: bias is "all": vLLM refuses it ("Adapter bias is not supported") and SGLang has no place for trained biases; export without biases (bias "none").`), bad.stdout);
    assert.match(bad.stdout, /1 error\(s\) for vLLM and SGLang \(LlamaForCausalLM\) with 2 adapters\n$/);
    const json = JSON.parse(run('--adapter', bias, '--json').stdout) as { adapters: string[]; findings: Finding[] };
    assert.deepEqual(json.adapters, [bias]);
    for (const missing of [join(suite.dir, 'no-such-adapter'), join(adapter, 'adapter_config.json')]) {
      const r = run('--adapter', missing);
      assert.equal(r.status, 2);
      assert.equal(r.stdout, '');
      const lines = r.stderr.split('\n').filter((l) => l !== '');
      assert.equal(lines.length, 1, r.stderr);
      assert.ok(lines[0]!.startsWith(`jax-serve: ${missing}: `), lines[0]);
      assert.match(lines[0]!, /--adapter takes a PEFT adapter folder/);
    }
  });
});
