/**
 * Conversion: the transforms against plain reference loops, the rule language, the plan, and the
 * fidelity test that matters — transformers loads each export of the canonical tiny Llama with no
 * missing or unexpected keys, and its logits match a JAX forward pass over the source weights.
 */
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { applyTransforms, bf16Bits, compileRule, f16Bits, f16ToNumber, matchRule, planConversion, planHasErrors, transposeBytes, type PlanOptions } from '../../src/core/index';
import { OutputFolder } from '../../src/core/node/index';
import { canonicalSuite } from './canonicalSuite';
import { rejectsWith, tempDir } from './helpers';

const seed = Number(process.env.JAX_SERVE_FUZZ_SEED ?? 20261126);
const numRuns = Number(process.env.JAX_SERVE_FUZZ_RUNS ?? 200);
const ROOT = resolve(__dirname, '../../..');
const CLI = join(ROOT, 'dist/cli.js');

/** numpy's transpose, one element at a time. */
function naiveTranspose(src: Uint8Array, shape: number[], axes: number[], size: number): Uint8Array {
  const out = new Uint8Array(src.length);
  const n = src.length / size;
  const outShape = axes.map((a) => shape[a]!);
  const inStrides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  for (let o = 0; o < n; o++) {
    let rem = o;
    let from = 0;
    for (let k = outShape.length - 1; k >= 0; k--) {
      const ix = rem % outShape[k]!;
      rem = Math.floor(rem / outShape[k]!);
      from += ix * inStrides[axes[k]!]!;
    }
    out.set(src.subarray(from * size, (from + 1) * size), o * size);
  }
  return out;
}

describe('conversion transforms', () => {
  it(`transposes any permutation of any shape like numpy (seed ${seed}, ${numRuns} runs)`, () => {
    const arb = fc
      .array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 5 })
      .chain((shape) => fc.tuple(fc.constant(shape), fc.shuffledSubarray([...shape.keys()], { minLength: shape.length }), fc.constantFrom(1, 2, 4, 8)));
    fc.assert(
      fc.property(arb, ([shape, axes, size]) => {
        const n = shape.reduce((a, b) => a * b, 1) * size;
        const src = Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff);
        assert.deepEqual(transposeBytes(src, shape, axes, size), naiveTranspose(src, shape, axes, size));
      }),
      { seed, numRuns },
    );
  });

  it(`de-interleaves RoPE pairs along any axis like numpy's concat(x[..., ::2], x[..., 1::2]), and interleave undoes it (seed ${seed})`, () => {
    const arb = fc
      .tuple(fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 3 }), fc.integer({ min: 1, max: 4 }), fc.constantFrom(1, 2, 4, 8))
      .chain(([shape, half, size]) => fc.tuple(fc.constant(shape), fc.constant(half * 2), fc.integer({ min: 0, max: shape.length }), fc.constant(size)));
    fc.assert(
      fc.property(arb, ([rest, n, axis, size]) => {
        const shape = [...rest.slice(0, axis), n, ...rest.slice(axis)];
        const count = shape.reduce((a, b) => a * b, 1);
        const src = Uint8Array.from({ length: count * size }, (_, i) => (i * 7 + 3) & 0xff);
        const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1) * size;
        const want = new Uint8Array(src.length);
        for (let o = 0; o < src.length / (n * inner); o++) {
          for (let j = 0; j < n; j++) {
            const from = j < n / 2 ? 2 * j : 2 * (j - n / 2) + 1; // evens first, then odds
            want.set(src.subarray((o * n + from) * inner, (o * n + from + 1) * inner), (o * n + j) * inner);
          }
        }
        const dtype = ({ 1: 'U8', 2: 'BF16', 4: 'F32', 8: 'F64' } as const)[size as 1 | 2 | 4 | 8];
        const got = applyTransforms(src, { shape, dtype }, [{ op: 'deinterleave', axis }]).bytes;
        assert.deepEqual(got, want);
        assert.deepEqual(applyTransforms(got, { shape, dtype }, [{ op: 'interleave', axis }]).bytes, src);
      }),
      { seed, numRuns },
    );
  });

  it('selects one index of an axis, reshapes, and refuses what does not fit', () => {
    const src = new Uint8Array(Float32Array.from({ length: 24 }, (_, i) => i).buffer);
    const { bytes, layout } = applyTransforms(src, { shape: [2, 3, 4], dtype: 'F32' }, [{ op: 'select', axis: 1, index: 2 }, { op: 'reshape', shape: [-1] }]);
    assert.deepEqual([...new Float32Array(bytes.buffer)], [8, 9, 10, 11, 20, 21, 22, 23]);
    assert.deepEqual(layout, { shape: [8], dtype: 'F32' });
    assert.throws(() => applyTransforms(src, { shape: [2, 3, 4], dtype: 'F32' }, [{ op: 'transpose', axes: [1, 0] }]), /permutation of 0..2/);
    assert.throws(() => applyTransforms(src, { shape: [2, 3, 4], dtype: 'F32' }, [{ op: 'reshape', shape: [5, -1] }]), /do not fill/);
  });

  it('casts to f16 and bf16 rounding to nearest even, and scales', () => {
    // Every f16 value survives f16 -> number -> f16 (NaN stays NaN).
    for (let h = 0; h < 0x10000; h++) {
      const v = f16ToNumber(h);
      if (Number.isNaN(v)) assert.ok(Number.isNaN(f16ToNumber(f16Bits(v))));
      else assert.equal(f16Bits(v), h, `f16 0x${h.toString(16)}`);
    }
    // Ties go to even; overflow to infinity; below half the smallest subnormal to zero.
    assert.equal(f16Bits(1 + 2 ** -11), 0x3c00);
    assert.equal(f16Bits(1 + 3 * 2 ** -11), 0x3c02);
    assert.equal(f16Bits(70000), 0x7c00);
    assert.equal(f16Bits(2 ** -26), 0);
    assert.equal(bf16Bits(1 + 2 ** -8), 0x3f80);
    assert.equal(bf16Bits(1 + 3 * 2 ** -8), 0x3f82);
    assert.equal(bf16Bits(NaN) & 0x7fc0, 0x7fc0);
    const src = new Uint8Array(Float32Array.of(1, -2.5, 3).buffer);
    const out = applyTransforms(src, { shape: [3], dtype: 'F32' }, [{ op: 'scale', factor: 2 }, { op: 'cast', dtype: 'BF16' }]);
    assert.deepEqual([...new Uint16Array(out.bytes.buffer)], [0x4000, 0xc0a0, 0x40c0]);
  });
});

