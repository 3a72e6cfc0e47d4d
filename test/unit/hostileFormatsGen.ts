/**
 * Generators for the hostile-format families (hostileFormats.test.ts): hand-built bytes no library
 * would write, drawn over each family's parameters. Each generator yields a small file and says
 * what it varied; the reference readers (python/fixtures/reference_readers.py) give the verdict.
 *
 *  - safetensors: a valid header whose numbers, keys, nesting or strings are respelled (`8.0`,
 *    `8e0`, `-0`, a field twice, 1e400, a lone surrogate, nesting around serde's limit).
 *  - flax msgpack: trees of maps and lists with keys that collide or repeat, ndarray extensions
 *    with respelled shapes and dtypes, chunked arrays whose parts do and do not concatenate.
 *  - npz: zip archives with members named alike, named oddly, holding .npy headers numpy does
 *    and does not read, stored or deflated.
 */
import { crc32, deflateRawSync } from 'node:zlib';
import fc from 'fast-check';

// ---------------------------------------------------------------------------------------------
// msgpack, as a small tree of encodings (so a test can pick a float 2.0 over an int 2, a str over a bin)

export type MP =
  | { t: 'map'; e: [MP, MP][] }
  | { t: 'arr'; a: MP[] }
  | { t: 'str'; s: string }
  | { t: 'rawstr'; b: Uint8Array }
  | { t: 'bin'; b: Uint8Array }
  | { t: 'int'; v: number | bigint }
  | { t: 'f64'; v: number }
  | { t: 'nil' }
  | { t: 'bool'; v: boolean }
  | { t: 'ext'; code: number; p: Uint8Array };

export const m = {
  map: (e: [MP, MP][]): MP => ({ t: 'map', e }),
  arr: (a: MP[]): MP => ({ t: 'arr', a }),
  str: (s: string): MP => ({ t: 'str', s }),
  int: (v: number | bigint): MP => ({ t: 'int', v }),
  f64: (v: number): MP => ({ t: 'f64', v }),
  bin: (b: Uint8Array): MP => ({ t: 'bin', b }),
  nil: { t: 'nil' } as MP,
  bool: (v: boolean): MP => ({ t: 'bool', v }),
};

const be = (n: number, bytes: number) => {
  const b = Buffer.alloc(bytes);
  if (bytes === 8) b.writeBigUInt64BE(BigInt(n));
  else b.writeUIntBE(n, 0, bytes);
  return b;
};

function lenHeader(n: number, fix: number, fixMax: number, codes: [number, number, number]): Buffer {
  if (n <= fixMax) return Buffer.from([fix | n]);
  if (n < 0x100 && codes[0] !== 0) return Buffer.from([codes[0], n]);
  if (n < 0x10000) return Buffer.concat([Buffer.from([codes[1]]), be(n, 2)]);
  return Buffer.concat([Buffer.from([codes[2]]), be(n, 4)]);
}

export function enc(x: MP): Buffer {
  switch (x.t) {
    case 'map':
      return Buffer.concat([lenHeader(x.e.length, 0x80, 15, [0, 0xde, 0xdf]), ...x.e.flatMap(([k, v]) => [enc(k), enc(v)])]);
    case 'arr':
      return Buffer.concat([lenHeader(x.a.length, 0x90, 15, [0, 0xdc, 0xdd]), ...x.a.map(enc)]);
    case 'str':
      return enc({ t: 'rawstr', b: Buffer.from(x.s) });
    case 'rawstr':
      return Buffer.concat([lenHeader(x.b.length, 0xa0, 31, [0xd9, 0xda, 0xdb]), x.b]);
    case 'bin':
      return Buffer.concat([x.b.length < 0x100 ? Buffer.from([0xc4, x.b.length]) : x.b.length < 0x10000 ? Buffer.concat([Buffer.from([0xc5]), be(x.b.length, 2)]) : Buffer.concat([Buffer.from([0xc6]), be(x.b.length, 4)]), x.b]);
    case 'int': {
      const v = BigInt(x.v);
      if (v >= 0n) {
        if (v < 128n) return Buffer.from([Number(v)]);
        if (v < 0x100n) return Buffer.from([0xcc, Number(v)]);
        if (v < 0x10000n) return Buffer.concat([Buffer.from([0xcd]), be(Number(v), 2)]);
        if (v < 0x100000000n) return Buffer.concat([Buffer.from([0xce]), be(Number(v), 4)]);
        const b = Buffer.alloc(9);
        b[0] = 0xcf;
        b.writeBigUInt64BE(v, 1);
        return b;
      }
      if (v >= -32n) return Buffer.from([Number(v) & 0xff]);
      const b = Buffer.alloc(9);
      b[0] = 0xd3;
      b.writeBigInt64BE(v, 1);
      return b;
    }
    case 'f64': {
      const b = Buffer.alloc(9);
      b[0] = 0xcb;
      b.writeDoubleBE(x.v, 1);
      return b;
    }
    case 'nil':
      return Buffer.from([0xc0]);
    case 'bool':
      return Buffer.from([x.v ? 0xc3 : 0xc2]);
    case 'ext': {
      const n = x.p.length;
      const head = n < 0x100 ? Buffer.from([0xc7, n]) : n < 0x10000 ? Buffer.concat([Buffer.from([0xc8]), be(n, 2)]) : Buffer.concat([Buffer.from([0xc9]), be(n, 4)]);
      return Buffer.concat([head, Buffer.from([x.code & 0xff]), x.p]);
    }
  }
}

