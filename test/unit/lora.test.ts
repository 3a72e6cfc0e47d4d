/**
 * LoRA: adapters found in the layouts flax, orbax and qwix write (python/fixtures/tiny_lora.py, each
 * with its library's real forward as the reference), exported as a PEFT adapter that peft loads onto
 * the exported base with no missing or unexpected keys, or merged, both matching the reference
 * logits (f32, 1e-5); a wrong alpha or a factor left untransposed fails the same check. The index
 * maps that place the factors are checked against the chains run on whole deltas.
 */
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { applyTransforms, DTYPE_BITS, executePlan, loraMap, openCheckpoint, peftFactors, planConversion, readTensorBytes, targetModules, writeSafetensors, type Checkpoint, type PlanOptions, type Transform } from '../../src/core/index';
import { NodeFileOpener, openAtomicFileSink, OutputFolder } from '../../src/core/node/index';
import { loraFixtures, type Lora } from '../fixtures/canonical';
import { canonicalSuite } from './canonicalSuite';
import { prng } from './helpers';

const ROOT = resolve(__dirname, '../../..');
const CLI = resolve(__dirname, '../../../dist/cli.js');
const files = new NodeFileOpener();

interface LoraChecked {
  base: string;
  adapter: string | null;
  maxAbsDiff: number;
  adapterMissing?: string[];
  adapterUnexpected?: string[];
  transformersMissing: string[];
  transformersUnexpected: string[];
  adapterConfig?: Record<string, unknown>;
}

/** A (in…, r) and B (r, out…) as f32 values (in… the kernel's `inAxes`), and the delta the chain makes of A·B, in f64. */
function deltaThroughChain(kernel: number[], inAxes: number[], rank: number, chain: readonly Transform[], rand: () => number): { a: Float64Array; b: Float64Array; delta: Float64Array; rows: number; cols: number } {
  const outAxes = kernel.map((_, k) => k).filter((k) => !inAxes.includes(k));
  const size = (axes: number[]) => axes.reduce((x, k) => x * kernel[k]!, 1);
  const [inSize, outSize] = [size(inAxes), size(outAxes)];
  const a = Float64Array.from({ length: inSize * rank }, () => Math.fround(rand() - 0.5));
  const b = Float64Array.from({ length: rank * outSize }, () => Math.fround(rand() - 0.5));
  const total = inSize * outSize;
  const dk = new Float64Array(total);
  for (let flat = 0; flat < total; flat++) {
    const c: number[] = [];
    let f = flat;
    for (let k = kernel.length - 1; k >= 0; k--) {
      c[k] = f % kernel[k]!;
      f = Math.floor(f / kernel[k]!);
    }
    const idx = (axes: number[]) => axes.reduce((x, k) => x * kernel[k]! + c[k]!, 0);
    const [i, o] = [idx(inAxes), idx(outAxes)];
    for (let k = 0; k < rank; k++) dk[flat]! += a[i * rank + k]! * b[k * outSize + o]!;
  }
  const out = applyTransforms(new Uint8Array(dk.buffer), { shape: kernel, dtype: 'F64' }, chain);
  const [rows, cols] = out.layout.shape as [number, number];
  return { a, b, delta: new Float64Array(out.bytes.buffer, out.bytes.byteOffset, rows * cols), rows, cols };
}

