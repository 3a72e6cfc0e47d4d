/**
 * `jax-serve verify`: the comparison arithmetic against hand-computed values, and the whole path —
 * an export of the canonical MaxText checkpoint checked through the generated entry point (passes),
 * through the entry point of the wrong RoPE pairing (fails, exit 1), and the errors a user meets.
 */
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { compareLogits, executePlan, openCheckpoint, planConversion } from '../../src/core/index';
import { NodeFileOpener, OutputFolder, PythonSidecar, sidecarScript } from '../../src/core/node/index';
import { canonicalFixtures, type Canonical } from '../fixtures/canonical';
import { tempDir, venvPython } from './helpers';

const ROOT = resolve(__dirname, '../../..');
const CLI = join(ROOT, 'dist/cli.js');

describe('verify: logits comparison', () => {
  it('is zero for equal logits, and matches hand-computed KL and top-k agreement', () => {
    const same = compareLogits([1, 2, 3, 0, 0, 0], [1, 2, 3, 0, 0, 0], 3);
    assert.deepEqual(same, { positions: 2, maxAbsDiff: 0, kl: 0, top1: 1, top5: 1 });
    // Two tokens: p = softmax(0, ln 3) = (1/4, 3/4), q = (1/2, 1/2): KL = 1/4 ln(1/2) + 3/4 ln(3/2).
    const r = compareLogits([0, Math.log(3)], [0, 0], 2);
    assert.ok(Math.abs(r.kl - (0.25 * Math.log(0.5) + 0.75 * Math.log(1.5))) < 1e-12);
    assert.equal(r.maxAbsDiff, Math.log(3));
    // A constant shift changes nothing a softmax sees, but shows in max |Δ|.
    const shifted = compareLogits([1, 5, 2], [11, 15, 12], 3);
    assert.ok(shifted.kl < 1e-15 && shifted.top1 === 1 && shifted.maxAbsDiff === 10);
    // Top-1 differs; the top 5 of 6 share 4.
    const swapped = compareLogits([6, 5, 4, 3, 2, 1], [5, 6, 4, 3, 1, 2], 6);
    assert.equal(swapped.top1, 0);
    assert.equal(swapped.top5, 4 / 5);
    assert.throws(() => compareLogits([1, 2], [1, 2, 3], 1), /different sizes/);
  });
});

describe('verify: an export against the JAX model, through the entry point', function () {
  let fx: Canonical;
  let python: string;
  let dir: ReturnType<typeof tempDir>;
  let exportDir: string;
  const source = () => join(fx.dir, 'jax', 'maxtext_orbax');
  const verify = (...a: string[]) => spawnSync(process.execPath, [CLI, 'verify', ...a, '--python', python], { encoding: 'utf8' });

  before(async function () {
    python = venvPython(this);
    this.timeout(300_000);
    fx = canonicalFixtures(python);
    dir = tempDir();
    const files = new NodeFileOpener();
    const sidecar = new PythonSidecar({ python, script: sidecarScript(ROOT) });
    try {
      const ck = await openCheckpoint(files, source(), { orbax: sidecar });
      const plan = planConversion(ck, { baseConfig: JSON.parse(readFileSync(join(fx.dir, 'hf', 'config.json'), 'utf8')) });
      exportDir = join(dir.path, 'export');
      await executePlan(plan, ck, files, await OutputFolder.create(exportDir, { sources: [] }), { tokenizerFrom: join(fx.dir, 'hf') });
    } finally {
      sidecar.dispose();
    }
  });
  after(() => dir?.remove());

  it('the generated entry point for the preset matches the export on every prompt (KL ≈ 0, top-1 100%)', function () {
    this.timeout(120_000);
    const entry = join(dir.path, 'entry.py');
    execFileSync(process.execPath, [CLI, 'verify', '--template', 'maxtext-llama3.1', '-o', entry]);
    const r = verify(exportDir, '--source', source(), '--entry', entry, '--prompt', 'jax flax vllm', '--prompt', 'The lazy dog', '--json');
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { prompts: { prompt: string; tokens: number; maxAbsDiff: number; kl: number; top1: number; top5: number }[] };
    assert.deepEqual(report.prompts.map((p) => p.prompt), ['jax flax vllm', 'The lazy dog']);
    for (const p of report.prompts) {
      console.log(`      [measure] verify ${JSON.stringify(p.prompt)} (${p.tokens} tokens): max |Δlogit| ${p.maxAbsDiff.toExponential(2)}, KL ${p.kl.toExponential(2)}, top-1 ${p.top1}, top-5 ${p.top5}`);
      assert.ok(p.maxAbsDiff <= 1e-5 && p.kl <= 1e-9 && p.top1 === 1 && p.top5 === 1);
    }
  });

  it('a forward with the other RoPE pairing differs, and verify says so (exit 1)', function () {
    this.timeout(120_000);
    const entry = join(dir.path, 'llama2.py');
    execFileSync(process.execPath, [CLI, 'verify', '--template', 'maxtext-llama2', '-o', entry]);
    const r = verify(exportDir, '--source', source(), '--entry', entry);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stdout, /DIFFERS/);
    assert.match(r.stdout, /3 of 3 prompt\(s\) differ \(KL > 0.001\): check the preset \(RoPE pairing/);
  });

  it('says what is wrong with an entry point, an interpreter or a template request', function () {
    this.timeout(120_000);
    const bad = join(dir.path, 'bad.py');
    writeFileSync(bad, 'def load(checkpoint, config):\n    return None\n');
    const noForward = verify(exportDir, '--source', source(), '--entry', bad);
    assert.equal(noForward.status, 2);
    assert.match(noForward.stderr, /bad\.py must define load\(checkpoint, config\) and forward\(state, input_ids\)/);
    const noPython = spawnSync(process.execPath, [CLI, 'verify', exportDir, '--source', source(), '--entry', bad, '--python', '/nonexistent/python3'], { encoding: 'utf8' });
    assert.match(noPython.stderr, /\/nonexistent\/python3: no such interpreter \(the export side/);
    const cnn = spawnSync(process.execPath, [CLI, 'verify', '--template', 'linen-cnn'], { encoding: 'utf8' });
    assert.match(cnn.stderr, /no verify template for preset "linen-cnn"/);
    const noConfig = verify(join(fx.dir, 'jax'), '--source', source(), '--entry', bad);
    assert.match(noConfig.stderr, /no config\.json; verify takes an export folder/);
  });
});