/** A flax ndarray extension: [shape, dtype, data] packed, as `_ndarray_to_bytes` writes it. */
export const ndExt = (shape: MP, dtype: MP, data: MP, code = 1): MP => ({ t: 'ext', code, p: enc(m.arr([shape, dtype, data])) });

// ---------------------------------------------------------------------------------------------
// Flax msgpack trees

/** numpy dtype names a generator may write, with their element size (the last ones: flax reads them, we do not). */
const FLAX_DTYPES: Record<string, number> = {
  float32: 4, float16: 2, int32: 4, uint8: 1, bool: 1, bfloat16: 2, '<f4': 4, '>f4': 4, f8: 8, float64: 8, complex128: 16, V2: 2, nonsense: 1,
};

type ShapeStyle = 'exact' | 'split' | 'neg1' | 'float' | 'bool' | 'wrong' | 'nil' | 'int' | 'empty' | 'twoNeg';

/** The shape spelled one way or another for `count` elements. */
function spellShape(count: number, style: ShapeStyle): MP {
  const dims = style === 'split' && count % 2 === 0 && count > 0 ? [2, count / 2] : [count];
  switch (style) {
    case 'exact':
    case 'split':
      return m.arr(dims.map(m.int));
    case 'neg1':
      return m.arr(count % 2 === 0 && count > 0 ? [m.int(2), m.int(-1)] : [m.int(-1)]);
    case 'twoNeg':
      return m.arr([m.int(-1), m.int(-1)]);
    case 'float':
      return m.arr([m.f64(count)]);
    case 'bool':
      return m.arr([m.bool(count !== 0)]);
    case 'wrong':
      return m.arr([m.int(count + 1)]);
    case 'nil':
      return m.nil;
    case 'int':
      return m.int(count);
    case 'empty':
      return m.arr([]);
  }
}

const shapeStyle = fc.oneof(
  { arbitrary: fc.constantFrom<ShapeStyle>('exact', 'split', 'neg1', 'nil', 'int'), weight: 6 },
  { arbitrary: fc.constantFrom<ShapeStyle>('float', 'bool', 'wrong', 'empty', 'twoNeg'), weight: 1 },
);

const ndArb = fc
  .record({
    dtype: fc.constantFrom(...Object.keys(FLAX_DTYPES), 'float32', 'float32'),
    count: fc.integer({ min: 0, max: 5 }),
    style: shapeStyle,
    code: fc.constantFrom(1, 1, 1, 3),
    dataAs: fc.constantFrom('bin', 'bin', 'str'),
    dtypeAs: fc.constantFrom('str', 'str', 'bin'),
    extra: fc.constantFrom(0, 0, 0, 1),
  })
  .map((r) => {
    const data = Buffer.alloc(r.count * FLAX_DTYPES[r.dtype]! + r.extra, 0x11);
    return ndExt(spellShape(r.count, r.style), r.dtypeAs === 'str' ? m.str(r.dtype) : m.bin(Buffer.from(r.dtype)), r.dataAs === 'bin' ? m.bin(data) : { t: 'rawstr', b: data }, r.code);
  });

const CHUNK_MARKER = '__msgpack_chunked_array__';

