/**
 * The value worker: statistics, histograms and slices computed on a worker thread give exactly
 * what the same core functions give in-process, for plain files and for Orbax leaves read through
 * the host; progress rises to 1; a cancelled job stops and the worker keeps serving.
 */
import * as assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { openCheckpoint, tensorHistogram, tensorSlice, valueOpener, writeSafetensors } from '../../src/core/index';
import { NodeFileOpener, openAtomicFileSink, PythonSidecar, sidecarScript, ValueWorker } from '../../src/core/node/index';
import { prng, rejectsWith, tempDir, venvPython, writeFixtures } from './helpers';

const WORKER = resolve(__dirname, '../../../dist/valueWorker.js');
const files = new NodeFileOpener();

describe('value worker (statistics and slices off the main thread)', function () {
  this.timeout(60_000);
  let dir: ReturnType<typeof tempDir>;
  let worker: ValueWorker;
  const bigElements = 24 << 20; // 96 MB of f32: many chunks, time to cancel

  before(async () => {
    dir = tempDir();
    worker = new ValueWorker(WORKER, files);
    const rand = prng(20261126);
    const small = new Float32Array(10_000).map(() => (rand() - 0.5) * 8);
    small[3] = NaN;
    small[7] = Infinity;
    small[11] = 0;
    const bf = new Uint16Array(5_000).map(() => (rand() * 0xffff) | 0);
    await writeSafetensors(
      await openAtomicFileSink(join(dir.path, 'v.safetensors'), { sources: [] }),
      [
        { name: 'f32', dtype: 'F32', shape: [100, 100] },
        { name: 'bf16', dtype: 'BF16', shape: [50, 100] },
        { name: 'big', dtype: 'F32', shape: [bigElements] },
      ],
      (s) => (s.name === 'f32' ? new Uint8Array(small.buffer) : s.name === 'bf16' ? new Uint8Array(bf.buffer) : new Uint8Array(bigElements * 4)),
    );
  });
  after(async () => {
    await worker?.dispose();
    dir?.remove();
  });

  it('gives exactly the in-process statistics and histogram, with progress up to 1', async () => {
    const ck = await openCheckpoint(files, join(dir.path, 'v.safetensors'));
    for (const name of ['f32', 'bf16']) {
      const t = ck.tensors.find((x) => x.name === name)!;
      const progress: number[] = [];
      const got = await worker.stats(ck, t, 33, { onProgress: (f) => progress.push(f) });
      assert.deepEqual(got, await tensorHistogram(files, t, 33), name);
      assert.ok(progress.length > 0 && progress.at(-1) === 1, `${name}: ${progress.join(', ')}`);
      assert.ok(progress.every((f, i) => i === 0 || f >= progress[i - 1]!), 'progress never goes back');
    }
  });

  it('splits a float tensor into a statistics pass and a histogram pass (a narrow dtype gets both from one)', async () => {
    const ck = await openCheckpoint(files, join(dir.path, 'v.safetensors'));
    const f32 = ck.tensors.find((x) => x.name === 'f32')!;
    const whole = await tensorHistogram(files, f32, 33);
    const first = await worker.stats(ck, f32, 33, { firstPass: true });
    assert.deepEqual(first, { stats: whole.stats, histogram: undefined });
    assert.deepEqual(await worker.stats(ck, f32, 33, { stats: first.stats }), whole);
    const bf16 = ck.tensors.find((x) => x.name === 'bf16')!;
    assert.deepEqual(await worker.stats(ck, bf16, 33, { firstPass: true }), await tensorHistogram(files, bf16, 33));
  });

  it('gives exactly the in-process slice', async () => {
    const ck = await openCheckpoint(files, join(dir.path, 'v.safetensors'));
    const t = ck.tensors.find((x) => x.name === 'f32')!;
    const q = { rowAxis: 1, colAxis: 0, index: [0, 0], rowStart: 10, rowCount: 20, colStart: 5, colCount: 30 };
    assert.deepEqual(await worker.slice(ck, t, q), await tensorSlice(files, t, q));
  });

  it('stops a cancelled job with E_CANCELLED and keeps serving', async () => {
    const ck = await openCheckpoint(files, join(dir.path, 'v.safetensors'));
    const t = ck.tensors.find((x) => x.name === 'big')!;
    const ac = new AbortController();
    let seen = 0;
    const job = worker.stats(ck, t, 10, { signal: ac.signal, onProgress: (f) => ((seen = f), ac.abort()) });
    await rejectsWith(job, 'E_CANCELLED', /Cancel/);
    assert.ok(seen > 0 && seen < 0.5, `cancelled at ${seen}`);
    const again = await worker.stats(ck, ck.tensors.find((x) => x.name === 'f32')!, 5);
    assert.equal(again.stats.count, 10_000);
  });

  it('reads Orbax leaves through the host (the sidecar lives there) with the same results', async function () {
    const python = venvPython(this);
    this.timeout(120_000);
    const out = join(dir.path, 'orbax');
    writeFixtures(python, 'orbax_ckpt.py', out);
    const sidecar = new PythonSidecar({ python, script: sidecarScript(resolve(__dirname, '../../..')) });
    try {
      const ck = await openCheckpoint(files, join(out, 'tree'), { orbax: sidecar });
      const t = ck.tensors.find((x) => x.name === 'params.big')!;
      assert.deepEqual(await worker.stats(ck, t, 17), await tensorHistogram(valueOpener(ck, files), t, 17));
      const q = { rowAxis: 0, colAxis: 2, index: [0, 1, 0], rowStart: 0, rowCount: 40, colStart: 0, colCount: 125 };
      assert.deepEqual(await worker.slice(ck, t, q), await tensorSlice(valueOpener(ck, files), t, q));
    } finally {
      sidecar.dispose();
    }
  });
});
