/**
 * Every preset against its fidelity test: the canonical models written in each JAX layout by the
 * real libraries (python/fixtures/tiny_llama.py + layouts.py), auto-detected, exported, loaded by
 * transformers with no missing or unexpected keys, and compared with that layout's own reference
 * forward (f32 max |Δlogit| ≤ 1e-5). Dropping the RoPE permutation or the query scale must fail it.
 */
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ARCHITECTURES, executeImport, executePlan, openCheckpoint, parseRuleFile, planConversion, planImport, PRESETS, readTensorBytes, type ArchitectureName, type Checkpoint, type PlanOptions } from '../../src/core/index';
import { NodeFileOpener, openAtomicFileSink, OutputFolder } from '../../src/core/node/index';
import Ajv from 'ajv';
import { canonicalFixtures, hfFlaxFixtures, type Canonical, type HfFlax } from '../fixtures/canonical';
import { canonicalSuite } from './canonicalSuite';
import { hfFlaxPython, tempDir, venvPython } from './helpers';

const ROOT = resolve(__dirname, '../../..');

interface Case {
  preset: string;
  /** The layout name python/fixtures/check_export.py knows. */
  layout: string;
  /** The HF folder of the same model (config, tokenizer). */
  hf: string;
  files: string[];
}

const CASES: Case[] = [
  { preset: 'bonsai-llama', layout: 'bonsai-llama', hf: 'hf', files: ['jax/bonsai_llama.msgpack'] },
  { preset: 'bonsai-qwen3', layout: 'bonsai-qwen3', hf: 'qwen3/hf', files: ['qwen3/jax/bonsai.msgpack', 'qwen3/jax/bonsai_bf16.safetensors'] },
  { preset: 'maxtext-llama3.1', layout: 'maxtext', hf: 'hf', files: ['jax/maxtext_orbax'] },
  { preset: 'tunix-gemma3', layout: 'tunix-gemma3', hf: 'gemma3/hf', files: ['gemma3/jax/tunix.msgpack', 'gemma3/jax/tunix_bf16.safetensors'] },
  { preset: 'maxtext-mixtral', layout: 'maxtext-mixtral', hf: 'mixtral/hf', files: ['mixtral/jax/maxtext.msgpack', 'mixtral/jax/maxtext_unscanned_orbax'] },
  { preset: 'maxtext-qwen3-moe', layout: 'maxtext-qwen3-moe', hf: 'qwen3_moe/hf', files: ['qwen3_moe/jax/maxtext_orbax', 'qwen3_moe/jax/maxtext_unscanned.msgpack'] },
  { preset: 'tunix-qwen3', layout: 'tunix-qwen3', hf: 'qwen3/hf', files: ['qwen3/jax/tunix.msgpack'] },
  { preset: 'tunix-qwen3-moe', layout: 'tunix-qwen3-moe', hf: 'qwen3_moe/hf', files: ['qwen3_moe/jax/tunix.msgpack'] },
];

interface Checked {
  export: string;
  missing: string[];
  unexpected: string[];
  architecture: string;
  maxAbsDiff: number;
  kl: number;
  top1: number;
}

