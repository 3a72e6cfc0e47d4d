import * as assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync, readdirSync } from 'node:fs';
import { DTYPE_BITS, openCheckpoint, openSafetensorsFile, openSafetensorsIndex, planShards, readExactly, writeSafetensors, writeShardedSafetensors, type DType, type TensorSpec } from '../../src/core/index';
import { NodeFileOpener, openAtomicFileSink } from '../../src/core/node/index';
import { MemoryFiles, prng, randomBytes, rejectsWith, tempDir } from './helpers';

async function bytesOf(fs: MemoryFiles | NodeFileOpener, file: string, offset: number, length: number) {
  const src = await fs.open(file);
  const out = new Uint8Array(length);
  await readExactly(src, offset, out);
  await src.close();
  return out;
}

describe('safetensors writer', () => {
  it('round-trips through our reader, header padded to 8, offsets aligned to element size', async () => {
    const rand = prng(1);
    const specs: TensorSpec[] = [
      { name: 'b.u8', dtype: 'U8', shape: [3] },
      { name: 'a.f64', dtype: 'F64', shape: [2, 1] },
      { name: 'c.bf16', dtype: 'BF16', shape: [5] },
      { name: 'd.f32', dtype: 'F32', shape: [] },
      { name: 'e.empty', dtype: 'F32', shape: [0, 4] },
    ];
    const data = new Map(specs.map((s) => [s.name, randomBytes(rand, (s.shape.reduce((a, b) => a * b, 1) * DTYPE_BITS[s.dtype]) / 8)]));
    const fs = new MemoryFiles();
    await writeSafetensors(fs.sink('o.safetensors'), specs, (s) => data.get(s.name)!);
    const file = fs.files.get('o.safetensors')!;
    const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
    assert.equal(n % 8, 0);
    const ck = await openSafetensorsFile(fs, 'o.safetensors');
    assert.deepEqual({ ...ck.metadata }, { format: 'pt' });
    assert.deepEqual(ck.tensors.map((t) => t.name), ['a.f64', 'd.f32', 'e.empty', 'c.bf16', 'b.u8']);
    for (const t of ck.tensors) {
      assert.equal(t.source.offset % (DTYPE_BITS[t.dtype] / 8), 0, t.name);
      assert.deepEqual(await bytesOf(fs, 'o.safetensors', t.source.offset, t.bytes), data.get(t.name));
    }
  });

  it('streams chunks and refuses a tensor that yields the wrong byte count, leaving nothing', async () => {
    const fs = new MemoryFiles();
    const specs: TensorSpec[] = [{ name: 'x', dtype: 'F32', shape: [4] }];
    await writeSafetensors(fs.sink('ok.safetensors'), specs, function* () {
      for (let i = 0; i < 4; i++) yield new Uint8Array(4).fill(i);
    });
    assert.equal((await openSafetensorsFile(fs, 'ok.safetensors')).tensors[0]!.bytes, 16);
    await rejectsWith(writeSafetensors(fs.sink('short.safetensors'), specs, () => new Uint8Array(12)), 'E_USAGE', /only 12 bytes.*needs 16/);
    await rejectsWith(writeSafetensors(fs.sink('long.safetensors'), specs, () => [new Uint8Array(16), new Uint8Array(1)]), 'E_USAGE', /more than/);
    assert.equal(fs.files.has('short.safetensors'), false);
    assert.equal(fs.files.has('long.safetensors'), false);
  });

  it('refuses duplicate names and a tensor called __metadata__', async () => {
    const fs = new MemoryFiles();
    await rejectsWith(writeSafetensors(fs.sink('d'), [{ name: 'x', dtype: 'U8', shape: [1] }, { name: 'x', dtype: 'U8', shape: [1] }], () => new Uint8Array(1)), 'E_USAGE', /given twice/);
    await rejectsWith(writeSafetensors(fs.sink('m'), [{ name: '__metadata__', dtype: 'U8', shape: [1] }], () => new Uint8Array(1)), 'E_USAGE', /__metadata__/);
  });

  it('stops when aborted, and removes the partial file', async () => {
    const dir = tempDir();
    try {
      const ac = new AbortController();
      const target = join(dir.path, 'x.safetensors');
      const p = writeSafetensors(await openAtomicFileSink(target, { sources: [] }), [{ name: 'x', dtype: 'U8', shape: [1 << 20] }], async function* () {
        for (let i = 0; i < 16; i++) {
          if (i === 3) ac.abort();
          yield new Uint8Array(1 << 16);
        }
      }, { signal: ac.signal });
      await rejectsWith(p, 'E_CANCELLED', /Cancelled/);
      assert.deepEqual(readdirSync(dir.path), []);
    } finally {
      dir.remove();
    }
  });

  it('plans shards greedily with HF names, a lone oversized tensor in its own shard', () => {
    const s = (name: string, n: number): TensorSpec => ({ name, dtype: 'U8', shape: [n] });
    const plan = planShards([s('a', 40), s('b', 50), s('c', 200), s('d', 10)], 100);
    assert.deepEqual(plan.files.map((f) => [f.name, f.specs.map((x) => x.name), f.bytes]), [
      ['model-00001-of-00003.safetensors', ['a', 'b'], 90],
      ['model-00002-of-00003.safetensors', ['c'], 200],
      ['model-00003-of-00003.safetensors', ['d'], 10],
    ]);
    const index = JSON.parse(plan.index!);
    assert.deepEqual(index.metadata, { total_size: 300 });
    assert.deepEqual(Object.keys(index.weight_map), ['a', 'b', 'c', 'd']);
    const single = planShards([s('a', 1)], 100);
    assert.equal(single.files[0]!.name, 'model.safetensors');
    assert.equal(single.index, undefined);
  });

  it('writes a sharded checkpoint to disk atomically that opens as one checkpoint', async () => {
    const dir = tempDir();
    try {
      const rand = prng(7);
      const specs: TensorSpec[] = Array.from({ length: 9 }, (_, i) => ({ name: `model.layers.${i}.w`, dtype: (['F32', 'BF16', 'U8'] as DType[])[i % 3]!, shape: [8, 16] }));
      const data = new Map(specs.map((s) => [s.name, randomBytes(rand, (128 * DTYPE_BITS[s.dtype]) / 8)]));
      await writeShardedSafetensors((f) => openAtomicFileSink(join(dir.path, f), { sources: [] }), specs, (s) => data.get(s.name)!, { maxShardBytes: 1200 });
      const names = readdirSync(dir.path).sort();
      assert.ok(names.includes('model.safetensors.index.json'));
      assert.ok(names.every((n) => !n.endsWith('.partial')), names.join());
      const opener = new NodeFileOpener();
      const ck = await openCheckpoint(opener, dir.path);
      assert.equal(ck.format, 'safetensors-sharded');
      assert.ok(ck.files.length > 1);
      assert.equal(ck.tensors.length, 9);
      for (const t of ck.tensors) assert.deepEqual(await bytesOf(opener, t.source.file, t.source.offset, t.bytes), data.get(t.name));
      const idx = JSON.parse(readFileSync(join(dir.path, 'model.safetensors.index.json'), 'utf8'));
      assert.equal(idx.metadata.total_size, [...data.values()].reduce((a, b) => a + b.length, 0));
    } finally {
      dir.remove();
    }
  });

  it('writes an output past the background writeback size whole, and an abort mid-writeback leaves nothing', async () => {
    const dir = tempDir();
    try {
      const chunk = new Uint8Array(24 << 20).map((_, i) => i * 7);
      const target = join(dir.path, 'big.bin');
      const sink = await openAtomicFileSink(target, { sources: [] });
      for (let i = 0; i < 6; i++) await sink.write(chunk); // 144 MiB: two writebacks started on the way
      await sink.commit();
      const got = readFileSync(target);
      assert.equal(got.length, 6 * chunk.length);
      assert.deepEqual(got.subarray(5 * chunk.length, 5 * chunk.length + 64), Buffer.from(chunk.subarray(0, 64)));
      const other = await openAtomicFileSink(join(dir.path, 'cut.bin'), { sources: [] });
      for (let i = 0; i < 3; i++) await other.write(chunk);
      await other.abort();
      assert.deepEqual(readdirSync(dir.path), ['big.bin']);
    } finally {
      dir.remove();
    }
  });

  it('does not overwrite an existing file unless asked', async () => {
    const dir = tempDir();
    try {
      const target = join(dir.path, 'x.safetensors');
      await writeSafetensors(await openAtomicFileSink(target, { sources: [] }), [], () => new Uint8Array(0));
      await rejectsWith(openAtomicFileSink(target, { sources: [] }), 'E_USAGE', /already exists/);
      await writeSafetensors(await openAtomicFileSink(target, { sources: [], overwrite: true }), [{ name: 'y', dtype: 'U8', shape: [1] }], () => new Uint8Array(1));
      assert.equal((await openCheckpoint(new NodeFileOpener(), target)).tensors[0]!.name, 'y');
    } finally {
      dir.remove();
    }
  });
});