describe('LoRA: index maps through the conversion chains', () => {
  const rand = prng(19);
  const chains: [string, number[], number[], Transform[]][] = [
    ['a Dense kernel (in, out)', [12, 10], [0], [{ op: 'transpose', axes: [1, 0] }]],
    ['an einsum q (D, N, H), RoPE de-interleaved and the pre-scale undone', [8, 3, 6], [0], [{ op: 'deinterleave', axis: 2 }, { op: 'merge', axis: 1 }, { op: 'transpose', axes: [1, 0] }, { op: 'scale', factor: Math.sqrt(6) }]],
    ['an einsum o (N, H, D)', [3, 4, 10], [0, 1], [{ op: 'merge', axis: 0 }, { op: 'transpose', axes: [1, 0] }]],
    ['a fused (D, 2, N, H) kv kernel, v selected', [8, 2, 3, 4], [0], [{ op: 'select', axis: 1, index: 1 }, { op: 'merge', axis: 1 }, { op: 'transpose', axes: [1, 0] }]],
    ["Gemma's q_einsum (N, D, H): the input axis in the middle", [3, 8, 4], [1], [{ op: 'transpose', axes: [0, 2, 1] }, { op: 'merge', axis: 0 }]],
    ["Gemma's kv_einsum (2, K, D, H), k selected", [2, 2, 8, 4], [2], [{ op: 'select', axis: 0, index: 0 }, { op: 'transpose', axes: [0, 2, 1] }, { op: 'merge', axis: 0 }]],
  ];
  for (const [what, kernel, inAxes, chain] of chains) {
    it(`lora_B · lora_A equals the chain run on the whole delta: ${what}`, () => {
      const rank = 3;
      const { a, b, delta, rows, cols } = deltaThroughChain(kernel, inAxes, rank, chain, rand);
      const map = loraMap({ shape: kernel, dtype: 'F32' }, chain, inAxes, what);
      const { loraA, loraB } = peftFactors(map, a, b, rank);
      let worst = 0;
      for (let o = 0; o < rows; o++) {
        for (let i = 0; i < cols; i++) {
          let s = 0;
          for (let k = 0; k < rank; k++) s += loraB[o * rank + k]! * loraA[k * cols + i]!;
          worst = Math.max(worst, Math.abs(s - delta[o * cols + i]!));
        }
      }
      assert.ok(worst < 1e-12, `${what}: off by ${worst}`);
    });
  }

  it('refuses a chain that mixes input and output axes, or adds a constant, naming the tensor', () => {
    // (4, 6) read as (6, 4): rows of the output take elements of several inputs.
    assert.throws(() => loraMap({ shape: [4, 6], dtype: 'F32' }, [{ op: 'reshape', shape: [6, 4] }], [0], 'x.lora_a'), /x\.lora_a: its conversion \(reshape\(6, 4\)\) mixes the kernel's input and output axes/);
    assert.throws(() => loraMap({ shape: [4], dtype: 'F32' }, [{ op: 'add', value: 1 }], [], 'norm.lora_a'), /adds a constant/);
  });
});

describe('LoRA: adapters of flax, orbax and qwix layouts exported for peft, or merged', function () {
  const suite = canonicalSuite();
  let lora: Lora;
  before(function () {
    this.timeout(300_000);
    lora = loraFixtures(suite.python, suite.fx);
  });

  const base = (): PlanOptions => suite.baseOpts('hf');
  /** A file of the LoRA fixtures, relative to the canonical folder (suite.open's root). */
  const at = (f: string) => relative(suite.fx.dir, join(lora.dir, f));
  const abs = (rel: string) => join(suite.fx.dir, rel);

  async function exportLora(src: string, name: string, opts: PlanOptions, adapterFrom?: string, tileBudgetBytes?: number): Promise<{ out: string; adapter?: string }> {
    const ck = await suite.open(src);
    const adapterCk = adapterFrom ? await suite.open(adapterFrom) : undefined;
    const plan = planConversion(ck, { ...base(), ...opts, adapter: adapterCk });
    assert.deepEqual(plan.problems.filter((p) => p.severity === 'error').map((p) => p.message), [], name);
    const out = join(suite.dir, name);
    const adapter = opts.lora === 'adapter' ? join(suite.dir, `${name}-adapter`) : undefined;
    const target = await OutputFolder.create(out, { sources: [] });
    await executePlan(plan, ck, files, target, {
      tokenizerFrom: join(suite.fx.dir, 'hf'),
      tileBudgetBytes,
      lora: { adapterCheckpoint: adapterCk, adapterTarget: adapter ? await OutputFolder.create(adapter, { sources: [] }) : undefined, baseModel: out },
    });
    return { out, adapter };
  }

  const check = (cases: [string, string | undefined, string][]): LoraChecked[] =>
    JSON.parse(execFileSync(suite.python, [join(ROOT, 'python/fixtures/check_lora.py'), 'check', suite.fx.dir, ...cases.flatMap(([b, a, ref]) => [b, a ?? '-', join(lora.dir, ref)])], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 16 << 20 })) as LoraChecked[];

  it('plans the adapters of every layout (module, rank, alpha), never as unmapped, and refuses a checkpoint with LoRA leaves and no --lora', async () => {
    for (const [src, from] of [[at('lora_linear.msgpack')], [at('lora_wrapper_orbax')], ['jax/nnx.msgpack', 'adapter_only.msgpack'], [at('qwix.msgpack')]] as [string, string?][]) {
      const ck = await suite.open(src);
      const plan = planConversion(ck, { ...base(), adapter: from ? await suite.open(at(from)) : undefined });
      assert.deepEqual(plan.unmapped, [], src);
      assert.equal(plan.adapters.length, 8, src);
      assert.deepEqual(
        plan.adapters.map((a) => a.module).sort(),
        [0, 1].flatMap((i) => ['mlp.down_proj', 'self_attn.o_proj', 'self_attn.q_proj', 'self_attn.v_proj'].map((m) => `model.layers.${i}.${m}`)),
      );
      assert.ok(plan.adapters.every((a) => a.rank === 4), src);
      const refused = plan.problems.find((p) => p.code === 'lora-mode');
      assert.match(refused?.message ?? '', /8 modules carry LoRA leaves .*--lora adapter --adapter-out DIR .*--lora merge/, src);
      assert.equal(plan.tensors.length, 2 * 9 + 3, `${src}: the base tensors only`);
    }
    const qwix = planConversion(await suite.open(at('qwix.msgpack')), { ...base(), lora: 'adapter' });
    assert.match(qwix.problems.find((p) => p.code === 'lora-alpha')!.message, /qwix scales by alpha \/ rank and does not store alpha; pass --lora-alpha A/);
    const nnx = planConversion(await suite.open(at('lora_linear.msgpack')), { ...base(), lora: 'adapter' });
    assert.ok(nnx.adapters.every((a) => a.alpha === 4), 'alpha defaults to r: flax applies no scale');
    assert.deepEqual(targetModules(nnx), ['down_proj', 'o_proj', 'q_proj', 'v_proj']);
    // An adapter on some layers only: target_modules names exactly those modules.
    assert.deepEqual(targetModules({ tensors: nnx.tensors, adapters: nnx.adapters.filter((a) => !a.module.includes('layers.1.') || !a.module.endsWith('q_proj')) }), ['down_proj', 'o_proj', 'model.layers.0.self_attn.q_proj', 'v_proj']);
    const none = planConversion(await suite.open('jax/nnx.msgpack'), { ...base(), lora: 'merge' });
    assert.match(none.problems.find((p) => p.code === 'lora-mode')!.message, /--lora merge: the source holds no LoRA leaves/);
  });

  it('a lone factor, or factors that do not compose to their kernel, are named', async () => {
    const ck = await suite.open(at('lora_linear.msgpack'));
    const tensors = ck.tensors.filter((t) => t.name !== 'layers.1.mlp.down_proj.lora.lora_b').map((t) => (t.name === 'layers.0.attention.v_proj.lora.lora_a' ? { ...t, shape: [255, 4] } : t));
    const plan = planConversion({ ...ck, tensors } as Checkpoint, { ...base(), lora: 'adapter' });
    const errors = plan.problems.filter((p) => p.code === 'lora').map((p) => p.message);
    assert.ok(errors.some((m) => /^layers\.1\.mlp\.down_proj\.lora\.lora_a: its LoRA partner \(layers\.1\.mlp\.down_proj\.lora\.lora_b\) is missing/.test(m)), errors.join('\n'));
    assert.ok(errors.some((m) => /layers\.0\.attention\.v_proj\.lora\.lora_a \[255,4\] and .* do not compose to layers\.0\.attention\.v_proj\.kernel \[256,128\]/.test(m)), errors.join('\n'));
  });

  it("a fused kernel's adapter merges into each weight it becomes (Gemma's kv_einsum: k and v), and factors in both the source and --lora-from are refused", async () => {
    const ck = await suite.open('gemma3/jax/tunix.msgpack');
    // qwix's factors of kv_einsum 'BSD,CKDH->CBSKH' (kernel (2, K, D, H)): A (D, r), B (r, 2, K, H).
    const kv = ck.tensors.find((t) => t.name === 'layers.0.attn.kv_einsum.w')!;
    const [, k, d, h] = kv.shape as [number, number, number, number];
    const leaf = (name: string, shape: number[]) => ({ ...kv, name, shape, bytes: shape.reduce((x, y) => x * y, 4) });
    const tensors = [...ck.tensors, leaf('layers.0.attn.kv_einsum.w_lora_a', [d, 4]), leaf('layers.0.attn.kv_einsum.w_lora_b', [4, 2, k, h])];
    const plan = planConversion({ ...ck, tensors } as Checkpoint, { ...suite.baseOpts('gemma3/hf'), lora: 'merge', loraAlpha: 8 });
    assert.deepEqual(plan.problems.filter((p) => p.severity === 'error'), []);
    const merged = plan.tensors.filter((t) => t.merge).map((t) => [t.to, t.merge!.module, t.merge!.inAxes]);
    assert.deepEqual(merged, [
      ['model.layers.0.self_attn.k_proj.weight', 'model.layers.0.self_attn.k_proj', [2]],
      ['model.layers.0.self_attn.v_proj.weight', 'model.layers.0.self_attn.v_proj', [2]],
    ]);

    const both = planConversion(await suite.open(at('lora_linear.msgpack')), { ...base(), lora: 'adapter', adapter: await suite.open(at('adapter_only.msgpack')) });
    assert.match(both.problems.find((p) => p.code === 'lora')!.message, /is in both the source and the adapter file \(--lora-from\)/);
  });

  it('peft loads each exported adapter onto its base with no missing or unexpected keys, the merged exports match too (f32 ≤ 1e-5), and a wrong alpha or an untransposed factor fails', async function () {
    this.timeout(600_000);
    const linear = await exportLora(at('lora_linear.msgpack'), 'linear', { lora: 'adapter' });
    const wrapper = await exportLora(at('lora_wrapper_orbax'), 'wrapper', { lora: 'adapter' });
    const only = await exportLora('jax/nnx.msgpack', 'only', { lora: 'adapter' }, at('adapter_only.msgpack'));
    const qwix = await exportLora(at('qwix.msgpack'), 'qwix', { lora: 'adapter', loraAlpha: 8 });
    const merged = await exportLora(at('lora_linear.msgpack'), 'merged', { lora: 'merge' });
    const qwixMerged = await exportLora(at('qwix.msgpack'), 'qwix-merged', { lora: 'merge', loraAlpha: 8 });
    // Merged in 48 KiB tiles (a weight too large to hold whole): the same bytes.
    for (const [src, whole, opts] of [['lora_linear.msgpack', merged, { lora: 'merge' }], ['qwix.msgpack', qwixMerged, { lora: 'merge', loraAlpha: 8 }]] as const) {
      const tiled = await exportLora(at(src), `tiled-${src}`, opts, undefined, 48 << 10);
      assert.deepEqual(readFileSync(join(tiled.out, 'model.safetensors')), readFileSync(join(whole.out, 'model.safetensors')), `${src}: tiled merge differs`);
    }
    const wrongAlpha = await exportLora(at('lora_linear.msgpack'), 'wrong-alpha', { lora: 'adapter', loraAlpha: 8 });
    // The same adapter with each lora_A written as JAX holds A, (in, r) read as (r, in): no transpose.
    const untransposed = await exportLora(at('lora_linear.msgpack'), 'untransposed', { lora: 'adapter' });
    await rewriteFactors(untransposed.adapter!, lora, suite);
    const results = check([
      [linear.out, linear.adapter, 'logits_lora_linear.npy'],
      [wrapper.out, wrapper.adapter, 'logits_lora_wrapper.npy'],
      [only.out, only.adapter, 'logits_lora_linear.npy'],
      [qwix.out, qwix.adapter, 'logits_qwix.npy'],
      [merged.out, undefined, 'logits_lora_linear.npy'],
      [qwixMerged.out, undefined, 'logits_qwix.npy'],
      [wrongAlpha.out, wrongAlpha.adapter, 'logits_lora_linear.npy'],
      [untransposed.out, untransposed.adapter, 'logits_lora_linear.npy'],
    ]);
    const [good, bad] = [results.slice(0, 6), results.slice(6)];
    for (const r of good) {
      console.log(`      [measure] ${r.base.split('/').pop()}${r.adapter ? ' + adapter' : ' (merged)'}: max |Δlogit| ${r.maxAbsDiff.toExponential(2)}`);
      assert.deepEqual([r.transformersMissing, r.transformersUnexpected, r.adapterMissing ?? [], r.adapterUnexpected ?? []], [[], [], [], []], r.base);
      assert.ok(r.maxAbsDiff <= 1e-5, `${r.base}: max |Δlogit| ${r.maxAbsDiff}`);
    }
    for (const r of bad) assert.ok(r.maxAbsDiff > 1e-2, `${r.base}: the mistake went unnoticed (max |Δlogit| ${r.maxAbsDiff})`);
    const cfg = results[0]!.adapterConfig!;
    assert.deepEqual([cfg.peft_type, cfg.task_type, cfg.r, cfg.lora_alpha, cfg.bias, cfg.use_rslora, cfg.use_dora, cfg.fan_in_fan_out, cfg.modules_to_save], ['LORA', 'CAUSAL_LM', 4, 4, 'none', false, false, false, null]);
    assert.equal(cfg.base_model_name_or_path, linear.out);
    assert.equal(results[3]!.adapterConfig!.lora_alpha, 8);
  });

  it('CLI: no --lora exits 1 and writes nothing; --lora adapter without --adapter-out exits 2; --dry-run --json lists the adapters', () => {
    const src = abs(at('lora_linear.msgpack'));
    const cfg = ['--config-from', join(suite.fx.dir, 'hf')];
    const out = join(suite.dir, 'cli-refused');
    const refused = spawnSync(process.execPath, [CLI, 'convert', src, '-o', out, ...cfg], { encoding: 'utf8' });
    assert.equal(refused.status, 1);
    assert.match(refused.stdout, /8 modules carry LoRA leaves/);
    assert.ok(!existsSync(out), 'nothing written');
    const usage = spawnSync(process.execPath, [CLI, 'convert', src, '-o', out, '--lora', 'adapter', ...cfg], { encoding: 'utf8' });
    assert.equal(usage.status, 2);
    assert.equal(usage.stderr.trim().split('\n').length, 1);
    assert.match(usage.stderr, /--lora adapter needs --adapter-out ADIR/);
    const dry = spawnSync(process.execPath, [CLI, 'convert', src, '--dry-run', '--json', '--lora', 'adapter', ...cfg], { encoding: 'utf8' });
    assert.equal(dry.status, 0, dry.stderr);
    const plan = JSON.parse(dry.stdout) as { adapters: { module: string; rank: number; alpha: number }[] };
    const q = plan.adapters.find((a) => a.module === 'model.layers.0.self_attn.q_proj')!;
    assert.deepEqual([q.rank, q.alpha], [4, 4]);
    // The adapter folder may not lie inside the base export (nor the base inside it).
    const base = join(suite.dir, 'cli-nested');
    const nested = spawnSync(process.execPath, [CLI, 'convert', src, '-o', base, '--lora', 'adapter', '--adapter-out', join(base, 'adapter'), ...cfg], { encoding: 'utf8' });
    assert.equal(nested.status, 2);
    assert.match(nested.stderr, /the base export/);
    assert.ok(!existsSync(base), 'no folder is left behind');
  });
});

