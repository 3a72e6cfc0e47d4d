/**
 * Flax msgpack: files written by the real flax.serialization (Linen, NNX, every leaf kind, chunked
 * arrays, HF-style shards) read bit for bit; malformed and hostile inputs give clear errors; offsets
 * past 4 GB work (a sparse file with hand-made headers: no Buffer could hold it).
 */
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, openSync, ftruncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { openCheckpoint, openFlaxMsgpackFile, readExactly, tensorRanges, tensorStats, type Checkpoint, type FileOpener } from '../../src/core/index';
import { NodeFileOpener } from '../../src/core/node/index';
import { MemoryFiles, rejectsWith, tempDir, venvPython, writeFixtures } from './helpers';


async function tensorBytes(opener: FileOpener, ck: Checkpoint, name: string): Promise<Uint8Array> {
  const t = ck.tensors.find((x) => x.name === name)!;
  const parts: Uint8Array[] = [];
  for (const r of tensorRanges(t)) {
    const src = await opener.open(r.file);
    const b = new Uint8Array(r.length);
    await readExactly(src, r.offset, b);
    await src.close();
    parts.push(b);
  }
  return Buffer.concat(parts);
}

describe('Flax msgpack written by flax.serialization', function () {
  let dir: ReturnType<typeof tempDir>;
  let manifest: Record<string, { tensors: Record<string, { dtype: string; shape: number[]; sha256: string }>; values: Record<string, string> }>;
  before(function () {
    const python = venvPython(this);
    this.timeout(120_000);
    dir = tempDir();
    manifest = writeFixtures(python, 'flax_msgpack.py', dir.path);
  });
  after(() => dir?.remove());

  it('reads every array of every file bit for bit, with its dtype and shape', async () => {
    const opener = new NodeFileOpener();
    assert.ok(Object.keys(manifest).length >= 5);
    for (const [file, want] of Object.entries(manifest)) {
      const ck = await openCheckpoint(opener, join(dir.path, file));
      const got: typeof want.tensors = {};
      for (const t of ck.tensors) {
        got[t.name] = { dtype: t.dtype, shape: [...t.shape], sha256: createHash('sha256').update(await tensorBytes(opener, ck, t.name)).digest('hex') };
      }
      assert.deepEqual(got, want.tensors, file);
    }
  });

  it('keeps non-array leaves (step counters, strings, None, complex) as values', async () => {
    const ck = await openCheckpoint(new NodeFileOpener(), join(dir.path, 'mixed.msgpack'));
    const values = Object.fromEntries((ck.values ?? []).map((v) => [v.name, v.value]));
    const want = manifest['mixed.msgpack']!.values;
    for (const [k, v] of Object.entries(want)) {
      if (v === 'complex') assert.equal(values[k], '(1.5-2j)');
      else assert.equal(values[k], v, k);
    }
    assert.deepEqual(ck.tensors.find((t) => t.name === 'layers.1.w')!.path, ['layers', 1, 'w']);
  });

  it('joins chunked arrays into one tensor and computes statistics across the chunks', async () => {
    const opener = new NodeFileOpener();
    const ck = await openCheckpoint(opener, join(dir.path, 'chunked.msgpack'));
    const t = ck.tensors.find((x) => x.name === 'params.embed')!;
    assert.ok(tensorRanges(t).length > 1, 'stored in several chunks');
    const vals = new Float32Array(new Uint8Array(await tensorBytes(opener, ck, t.name)).buffer); // a copy: Buffer.concat may share a pool
    const st = await tensorStats(opener, t, { chunkBytes: 12 });
    assert.equal(st.count, 70);
    assert.equal(st.min, Math.min(...vals));
    assert.equal(st.max, Math.max(...vals));
  });

  it('opens the HF sharded index, shards joined by their "/" keys', async () => {
    const ck = await openCheckpoint(new NodeFileOpener(), join(dir.path, 'hf_sharded'));
    assert.equal(ck.format, 'flax-msgpack-sharded');
    assert.ok(ck.files.length >= 2);
    assert.ok(ck.tensors.some((t) => t.name === 'model.layers.2.self_attn.q_proj.kernel'));
  });
});

/** Minimal msgpack writer for hostile inputs that no library would produce. */
const mp = {
  str: (s: string) => {
    const b = Buffer.from(s);
    return Buffer.concat([b.length < 32 ? Buffer.from([0xa0 | b.length]) : Buffer.from([0xd9, b.length]), b]);
  },
  map: (entries: [string, Buffer][]) => Buffer.concat([Buffer.from([0x80 | entries.length]), ...entries.flatMap(([k, v]) => [mp.str(k), v])]),
  ndarray: (shape: number[], dtype: string, data: Buffer, lengthDelta = 0) => {
    const payload = Buffer.concat([Buffer.from([0x93, 0x90 | shape.length, ...shape]), mp.str(dtype), Buffer.from([0xc4, data.length]), data]);
    return Buffer.concat([Buffer.from([0xc7, payload.length + lengthDelta, 1]), payload]);
  },
};

