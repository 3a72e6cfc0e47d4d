import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeSafetensors } from '../../src/core/index';
import { openAtomicFileSink } from '../../src/core/node/index';
import { rawSafetensors, tempDir } from './helpers';

const cli = resolve(__dirname, '../../../dist/cli.js');
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });

describe('jax-serve CLI (the built dist/cli.js)', () => {
  let dir: ReturnType<typeof tempDir>;
  let file: string;
  const vals = new Float32Array([1, -2, 3.5, NaN, 0, Infinity]);
  before(async () => {
    dir = tempDir();
    file = join(dir.path, 'model.safetensors');
    await writeSafetensors(await openAtomicFileSink(file, { sources: [] }), [
      { name: 'model.layers.0.mlp.up_proj.weight', dtype: 'F32', shape: [2, 3] },
      { name: 'lm_head.weight', dtype: 'BF16', shape: [4] },
    ], (s) => (s.dtype === 'F32' ? new Uint8Array(vals.buffer) : new Uint8Array(8)));
  });
  after(() => dir.remove());

  it('inspect --json prints one object with name, key path, dtype, shape, bytes', () => {
    const r = run('inspect', file, '--json');
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.format, 'safetensors');
    assert.deepEqual(out.metadata, { format: 'pt' });
    assert.deepEqual(out.tensors, [
      { name: 'model.layers.0.mlp.up_proj.weight', path: ['model', 'layers', 0, 'mlp', 'up_proj', 'weight'], dtype: 'F32', shape: [2, 3], bytes: 24 },
      { name: 'lm_head.weight', path: ['lm_head', 'weight'], dtype: 'BF16', shape: [4], bytes: 8 },
    ]);
  });

  it('inspect --json of 10,000 tensors, printed a piece at a time, is one JSON line with every tensor once, in order', async () => {
    const many = join(dir.path, 'ten-thousand.safetensors');
    const specs = Array.from({ length: 10_000 }, (_, i) => ({ name: `layer.${i}.weight`, dtype: 'F32' as const, shape: [1 + (i % 3)] }));
    await writeSafetensors(await openAtomicFileSink(many, { sources: [] }), specs, (s) => new Uint8Array(4 * s.shape[0]!), { metadata: { format: 'pt', note: 'x' } });
    const r = run('inspect', many, '--json');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.split('\n').length, 2, 'one line and its newline');
    const out = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(out), ['format', 'location', 'files', 'tensors', 'metadata']);
    assert.deepEqual(out.metadata, { format: 'pt', note: 'x' });
    // The file holds them by descending element size, then name: compared by name.
    assert.equal(out.tensors.length, specs.length);
    const byName = new Map(out.tensors.map((t: { name: string }) => [t.name, t]));
    for (const s of specs) assert.deepEqual(byName.get(s.name), { name: s.name, path: ['layer', Number(s.name.split('.')[1]), 'weight'], dtype: 'F32', shape: s.shape, bytes: 4 * s.shape[0]! });
  });

  it('stops quietly (exit 0, nothing on stderr) when the reader closes the pipe early', async () => {
    const many = join(dir.path, 'many.safetensors');
    await writeSafetensors(await openAtomicFileSink(many, { sources: [] }), Array.from({ length: 5000 }, (_, i) => ({ name: `layer.${i}.weight`, dtype: 'F32' as const, shape: [1] })), () => new Uint8Array(4));
    const r = spawnSync('bash', ['-c', `"${process.execPath}" "${cli}" inspect "${many}" | head -c 10; echo " status=\${PIPESTATUS[0]}"`], { encoding: 'utf8' });
    assert.match(r.stdout, /status=0$/m);
    assert.equal(r.stderr, '');
  });

  it('inspect prints a readable summary and table, and opens a folder', () => {
    const r = run('inspect', dir.path);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /parameters\s+10 \(F32 6, BF16 4\)|parameters\s+10\s+\(F32 6, BF16 4\)/);
    assert.match(r.stdout, /model\.layers\.0\.mlp\.up_proj\.weight\s+F32\s+\[2, 3\]\s+24 B/);
  });

  it('stats --json gives exact statistics with NaN and Inf counted apart', () => {
    const r = run('stats', file, 'model.layers.0.mlp.up_proj.weight', '--json');
    assert.equal(r.status, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    assert.deepEqual([s.count, s.finite, s.nan, s.posInf, s.zeros, s.min, s.max], [6, 4, 1, 1, 1, -2, 3.5]);
    assert.equal(s.mean, 0.625);
    assert.deepEqual(s.histogram.counts.reduce((a: number, b: number) => a + b, 0), 4);
    assert.equal(s.histogram.edges[0], -2);
    assert.equal(s.histogram.edges.at(-1), 3.5);
  });

  it('stats prints a histogram with --bins', () => {
    const r = run('stats', file, 'model.layers.0.mlp.up_proj.weight', '--bins', '3');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.split('\n').filter((l) => l.startsWith('[')).length, 3);
    assert.equal(run('stats', file, 'lm_head.weight', '--bins', '0').status, 2);
  });

  const errors: [string, () => string[], RegExp][] = [
    ['a missing file', () => ['inspect', join(dir.path, 'nope.safetensors')], /nope\.safetensors: no such file/],
    ['a malformed file', () => { const f = join(dir.path, 'bad.safetensors'); writeFileSync(f, rawSafetensors('{"a":1}')); return ['inspect', f]; }, /Failed to parse .*bad\.safetensors: tensor "a" is a number/],
    ['an unknown tensor', () => ['stats', file, 'nope'], /no tensor named "nope"/],
    ['an unknown command', () => ['frobnicate'], /unknown command "frobnicate"/],
    ['an unknown option', () => ['inspect', file, '--yaml'], /unknown option --yaml/],
  ];
  for (const [what, args, re] of errors) {
    it(`exits 2 with one line on stderr for ${what}`, () => {
      const r = run(...args());
      assert.equal(r.status, 2);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, re);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    });
  }
});
