/**
 * Checkpoint diff: by name (files Python edited: a tensor dropped, added, reshaped, cast, nudged)
 * and through the conversion plan (a JAX checkpoint against the HF model it came from and against
 * its own exports), with values compared after the plan's transforms.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { compareValues, DEFAULT_TOLERANCE, diffCheckpoints, entryName, openCheckpoint, valueSides, type Checkpoint, type CheckpointDiff, type ValueDiff, valueOpener } from '../../src/core/index';
import { ValueWorker } from '../../src/core/node/index';
import { canonicalSuite } from './canonicalSuite';
import { rejectsWith } from './helpers';

const ROOT = resolve(__dirname, '../../..');
const CLI = join(ROOT, 'dist/cli.js');

async function allValues(suite: ReturnType<typeof canonicalSuite>, [left, right]: [Checkpoint, Checkpoint], d: CheckpointDiff, tol = {}): Promise<Map<string, ValueDiff>> {
  const out = new Map<string, ValueDiff>();
  for (const e of d.entries) {
    const sides = e.status === 'same' || e.status === 'retyped' ? valueSides(e, valueOpener(left, suite.files), valueOpener(right, suite.files)) : undefined;
    if (sides) out.set(entryName(e), await compareValues(sides[0], sides[1], tol));
  }
  return out;
}

describe('checkpoint diff', function () {
  this.timeout(120_000);
  const suite = canonicalSuite();

  it('pairs by name: removed, added, reshaped and retyped tensors, and the values of the rest (a nudged one fails allclose)', async () => {
    const hf = join(suite.fx.dir, 'hf', 'model.safetensors');
    const edited = join(suite.dir, 'edited.safetensors');
    // numpy and safetensors edit a copy: drop one tensor, add one, reshape one, cast one, nudge one element.
    execFileSync(suite.python, ['-c', `
import sys, numpy as np
from safetensors.numpy import load_file, save_file
t = load_file(sys.argv[1])
del t["model.norm.weight"]
t["extra.bias"] = np.zeros(3, np.float32)
t["lm_head.weight"] = t["lm_head.weight"].reshape(-1)
t["model.layers.0.mlp.up_proj.weight"] = t["model.layers.0.mlp.up_proj.weight"].astype(np.float16)
w = t["model.layers.1.self_attn.q_proj.weight"].copy(); w[3, 5] += 0.5; t["model.layers.1.self_attn.q_proj.weight"] = w
save_file(t, sys.argv[2])
`, hf, edited]);
    const left = await suite.open('hf/model.safetensors');
    const right = await openCheckpoint(suite.files, edited);
    const d = diffCheckpoints(left, right);
    assert.deepEqual(d.pairing, { kind: 'names' });
    const by = (s: string) => d.entries.filter((e) => e.status === s).map(entryName);
    assert.deepEqual(by('removed'), ['model.norm.weight']);
    assert.deepEqual(by('added'), ['extra.bias']);
    assert.deepEqual(by('reshaped'), ['lm_head.weight']);
    assert.deepEqual(by('retyped'), ['model.layers.0.mlp.up_proj.weight']);
    assert.equal(d.counts.same, left.tensors.length - 3);
    const values = await allValues(suite, [left, right], d);
    const nudged = values.get('model.layers.1.self_attn.q_proj.weight')!;
    assert.equal(nudged.allclose, false);
    assert.equal(nudged.mismatched, 1);
    assert.ok(Math.abs(nudged.maxAbsDiff - 0.5) < 1e-6, String(nudged.maxAbsDiff));
    const hidden = Number(JSON.parse(execFileSync(suite.python, ['-c', 'import json,sys; print(json.load(open(sys.argv[1]))["hidden_size"])', join(suite.fx.dir, 'hf', 'config.json')], { encoding: 'utf8' })));
    assert.equal(nudged.firstMismatch, 3 * hidden + 5, 'the flat index of [3, 5]');
    const cast = values.get('model.layers.0.mlp.up_proj.weight')!;
    assert.ok(!cast.allclose && cast.maxAbsDiff < 1e-3, 'f16 rounding: not allclose at 1e-5, within f16 precision');
    for (const [name, v] of values) if (!/q_proj|up_proj/.test(name)) assert.equal(v.maxAbsDiff, 0, name);
    await rejectsWith(compareValues({ opener: suite.files, tensor: left.tensors.find((t) => t.name === 'lm_head.weight')! }, { opener: suite.files, tensor: right.tensors.find((t) => t.name === 'lm_head.weight')! }), 'E_USAGE', /differ in shape/);
  });

  for (const rel of ['jax/nnx.msgpack', 'jax/bonsai_llama.msgpack', 'jax/maxtext_orbax']) {
    it(`pairs ${rel} with the HF model it came from through the plan: every tensor paired, values equal after the transforms`, async () => {
      const jax = await suite.open(rel);
      const hf = await suite.open('hf/model.safetensors');
      for (const [left, right, side] of [[jax, hf, 'left'], [hf, jax, 'right']] as const) {
        const d = diffCheckpoints(left, right);
        assert.equal(d.pairing.kind, 'plan');
        assert.equal(d.pairing.kind === 'plan' && d.pairing.jax, side);
        assert.deepEqual({ ...d.counts, same: 0 }, { same: 0, added: 0, removed: 0, reshaped: 0, retyped: 0 }, JSON.stringify(d.entries.filter((e) => e.status !== 'same').map(entryName)));
        assert.equal(d.counts.same, hf.tensors.length);
        // Values only one way round (the other is the same arithmetic).
        if (side === 'right') continue;
        const values = await allValues(suite, [left, right], d);
        assert.equal(values.size, hf.tensors.length);
        for (const [name, v] of values) assert.ok(v.allclose, `${name}: max |Δ| ${v.maxAbsDiff}`);
      }
    });
  }

  it('compares on the value worker as in-process, an Orbax side read through the host (either side)', async () => {
    const worker = new ValueWorker(resolve(ROOT, 'dist/valueWorker.js'), suite.files);
    try {
      const jax = await suite.open('jax/maxtext_orbax');
      const hf = await suite.open('hf/model.safetensors');
      for (const [left, right] of [[hf, jax], [jax, hf]] as const) {
        const d = diffCheckpoints(left, right);
        const inProcess = await allValues(suite, [left, right], d);
        let compared = 0;
        for (const e of d.entries) {
          if (!e.left || !e.right) continue;
          const v = await worker.compare(left, e.left, right, e.right, e.via, DEFAULT_TOLERANCE);
          assert.deepEqual(v, inProcess.get(entryName(e)), entryName(e));
          compared++;
        }
        assert.equal(compared, hf.tensors.length);
      }
    } finally {
      await worker.dispose();
    }
  });

  it('finds the wrong tensor in a broken export: the plan pairs it, the values differ', async () => {
    const jax = await suite.open('jax/nnx.msgpack');
    const hf = await suite.open('hf/model.safetensors');
    // The bf16 export: retyped everywhere, close at bf16 precision.
    const { out } = await suite.exportTo('jax/nnx.msgpack', 'diff_bf16', { ...suite.baseOpts(), dtype: 'BF16' });
    const cast = await openCheckpoint(suite.files, join(out, 'model.safetensors'));
    const d = diffCheckpoints(jax, cast);
    assert.equal(d.pairing.kind, 'plan');
    assert.equal(d.counts.retyped, hf.tensors.length);
    const loose = await allValues(suite, [jax, cast], d, { rtol: 1 / 128, atol: 1e-6 });
    for (const [name, v] of loose) assert.ok(v.allclose, `${name}: ${v.maxRelDiff}`);
    // A rule that forgets the transpose (q_proj is square, so the export still loads): caught.
    const { out: wrongOut } = await suite.exportTo('jax/nnx.msgpack', 'diff_wrong', { ...suite.baseOpts(), userRules: [{ from: 'layers.{i}.attention.q_proj.kernel', to: 'model.layers.{i}.self_attn.q_proj.weight', rank: 2 }] });
    const wrong = await openCheckpoint(suite.files, join(wrongOut, 'model.safetensors'));
    const dw = diffCheckpoints(hf, wrong);
    assert.deepEqual(dw.pairing, { kind: 'names' });
    const values = await allValues(suite, [hf, wrong], dw);
    const bad = [...values].filter(([, v]) => !v.allclose).map(([n]) => n);
    assert.ok(bad.length > 0 && bad.every((n) => /q_proj/.test(n)), bad.join(', '));
  });

  it('jax-serve diff prints the pairing, the counts and, with --values, what differs; exit 1 when something does', () => {
    const run = (...args: string[]) => {
      try {
        return { code: 0, out: execFileSync(process.execPath, [CLI, 'diff', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) };
      } catch (e) {
        const err = e as { status: number; stdout: string; stderr: string };
        return { code: err.status, out: err.stdout + err.stderr };
      }
    };
    const jax = join(suite.fx.dir, 'jax', 'nnx.msgpack');
    const hf = join(suite.fx.dir, 'hf', 'model.safetensors');
    const same = run(jax, hf, '--values');
    assert.equal(same.code, 0, same.out);
    assert.match(same.out, /paired through the talk-nnx-llama plan/);
    assert.match(same.out, /all \d+ paired tensors allclose/);
    const json = JSON.parse(run(jax, hf, '--json').out) as { pairing: { kind: string }; counts: Record<string, number> };
    assert.equal(json.pairing.kind, 'plan');
    const edited = join(suite.dir, 'edited.safetensors');
    const changed = run(hf, edited, '--values');
    assert.equal(changed.code, 1, changed.out);
    assert.match(changed.out, /removed\s+model\.norm\.weight/);
    assert.match(changed.out, /values\s+model\.layers\.1\.self_attn\.q_proj\.weight: 1 of [\d,]+ elements differ, max \|Δ\| 0\.5/);
  });
});