describe('presets: every JAX layout to its HF class, checked against its own forward', function () {
  const suite = canonicalSuite();
  const open = (rel: string) => suite.open(rel);
  const baseOpts = (hf: string) => suite.baseOpts(hf);
  const exportTo = (rel: string, name: string, hf: string, opts: PlanOptions, tileBudgetBytes?: number) => suite.exportTo(rel, name, opts, { hf, tileBudgetBytes });
  const check = (pairs: [string, string][]) => suite.check<Checked>(pairs);

  it('the reference forward of every layout reproduces transformers (the fixtures are the same models)', () => {
    for (const c of CASES) assert.ok(suite.fx.manifest.layoutsMatchTorch[c.layout]! <= 1e-5, `${c.layout}: ${suite.fx.manifest.layoutsMatchTorch[c.layout]}`);
  });

  it('auto-detects each preset and plans every tensor its HF class expects, with no errors or warnings given the base config', async () => {
    for (const c of CASES) {
      for (const rel of c.files) {
        const plan = planConversion(await open(rel), baseOpts(c.hf));
        assert.equal(plan.preset.id, c.preset, rel);
        assert.deepEqual(plan.problems.filter((p) => p.severity !== 'info'), [], rel);
        const arch = ARCHITECTURES[plan.architecture as ArchitectureName];
        assert.equal(plan.config?.architectures?.toString(), arch.name);
        const cfg = plan.config!;
        const expected = arch.expected({
          vocabSize: cfg.vocab_size as number,
          hiddenSize: cfg.hidden_size as number,
          intermediateSize: cfg[arch.moe?.widthKey ?? 'intermediate_size'] as number,
          experts: arch.moe ? (cfg[arch.moe.countKey] as number) : undefined,
          layers: cfg.num_hidden_layers as number,
          heads: cfg.num_attention_heads as number,
          kvHeads: cfg.num_key_value_heads as number,
          headDim: cfg.head_dim as number,
          tied: cfg.tie_word_embeddings as boolean,
        });
        assert.deepEqual(plan.tensors.map((t) => t.to).sort(), expected.map((e) => e.name).sort(), rel);
      }
    }
  });

  it('reads what the shapes tell and asks for what they do not: scanned layers, head_dim from einsum kernels and q_norm, Gemma settings', async () => {
    const maxtext = planConversion(await open('jax/maxtext_orbax'));
    assert.equal(maxtext.prefix, 'params.params.');
    assert.equal(maxtext.config?.num_hidden_layers, 2, 'layers come from the scanned axis');
    assert.equal(maxtext.config?.num_attention_heads, 4, 'the einsum kernel says heads and head_dim');
    assert.ok(maxtext.problems.some((p) => p.code === 'preset-note' && /maxtext-llama2/.test(p.message)), 'the RoPE assumption is stated');
    const q1 = maxtext.tensors.find((t) => t.to === 'model.layers.1.self_attn.q_proj.weight')!;
    assert.deepEqual(q1.transforms.map((t) => t.op), ['select', 'deinterleave', 'merge', 'transpose', 'scale']);
    assert.equal((q1.transforms[4] as { factor: number }).factor, 8, 'the query pre-scale 1/sqrt(64) is undone');

    const qwen = planConversion(await open('qwen3/jax/bonsai.msgpack'));
    assert.equal(qwen.config?.head_dim, 64);
    assert.ok(!qwen.problems.some((p) => p.code === 'heads-unknown'));

    const gemma = planConversion(await open('gemma3/jax/tunix.msgpack'));
    const defaulted = gemma.problems.filter((p) => p.code === 'default-setting').map((p) => p.message.split(' ')[0]);
    for (const key of ['sliding_window', 'layer_types', 'query_pre_attn_scalar', 'rope_local_base_freq']) assert.ok(defaulted.includes(key), `${key} defaulted silently`);
    assert.equal(gemma.config?.tie_word_embeddings, true);
    const merged = planConversion(await open('gemma3/jax/tunix.msgpack'), baseOpts('gemma3/hf')).config!;
    assert.equal(merged.query_pre_attn_scalar, 48);
    assert.deepEqual(merged.layer_types, ['sliding_attention', 'full_attention']);
    assert.equal(merged.rope_local_base_freq, 10000, 'read from transformers 5 rope_parameters.sliding_attention');
    assert.equal(merged.rope_theta, 1000000);
    assert.equal(merged.rope_parameters, undefined, 'written as the legacy keys every reader knows');
  });

  it('exports that transformers loads strictly and whose logits match each layout’s forward (≤ 1e-5), also in tiles', async function () {
    this.timeout(600_000);
    const pairs: [string, string][] = [];
    for (const c of CASES) {
      for (const rel of c.files) {
        const { out, plan } = await exportTo(rel, rel.replace(/[/.]/g, '_'), c.hf, baseOpts(c.hf));
        assert.equal(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).architectures[0], plan.architecture);
        pairs.push([out, `${c.layout}:${rel}`]);
      }
    }
    // Small tiles: one layer of a scanned kernel, RoPE runs and batched (N, D, H) transposes in pieces.
    for (const [rel, c] of [['jax/maxtext_orbax', CASES[2]!], ['gemma3/jax/tunix.msgpack', CASES[3]!]] as const) {
      const { out } = await exportTo(rel, `tiled_${rel.replace(/[/.]/g, '_')}`, c.hf, baseOpts(c.hf), 160 << 10);
      assert.deepEqual(readFileSync(join(out, 'model.safetensors')), readFileSync(join(suite.dir, rel.replace(/[/.]/g, '_'), 'model.safetensors')), `${rel}: tiled bytes differ`);
    }
    const results = check(pairs);
    assert.equal(results.length, pairs.length);
    for (const r of results) {
      console.log(`      [measure] ${r.export.split('/').pop()} → ${r.architecture}: max |Δlogit| ${r.maxAbsDiff.toExponential(2)}, KL ${r.kl.toExponential(2)}, top-1 ${r.top1}`);
      assert.deepEqual([r.missing, r.unexpected], [[], []], r.export);
      assert.ok(r.maxAbsDiff <= 1e-5, `${r.export}: max |Δlogit| ${r.maxAbsDiff}`);
    }
  });

  it('mixtures of experts: MaxText Mixtral and Qwen3-MoE auto-detected over MaxText Llama, one tensor per expert read as one slice, the config keys every reader knows', async () => {
    const mixtral = planConversion(await open('mixtral/jax/maxtext.msgpack'));
    assert.equal(mixtral.preset.id, 'maxtext-mixtral', 'not maxtext-llama3.1, which would de-interleave q and k');
    const q = mixtral.tensors.find((t) => t.to === 'model.layers.1.self_attn.q_proj.weight')!;
    assert.deepEqual(q.transforms.map((t) => t.op), ['select', 'merge', 'transpose', 'scale'], 'half-split RoPE: nothing de-interleaved; the pre-scale undone');
    const w2 = mixtral.tensors.find((t) => t.to === 'model.layers.1.block_sparse_moe.experts.3.w2.weight')!;
    assert.deepEqual(w2.transforms, [{ op: 'select', axis: 1, index: 1 }, { op: 'select', axis: 0, index: 3 }, { op: 'transpose', axes: [1, 0] }]);
    assert.deepEqual([w2.source.shape, w2.target.shape], [[4, 2, 128, 256], [256, 128]]);
    assert.equal(mixtral.tensors.filter((t) => /experts\.\d+\.w[123]\.weight$/.test(t.to)).length, 4 * 2 * 3);
    // Without the base config the router's top-k is a default, and said to be one.
    const defaulted = mixtral.problems.filter((p) => p.code === 'default-setting').map((p) => p.message.split(' ')[0]);
    assert.ok(defaulted.includes('num_experts_per_tok'), 'the top-k defaulted silently');
    assert.equal(mixtral.config?.num_local_experts, 4);
    assert.equal(mixtral.config?.intermediate_size, 128, "Mixtral's intermediate_size is one expert's width");
    const tooMany = planConversion(await open('mixtral/jax/maxtext.msgpack'), { set: { num_experts_per_tok: 5 } });
    assert.match(tooMany.problems.find((p) => p.code === 'top-k')!.message, /num_experts_per_tok is 5; it must be a whole number from 1 to the 4 experts/);

    const qwen = planConversion(await open('qwen3_moe/jax/maxtext_unscanned.msgpack'), baseOpts('qwen3_moe/hf'));
    assert.equal(qwen.preset.id, 'maxtext-qwen3-moe');
    assert.deepEqual(qwen.tensors.find((t) => t.to === 'model.layers.0.self_attn.q_proj.weight')!.transforms.map((t) => t.op), ['merge', 'transpose'], 'scaled at run time: stored as is');
    assert.deepEqual(qwen.tensors.find((t) => t.to === 'model.layers.1.mlp.experts.2.up_proj.weight')!.transforms, [{ op: 'select', axis: 0, index: 2 }, { op: 'transpose', axes: [1, 0] }]);
    const c = qwen.config!;
    assert.deepEqual([c.num_experts, c.moe_intermediate_size, c.norm_topk_prob, c.decoder_sparse_step, c.mlp_only_layers, c.num_experts_per_tok, c.rope_theta], [4, 96, true, 1, [], 2, 20000]);
    assert.equal(c.intermediate_size, 512, "a dense layer's width comes from the base config: no layer is dense");
    const wrong = planConversion(await open('qwen3_moe/jax/maxtext_unscanned.msgpack'), { ...baseOpts('qwen3_moe/hf'), set: { num_experts: 8 } });
    assert.match(wrong.problems.find((p) => p.code === 'config-mismatch')!.message, /the weights say num_experts = 4, the given config says 8/);
  });

  it('mixtures of experts: tiles smaller than one expert give the same bytes, and the fidelity check fails experts in the wrong order', async function () {
    this.timeout(300_000);
    const opts = baseOpts('mixtral/hf');
    const whole = await exportTo('mixtral/jax/maxtext.msgpack', 'moe_whole', 'mixtral/hf', opts);
    // 48 KiB tiles: one expert slice (128 KiB) is read in pieces through both selects.
    const tiled = await exportTo('mixtral/jax/maxtext.msgpack', 'moe_tiled', 'mixtral/hf', opts, 48 << 10);
    assert.deepEqual(readFileSync(join(tiled.out, 'model.safetensors')), readFileSync(join(whole.out, 'model.safetensors')));
    // Every stack's experts written in reverse order: the router no longer points at its experts.
    const reversed = (w: string, to: string) => ({ from: `decoder.layers.MoeBlock_0.${w}`, to: `model.layers.{l}.block_sparse_moe.experts.{e}.${to}.weight`, rank: 4, unstack: [{ axis: 0, as: 'e', names: ['3', '2', '1', '0'] }, { axis: 1, as: 'l' }], transforms: [{ op: 'transpose', axes: [1, 0] }] as const });
    const swapped = await exportTo('mixtral/jax/maxtext.msgpack', 'moe_swapped', 'mixtral/hf', { ...opts, userRules: [reversed('wi_0', 'w1'), reversed('wi_1', 'w3'), reversed('wo', 'w2')] });
    const [ok, bad] = check([[whole.out, 'maxtext-mixtral:mixtral/jax/maxtext.msgpack'], [swapped.out, 'maxtext-mixtral:mixtral/jax/maxtext.msgpack']]);
    assert.ok(ok!.maxAbsDiff <= 1e-5);
    assert.deepEqual([bad!.missing, bad!.unexpected], [[], []]);
    assert.ok(bad!.maxAbsDiff > 1e-2, `experts in the wrong order went unnoticed (max |Δlogit| ${bad!.maxAbsDiff})`);
  });

  it('refuses a checkpoint that would unstack into more tensors than a plan holds, in one line, before building them', async () => {
    const ck = await open('mixtral/jax/maxtext.msgpack');
    const wi = ck.tensors.find((t) => t.name.endsWith('MoeBlock_0.wi_0'))!;
    // Zero-sized stacks are a few bytes on disk and 90,000 targets each.
    const stacks = Array.from({ length: 6 }, (_, i) => ({ ...wi, name: `params.params.decoder.layers.MoeBlock_0.wi_0_${i}`, shape: [300, 300, 0, 4], bytes: 0 }));
    const rules = [{ from: 'decoder.layers.MoeBlock_0.{w}', to: 'model.layers.{l}.block_sparse_moe.experts.{e}.{w}.weight', rank: 4, unstack: [{ axis: 0, as: 'e' }, { axis: 1, as: 'l' }] }];
    assert.throws(() => planConversion({ ...ck, tensors: [...ck.tensors, ...stacks] } as Checkpoint, { userRules: rules }), /would take the plan past 400,000 tensors/);
  });

  it('the fidelity check fails MaxText exports without the RoPE de-interleave or without undoing the query scale (both still load)', async function () {
    this.timeout(300_000);
    const noRope = await exportTo('jax/maxtext_orbax', 'maxtext_no_rope', 'hf', { ...baseOpts('hf'), preset: 'maxtext-llama2' });
    const noScale = await exportTo('jax/maxtext_orbax', 'maxtext_no_scale', 'hf', {
      ...baseOpts('hf'),
      userRules: [
        {
          from: 'decoder.layers.self_attention.query.kernel',
          to: 'model.layers.{l}.self_attn.q_proj.weight',
          rank: 4,
          unstack: { axis: 1, as: 'l' },
          transforms: [{ op: 'deinterleave', axis: 2 }, { op: 'merge', axis: 1 }, { op: 'transpose', axes: [1, 0] }],
        },
      ],
    });
    for (const r of check([[noRope.out, 'maxtext:jax/maxtext_orbax'], [noScale.out, 'maxtext:jax/maxtext_orbax']])) {
      assert.deepEqual([r.missing, r.unexpected], [[], []]);
      assert.ok(r.maxAbsDiff > 1e-2, `${r.export}: the mistake went unnoticed (max |Δlogit| ${r.maxAbsDiff})`);
    }
  });
});

