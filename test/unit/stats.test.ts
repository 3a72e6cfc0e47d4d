import * as assert from 'node:assert/strict';
import { decodeChunk, f16ToNumber, StatsAccumulator, tensorStats, writeSafetensors, openSafetensorsFile } from '../../src/core/index';
import { CodeCounter, countCodesJs } from '../../src/core/tensor/codeCounter';
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

  /** Counts, min and max of every element in order, and mean/std over the finite ones in float64, two-pass: what the statistics must report. */
  function reference(vals: ArrayLike<number>) {
    let [nan, posInf, negInf, zeros, finite, sum, min, max] = [0, 0, 0, 0, 0, 0, Infinity, -Infinity];
    for (let i = 0; i < vals.length; i++) {
      const v = vals[i]!;
      if (Number.isNaN(v)) nan++;
      else if (v === Infinity) posInf++;
      else if (v === -Infinity) negInf++;
      else {
        if (v === 0) zeros++;
        // The first of equal extremes is kept: +0 or -0, whichever comes first.
        if (v < min) min = v;
        if (v > max) max = v;
        sum += v;
        finite++;
      }
    }
    const mean = sum / finite;
    let m2 = 0;
    for (let i = 0; i < vals.length; i++) if (Number.isFinite(vals[i]!)) m2 += (vals[i]! - mean) ** 2;
    return { count: vals.length, finite, nan, posInf, negInf, zeros, min, max, mean, std: Math.sqrt(m2 / finite) };
  }
  function assertMatches(got: ReturnType<typeof reference> | ReturnType<StatsAccumulator['result']>, want: ReturnType<typeof reference>, what: string) {
    const { mean, std, ...exact } = want;
    assert.deepEqual({ ...got, mean: 0, std: 0 }, { ...exact, mean: 0, std: 0 }, `${what}: counts, min and max`);
    assert.ok(Math.abs(got.mean! - mean) < 1e-9 * Math.abs(mean), `${what}: mean ${got.mean} vs ${mean}`);
    assert.ok(Math.abs(got.std! - std) < 1e-9 * std, `${what}: std ${got.std} vs ${std}`);
  }

  it('reads float32 in blocks: NaN, ±Inf and ±0 in some of them, the rest as a float64 two-pass would', async () => {
    const rand = prng(11);
    // Many 4096-element blocks and a ragged end, offset from zero so a careless sum of squares would cancel.
    const vals = Float32Array.from({ length: 61_441 }, () => 3e3 + (rand() - 0.5) * 20);
    for (const i of [5, 4096 * 2 + 7, 60_000]) vals[i] = NaN;
    vals[4096 * 2 + 9] = Infinity;
    vals[4096 * 7] = -Infinity;
    vals[61_440] = -Infinity;
    for (let i = 3; i < vals.length; i += 97) vals[i] = i % 2 ? 0 : -0;
    vals[40_000] = -1e30; // an extreme minimum in an otherwise clean block
    const want = reference(vals);
    const fs = new MemoryFiles();
    await writeSafetensors(fs.sink('b.safetensors'), [{ name: 't', dtype: 'F32', shape: [vals.length] }], () => new Uint8Array(vals.buffer));
    const t = (await openSafetensorsFile(fs, 'b.safetensors')).tensors[0]!;
    // Small chunks: the reads alternate between two reused buffers many times.
    for (const chunkBytes of [4 * 4096 + 12, 1 << 20]) assertMatches(await tensorStats(fs, t, { chunkBytes }), want, `chunks of ${chunkBytes} bytes`);
    // The same numbers as a plain array take the general loop.
    const acc = new StatsAccumulator();
    acc.add(Array.from(vals));
    assertMatches(acc.result(), want, 'a plain array');
  });

  it('reports the zero that comes first when a float32 block\'s minimum or maximum is zero (+0 or -0)', () => {
    const rand = prng(4);
    for (const sign of [1, -1]) {
      // All of one sign with zeros: the extreme on that side is a zero. The first zero of each
      // block is -0 in a later lane than a +0 further on, and the other way round.
      const vals = Float32Array.from({ length: 3 * 4096 + 2 }, () => sign * (1 + rand()));
      for (const [at, z] of [[6, -0], [9, 0], [4096 + 5, 0], [4096 + 8, -0], [2 * 4096 + 3, -0], [3 * 4096 + 1, 0]] as const) vals[at] = z;
      const acc = new StatsAccumulator();
      acc.add(vals);
      assertMatches(acc.result(), reference(vals), `sign ${sign}`);
      const allZero = new StatsAccumulator();
      allZero.add(Float32Array.from({ length: 4096 }, (_, i) => (i % 3 === 1 ? 0 : -0)));
      assert.ok(Object.is(allZero.result().min, -0) && Object.is(allZero.result().max, -0), 'all zeros: the first one');
    }
  });

  it('counts bf16 codes read into the counter\'s own memory as the decoded values would give', async () => {
    const rand = prng(5);
    const f = Float32Array.from({ length: 50_001 }, (_, i) => (i % 13 === 0 ? 0 : (rand() - 0.5) * 8));
    const bits = Uint16Array.from(new Uint32Array(f.buffer), (u) => u >>> 16);
    bits[17] = 0x7fc0; // NaN
    bits[20_000] = 0xff80; // -Inf
    const fs = new MemoryFiles();
    await writeSafetensors(fs.sink('h.safetensors'), [{ name: 't', dtype: 'BF16', shape: [bits.length] }], () => new Uint8Array(bits.buffer));
    const t = (await openSafetensorsFile(fs, 'h.safetensors')).tensors[0]!;
    const want = reference(decodeChunk('BF16', new Uint8Array(bits.buffer)));
    for (const chunkBytes of [1000, 4098, 1 << 20]) assertMatches(await tensorStats(fs, t, { chunkBytes }), want, `bf16 in chunks of ${chunkBytes} bytes`);
  });
});

describe('code counts', () => {
  it('the wasm kernel counts as the plain loop does: runs of one code, ragged lengths, in place and copied', () => {
    const rand = prng(9);
    for (const bits of [8, 16] as const) {
      const size = bits / 8;
      // Runs of one code (as zeros or a constant give) between random stretches.
      const bytes = new Uint8Array(3 * 65_536 + 6);
      for (let i = 0; i < bytes.length; ) {
        const run = 1 + Math.floor(rand() * 40);
        const code = rand() < 0.5 ? 0 : Math.floor(rand() * 256);
        for (let k = 0; k < run && i < bytes.length; k++, i++) bytes[i] = rand() < 0.5 ? code : Math.floor(rand() * 256);
      }
      for (const len of [0, size, 3 * size, 5 * size, 4099 * size, bytes.length]) {
        const part = bytes.subarray(0, len);
        const copied = new CodeCounter(bits);
        copied.add(part);
        const inPlace = new CodeCounter(bits, Math.max(1, len));
        inPlace.readBuffers![1].set(part);
        inPlace.add(inPlace.readBuffers![1].subarray(0, len));
        const want = countCodesJs(part, bits);
        assert.deepEqual(Array.from(copied.counts()), Array.from(want), `${bits}-bit, ${len} bytes, copied`);
        assert.deepEqual(Array.from(inPlace.counts()), Array.from(want), `${bits}-bit, ${len} bytes, in place`);
      }
    }
  });
});