/** Rewrites each lora_A.weight of an adapter with the bytes of JAX's A (in, r) as they are: the transpose left out. */
async function rewriteFactors(adapter: string, lora: Lora, suite: ReturnType<typeof canonicalSuite>): Promise<void> {
  const file = join(adapter, 'adapter_model.safetensors');
  const ck = await openCheckpoint(files, file);
  const src = await suite.open(relative(suite.fx.dir, join(lora.dir, 'lora_linear.msgpack')));
  const bytes = new Map<string, Uint8Array>();
  for (const t of ck.tensors) {
    const parts: Uint8Array[] = [];
    const jax = /lora_A/.test(t.name) ? src.tensors.find((s) => s.name === jaxName(t.name)) : undefined;
    for await (const b of readTensorBytes(files, jax ?? t)) parts.push(Buffer.from(b));
    bytes.set(t.name, Buffer.concat(parts));
  }
  const specs = ck.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape] }));
  await writeSafetensors(await openAtomicFileSink(file, { overwrite: true, sources: [] }), specs, (s) => {
    const b = bytes.get(s.name)!;
    assert.equal(b.length, (s.shape.reduce((x, y) => x * y, 1) * DTYPE_BITS[s.dtype]) / 8);
    return b;
  }, { metadata: { format: 'pt' } });
}

/** base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight -> layers.0.attention.q_proj.lora.lora_a */
function jaxName(peft: string): string {
  const m = /model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+)\.lora_A\.weight$/.exec(peft)!;
  return `layers.${m[1]}.${m[2] === 'self_attn' ? 'attention' : 'mlp'}.${m[3]}.lora.lora_a`;
}