/** A chunked array as flax's `_chunk` writes it, or respelled: keys, dims, chunk kinds and dtypes varied. */
const chunkedArb = fc
  .record({
    counts: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 0, maxLength: 3 }),
    dtypes: fc.constantFrom(['float32'], ['float32'], ['int32'], ['float32', 'float16'], ['float32', '<f4'], ['>f4']),
    rank: fc.constantFrom(1, 1, 0, 0, 2),
    keys: fc.constantFrom('str', 'str', 'str', 'str', 'int', 'list', 'missing'),
    dims: fc.constantFrom('exact', 'exact', 'exact', 'exact', 'split', 'neg1', 'float', 'wrong', 'empty'),
    marker: fc.constantFrom<MP>(m.bool(true), m.bool(true), m.bool(false), m.nil),
    chunkKind: fc.constantFrom('nd', 'nd', 'nd', 'nd', 'list', 'int'),
  })
  .map((r) => {
    const chunks = r.counts.map((c, i): MP => {
      const dtype = r.dtypes[i % r.dtypes.length]!;
      if (r.chunkKind === 'list' && i === 0) return m.arr(Array.from({ length: c }, (_, j) => m.int(j)));
      if (r.chunkKind === 'int' && i === 0) return m.int(c);
      const size = FLAX_DTYPES[dtype]!;
      const shape = r.rank === 0 ? m.arr([]) : r.rank === 2 ? m.arr([m.int(c), m.int(1)]) : m.arr([m.int(c)]);
      const n = r.rank === 0 ? 1 : c;
      return ndExt(shape, m.str(dtype), m.bin(Buffer.alloc(n * size, 0x22)));
    });
    const total = r.rank === 0 ? r.counts.length : r.counts.reduce((a, c) => a + c, 0);
    const dimList: MP[] =
      r.dims === 'exact' ? [m.int(total)] : r.dims === 'split' && total % 2 === 0 ? [m.int(2), m.int(total / 2)] : r.dims === 'neg1' ? [m.int(-1)] : r.dims === 'float' ? [m.f64(total)] : r.dims === 'wrong' ? [m.int(total + 2)] : r.dims === 'empty' ? [] : [m.int(total)];
    const indexed = (items: MP[]): MP =>
      r.keys === 'list' ? m.arr(items) : m.map(items.map((v, i): [MP, MP] => [r.keys === 'int' ? m.int(i) : m.str(String(i)), v]));
    const entries: [MP, MP][] = [[m.str(CHUNK_MARKER), r.marker], [m.str('chunks'), indexed(chunks)]];
    if (r.keys !== 'missing') entries.splice(1, 0, [m.str('shape'), indexed(dimList)]);
    return m.map(entries);
  });

const scalarArb = fc.constantFrom<MP>(
  m.int(7),
  m.int(-3),
  m.int(2n ** 64n - 1n),
  m.f64(1.5),
  m.str('hello'),
  m.nil,
  m.bool(true),
  { t: 'ext', code: 2, p: enc(m.arr([m.f64(1), m.f64(-2)])) },
  { t: 'ext', code: -1, p: Buffer.alloc(4) },
  { t: 'ext', code: 9, p: Buffer.from('xyz') },
);

/** Keys drawn from a small pool, so repeats ("w" twice), collisions ("a.b" beside a → b, 1 beside "1") and odd types happen. */
const keyArb = fc.oneof(
  { arbitrary: fc.constantFrom<MP>(m.str('a'), m.str('b'), m.str('w'), m.str('a.b'), m.str('1'), m.str('0'), m.str('p')), weight: 8 },
  { arbitrary: fc.constantFrom<MP>(m.int(0), m.int(1)), weight: 2 },
  { arbitrary: fc.constantFrom<MP>(m.f64(1.5), m.bool(true), m.nil), weight: 1 },
);

const treeArb = fc.letrec<{ node: MP; leaf: MP; map: MP }>((tie) => ({
  leaf: fc.oneof({ arbitrary: ndArb, weight: 5 }, { arbitrary: chunkedArb, weight: 3 }, { arbitrary: scalarArb, weight: 2 }),
  map: fc.array(fc.tuple(keyArb, tie('node')), { minLength: 0, maxLength: 4 }).map((e) => m.map(e)),
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, { arbitrary: tie('leaf'), weight: 4 }, { arbitrary: tie('map'), weight: 3 }, { arbitrary: fc.array(tie('node'), { maxLength: 3 }).map(m.arr), weight: 1 }),
}));