describe('presets: HF-Flax checkpoints written by transformers 4.x, checked against FlaxLlamaForCausalLM itself', function () {
  let fx: Canonical;
  let flax: HfFlax;
  let python: string;
  let dir: ReturnType<typeof tempDir>;
  const files = new NodeFileOpener();

  before(function () {
    python = venvPython(this);
    const flaxPython = hfFlaxPython(this);
    this.timeout(300_000);
    fx = canonicalFixtures(python);
    flax = hfFlaxFixtures(flaxPython, fx);
    dir = tempDir();
  });
  after(() => dir?.remove());

  it('auto-detects hf-flax-llama in flax_model.msgpack and its sharded form; the exports load strictly and match the Flax logits (≤ 1e-5)', async function () {
    this.timeout(300_000);
    const pairs: string[] = [];
    for (const rel of ['flax/flax_model.msgpack', 'flax_sharded']) {
      const ck = await openCheckpoint(files, join(flax.dir, rel));
      const base = JSON.parse(readFileSync(join(flax.dir, rel.split('/')[0]!, 'config.json'), 'utf8'));
      const plan = planConversion(ck, { baseConfig: base });
      assert.equal(plan.preset.id, 'hf-flax-llama', rel);
      assert.deepEqual(plan.problems.filter((p) => p.severity !== 'info'), [], rel);
      assert.equal(plan.tensors.length, flax.manifest.arrays);
      const out = join(dir.path, rel.replace(/[/.]/g, '_'));
      await executePlan(plan, ck, files, await OutputFolder.create(out, { sources: [] }), { tokenizerFrom: join(fx.dir, 'hf') });
      pairs.push(`${out}=logits:${join(flax.dir, 'logits.npy')}`);
    }
    const results = JSON.parse(execFileSync(python, [join(ROOT, 'python/fixtures/check_export.py'), 'check', fx.dir, ...pairs], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as Checked[];
    for (const r of results) {
      console.log(`      [measure] ${r.export.split('/').pop()} → ${r.architecture}: max |Δlogit| vs FlaxLlamaForCausalLM ${r.maxAbsDiff.toExponential(2)}`);
      assert.deepEqual([r.missing, r.unexpected], [[], []], r.export);
      assert.ok(r.maxAbsDiff <= 1e-5, `${r.export}: max |Δlogit| ${r.maxAbsDiff}`);
    }
  });

  it('imports the export back into flax_model.msgpack bit for bit, and FlaxLlamaForCausalLM.from_pretrained loads it', async function () {
    this.timeout(300_000);
    const src = await openCheckpoint(files, join(flax.dir, 'flax', 'flax_model.msgpack'));
    const base = JSON.parse(readFileSync(join(flax.dir, 'flax', 'config.json'), 'utf8'));
    const out = join(dir.path, 'roundtrip-export');
    await executePlan(planConversion(src, { baseConfig: base }), src, files, await OutputFolder.create(out, { sources: [] }));
    const exported = await openCheckpoint(files, out);
    const back = join(dir.path, 'roundtrip-import');
    mkdirSync(back);
    await executeImport(planImport(exported, 'hf-flax-llama', base), exported, files, await openAtomicFileSink(join(back, 'flax_model.msgpack'), { sources: [] }), 'msgpack');
    copyFileSync(join(flax.dir, 'flax', 'config.json'), join(back, 'config.json'));
    const digest = async (ck: Awaited<ReturnType<typeof openCheckpoint>>) => {
      const out: Record<string, string> = {};
      for (const t of ck.tensors) {
        const h = createHash('sha256');
        for await (const b of readTensorBytes(files, t)) h.update(b);
        out[t.name] = `${t.dtype}${JSON.stringify(t.shape)} ${h.digest('hex')}`;
      }
      return out;
    };
    assert.deepEqual(await digest(await openCheckpoint(files, join(back, 'flax_model.msgpack'))), await digest(src));
    const r = JSON.parse(execFileSync(hfFlaxPython(this), [join(ROOT, 'python/fixtures/hf_flax.py'), 'logits', back, JSON.stringify(fx.manifest.tokenizer.prompt_ids), join(flax.dir, 'logits.npy')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
    assert.equal(r.maxAbsDiff, 0, 'the same weights give the same logits');
  });
});

describe('presets: a Linen CNN to a PyTorch state_dict, checked against its torch twin', function () {
  let python: string;
  let dir: ReturnType<typeof tempDir>;
  const files = new NodeFileOpener();
  const SCRIPT = join(ROOT, 'python/fixtures/linen_cnn.py');
  const CLI = join(ROOT, 'dist/cli.js');
  const src = () => join(dir.path, 'src');

  before(function () {
    python = venvPython(this);
    this.timeout(120_000);
    dir = tempDir();
    execFileSync(python, [SCRIPT, 'write', src()], { stdio: 'ignore' });
  });
  after(() => dir?.remove());

  const twin = (out: string) => JSON.parse(execFileSync(python, [SCRIPT, 'check', src(), out], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as { missing: string[]; unexpected: string[]; maxAbsDiff: number };
  const convert = (out: string, ...extra: string[]) => spawnSync(process.execPath, [CLI, 'convert', join(src(), 'cnn.msgpack'), '-o', join(dir.path, out), ...extra], { encoding: 'utf8' });

  it('plans conv, BatchNorm (statistics too) and Dense by layer type, and says which flatten it inferred', async () => {
    const plan = planConversion(await openCheckpoint(files, join(src(), 'cnn.msgpack')));
    assert.equal(plan.preset.id, 'linen-cnn');
    assert.equal(plan.config, undefined);
    const to = Object.fromEntries(plan.tensors.map((t) => [t.from, t.to]));
    assert.equal(to['batch_stats.BatchNorm_1.var'], 'BatchNorm_1.running_var');
    assert.equal(to['params.BatchNorm_0.scale'], 'BatchNorm_0.weight');
    assert.deepEqual(plan.tensors.find((t) => t.from === 'params.Conv_1.kernel')!.target.shape, [16, 8, 3, 3]);
    const flatten = plan.problems.find((p) => p.code === 'flatten-inferred');
    assert.match(flatten?.message ?? '', /4×4×16 .* --flatten Dense_0=HxWxC/);
  });

  it('the export loads strictly into the twin and matches the Linen output; --flatten given or wrong', function () {
    this.timeout(120_000);
    const auto = convert('auto');
    assert.equal(auto.status, 0, auto.stderr);
    assert.match(auto.stdout, /model\.safetensors, mapping\.json/);
    const mapping = JSON.parse(readFileSync(join(dir.path, 'auto', 'mapping.json'), 'utf8'));
    assert.equal(mapping.tensors.find((t: { from: string }) => t.from === 'params.Dense_0.kernel').to, 'Dense_0.weight');
    const r = twin(join(dir.path, 'auto'));
    console.log(`      [measure] linen-cnn → torch twin: max |Δ| ${r.maxAbsDiff.toExponential(2)}`);
    assert.deepEqual([r.missing, r.unexpected], [[], []], 'strict load (num_batches_tracked is back-filled by BatchNorm for version-less state dicts)');
    assert.ok(r.maxAbsDiff <= 1e-5, `max |Δ| ${r.maxAbsDiff}`);

    assert.equal(convert('given', '--flatten', 'Dense_0=4x4x16').status, 0);
    assert.deepEqual(readFileSync(join(dir.path, 'given', 'model.safetensors')), readFileSync(join(dir.path, 'auto', 'model.safetensors')));
    const bad = convert('bad', '--flatten', 'Dense_0=3x3x16', '--dry-run');
    assert.equal(bad.status, 1);
    assert.match(bad.stdout, /takes 256 inputs, and 3×3×16 is 144/);
    // A plain transpose (a user rule, which the inference leaves alone) loads and computes garbage.
    writeFileSync(join(dir.path, 'plain.rules.json'), JSON.stringify({ rules: [{ from: 'params.Dense_0.kernel', to: 'Dense_0.weight', rank: 2, transforms: [{ op: 'transpose', axes: [1, 0] }] }] }));
    assert.equal(convert('plain', '--rules', join(dir.path, 'plain.rules.json')).status, 0);
    const plain = twin(join(dir.path, 'plain'));
    assert.deepEqual([plain.missing, plain.unexpected], [[], []]);
    assert.ok(plain.maxAbsDiff > 1e-2, `the missing NHWC → NCHW reorder went unnoticed (max |Δ| ${plain.maxAbsDiff})`);
  });
});

describe('the user rule file', () => {
  const schema = JSON.parse(readFileSync(join(ROOT, 'schemas/rules.schema.json'), 'utf8'));
  const validate = new Ajv({ allErrors: true }).compile(schema);

  it("accepts every data rule of every preset (the schema and the parser agree with the presets' language)", () => {
    for (const p of PRESETS) {
      const data = p.rules.filter((r) => typeof r.transforms !== 'function');
      const file = { rules: JSON.parse(JSON.stringify(data)) };
      assert.ok(validate(file), `${p.id}: ${JSON.stringify(validate.errors)}`);
      assert.equal(parseRuleFile(file, 'x.json').length, data.length);
    }
  });

  it('names the rule and the field that is wrong, and the schema rejects the same files', () => {
    // [file, the parser's message, whether a schema can see the mistake]
    const cases: [unknown, RegExp, boolean][] = [
      [{}, /expected \{"rules"/, true],
      [{ rules: [{ from: 'a' }] }, /rules\[0\] needs "from" and "to"/, true],
      [{ rules: [{ from: 'a', to: 'b', transforms: [{ op: 'flip' }] }] }, /rules\[0\]\.transforms\[0\]: unknown op "flip"/, true],
      [{ rules: [{ from: 'a', to: 'b', transforms: [{ op: 'transpose' }] }] }, /\(transpose\) needs "axes"/, true],
      [{ rules: [{ from: 'a.{x}', to: 'b.{y}' }] }, /uses \{y\}/, false],
      [{ rules: [{ from: 'a', to: 'b', unstack: { axis: 'one' } }] }, /unstack needs/, true],
    ];
    for (const [json, message, schemaSees] of cases) {
      assert.throws(() => parseRuleFile(json, 'jax-serve.rules.json'), message);
      assert.equal(validate(json), !schemaSees, JSON.stringify(json));
    }
  });
});