describe('conversion rules', () => {
  it('matches placeholders and alternatives, fills the target, and respects rank', () => {
    const rules = [
      compileRule({ from: 'layers.{i}.attention.{p:q_proj|k_proj}.kernel', to: 'model.layers.{i}.self_attn.{p}.weight', rank: 2 }),
      compileRule({ from: 'blocks_{i}.{name}.scale', to: 'h.{i}.{name}.weight' }),
    ];
    assert.equal(matchRule(rules, 'layers.07.attention.k_proj.kernel', 2)?.target, 'model.layers.7.self_attn.k_proj.weight');
    assert.equal(matchRule(rules, 'layers.0.attention.v_proj.kernel', 2), undefined);
    assert.equal(matchRule(rules, 'layers.0.attention.q_proj.kernel', 3), undefined, 'a 3-D kernel does not take the 2-D rule');
    assert.equal(matchRule(rules, 'blocks_3.ln_1.scale', 1)?.target, 'h.3.ln_1.weight');
    assert.equal(matchRule(rules, 'blocks_3.ln.1.scale', 1), undefined, '{name} is one segment');
    assert.throws(() => compileRule({ from: 'a.{x}', to: 'b.{y}' }), /uses \{y\}/);
  });
});

describe('conversion of the canonical tiny Llama', function () {
  const suite = canonicalSuite();
  const open = (rel: string) => suite.open(rel);
  const baseOpts = () => suite.baseOpts();
  const exportTo = (rel: string, name: string, opts: PlanOptions = baseOpts()) => suite.exportTo(rel, name, opts);
  const check = (pairs: [string, string][]) =>
    suite.check<{ export: string; missing: string[]; unexpected: string[]; maxAbsDiff: number; kl: number; top1: number; tokenizerIds: number[]; promptIds: number[] }>(pairs);

  /** The files in the talk's layout (the others are the presets' fixtures, tested in presets.test.ts). */
  const talkFiles = () => Object.keys(suite.fx.manifest.files).filter((rel) => !/bonsai|maxtext|tunix/.test(rel));

  it('plans every tensor of every JAX file with the talk preset, auto-detected', async () => {
    for (const rel of talkFiles()) {
      const plan = planConversion(await open(rel), baseOpts());
      assert.equal(plan.preset.id, 'talk-nnx-llama', rel);
      assert.deepEqual(plan.problems.filter((p) => p.severity !== 'info'), [], rel);
      assert.equal(plan.tensors.length, 3 + 9 * suite.fx.manifest.config.num_hidden_layers, rel);
      assert.equal(plan.config?.num_attention_heads, suite.fx.manifest.config.num_attention_heads);
      assert.equal(plan.config?.rope_theta, 10000, 'rope_theta read from transformers 5 rope_parameters');
    }
  });

  it('says what it cannot know instead of guessing: the head split, defaults used, unmapped and missing tensors', async () => {
    const ck = await open('jax/nnx.msgpack');
    const bare = planConversion(ck);
    assert.ok(bare.problems.some((p) => p.code === 'heads-unknown' && p.severity === 'error'));
    const heads = planConversion(ck, { set: { num_attention_heads: 4 } });
    assert.ok(!planHasErrors(heads));
    assert.ok(heads.problems.some((p) => p.code === 'default-setting' && /rope_theta/.test(p.message)));
    const wrongHeads = planConversion(ck, { set: { num_attention_heads: 3 } });
    assert.ok(wrongHeads.problems.some((p) => p.code === 'heads-mismatch'));
    const mismatch = planConversion(ck, { ...baseOpts(), set: { hidden_size: 512 } });
    assert.ok(mismatch.problems.some((p) => p.code === 'config-mismatch' && /hidden_size = 256, the given config says 512/.test(p.message)));
    // A user rule that maps a tensor somewhere LlamaForCausalLM has no place for.
    const odd = planConversion(ck, { ...baseOpts(), userRules: [{ from: 'norm.norm_weights', to: 'model.final_norm.weight' }] });
    assert.ok(odd.problems.some((p) => p.code === 'missing' && p.tensor === 'model.norm.weight'));
    assert.ok(odd.problems.some((p) => p.code === 'unexpected' && p.tensor === 'model.final_norm.weight'));
  });

  it('exports that transformers loads strictly and whose logits match the JAX forward (f32 ≤ 1e-5; bf16 cast KL ≤ 1e-3)', async function () {
    this.timeout(300_000);
    const pairs: [string, string][] = [];
    for (const rel of talkFiles()) {
      const { out } = await exportTo(rel, rel.replace(/[/.]/g, '_'));
      pairs.push([out, rel]);
    }
    const cast = await exportTo('jax/nnx.msgpack', 'cast_bf16', { ...baseOpts(), dtype: 'BF16' });
    assert.equal(JSON.parse(readFileSync(join(cast.out, 'config.json'), 'utf8')).torch_dtype, 'bfloat16');
    pairs.push([cast.out, 'jax/nnx.msgpack']);
    const results = check(pairs);
    assert.equal(results.length, pairs.length);
    for (const r of results) {
      console.log(`      [measure] ${r.export.split('/').pop()}: max |Δlogit| ${r.maxAbsDiff.toExponential(2)}, KL ${r.kl.toExponential(2)}, top-1 ${r.top1}`);
      assert.deepEqual([r.missing, r.unexpected], [[], []], r.export);
      assert.deepEqual(r.tokenizerIds, r.promptIds, `${r.export}: the copied tokenizer encodes the prompt as the source did`);
      if (r.export === cast.out) assert.ok(r.kl <= 1e-3 && r.top1 === 1, `${r.export}: kl ${r.kl}, top1 ${r.top1}`);
      else assert.ok(r.maxAbsDiff <= 1e-5, `${r.export}: max |Δlogit| ${r.maxAbsDiff}`);
    }
  });

  it('the fidelity check fails an export with a wrong transpose (q_proj is square, so it still loads)', async function () {
    this.timeout(300_000);
    const wrong = await exportTo('jax/nnx.msgpack', 'wrong_transpose', {
      ...baseOpts(),
      userRules: [{ from: 'layers.{i}.attention.q_proj.kernel', to: 'model.layers.{i}.self_attn.q_proj.weight', rank: 2 }],
    });
    const [r] = check([[wrong.out, 'jax/nnx.msgpack']]);
    assert.deepEqual([r!.missing, r!.unexpected], [[], []]);
    assert.ok(r!.maxAbsDiff > 1e-2, `a wrong transpose went unnoticed: max |Δlogit| ${r!.maxAbsDiff}`);
  });

  it('CLI: --dry-run prints the plan (exit 1 with errors), convert writes, an existing output is kept, a failure leaves nothing', async () => {
    const src = join(suite.fx.dir, 'jax', 'nnx.msgpack');
    const run = (...a: string[]) => spawnSync(process.execPath, [CLI, 'convert', src, ...a], { encoding: 'utf8' });
    const dry = run('--dry-run', '--json', '--config-from', join(suite.fx.dir, 'hf'));
    assert.equal(dry.status, 0, dry.stderr);
    assert.equal(JSON.parse(dry.stdout).tensors.length, 21);
    const bad = run('--dry-run');
    assert.equal(bad.status, 1);
    assert.match(bad.stdout, /error +q_proj has 256 rows/);
    const out = join(suite.dir, 'cli_out');
    const ok = run('-o', out, '--config-from', join(suite.fx.dir, 'hf'), '--tokenizer-from', join(suite.fx.dir, 'hf'), '--set', 'max_position_embeddings=256');
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).max_position_embeddings, 256);
    const again = run('-o', out, '--config-from', join(suite.fx.dir, 'hf'));
    assert.equal(again.status, 2);
    assert.match(again.stderr, /already exists; choose another output folder or allow overwriting \(--overwrite\)/);
    // No tokenizer where one is asked for: an error, and neither the output nor a partial folder remains.
    const failed = join(suite.dir, 'cli_failed');
    const noTok = run('-o', failed, '--config-from', join(suite.fx.dir, 'hf'), '--tokenizer-from', join(suite.fx.dir, 'jax'));
    assert.equal(noTok.status, 2);
    assert.match(noTok.stderr, /--tokenizer-from .*jax: no tokenizer\.json or tokenizer\.model/);
    assert.ok(!existsSync(failed));
    assert.deepEqual(readdirSync(suite.dir).filter((n) => n.includes('partial')), []);
    await rejectsWith(OutputFolder.create(out, { sources: [] }), 'E_USAGE', /already exists/);
  });
});