/** Sound leaves under key pairs that flatten alike or repeat: the collision family on its own. */
const soundLeaf = ndExt(m.arr([m.int(2)]), m.str('float32'), m.bin(Buffer.alloc(8)));
const collidingArb = fc
  .tuple(
    fc.constantFrom<[MP, MP][]>(
      [[m.str('a.b'), soundLeaf], [m.str('a'), m.map([[m.str('b'), soundLeaf]])]],
      [[m.int(1), soundLeaf], [m.str('1'), soundLeaf]],
      [[m.str('w'), soundLeaf], [m.str('w'), soundLeaf]],
      [[m.str('a'), m.map([[m.int(0), soundLeaf]])], [m.str('a.0'), m.int(3)]],
      [[m.str('a'), m.arr([soundLeaf])], [m.str('a.0'), soundLeaf]],
      [[m.str('a.b'), soundLeaf], [m.str('a'), m.map([[m.str('c'), soundLeaf]])]],
      [[m.int(-1), soundLeaf], [m.str('-1'), m.nil]],
    ),
    fc.array(fc.tuple(fc.constantFrom<MP>(m.str('x'), m.str('y')), fc.constantFrom(soundLeaf, m.int(1))), { maxLength: 2 }),
  )
  .map(([pair, rest]) => m.map([...pair, ...rest]));

export const flaxFileArb = fc
  .oneof(
    { arbitrary: treeArb.map, weight: 5 },
    { arbitrary: chunkedArb.map((c) => m.map([[m.str('w'), c]])), weight: 3 },
    { arbitrary: chunkedArb, weight: 1 },
    { arbitrary: collidingArb, weight: 1 },
  )
  .map((root) => enc(root));

// ---------------------------------------------------------------------------------------------
// safetensors headers

const ST_DTYPES: Record<string, number> = { F32: 4, F16: 2, U8: 1, I64: 8, BF16: 2, BOOL: 1 };

export type Spelling = 'dot0' | 'e0' | 'Eplus0' | 'frac' | 'neg' | 'scaled' | 'lead0' | 'plus' | 'hex' | 'u64max' | 'past64' | 'past53' | 'huge';

function spell(v: number, s: Spelling): string {
  switch (s) {
    case 'dot0':
      return `${v}.0`;
    case 'e0':
      return `${v}e0`;
    case 'Eplus0':
      return `${v}E+0`;
    case 'frac':
      return `${v}.5`;
    case 'neg':
      return v === 0 ? '-0' : `-${v}`;
    case 'scaled':
      return `${v * 10}e-1`;
    case 'lead0':
      return `0${v}`;
    case 'plus':
      return `+${v}`;
    case 'hex':
      return `0x${v.toString(16)}`;
    case 'u64max':
      return '18446744073709551615';
    case 'past64':
      return '18446744073709551616';
    case 'past53':
      return '9007199254740993';
    case 'huge':
      return `1${'0'.repeat(400)}`;
  }
}

export type StMutation =
  | { kind: 'none' }
  | { kind: 'number'; target: number; spelling: Spelling }
  | { kind: 'dupField'; field: 'dtype' | 'shape' | 'data_offsets' }
  | { kind: 'dupName' }
  | { kind: 'extra'; text: string }
  | { kind: 'deep'; where: 'extra' | 'metadata' | 'shape' | 'offsets' | 'entry'; depth: number }
  | { kind: 'name'; escaped: string }
  | { kind: 'ws'; leading: boolean };

const stMutationArb: fc.Arbitrary<StMutation> = fc.oneof(
  { arbitrary: fc.constant<StMutation>({ kind: 'none' }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant('number' as const),
      target: fc.nat(20),
      spelling: fc.constantFrom<Spelling>('dot0', 'e0', 'Eplus0', 'frac', 'neg', 'scaled', 'lead0', 'plus', 'hex', 'u64max', 'past64', 'past53', 'huge'),
    }),
    weight: 6,
  },
  { arbitrary: fc.record({ kind: fc.constant('dupField' as const), field: fc.constantFrom('dtype' as const, 'shape' as const, 'data_offsets' as const) }), weight: 1 },
  { arbitrary: fc.constant<StMutation>({ kind: 'dupName' }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant('extra' as const),
      text: fc.constantFrom('1e400', '-1e400', '1e308', '1.5', '-0', `1${'0'.repeat(400)}`, '"\\ud800"', '"\\udc00x"', '"\\ud83d\\ude00"', '{"a":1,"a":2}', '[1,2.0,-0]'),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('deep' as const),
      where: fc.constantFrom('extra' as const, 'metadata' as const, 'shape' as const, 'offsets' as const, 'entry' as const),
      depth: fc.oneof(fc.integer({ min: 122, max: 130 }), fc.constant(5000)),
    }),
    weight: 2,
  },
  { arbitrary: fc.record({ kind: fc.constant('name' as const), escaped: fc.constantFrom('\\u0061', '\\ud800', '\\udc00', '\\ud83d\\ude00', 'a\\"b', '\\n') }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('ws' as const), leading: fc.boolean() }), weight: 1 },
);