describe('sharded index reader', () => {
  async function indexWith(weightMap: Record<string, string>, shards: Record<string, TensorSpec[]>) {
    const fs = new MemoryFiles();
    for (const [file, specs] of Object.entries(shards)) await writeSafetensors(fs.sink(`d/${file}`), specs, (s) => new Uint8Array(s.shape[0]!));
    fs.files.set('d/model.safetensors.index.json', new TextEncoder().encode(JSON.stringify({ metadata: { total_size: 3 }, weight_map: weightMap })));
    return { fs, open: () => openSafetensorsIndex(fs, 'd/model.safetensors.index.json') };
  }
  const u8 = (name: string, n = 1): TensorSpec => ({ name, dtype: 'U8', shape: [n] });

  it('joins shards, keeping index metadata as strings', async () => {
    const { open } = await indexWith({ a: 's1.safetensors', b: 's2.safetensors' }, { 's1.safetensors': [u8('a')], 's2.safetensors': [u8('b', 2)] });
    const ck = await open();
    assert.deepEqual(ck.tensors.map((t) => [t.name, t.source.file]), [['a', 'd/s1.safetensors'], ['b', 'd/s2.safetensors']]);
    assert.equal(ck.metadata.total_size, '3');
  });

  for (const [name, why] of [['../x.safetensors', /climbs out/], ['/etc/passwd', /absolute/], ['C:/x.safetensors', /absolute/], ['sub\\..\\x', /backslash/], ['https://h/x', /URL/], ['', /empty/], ['a\u0000b', /NUL/]] as const) {
    it(`refuses shard name ${JSON.stringify(name)} before opening anything`, async () => {
      const { open } = await indexWith({ a: name }, {});
      await rejectsWith(open(), 'E_FORMAT', why);
    });
  }

  it('refuses a weight_map entry missing from its shard, and a shard tensor missing from the map', async () => {
    const a = await indexWith({ a: 's1.safetensors', b: 's1.safetensors' }, { 's1.safetensors': [u8('a')] });
    await rejectsWith(a.open(), 'E_FORMAT', /lists tensor "b".*does not hold it/);
    const b = await indexWith({ a: 's1.safetensors' }, { 's1.safetensors': [u8('a'), u8('z')] });
    await rejectsWith(b.open(), 'E_FORMAT', /holds tensor "z", which weight_map does not list/);
  });

  it('checks the index against each shard whatever their orders, and refuses a tensor listed twice even where the counts agree', async () => {
    // The index in another order than the file (a mixed-dtype header is in dtype order, the index in name order).
    const a = await indexWith({ z: 's1.safetensors', a: 's1.safetensors', m: 's1.safetensors' }, { 's1.safetensors': [u8('a'), u8('m'), u8('z')] });
    assert.deepEqual((await a.open()).tensors.map((t) => t.name), ['a', 'm', 'z']);
    // A header whose text is not in offset order: its tensors are sorted, so the index is checked by name.
    const fs = new MemoryFiles();
    const twoBytes = (header: string) => {
      const bytes = new Uint8Array(8 + header.length + 2);
      new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
      bytes.set(new TextEncoder().encode(header), 8);
      return bytes;
    };
    fs.files.set('d/s1.safetensors', twoBytes('{"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}'));
    fs.files.set('d/model.safetensors.index.json', new TextEncoder().encode('{"weight_map":{"b":"s1.safetensors","a":"s1.safetensors"}}'));
    assert.deepEqual((await openSafetensorsIndex(fs, 'd/model.safetensors.index.json')).tensors.map((t) => t.name), ['a', 'b']);
    // A shard naming one tensor twice, whether the index lists it once, twice, or beside another name.
    fs.files.set('d/s1.safetensors', twoBytes('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}'));
    for (const map of ['{"a":"s1.safetensors"}', '{"a":"s1.safetensors","a":"s1.safetensors"}', '{"a":"s1.safetensors","b":"s1.safetensors"}']) {
      fs.files.set('d/model.safetensors.index.json', new TextEncoder().encode(`{"weight_map":${map}}`));
      await rejectsWith(openSafetensorsIndex(fs, 'd/model.safetensors.index.json'), 'E_FORMAT', /"a"/);
    }
    // The same name over the same bytes: worded as the name twice, not as an overlap.
    fs.files.set('d/s1.safetensors', twoBytes('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}'));
    fs.files.set('d/model.safetensors.index.json', new TextEncoder().encode('{"weight_map":{"a":"s1.safetensors"}}'));
    await rejectsWith(openSafetensorsIndex(fs, 'd/model.safetensors.index.json'), 'E_FORMAT', /s1\.safetensors: the header names "a" twice/);
    // "a" twice and "z" not at all: as many entries as tensors, yet not the same ones.
    const c = await indexWith({ a: 's1.safetensors' }, { 's1.safetensors': [u8('a'), u8('z')] });
    c.fs.files.set('d/model.safetensors.index.json', new TextEncoder().encode('{"weight_map":{"a":"s1.safetensors","a":"s1.safetensors"}}'));
    await rejectsWith(c.open(), 'E_FORMAT', /lists tensor "a" twice/);
    // One name in two shards, each holding it.
    const d = await indexWith({ a: 's1.safetensors' }, { 's1.safetensors': [u8('a')], 's2.safetensors': [u8('a')] });
    d.fs.files.set('d/model.safetensors.index.json', new TextEncoder().encode('{"weight_map":{"a":"s1.safetensors","a":"s2.safetensors"}}'));
    await rejectsWith(d.open(), 'E_FORMAT', /lists tensor "a" twice/);
  });

  it('names a missing shard', async () => {
    const { open } = await indexWith({ a: 'gone.safetensors' }, {});
    await rejectsWith(open(), 'E_NOT_FOUND', /names shard "gone.safetensors", which does not exist/);
  });

  it('refuses an index without weight_map, and more shards than the limit', async () => {
    const fs = new MemoryFiles();
    fs.files.set('i.safetensors.index.json', new TextEncoder().encode('{"metadata":{}}'));
    await rejectsWith(openSafetensorsIndex(fs, 'i.safetensors.index.json'), 'E_FORMAT', /no "weight_map"/);
    fs.files.set('j.safetensors.index.json', new TextEncoder().encode(JSON.stringify({ weight_map: { a: '1.safetensors', b: '2.safetensors', c: '3.safetensors' } })));
    await rejectsWith(openSafetensorsIndex(fs, 'j.safetensors.index.json', { maxShardCount: 2 }), 'E_LIMIT', /over the limit of 2/);
  });
});