describe('an export that is stopped', function () {
  let dir: ReturnType<typeof tempDir>;
  let src: string;

  before(async function () {
    this.timeout(60_000);
    dir = tempDir();
    // 64 Dense kernels of 4 MiB (a plan without errors for linen-cnn): long enough to stop halfway.
    const specs = Array.from({ length: 64 }, (_, i) => ({ name: `params.Dense_${i}.kernel`, dtype: 'F32' as const, shape: [1024, 1024] }));
    src = join(dir.path, 'big.safetensors');
    const { writeSafetensors } = await import('../../src/core/index');
    const { openAtomicFileSink } = await import('../../src/core/node/index');
    await writeSafetensors(await openAtomicFileSink(src, { sources: [] }), specs, (s) => new Uint8Array(s.shape.reduce((a, b) => a * b, 4)), { metadata: { format: 'flax' } });
  });
  after(() => dir?.remove());

  /** Runs convert, sends `signal` after the first progress line, and returns what is left in the folder. */
  async function stopped(signal: NodeJS.Signals, name: string): Promise<{ code: number | null; left: string[] }> {
    const out = join(dir.path, name);
    const child = spawn(process.execPath, [CLI, 'convert', src, '-o', out, '--progress-json', '--preset', 'linen-cnn'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const closed = new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    let stderr = '';
    await new Promise<void>((resolve) => {
      child.stderr.on('data', (b: Buffer) => {
        stderr += b.toString();
        if (/"done"/.test(stderr)) resolve();
      });
      void closed.then(() => resolve()); // finished or failed before any progress: the assertions say which
    });
    child.kill(signal);
    const code = await closed;
    assert.ok(!existsSync(out), `${name}: the target exists (stderr: ${stderr.slice(-300)})`);
    return { code, left: readdirSync(dir.path).filter((n) => n.includes(name)) };
  }

  it('SIGTERM mid-export: the CLI stops (exit 130) and removes its partial folder; SIGKILL leaves only a .partial, never the target', async function () {
    this.timeout(60_000);
    const term = await stopped('SIGTERM', 'term');
    assert.equal(term.code, 130);
    assert.deepEqual(term.left, []);
    const kill = await stopped('SIGKILL', 'kill');
    assert.equal(kill.left.length, 1);
    assert.match(kill.left[0]!, /^\.kill\.[0-9a-f]+\.partial$/, 'the only thing left says it is partial');
  });
});