const stTensorsArb = fc.uniqueArray(
  fc.record({
    name: fc.constantFrom('a', 'b', 'c.w', 'layers.0.w', 'x'),
    dtype: fc.constantFrom(...Object.keys(ST_DTYPES)),
    shape: fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 }),
  }),
  { selector: (t) => t.name, minLength: 1, maxLength: 3 },
);

/** A safetensors file (header text plus zero data) with one mutation applied. */
export const safetensorsFileArb = fc.record({ tensors: stTensorsArb, mutation: stMutationArb, metadata: fc.boolean() }).map(({ tensors, mutation, metadata }) => {
  // Numbers are placeholders until the end, so one of them can be respelled.
  const numbers: number[] = [];
  const num = (v: number) => {
    numbers.push(v);
    return `\u0000${numbers.length - 1}\u0000`;
  };
  let offset = 0;
  const deep = mutation.kind === 'deep' ? `${'['.repeat(mutation.depth)}${']'.repeat(mutation.depth)}` : '';
  const entries = tensors.map((t, i) => {
    const bytes = t.shape.reduce((a, d) => a * d, 1) * ST_DTYPES[t.dtype]!;
    const begin = offset;
    offset += bytes;
    const shape = mutation.kind === 'deep' && mutation.where === 'shape' && i === 0 ? deep : `[${t.shape.map(num).join(',')}]`;
    const offsets = mutation.kind === 'deep' && mutation.where === 'offsets' && i === 0 ? deep : `[${num(begin)},${num(offset)}]`;
    let body = `"dtype":"${t.dtype}","shape":${shape},"data_offsets":${offsets}`;
    if (i === 0 && mutation.kind === 'dupField') body += mutation.field === 'dtype' ? `,"dtype":"${t.dtype}"` : mutation.field === 'shape' ? `,"shape":${shape}` : `,"data_offsets":${offsets}`;
    if (i === 0 && mutation.kind === 'extra') body += `,"x":${mutation.text}`;
    if (i === 0 && mutation.kind === 'deep' && mutation.where === 'extra') body += `,"x":${deep}`;
    const name = i === 0 && mutation.kind === 'name' ? mutation.escaped : t.name;
    const value = i === 0 && mutation.kind === 'deep' && mutation.where === 'entry' ? deep : `{${body}}`;
    return `"${name}":${value}`;
  });
  if (mutation.kind === 'dupName') entries.push(entries[0]!);
  if (metadata || (mutation.kind === 'deep' && mutation.where === 'metadata')) {
    entries.unshift(`"__metadata__":{"format":"pt"${mutation.kind === 'deep' && mutation.where === 'metadata' ? `,"k":${deep}` : ''}}`);
  }
  let text = `{${entries.join(',')}}`;
  if (mutation.kind === 'ws') text = `${mutation.leading ? ' \n' : ''}${text.replace(/([:,])/g, '$1 ')}  `;
  const target = mutation.kind === 'number' ? mutation.target % Math.max(1, numbers.length) : -1;
  text = text.replace(/\u0000(\d+)\u0000/g, (_, k: string) => (Number(k) === target && mutation.kind === 'number' ? spell(numbers[Number(k)]!, mutation.spelling) : String(numbers[Number(k)])));
  const h = Buffer.from(text);
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(h.length));
  return Buffer.concat([head, h, Buffer.alloc(offset)]);
});

// ---------------------------------------------------------------------------------------------
// npz archives

/** A .npy: magic, version, header length, the dict literal padded to 64 bytes, data. */
export function npy(header: string, data: Uint8Array, version: [number, number] = [1, 0]): Buffer {
  const pad = (64 - ((version[0] === 1 ? 10 : 12) + header.length + 1) % 64) % 64;
  const h = Buffer.from(`${header}${' '.repeat(pad)}\n`, version[0] === 3 ? 'utf8' : 'latin1');
  const len = version[0] === 1 ? Buffer.alloc(2) : Buffer.alloc(4);
  if (version[0] === 1) len.writeUInt16LE(h.length);
  else len.writeUInt32LE(h.length);
  return Buffer.concat([Buffer.from([0x93]), Buffer.from('NUMPY'), Buffer.from(version), len, h, data]);
}