describe('Flax msgpack: malformed and hostile input', () => {
  const open = async (bytes: Uint8Array, opts = {}) => {
    const fs = new MemoryFiles();
    fs.files.set('x.msgpack', bytes);
    return openFlaxMsgpackFile(fs, 'x.msgpack', opts);
  };
  const cases: [string, () => Buffer, string, RegExp][] = [
    ['an empty file', () => Buffer.alloc(0), 'E_FORMAT', /empty/],
    ['a byte that is no msgpack type', () => Buffer.from([0xc1]), 'E_FORMAT', /0xc1 is not a msgpack type/],
    ['a truncated map', () => mp.map([['a', mp.str('b')]]).subarray(0, 3), 'E_FORMAT', /unexpected end of file/],
    ['trailing bytes', () => Buffer.concat([mp.map([]), Buffer.from([0])]), 'E_FORMAT', /not a single flax msgpack document/],
    ['a map key that is an array', () => Buffer.from([0x81, 0x90, 0xc0]), 'E_FORMAT', /map key is a list, not a string or an integer/],
    ['an ndarray whose bytes do not match its shape', () => mp.map([['w', mp.ndarray([3], 'float32', Buffer.alloc(8))]]), 'E_FORMAT', /"w" holds 8 bytes but float32\[3\] needs 12/],
    ['an ndarray of a dtype with no safetensors equivalent', () => mp.map([['w', mp.ndarray([1], 'complex128', Buffer.alloc(16))]]), 'E_FORMAT', /"w" has dtype "complex128"/],
    ['an ndarray extension whose length lies', () => mp.map([['w', mp.ndarray([1], 'uint8', Buffer.alloc(1), 2)]]), 'E_FORMAT', /extension|end of file/],
    ['a bin that runs past the end', () => Buffer.from([0xc6, 0xff, 0xff, 0xff, 0x00]), 'E_FORMAT', /runs past the end of the file/],
    ['invalid UTF-8 in a key', () => Buffer.from([0x81, 0xa1, 0xff, 0xc0]), 'E_FORMAT', /not valid UTF-8/],
  ];
  for (const [what, make, code, re] of cases) {
    it(`refuses ${what}, naming the file`, async () => {
      const e = await rejectsWith(open(make()), code, re);
      assert.match(e.message, /x\.msgpack/);
    });
  }
  it('stops a nesting bomb at the depth limit instead of overflowing the stack', async () => {
    await rejectsWith(open(Buffer.alloc(100_000, 0x91)), 'E_LIMIT', /nesting depth .* maxDepth/);
  });
  it('stops a value flood at the node limit', async () => {
    const b = Buffer.concat([Buffer.from([0xdd, 0, 0, 0x10, 0]), Buffer.alloc(4096, 0x01)]);
    await rejectsWith(open(b, { maxNodes: 1000 }), 'E_LIMIT', /number of values .* maxNodes/);
  });
  it('refuses a string over the limit', async () => {
    await rejectsWith(open(mp.str('x'.repeat(100)), { maxStringBytes: 10 }), 'E_LIMIT', /string length/);
  });

  it('reads array offsets past 4 GB in a sparse file, reading only the headers', async function () {
    this.timeout(60_000);
    const dir = tempDir();
    const file = join(dir.path, 'huge.msgpack');
    const n = 2 ** 31; // three 2 GiB uint8 arrays: the third starts past 4 GiB
    const fd = openSync(file, 'w');
    try {
      let pos = 0;
      const put = (b: Buffer) => {
        writeSync(fd, b, 0, b.length, pos);
        pos += b.length;
      };
      put(Buffer.from([0x83]));
      const u32 = (v: number) => Buffer.from([(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255]);
      for (const key of ['a', 'b', 'c']) {
        put(mp.str(key));
        const inner = Buffer.concat([Buffer.from([0x93, 0x91, 0xce]), u32(n), mp.str('uint8'), Buffer.from([0xc6]), u32(n)]);
        put(Buffer.concat([Buffer.from([0xc9]), u32(inner.length + n), Buffer.from([1]), inner]));
        pos += n; // the payload is a hole
      }
      ftruncateSync(fd, pos);
    } finally {
      closeSync(fd);
    }
    try {
      const ck = await openCheckpoint(new NodeFileOpener(), file);
      assert.deepEqual(ck.tensors.map((t) => [t.name, t.dtype, t.shape, t.bytes]), [['a', 'U8', [n], n], ['b', 'U8', [n], n], ['c', 'U8', [n], n]]);
      assert.ok(ck.tensors[2]!.source.offset > 2 ** 32, String(ck.tensors[2]!.source.offset));
    } finally {
      dir.remove();
    }
  });
});
