import * as assert from 'node:assert/strict';
import { join } from 'node:path';
import { HistogramAccumulator, openCheckpoint, tensorHistogram } from '../../src/core/index';
import { NodeFileOpener } from '../../src/core/node/index';
import { tempDir, venvPython, writeFixtures } from './helpers';

describe('histograms', () => {
  it('matches numpy.histogram exactly, edges included (NaN/Inf skipped, ties on edges, bf16, constant)', async function () {
    const python = venvPython(this);
    this.timeout(60_000);
    const dir = tempDir();
    try {
      const want = writeFixtures<Record<string, { counts: number[]; edges: number[] }>>(python, 'histogram.py', dir.path);
      const opener = new NodeFileOpener();
      const ck = await openCheckpoint(opener, join(dir.path, 'values.safetensors'));
      for (const [key, ref] of Object.entries(want)) {
        const [name, bins] = key.split('/') as [string, string];
        const { histogram } = await tensorHistogram(opener, ck.tensors.find((t) => t.name === name)!, Number(bins), { chunkBytes: 4096 });
        assert.deepEqual(histogram!.counts, ref.counts, `${key} counts`);
        assert.deepEqual(histogram!.edges, ref.edges, `${key} edges`);
      }
    } finally {
      dir.remove();
    }
  });

  it('puts the maximum in the last bin and ignores non-finite values', () => {
    const h = new HistogramAccumulator(0, 4, 4);
    h.add([0, 1, 2, 3, 4, NaN, Infinity, -Infinity]);
    assert.deepEqual(h.counts, [1, 1, 1, 2]);
  });
});
