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
