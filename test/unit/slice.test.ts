import * as assert from 'node:assert/strict';
import { join } from 'node:path';
import { openCheckpoint, tensorSlice, type SliceRequest } from '../../src/core/index';
import { NodeFileOpener } from '../../src/core/node/index';
import { rejectsWith, tempDir, venvPython, writeFixtures } from './helpers';

describe('2-D slices of N-D tensors', () => {
  it('equal numpy windows in every storage: C, Fortran, big-endian, deflated, chunked pieces', async function () {
    const python = venvPython(this);
    this.timeout(60_000);
    const dir = tempDir();
    try {
      const cases = writeFixtures<{ tensor: string; files: string[]; query: SliceRequest; values: number[][] }[]>(python, 'slices.py', dir.path);
      const opener = new NodeFileOpener();
      let checked = 0;
      for (const c of cases) {
        for (const f of c.files) {
          const ck = await openCheckpoint(opener, join(dir.path, f));
          const s = await tensorSlice(opener, ck.tensors.find((x) => x.name === c.tensor)!, c.query);
          const got = Array.from({ length: s.rows }, (_, r) => Array.from(s.values.subarray(r * s.cols, (r + 1) * s.cols)));
          assert.deepEqual(got, c.values, `${f} ${c.tensor} ${JSON.stringify(c.query)}`);
          checked++;
        }
      }
      assert.ok(checked >= 15, String(checked));
    } finally {
      dir.remove();
    }
  });

  it('refuses bad axes and indices with a message naming the tensor', async function () {
    const python = venvPython(this);
    const dir = tempDir();
    try {
      writeFixtures(python, 'slices.py', dir.path);
      const opener = new NodeFileOpener();
      const t = (await openCheckpoint(opener, join(dir.path, 's.safetensors'))).tensors.find((x) => x.name === 'a4')!;
      const q = { rowAxis: 0, colAxis: 1, index: [0, 0, 0, 0], rowStart: 0, rowCount: 2, colStart: 0, colCount: 2 };
      await rejectsWith(tensorSlice(opener, t, { ...q, colAxis: 0 }), 'E_USAGE', /"a4".*two different axes/);
      await rejectsWith(tensorSlice(opener, t, { ...q, index: [0, 0, 9, 0] }), 'E_USAGE', /index 9 is outside axis 2/);
      await rejectsWith(tensorSlice(opener, t, { ...q, rowAxis: 7 }), 'E_USAGE', /axis is out of range/);
      await rejectsWith(tensorSlice(opener, t, { ...q, index: [0] }), 'E_USAGE', /index for each of the 4 axes/);
    } finally {
      dir.remove();
    }
  });
});