const NPY_DESCRS: Record<string, number> = { '<f4': 4, '>f4': 4, '|u1': 1, '<i8': 8, '|b1': 1, '<f2': 2, '<c16': 16, '|V2': 2, '<U2': 8, f4: 4 };

type NpyVariant = 'plain' | 'trailing' | 'short' | 'listShape' | 'parenInt' | 'extraKey' | 'fortranInt' | 'fortran' | 'v11' | 'L1' | 'L3' | 'big' | 'neg' | 'bytes' | 'v3';

const npyContentArb = fc
  .record({
    descr: fc.constantFrom(...Object.keys(NPY_DESCRS)),
    shape: fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 2 }),
    variant: fc.constantFrom<NpyVariant>('plain', 'plain', 'plain', 'trailing', 'short', 'listShape', 'parenInt', 'extraKey', 'fortranInt', 'fortran', 'v11', 'L1', 'L3', 'big', 'neg', 'bytes', 'v3'),
  })
  .map(({ descr, shape, variant }): Buffer => {
    if (variant === 'bytes') return Buffer.from('not an array');
    const n = shape.reduce((a, d) => a * d, 1);
    let data = Buffer.alloc(n * NPY_DESCRS[descr]!, 0x01);
    const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
    let shapeText = tuple;
    let fortran = 'False';
    let extra = '';
    let version: [number, number] = [1, 0];
    switch (variant) {
      case 'trailing':
        data = Buffer.concat([data, Buffer.alloc(3)]);
        break;
      case 'short':
        data = data.subarray(0, Math.max(0, data.length - 1));
        if (data.length === n * NPY_DESCRS[descr]!) data = Buffer.alloc(0);
        break;
      case 'listShape':
        shapeText = `[${shape.join(', ')}]`;
        break;
      case 'parenInt':
        shapeText = `(${n})`;
        break;
      case 'extraKey':
        extra = "'x': 1, ";
        break;
      case 'fortranInt':
        fortran = '0';
        break;
      case 'fortran':
        fortran = 'True';
        break;
      case 'v11':
        version = [1, 1];
        break;
      case 'L1':
      case 'L3':
        shapeText = shape.length === 0 ? '()' : `(${shape.map((d) => `${d}L`).join(', ')},)`;
        if (variant === 'L3') version = [3, 0];
        break;
      case 'big':
        version = [2, 0];
        extra = `'x': '${' '.repeat(12000)}', `;
        break;
      case 'neg':
        shapeText = '(-1,)';
        break;
      case 'v3':
        version = [3, 0];
        break;
    }
    const header = variant === 'big' ? `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shapeText}, }${' '.repeat(12000)}` : `{'descr': '${descr}', 'fortran_order': ${fortran}, ${extra}'shape': ${shapeText}, }`;
    return npy(header, data, version);
  });

const MEMBER_NAMES = ['w.npy', 'x.npy', 'w', '../w.npy', '/w.npy', 'd/', 'd/w.npy', 'w.npy.npy', 'é.npy', 'w.npy\u0000z'];

/** A zip archive written byte by byte (names, flags and methods as given). */
export function zip(members: { name: string; data: Uint8Array; deflate: boolean }[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const mem of members) {
    const name = Buffer.from(mem.name, 'utf8');
    const flags = /[^\x00-\x7f]/.test(mem.name) ? 0x800 : 0;
    const body = mem.deflate ? deflateRawSync(mem.data) : Buffer.from(mem.data);
    const crc = crc32(mem.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(mem.deflate ? 8 : 0, 8);
    local.writeUInt16LE(0x21, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(mem.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(flags, 8);
    central.writeUInt16LE(mem.deflate ? 8 : 0, 10);
    central.writeUInt16LE(0x21, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(mem.data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, body);
    centrals.push(central, name);
    offset += 30 + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(members.length, 8);
  end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

export const npzFileArb = fc
  .record({
    members: fc.array(fc.record({ name: fc.constantFrom(...MEMBER_NAMES), data: npyContentArb }), { minLength: 1, maxLength: 3 }),
    deflate: fc.boolean(),
  })
  .map(({ members, deflate }) => zip(members.map((mem) => ({ ...mem, deflate }))));
