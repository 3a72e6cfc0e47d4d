import * as assert from 'node:assert/strict';
import { decodeChunk, f16ToNumber, StatsAccumulator, tensorStats, writeSafetensors, openSafetensorsFile } from '../../src/core/index';
import { MemoryFiles, prng } from './helpers';

describe('dtype decoding', () => {
  it('decodes f16 specials and subnormals', () => {
    assert.equal(f16ToNumber(0x3c00), 1);
    assert.equal(f16ToNumber(0xc000), -2);
    assert.equal(f16ToNumber(0x7c00), Infinity);
    assert.equal(f16ToNumber(0xfc00), -Infinity);
    assert.ok(Number.isNaN(f16ToNumber(0x7e00)));
    assert.equal(f16ToNumber(0x0001), 2 ** -24);
    assert.equal(f16ToNumber(0x7bff), 65504);
  });
  it('decodes bf16 as the top half of f32', () => {
    const f = new Float32Array([1.5, -3.25, Infinity]);
    const u = new Uint32Array(f.buffer);
    const bf = new Uint16Array(Array.from(u, (x) => x >>> 16));
    assert.deepEqual(Array.from(decodeChunk('BF16', new Uint8Array(bf.buffer))), [1.5, -3.25, Infinity]);
  });
  it('decodes the f8 family (e4m3fn max 448 and single NaN, e5m2 infinities, fnuz NaN at 0x80)', () => {
    const d = (t: Parameters<typeof decodeChunk>[0], b: number) => decodeChunk(t, new Uint8Array([b]))[0]!;
    assert.equal(d('F8_E4M3', 0x7e), 448);
    assert.ok(Number.isNaN(d('F8_E4M3', 0x7f)));
    assert.equal(d('F8_E4M3', 0x01), 2 ** -9);
    assert.equal(d('F8_E5M2', 0x7c), Infinity);
    assert.equal(d('F8_E5M2', 0x7b), 57344);
    assert.ok(Number.isNaN(d('F8_E4M3FNUZ', 0x80)));
    assert.equal(d('F8_E4M3FNUZ', 0x7f), 240);
    assert.ok(Number.isNaN(d('F8_E5M2FNUZ', 0x80)));
    assert.equal(d('F8_E8M0', 127), 1);
  });
  it('decodes integers, including 64-bit and misaligned views', () => {
    const b = new Uint8Array(17);
    new DataView(b.buffer).setBigInt64(1, -5n, true);
    new DataView(b.buffer).setBigInt64(9, 7n, true);
    assert.deepEqual(Array.from(decodeChunk('I64', b.subarray(1))), [-5, 7]);
  });
});

describe('statistics', () => {
  it('counts NaN, infinities and zeros apart from the moments', () => {
    const acc = new StatsAccumulator();
    acc.add([1, 2, NaN, Infinity, -Infinity, 0, 3]);
    const s = acc.result();
    assert.deepEqual({ ...s, mean: s.mean!.toFixed(6), std: s.std!.toFixed(6) }, {
      count: 7, finite: 4, nan: 1, posInf: 1, negInf: 1, zeros: 1, min: 0, max: 3, mean: '1.500000', std: Math.sqrt(1.25).toFixed(6),
    });
  });
  it('gives the same result whatever the chunk size (chunks merged exactly)', async () => {
    const rand = prng(3);
    const vals = Float32Array.from({ length: 10007 }, () => (rand() - 0.5) * 1000 + 1e4);
    const fs = new MemoryFiles();
    await writeSafetensors(fs.sink('s.safetensors'), [{ name: 't', dtype: 'F32', shape: [vals.length] }], () => new Uint8Array(vals.buffer));
    const t = (await openSafetensorsFile(fs, 's.safetensors')).tensors[0]!;
    let mean = 0;
    for (const v of vals) mean += v;
    mean /= vals.length;
    let m2 = 0;
    for (const v of vals) m2 += (v - mean) ** 2;
    for (const chunkBytes of [4, 12, 4096, 1 << 20]) {
      const s = await tensorStats(fs, t, { chunkBytes });
      assert.ok(Math.abs(s.mean! - mean) < 1e-9 * Math.abs(mean), `chunk ${chunkBytes}: mean ${s.mean} vs ${mean}`);
      assert.ok(Math.abs(s.std! - Math.sqrt(m2 / vals.length)) < 1e-7, `chunk ${chunkBytes}: std`);
      assert.equal(s.min, Math.min(...vals));
      assert.equal(s.max, Math.max(...vals));
    }
  });
  it('returns nulls for an empty or all-NaN tensor', () => {
    const acc = new StatsAccumulator();
    acc.add([NaN]);
    assert.equal(acc.result().mean, null);
    assert.equal(acc.result().std, null);
  });
});

