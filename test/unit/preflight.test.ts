/**
 * Preflight: the tensors it expects are transformers' own (state_dict on the meta device), a clean
 * export passes, and each way a folder breaks vLLM or SGLang is reported with its code and file.
 */
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { acceleratorNamed, ARCHITECTURES, compatTokenizerConfig, preflight, type ArchitectureName, type Finding, type ModelDims } from '../../src/core/index';
import { NodeFileOpener } from '../../src/core/node/index';
import { canonicalSuite } from './canonicalSuite';
import { rewriteSafetensors, type TensorSpecLike } from './helpers';

const ROOT = resolve(__dirname, '../../..');
const files = new NodeFileOpener();

describe('preflight', function () {
  const suite = canonicalSuite();

  for (const arch of Object.keys(ARCHITECTURES) as ArchitectureName[]) {
    it(`expects exactly the tensors transformers' ${arch} holds (meta device), tied or not, GQA, odd head_dim`, () => {
      const cases: [ModelDims, Record<string, unknown>][] = [
        [{ vocabSize: 10, hiddenSize: 8, intermediateSize: 12, layers: 2, heads: 2, kvHeads: 1, headDim: 4, tied: true }, {}],
        [{ vocabSize: 33, hiddenSize: 16, intermediateSize: 20, layers: 3, heads: 4, kvHeads: 4, headDim: 4, tied: false }, {}],
        [{ vocabSize: 17, hiddenSize: 12, intermediateSize: 8, layers: 1, heads: 4, kvHeads: 2, headDim: 8, tied: false }, { head_dim: 8 }],
      ];
      // A mixture of experts: 3 experts, counted and sized under the class's own keys.
      const moe = ARCHITECTURES[arch].moe;
      if (moe) for (const c of cases) c[0].experts = 3;
      const configs = cases.map(([d, extra]) =>
        JSON.stringify({
          vocab_size: d.vocabSize,
          hidden_size: d.hiddenSize,
          intermediate_size: d.intermediateSize,
          num_hidden_layers: d.layers,
          num_attention_heads: d.heads,
          num_key_value_heads: d.kvHeads,
          head_dim: d.headDim,
          tie_word_embeddings: d.tied,
          ...(moe ? { [moe.countKey]: d.experts, [moe.widthKey]: d.intermediateSize, num_experts_per_tok: 2 } : {}),
          ...extra,
        }),
      );
      // What save_pretrained writes for experts (one tensor each), not the fused tensors transformers 5 holds.
      const mode = moe ? 'saved' : 'shapes';
      const theirs = JSON.parse(execFileSync(suite.python, [join(ROOT, 'python/fixtures/hf_state_dict.py'), mode, arch, ...configs], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as Record<string, number[]>[];
      cases.forEach(([d], i) => {
        const want = { ...theirs[i]! };
        // A tied lm_head is the embedding itself: state_dict lists it, save_pretrained (and vLLM) do not.
        if (d.tied) delete want['lm_head.weight'];
        assert.deepEqual(Object.fromEntries(ARCHITECTURES[arch].expected(d).map((e) => [e.name, [...e.shape]])), want, `case ${i}`);
      });
    });
  }

  it('passes the HF folder transformers wrote, warning only that transformers 4.x cannot load its tokenizer_config', async () => {
    const r = await preflight(files, join(suite.fx.dir, 'hf'), { tensorParallel: 2 });
    assert.deepEqual(r.findings.filter((f) => f.severity !== 'info').map((f) => f.code), ['tokenizer-class']);
    assert.equal(r.architecture, 'LlamaForCausalLM');
  });

  /** A copy of the HF folder, changed by `edit`, and the findings preflight has for it. */
  async function broken(name: string, edit: (d: string) => Promise<void> | void, opts = {}): Promise<Finding[]> {
    const d = join(suite.dir, name);
    cpSync(join(suite.fx.dir, 'hf'), d, { recursive: true });
    // As an export has it: tokenizer_config.json in the form both transformers generations load.
    const tc = join(d, 'tokenizer_config.json');
    writeFileSync(tc, compatTokenizerConfig(readFileSync(tc, 'utf8')).text);
    await edit(d);
    return [...(await preflight(files, d, opts)).findings];
  }

  /** Rewrites the folder's model.safetensors with `change` applied to its tensor list. */
  const rewrite = (d: string, change: (ts: TensorSpecLike[]) => TensorSpecLike[], metadata?: Record<string, string>) => rewriteSafetensors(join(d, 'model.safetensors'), change, metadata);

  const codes = (fs: Finding[]) => fs.filter((f) => f.severity !== 'info').map((f) => `${f.severity}:${f.code}`).sort();

  it('reports a missing, an unexpected and a misshapen tensor', async () => {
    const f = await broken('tensors', (d) =>
      rewrite(d, (ts) => [
        ...ts.filter((t) => t.name !== 'model.layers.1.mlp.up_proj.weight').map((t) => (t.name === 'model.norm.weight' ? { ...t, shape: [128, 2] } : t)),
        { name: 'model.layers.0.self_attn.qkv_proj.weight', dtype: 'F32', shape: [2] },
      ]),
    );
    assert.deepEqual(codes(f), ['error:missing-tensor', 'error:tensor-shape', 'error:unexpected-tensor']);
    assert.match(f.find((x) => x.code === 'missing-tensor')!.message, /model\.layers\.1\.mlp\.up_proj\.weight \[512,256\] is missing/);
  });

  it('reports tie_word_embeddings at odds with lm_head, F64 weights, and Flax-format metadata', async () => {
    const tiedButPresent = await broken('tied', (d) => {
      const c = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
      writeFileSync(join(d, 'config.json'), JSON.stringify({ ...c, tie_word_embeddings: true }));
    });
    assert.deepEqual(codes(tiedButPresent), ['warning:tied-lm-head']);
    const untiedMissing = await broken('untied', (d) => rewrite(d, (ts) => ts.filter((t) => t.name !== 'lm_head.weight')));
    assert.deepEqual(codes(untiedMissing), ['error:missing-tensor']);
    const f64 = await broken('f64', (d) => rewrite(d, (ts) => ts.map((t) => (t.name === 'model.norm.weight' ? { ...t, dtype: 'F64' } : t))));
    assert.ok(codes(f64).includes('error:dtype'));
    const flax = await broken('flaxmeta', (d) => rewrite(d, (ts) => ts, { format: 'flax' }));
    assert.deepEqual(codes(flax), ['error:format-metadata']);
  });

  it('reports tokenizer problems: none, no chat template, a special token the tokenizer lacks', async () => {
    assert.deepEqual(codes(await broken('notok', (d) => rmSync(join(d, 'tokenizer.json')))), ['error:no-tokenizer']);
    assert.deepEqual(codes(await broken('nochat', (d) => rmSync(join(d, 'chat_template.jinja')))), ['warning:no-chat-template']);
    const eos = await broken('eos', (d) => {
      const c = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
      writeFileSync(join(d, 'config.json'), JSON.stringify({ ...c, eos_token_id: [1, 9999], vocab_size: 384 }));
    });
    assert.deepEqual(codes(eos), ['error:special-token']);
  });

  it('reports a consolidated*.safetensors (vLLM would switch format), heads that do not split over --tp, and no config', async () => {
    assert.ok(codes(await broken('mistral', (d) => writeFileSync(join(d, 'consolidated.safetensors'), ''))).includes('error:consolidated'));
    // Heads, KV heads and the MLP width (512) all refuse 3: each is one error, as vLLM's divide() asserts each.
    assert.deepEqual(codes(await broken('tp', () => undefined, { tensorParallel: 3 })), ['error:tensor-parallel', 'error:tensor-parallel', 'error:tensor-parallel']);
    assert.deepEqual(codes(await broken('noconfig', (d) => rmSync(join(d, 'config.json')))), ['error:missing-file']);
  });

  it('sizes the launch for an accelerator when asked: how it fits, or an error saying why not and what would fit', async () => {
    const sized = (accelerator: string, extra: object = {}) => preflight(files, join(suite.fx.dir, 'hf'), { engines: ['vllm', 'sglang-jax'], fit: { accelerator: acceleratorNamed(accelerator), count: 1, dtype: 'keep', kvDType: 'auto', ...extra } });
    const ok = (await sized('h100')).findings.filter((f) => f.code === 'fit');
    assert.deepEqual(ok.map((f) => f.severity), ['info', 'error']);
    assert.match(ok[0]!.message, /^fits one h100 at f32 for vLLM \(TP 1, max length 512\): 0\.0 GiB of weights a device, KV cache for [\d,]+ tokens/);
    // The tiny model's head_dim 64 is SGLang-JAX's incompatibility, whatever the memory.
    assert.match(ok[1]!.message, /^does not fit one h100 at f32 for SGLang-JAX .*head_dim a multiple of 128; this model's is 64/);
    // A device of 4 MiB holds the 5.5 MB of weights on neither one device nor two.
    const small = (await sized('tiny=4MiB', { maxModelLen: 512 })).findings.find((f) => f.code === 'fit' && /vLLM/.test(f.message))!;
    assert.equal(small.severity, 'error');
    assert.match(small.message, /^does not fit one tiny at f32 for vLLM \(TP 1, max length 512\): 0\.0 GiB of weights; weights 0\.01 GiB \+ reserve 1\.\d+ GiB a device are over the 0\.00 GiB/);
    assert.equal(small.file, join(suite.fx.dir, 'hf', 'config.json'));
  });

  it('a mixture of experts: names a missing expert and the layers without it, top-k past the experts, shared experts its class lacks', async function () {
    this.timeout(120_000);
    const { out } = await suite.exportTo('mixtral/jax/maxtext.msgpack', 'moe-preflight', suite.baseOpts('mixtral/hf'), { hf: 'mixtral/hf' });
    const clean = await preflight(files, out);
    assert.deepEqual(codes([...clean.findings]), []);
    assert.match(clean.findings.find((f) => f.code === 'experts')!.message, /^4 experts a layer, top-2, no shared experts: all present in all 2 layers/);

    const d = join(suite.dir, 'moe-preflight-broken');
    cpSync(out, d, { recursive: true });
    await rewrite(d, (ts) => [
      ...ts.filter((t) => !/\.experts\.3\./.test(t.name) && !t.name.startsWith('model.layers.1.block_sparse_moe.experts.1.w2')),
      { name: 'model.layers.0.block_sparse_moe.shared_expert.w1.weight', dtype: 'F32', shape: [128, 256] },
    ]);
    const config = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
    writeFileSync(join(d, 'config.json'), JSON.stringify({ ...config, num_experts_per_tok: 5 }));
    const f = (await preflight(files, d)).findings;
    const missing = f.filter((x) => x.code === 'missing-expert').map((x) => x.message);
    assert.deepEqual(missing.map((m) => m.split(':')[0]), ['experts.1 is incomplete in layer 1', 'experts.3 is missing in every layer']);
    assert.ok(f.some((x) => x.code === 'missing-tensor' && x.tensor === 'model.layers.0.block_sparse_moe.experts.3.w1.weight'), 'each missing tensor is named too');
    assert.match(f.find((x) => x.code === 'top-k')!.message, /num_experts_per_tok is 5; it must be a whole number from 1 to the 4 experts/);
    assert.match(f.find((x) => x.code === 'shared-experts')!.message, /MixtralForCausalLM has no shared experts, but the weights hold shared_expert tensors/);
    assert.ok(!f.some((x) => x.code === 'experts'), 'no all-present summary over a broken folder');
  });

  it('CLI: one "FILE: severity: message" line per finding, exit 1 on errors, --json', () => {
    const bad = join(suite.dir, 'notok');
    const r = spawnSync(process.execPath, [join(ROOT, 'dist/cli.js'), 'preflight', bad], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.match(r.stdout, new RegExp(`^${bad.replace(/[/.]/g, '\\$&')}: error: no tokenizer\\.json or tokenizer\\.model`, 'm'));
    const ok = spawnSync(process.execPath, [join(ROOT, 'dist/cli.js'), 'preflight', join(suite.fx.dir, 'hf'), '--engine', 'vllm', '--json'], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.equal(JSON.parse(ok.stdout).architecture, 'LlamaForCausalLM');
  });
});
