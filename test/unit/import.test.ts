/**
 * Import (HF -> JAX layout) and the Flax msgpack writer: flax.serialization reads what we write
 * (every encoding size, chunked arrays), an HF checkpoint imports to exactly the canonical JAX
 * arrays, and export then import returns the source bit for bit.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DTYPE_BITS, executeImport, executePlan, openCheckpoint, planConversion, planImport, readTensorBytes, tileSet, writeFlaxMsgpack, type Checkpoint, type MsgpackLeaf } from '../../src/core/index';
import { NodeFileOpener, openAtomicFileSink, OutputFolder, ValueWorker } from '../../src/core/node/index';
import { canonicalSuite } from './canonicalSuite';
import { prng } from './helpers';

const files = new NodeFileOpener();
const WORKER = resolve(__dirname, '../../../dist/valueWorker.js');

async function hashes(ck: Checkpoint): Promise<Record<string, { dtype: string; shape: number[]; sha256: string }>> {
  const out: Record<string, { dtype: string; shape: number[]; sha256: string }> = {};
  for (const t of ck.tensors) {
    const h = createHash('sha256');
    for await (const b of readTensorBytes(files, t)) h.update(b);
    out[t.name] = { dtype: t.dtype, shape: [...t.shape], sha256: h.digest('hex') };
  }
  return out;
}

describe('Flax msgpack writer, import, and conversion in tiles', function () {
  const suite = canonicalSuite();

  it('writes what flax.serialization.msgpack_restore reads: map16 and long keys, big dims, every dtype, chunked arrays', async function () {
    this.timeout(60_000);
    const rand = prng(5);
    const leaves: MsgpackLeaf[] = [
      ...Array.from({ length: 20 }, (_, i) => ({ path: ['many', `k${i}`], dtype: 'F32' as const, shape: [2] })),
      { path: ['a_key_name_longer_than_thirty_one_bytes_for_str8', 'w'], dtype: 'BF16', shape: [3, 130] },
      { path: ['big', 'dims'], dtype: 'I8', shape: [70000] },
      { path: ['scalars', 'zero_d'], dtype: 'F64', shape: [] },
      { path: ['scalars', 'empty'], dtype: 'F16', shape: [0, 4] },
      { path: ['flags'], dtype: 'BOOL', shape: [5] },
      // Written in 64-byte chunks: flax's __msgpack_chunked_array__ form.
      { path: ['chunked'], dtype: 'F32', shape: [7, 9] },
    ];
    const data = new Map(leaves.map((l) => [l.path.join('.'), Uint8Array.from({ length: (l.shape.reduce((a, b) => a * b, 1) * DTYPE_BITS[l.dtype]) / 8 }, () => (l.dtype === 'BOOL' ? (rand() < 0.5 ? 1 : 0) : (rand() * 120) | 0))]));
    const file = join(suite.dir, 'encodings.msgpack');
    await writeFlaxMsgpack(await openAtomicFileSink(file, { sources: [] }), leaves, async function* (l) {
      yield data.get(l.path.join('.'))!;
    }, { maxChunkBytes: 64 });
    const script = `
import hashlib, json, sys
import numpy as np
from flax import serialization
from flax.traverse_util import flatten_dict
t = flatten_dict(serialization.msgpack_restore(open(sys.argv[1], 'rb').read()))
print(json.dumps({'.'.join(k): [v.dtype.name, list(v.shape), hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()] for k, v in t.items()}))`;
    const got = JSON.parse(execFileSync(suite.python, ['-c', script, file], { encoding: 'utf8' }));
    const names: Record<string, string> = { F32: 'float32', BF16: 'bfloat16', I8: 'int8', F64: 'float64', F16: 'float16', BOOL: 'bool' };
    assert.deepEqual(got, Object.fromEntries(leaves.map((l) => [l.path.join('.'), [names[l.dtype], [...l.shape], createHash('sha256').update(data.get(l.path.join('.'))!).digest('hex')]])));
    // And our own reader joins the chunks again.
    const ck = await openCheckpoint(files, file);
    assert.deepEqual(ck.tensors.find((t) => t.name === 'chunked')!.shape, [7, 9]);
  });

  it('imports the HF model to exactly the canonical JAX arrays (msgpack and flax safetensors)', async () => {
    const hf = await openCheckpoint(files, join(suite.fx.dir, 'hf'));
    const plan = planImport(hf, 'talk-nnx-llama');
    assert.deepEqual(plan.problems, []);
    for (const [name, format] of [['imported.msgpack', 'msgpack'], ['imported.safetensors', 'safetensors']] as const) {
      const out = join(suite.dir, name);
      await executeImport(plan, hf, files, await openAtomicFileSink(out, { sources: [] }), format);
      const ck = await openCheckpoint(files, out);
      assert.deepEqual(await hashes(ck), suite.fx.manifest.files['jax/nnx.msgpack'], name);
      if (format === 'safetensors') assert.equal(ck.metadata.format, 'flax');
    }
  });

  it('imports into the einsum layouts (bonsai Llama and Qwen3) exactly, heads split by config.json; refuses stacked layouts clearly', async () => {
    for (const [hfDir, preset, want] of [['hf', 'bonsai-llama', 'jax/bonsai_llama.msgpack'], ['qwen3/hf', 'bonsai-qwen3', 'qwen3/jax/bonsai.msgpack']] as const) {
      const hf = await openCheckpoint(files, join(suite.fx.dir, hfDir));
      const config = JSON.parse(readFileSync(join(suite.fx.dir, hfDir, 'config.json'), 'utf8'));
      const plan = planImport(hf, preset, config);
      assert.deepEqual(plan.problems, [], preset);
      const out = join(suite.dir, `${preset}.msgpack`);
      await executeImport(plan, hf, files, await openAtomicFileSink(out, { sources: [] }), 'msgpack');
      assert.deepEqual(await hashes(await openCheckpoint(files, out)), suite.fx.manifest.files[want], preset);
      assert.throws(() => planImport(hf, preset), /needs head_dim; the source folder's config.json should say it/);
    }
    const hf = await openCheckpoint(files, join(suite.fx.dir, 'hf'));
    for (const preset of ['maxtext-llama3.1', 'tunix-gemma3']) assert.throws(() => planImport(hf, preset, {}), /stacks several HF tensors into one .* not supported yet/);
  });

  it('imports the same bytes with a 64 KiB budget (tiled transposes streamed in order for msgpack, positioned for safetensors)', async () => {
    for (const [hfDir, preset] of [['hf', 'talk-nnx-llama'], ['qwen3/hf', 'bonsai-qwen3']] as const) {
      const hf = await openCheckpoint(files, join(suite.fx.dir, hfDir));
      const plan = planImport(hf, preset, JSON.parse(readFileSync(join(suite.fx.dir, hfDir, 'config.json'), 'utf8')));
      for (const format of ['msgpack', 'safetensors'] as const) {
        const whole = join(suite.dir, `whole-${preset}.${format}`);
        const tiled = join(suite.dir, `tiled-${preset}.${format}`);
        await executeImport(plan, hf, files, await openAtomicFileSink(whole, { sources: [] }), format);
        await executeImport(plan, hf, files, await openAtomicFileSink(tiled, { sources: [] }), format, { tileBudgetBytes: 64 << 10 });
        assert.deepEqual(readFileSync(tiled), readFileSync(whole), `${preset} ${format}`);
      }
    }
  });

  it('export then import returns the source bit for bit', async () => {
    const src = await openCheckpoint(files, join(suite.fx.dir, 'jax', 'nnx_bf16.msgpack'));
    const plan = planConversion(src, { baseConfig: JSON.parse(readFileSync(join(suite.fx.dir, 'hf', 'config.json'), 'utf8')) });
    const out = join(suite.dir, 'export');
    await executePlan(plan, src, files, await OutputFolder.create(out, { sources: [] }));
    const exported = await openCheckpoint(files, out);
    const back = join(suite.dir, 'back.msgpack');
    await executeImport(planImport(exported, plan.preset.id), exported, files, await openAtomicFileSink(back, { sources: [] }), 'msgpack');
    assert.deepEqual(await hashes(await openCheckpoint(files, back)), await hashes(src));
  });

  it('the CLI imports, and refuses an output name it cannot tell the format of', () => {
    const cli = resolve(__dirname, '../../../dist/cli.js');
    const out = join(suite.dir, 'cli.msgpack');
    execFileSync(process.execPath, [cli, 'import', join(suite.fx.dir, 'hf'), '-o', out, '--preset', 'talk-nnx-llama']);
    assert.ok(readFileSync(out).length > 1000);
    assert.throws(() => execFileSync(process.execPath, [cli, 'import', join(suite.fx.dir, 'hf'), '-o', join(suite.dir, 'x.bin'), '--preset', 'talk-nnx-llama'], { stdio: 'pipe' }), /name the output \*\.msgpack/);
  });

  // Bounded memory: tensors over the budget are converted in tiles.
  it('writes the same bytes with a 128 KiB budget (tiled transposes, streamed renames, casts) as whole-tensor conversion', async () => {
    const src = await openCheckpoint(files, join(suite.fx.dir, 'jax', 'nnx.msgpack'));
    const base = JSON.parse(readFileSync(join(suite.fx.dir, 'hf', 'config.json'), 'utf8'));
    for (const dtype of ['keep', 'BF16'] as const) {
      const plan = planConversion(src, { baseConfig: base, dtype });
      const whole = join(suite.dir, `whole-${dtype}`);
      const tiled = join(suite.dir, `tiled-${dtype}`);
      await executePlan(plan, src, files, await OutputFolder.create(whole, { sources: [] }));
      await executePlan(plan, src, files, await OutputFolder.create(tiled, { sources: [] }), { tileBudgetBytes: 131072 });
      const sha = (d: string) => createHash('sha256').update(readFileSync(join(d, 'model.safetensors'))).digest('hex');
      assert.equal(sha(tiled), sha(whole), dtype);
      // The converter threads make the tiles side by side, written as each comes back: the same bytes.
      // 1 KiB tiles cut the 64-row kernels into square-ish blocks, written one output row piece at a time.
      const converters = [new ValueWorker(WORKER, files), new ValueWorker(WORKER, files)];
      try {
        for (const budget of [131072, 1024]) {
          const parallel = join(suite.dir, `parallel-${dtype}-${budget}`);
          await executePlan(plan, src, files, await OutputFolder.create(parallel, { sources: [] }), { tileBudgetBytes: budget, converters });
          assert.equal(sha(parallel), sha(whole), `${dtype}, ${budget}-byte tiles on two threads`);
        }
      } finally {
        await Promise.all(converters.map((c) => c.dispose()));
      }
    }
  });

  it('tiles a scanned (D, L, N, H) kernel stored in Flax chunks: select a layer, reshape, transpose, scale', async () => {
    const [D, L, N, H] = [24, 3, 4, 5];
    const values = Float32Array.from({ length: D * L * N * H }, (_, i) => i * 0.25 - 7);
    const file = join(suite.dir, 'scanned.msgpack');
    // 40-byte chunks: the tensor lies in many pieces.
    await writeFlaxMsgpack(await openAtomicFileSink(file, { sources: [] }), [{ path: ['decoder', 'query', 'kernel'], dtype: 'F32', shape: [D, L, N, H] }], async function* () {
      yield new Uint8Array(values.buffer);
    }, { maxChunkBytes: 40 });
    const ck = await openCheckpoint(files, file);
    const src = ck.tensors[0]!;
    assert.ok((src.segments?.length ?? 0) > 10);
    const { tiledTensorData, layoutAfter, applyTransforms, writeSafetensors } = await import('../../src/core/index');
    const transforms = [
      { op: 'select', axis: 1, index: 2 },
      { op: 'reshape', shape: [D, N * H] },
      { op: 'transpose', axes: [1, 0] },
      { op: 'scale', factor: Math.sqrt(H) },
    ] as const;
    const source = { shape: src.shape, dtype: src.dtype };
    const target = layoutAfter(source, transforms);
    const p = { from: src.name, to: 'q', transforms, source, target, bytes: target.shape.reduce((a, b) => a * b, 1) * 4 };
    const want = applyTransforms(new Uint8Array(values.buffer), source, transforms).bytes;
    // 200 bytes: blocks of all 24 rows, one write each; 96 bytes: 3×4 tiles, a write per output row piece.
    const worker = new ValueWorker(WORKER, files);
    try {
      for (const budget of [200, 96]) {
        const out = join(suite.dir, `scanned-${budget}.safetensors`);
        await writeSafetensors(await openAtomicFileSink(out, { sources: [] }), [{ name: 'q', dtype: 'F32', shape: target.shape }], () => tiledTensorData(p, src, files, budget));
        const read = async (f: string) => {
          const parts: Uint8Array[] = [];
          for await (const b of readTensorBytes(files, (await openCheckpoint(files, f)).tensors[0]!)) parts.push(Buffer.from(b));
          return Buffer.concat(parts);
        };
        assert.ok((await read(out)).equals(Buffer.from(want)), `budget ${budget}`);
        // The same tiles made on a worker thread, reading the chunks itself.
        const tiles = tileSet(p, src.bytes, budget);
        const pieces = (await Promise.all(Array.from({ length: tiles.count }, (_, i) => worker.tile(ck, src, p, budget, i)))).flat();
        const whole = new Uint8Array(want.length);
        for (const piece of pieces) whole.set(piece.bytes, piece.offset);
        assert.equal(pieces.reduce((a, piece) => a + piece.bytes.length, 0), want.length, `budget ${budget}: every byte once`);
        assert.ok(Buffer.from(whole).equals(Buffer.from(want)), `budget ${budget}, on the worker`);
      }
    } finally {
      await worker.dispose();
    }
  });

  it('refuses, naming the tensor, a chain it cannot tile instead of loading it whole', async () => {
    const { tiledTensorData, layoutAfter } = await import('../../src/core/index');
    const ck = await openCheckpoint(files, join(suite.fx.dir, 'jax', 'nnx.msgpack'));
    const src = ck.tensors.find((t) => t.name === 'token_embed.embedding')!;
    const transforms = [{ op: 'reshape', shape: [384, 16, 16] }, { op: 'transpose', axes: [2, 0, 1] }] as const;
    const source = { shape: src.shape, dtype: src.dtype };
    const p = { from: src.name, to: 'x', transforms, source, target: layoutAfter(source, transforms), bytes: src.bytes };
    assert.throws(() => tiledTensorData(p, src, files, 1024), /token_embed\.embedding is F32\[384,256\] .* over the 1024-byte memory budget, and its transforms \(reshape\(384, 16, 16\), transpose\(2, 0, 1\)\) cannot run in tiles yet/);
  });
});
