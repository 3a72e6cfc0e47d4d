import * as assert from 'node:assert/strict';
import { openSafetensorsFile } from '../../src/core/index';
import { MemoryFiles, rawSafetensors, rejectsWith } from './helpers';

const F = 'm.safetensors';
async function open(bytes: Uint8Array, opts = {}) {
  const fs = new MemoryFiles();
  fs.files.set(F, bytes);
  return openSafetensorsFile(fs, F, opts);
}
const f32 = (name: string, shape: number[], begin: number, end: number) => `${JSON.stringify(name)}:{"dtype":"F32","shape":${JSON.stringify(shape)},"data_offsets":[${begin},${end}]}`;

describe('safetensors header validation (each check of the reference reader)', () => {
  it('reads a valid file, tensors in data order, paths split with numeric indices', async () => {
    const header = `{"__metadata__":{"format":"pt"},${f32('b.layers.1.w', [1], 4, 8)},${f32('a.0', [1], 0, 4)}}`;
    const ck = await open(rawSafetensors(header, new Uint8Array(8)));
    assert.deepEqual(ck.tensors.map((t) => t.name), ['a.0', 'b.layers.1.w']);
    assert.deepEqual(ck.tensors[1]!.path, ['b', 'layers', 1, 'w']);
    assert.deepEqual(ck.tensors[1]!.source, { file: F, offset: 8 + header.length + 4, length: 4 });
    assert.deepEqual({ ...ck.metadata }, { format: 'pt' });
  });

  it('accepts header padding with spaces, 0-d and empty tensors, null metadata', async () => {
    const ck = await open(rawSafetensors(`{"__metadata__":null,${f32('s', [], 0, 4)},${f32('e', [0, 3], 4, 4)}}    `, new Uint8Array(4)));
    assert.deepEqual(ck.tensors.map((t) => [t.name, t.shape, t.bytes]), [['s', [], 4], ['e', [0, 3], 0]]);
  });

  const bad: [string, () => Uint8Array, string, RegExp][] = [
    ['a file shorter than 8 bytes', () => new Uint8Array(5), 'E_FORMAT', /5 bytes.*8-byte header length/],
    ['a header length of 0', () => rawSafetensors(''), 'E_FORMAT', /header length is 0/],
    ['a header length past the end', () => { const b = rawSafetensors('{}'); b[0] = 200; return b; }, 'E_FORMAT', /truncated/],
    ['a header not starting with {', () => rawSafetensors(' {}'), 'E_FORMAT', /does not begin with/],
    ['invalid UTF-8', () => { const b = rawSafetensors('{"\u00e9":1}'); b[10] = 0xff; return b; }, 'E_FORMAT', /not valid UTF-8/],
    ['invalid JSON', () => rawSafetensors('{"a":'), 'E_FORMAT', /not valid JSON/],
    ['a JSON array', () => rawSafetensors('{}').fill(0x5b, 8, 9), 'E_FORMAT', /does not begin/],
    ['duplicate keys', () => rawSafetensors(`{${f32('x', [1], 0, 4)},${f32('x', [1], 0, 4)}}`, new Uint8Array(4)), 'E_FORMAT', /names "x" twice/],
    ['an unknown dtype', () => rawSafetensors('{"x":{"dtype":"F17","shape":[1],"data_offsets":[0,4]}}', new Uint8Array(4)), 'E_FORMAT', /unknown dtype "F17"/],
    ['a negative dimension', () => rawSafetensors(f32Obj('x', '[-1]', '[0,4]'), new Uint8Array(4)), 'E_FORMAT', /non-negative integers/],
    ['a fractional dimension', () => rawSafetensors(f32Obj('x', '[1.5]', '[0,4]'), new Uint8Array(4)), 'E_FORMAT', /non-negative integers/],
    ['a dimension past 2^53', () => rawSafetensors(f32Obj('x', '[9007199254740993]', '[0,4]'), new Uint8Array(4)), 'E_FORMAT', /non-negative integers/],
    ['offsets not a pair', () => rawSafetensors(f32Obj('x', '[1]', '[0]'), new Uint8Array(4)), 'E_FORMAT', /data_offsets/],
    ['a missing shape', () => rawSafetensors('{"x":{"dtype":"F32","data_offsets":[0,4]}}', new Uint8Array(4)), 'E_FORMAT', /no "shape"/],
    ['a tensor entry that is not an object', () => rawSafetensors('{"x":3}'), 'E_FORMAT', /is a number/],
    ['non-string metadata', () => rawSafetensors('{"__metadata__":{"n":1}}'), 'E_FORMAT', /metadata values must be strings/],
    ['a hole between tensors', () => rawSafetensors(`{${f32('a', [1], 0, 4)},${f32('b', [1], 8, 12)}}`, new Uint8Array(12)), 'E_FORMAT', /no holes/],
    ['overlapping tensors', () => rawSafetensors(`{${f32('a', [2], 0, 8)},${f32('b', [1], 4, 8)}}`, new Uint8Array(8)), 'E_FORMAT', /overlap/],
    ['a first tensor not at 0', () => rawSafetensors(`{${f32('a', [1], 4, 8)}}`, new Uint8Array(8)), 'E_FORMAT', /no holes/],
    ['end before begin', () => rawSafetensors(`{${f32('a', [0], 0, 0)},${f32('b', [1], 0, 4)},"c":{"dtype":"U8","shape":[0],"data_offsets":[4,2]}}`, new Uint8Array(4)), 'E_FORMAT', /end is before begin|overlap/],
    ['a size that does not match the shape', () => rawSafetensors(`{${f32('a', [2], 0, 4)}}`, new Uint8Array(4)), 'E_FORMAT', /needs 8/],
    ['sub-byte elements that do not fill a byte', () => rawSafetensors('{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,1]}}', new Uint8Array(1)), 'E_FORMAT', /not a whole number of bytes/],
    ['trailing bytes after the data', () => rawSafetensors(`{${f32('a', [1], 0, 4)}}`, new Uint8Array(5)), 'E_FORMAT', /1 trailing bytes/],
    ['data cut short', () => rawSafetensors(`{${f32('a', [2], 0, 8)}}`, new Uint8Array(6)), 'E_FORMAT', /truncated/],
  ];
  for (const [what, make, code, re] of bad) {
    it(`refuses ${what}, naming the file`, async () => {
      const e = await rejectsWith(open(make()), code, re);
      assert.match(e.message, /^Failed to parse m\.safetensors: /);
    });
  }

  it('refuses a header over the limit, quoting the limit and the option', async () => {
    const b = rawSafetensors(`{${f32('a', [1], 0, 4)}}`, new Uint8Array(4));
    await rejectsWith(open(b, { maxHeaderBytes: 10 }), 'E_LIMIT', /over the limit of 10 .*maxHeaderBytes/);
  });

  it('refuses a rank over the limit', async () => {
    const b = rawSafetensors(`{${f32('a', [1, 1, 1], 0, 4)}}`, new Uint8Array(4));
    await rejectsWith(open(b, { maxRank: 2 }), 'E_FORMAT', /rank 3, over the limit of 2/);
  });

  it('keeps keys like __proto__ and constructor as plain data', async () => {
    const ck = await open(rawSafetensors(`{"__metadata__":{"__proto__":"x","constructor":"y"},${f32('__proto__', [1], 0, 4)}}`, new Uint8Array(4)));
    assert.equal(ck.tensors[0]!.name, '__proto__');
    assert.equal(ck.metadata['__proto__'], 'x');
    assert.equal(Object.getPrototypeOf(ck.metadata), null);
  });

  it('reads a header longer than its first read, and one ending at the end of a short file', async () => {
    // 3,000 entries make a header of about 200 KiB, past the 64 KiB the reader takes first.
    const names = Array.from({ length: 3000 }, (_, i) => `model.layers.${i}.mlp.weight`);
    const header = `{${names.map((n, i) => f32(n, [1], i * 4, i * 4 + 4)).join(',')}}`;
    assert.ok(header.length > 64 << 10);
    const ck = await open(rawSafetensors(header, new Uint8Array(4 * names.length)));
    assert.deepEqual(ck.tensors.map((t) => t.name), names);
    assert.deepEqual(ck.tensors[2999]!.source, { file: F, offset: 8 + header.length + 4 * 2999, length: 4 });
    const small = await open(rawSafetensors(`{${f32('w', [], 0, 0)}}`.replace('[]', '[0]')));
    assert.deepEqual(small.tensors.map((t) => [t.name, t.bytes]), [['w', 0]]);
  });

  it('reads unicode and hostile names as given', async () => {
    const names = ['模型.层.0', '<script>alert(1)</script>', 'a\nb', '🙂.weight'];
    const entries = names.map((n, i) => f32(n, [1], i * 4, i * 4 + 4)).join(',');
    const ck = await open(rawSafetensors(`{${entries}}`, new Uint8Array(16)));
    assert.deepEqual(ck.tensors.map((t) => t.name), names);
  });
});

function f32Obj(name: string, shape: string, offsets: string): string {
  return `{${JSON.stringify(name)}:{"dtype":"F32","shape":${shape},"data_offsets":${offsets}}}`;
}