describe('checkpoint model', () => {
  it('counts parameters per subtree and per dtype', async () => {
    const { MemoryFiles } = await import('./helpers');
    const { subtreeCounts, summarize } = await import('../../src/core/index');
    const fs = new MemoryFiles();
    await writeSafetensors(fs.sink('m.safetensors'), [
      { name: 'model.layers.0.w', dtype: 'F32', shape: [2, 3] },
      { name: 'model.layers.1.w', dtype: 'BF16', shape: [4] },
      { name: 'lm_head.weight', dtype: 'F32', shape: [5] },
    ], (s) => new Uint8Array(s.shape.reduce((a, b) => a * b, 1) * (s.dtype === 'F32' ? 4 : 2)));
    const ck = await openSafetensorsFile(fs, 'm.safetensors');
    const counts = Object.fromEntries(subtreeCounts(ck).map((c) => [c.path.join('.') || '(root)', [c.tensors, c.parameters, c.bytes]]));
    assert.deepEqual(counts, {
      '(root)': [3, 15, 52],
      model: [2, 10, 32],
      'model.layers': [2, 10, 32],
      'model.layers.0': [1, 6, 24],
      'model.layers.1': [1, 4, 8],
      lm_head: [1, 5, 20],
    });
    assert.deepEqual(summarize(ck).parametersByDtype, { F32: 11, BF16: 4 });
  });
});

describe('narrow dtypes by code counts (the WebAssembly kernel)', () => {
  it('counts 8- and 16-bit codes exactly as the plain loop does, across kernel-area boundaries', async () => {
    const { CodeCounter, countCodesJs } = await import('../../src/core/tensor/codeCounter');
    const rand = prng(20261126);
    for (const bits of [8, 16] as const) {
      const c = new CodeCounter(bits);
      const all: Uint8Array[] = [];
      // Sizes straddle the 4 MiB area the kernel copies into, plus tiny and empty chunks.
      for (const n of [0, 2, 6, (4 << 20) + 10, 1000, (9 << 20) - 4]) {
        const b = new Uint8Array(n);
        // Skewed codes (many repeats of a few values) and uniform ones.
        for (let i = 0; i < n; i++) b[i] = i % 3 === 0 ? 7 : (rand() * 256) | 0;
        c.add(b);
        all.push(b);
      }
      assert.deepEqual(c.counts(), countCodesJs(Buffer.concat(all), bits), `${bits}-bit`);
    }
  });

  it('gives the same statistics and histogram as decoding every element (bf16, f16, f8, ints; NaN/Inf codes)', async () => {
    const { tensorHistogram, HistogramAccumulator } = await import('../../src/core/index');
    const rand = prng(7);
    const fs = new MemoryFiles();
    const specs = [
      { name: 'bf16', dtype: 'BF16', shape: [30_000] },
      { name: 'f16', dtype: 'F16', shape: [30_000] },
      { name: 'e4m3', dtype: 'F8_E4M3', shape: [30_000] },
      { name: 'e5m2', dtype: 'F8_E5M2', shape: [30_000] },
      { name: 'i8', dtype: 'I8', shape: [30_000] },
      { name: 'u16', dtype: 'U16', shape: [30_000] },
      { name: 'i16', dtype: 'I16', shape: [15_000] },
    ] as const;
    const data = new Map(specs.map((s) => [s.name, new Uint8Array(s.shape[0] * (s.dtype.includes('8') ? 1 : 2)).map(() => (rand() * 256) | 0)]));
    await writeSafetensors(fs.sink('n.safetensors'), specs, (s) => data.get(s.name as (typeof specs)[number]['name'])!);
    const ck = await openSafetensorsFile(fs, 'n.safetensors');
    for (const t of ck.tensors) {
      const values = decodeChunk(t.dtype, data.get(t.name as (typeof specs)[number]['name'])!);
      const acc = new StatsAccumulator();
      acc.add(values);
      const want = acc.result();
      const got = await tensorStats(fs, t);
      assert.deepEqual({ ...got, mean: 0, std: 0 }, { ...want, mean: 0, std: 0 }, t.name);
      assert.ok(Math.abs(got.mean! - want.mean!) <= 1e-12 * Math.max(1, Math.abs(want.mean!)), `${t.name} mean ${got.mean} vs ${want.mean}`);
      assert.ok(Math.abs(got.std! - want.std!) <= 1e-12 * Math.max(1, want.std!), `${t.name} std ${got.std} vs ${want.std}`);
      const h = new HistogramAccumulator(want.min!, want.max!, 37);
      h.add(values);
      assert.deepEqual((await tensorHistogram(fs, t, 37)).histogram, { edges: h.edges, counts: h.counts }, t.name);
    }
  });
});
