/**
 * The format readers against hostile input, by family (issue 14, items 5 and 7): safetensors
 * headers with respelled numbers, repeated fields, deep nesting; flax msgpack with repeated and
 * colliding keys, respelled shapes, chunked arrays that do and do not join; npz archives with
 * members named alike or oddly. Three kinds of test:
 *
 *  1. Properties in process (fast-check, fixed seed): every refusal is a JaxServeError whose one
 *     line names the file and carries no NaN, undefined, Infinity, [object or control character.
 *  2. A differential test: N generated files per family, one Python process running the reference
 *     readers over all of them (python/fixtures/reference_readers.py); we accept exactly when the
 *     reference accepts, with the same tensor names, shapes and dtypes, except where the reference
 *     keeps something we deliberately refuse (EXCEPTIONS, each with its reason).
 *  3. A sample of the refused files through the CLI: exit 2, one clean line naming the file.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { JaxServeError, MAX_INDEX_BYTES, openCheckpoint, openFlaxMsgpackFile, openNpz, openSafetensorsFile, openSafetensorsIndex, type Checkpoint } from '../../src/core/index';
import { NodeFileOpener } from '../../src/core/node/index';
import { fastHeaderEntries } from '../../src/core/formats/safetensors/fastJson';
import { MemoryFiles, tempDir, venvPython } from './helpers';
import { assertCleanText, assertRefused, fuzzRuns, fuzzSeed, runCli } from './hostile';
import { enc, flaxFileArb, m, ndExt, npy, npzFileArb, safetensorsFileArb, zip } from './hostileFormatsGen';

type Family = 'safetensors' | 'flax' | 'npz';
const EXT: Record<Family, string> = { safetensors: 'safetensors', flax: 'msgpack', npz: 'npz' };

/**
 * What the reference reader keeps and we refuse, on purpose. The reference side of the test finds
 * each from the file itself (reference_readers.py's flags); our message must say the same thing.
 */
const EXCEPTIONS: Record<string, { why: string; ours: RegExp }> = {
  dupname: {
    why: 'safetensors: a tensor named twice (the README forbids duplicates; serde keeps the last silently). npz: two members numpy.load reads as one key (it reads the last; which array is meant is unclear)',
    ours: /twice|two members named|both the array/,
  },
  dupkey: { why: 'flax: a key twice in one msgpack map (msgpack-python keeps the last silently)', ours: /appears twice/ },
  keytype: { why: 'flax: float, bool, nil or bytes map keys (flax writes string keys; True == 1 == 1.0 in Python would merge keys)', ours: /map key is/ },
  collision: { why: 'flax: two leaves whose names flatten alike ("a.b" beside a → b, 1 beside "1"): flax keeps both, one tensor name cannot', ours: /both flatten to the name/ },
  dtype: { why: 'flax: an array dtype with no safetensors equivalent (complex128, void, …): nothing could convert or show it as a tensor', ours: /no safetensors equivalent/ },
  chunkconvert: { why: 'flax: chunks numpy converts while joining (mixed dtypes, lists of msgpack numbers): no file bytes are that tensor', ours: /flax would convert|numpy would build/ },
  bigdim: { why: 'a dimension past 2^53 - 1 (only in an empty array): a JavaScript number cannot hold it exactly', ours: /2\^53 - 1/ },
  leadingspace: { why: 'safetensors: whitespace before "{" (the README says the header MUST begin with "{")', ours: /does not begin with "\{"/ },
  method: { why: 'npz: bzip2/lzma members (numpy never writes them; we read stored and deflated)', ours: /uses zip method/ },
};

const BAD_TEXT = /NaN|undefined|Infinity|\[object/;

/** Our reader's verdict on a file, in process. */
async function ours(file: string): Promise<{ ck?: Checkpoint; error?: JaxServeError }> {
  try {
    return { ck: await openCheckpoint(new NodeFileOpener(), file) };
  } catch (e) {
    if (!(e instanceof JaxServeError)) throw new Error(`${file}: not a JaxServeError: ${String((e as Error)?.stack ?? e)}`);
    return { error: e };
  }
}

/** A refusal's message: one line, naming the file, nothing computed from a bad number, no controls. */
function assertGoodMessage(e: JaxServeError, file: string): void {
  assert.ok(!BAD_TEXT.test(e.message), `${file}: message carries ${BAD_TEXT.exec(e.message)?.[0]}: ${e.message}`);
  assert.ok(!e.message.includes('\n'), `${file}: message is not one line: ${JSON.stringify(e.message)}`);
  assert.ok(e.message.includes(file.split('/').pop()!), `${file}: message does not name the file: ${e.message}`);
  assertCleanText(e.message, `${file}'s message`);
}

describe('hostile formats: every refusal is one clean line naming the file', () => {
  const families: [Family, fc.Arbitrary<Buffer>, (fs: MemoryFiles, f: string) => Promise<unknown>][] = [
    ['safetensors', safetensorsFileArb, (fs, f) => openSafetensorsFile(fs, f)],
    ['flax', flaxFileArb, (fs, f) => openFlaxMsgpackFile(fs, f)],
    ['npz', npzFileArb, (fs, f) => openNpz(fs, f)],
  ];
  for (const [family, arb, open] of families) {
    it(`${family}: generated files, and the same with bytes flipped or cut`, async () => {
      const withDamage = fc.tuple(arb, fc.nat(), fc.constantFrom('none', 'flip', 'cut', 'none')).map(([b, at, how]) => {
        if (how === 'none' || b.length === 0) return b;
        const c = Buffer.from(b);
        const i = at % c.length;
        if (how === 'cut') return c.subarray(0, i);
        c[i] = c[i]! ^ (1 << (at % 8));
        return c;
      });
      await fc.assert(
        fc.asyncProperty(withDamage, async (bytes) => {
          const fs = new MemoryFiles();
          const file = `dir/m.${EXT[family]}`;
          fs.files.set(file, bytes);
          try {
            await open(fs, file);
          } catch (e) {
            if (!(e instanceof JaxServeError)) throw e;
            assertGoodMessage(e, file);
          }
        }),
        { seed: fuzzSeed, numRuns: fuzzRuns(400) },
      );
    });
  }

  it('index: generated indexes (keys twice, respelled numbers, control characters) open or give one clean line', async () => {
    const shard = Buffer.concat([Buffer.from([53, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}'), Buffer.alloc(1)]);
    const arb = fc.record({
      meta: fc.constantFrom('', '"metadata":{"total_size":8.0},', '"metadata":{"total_size":1e400},', '"metadata":{"total_size":-0},', '"metadata":null,', '"metadata":[],', '"metadata":{"a":{"b":[1,2.5]}},', '"metadata":{},"metadata":{},'),
      map: fc.constantFrom('{"t":"m.safetensors"}', '{"t":"m.safetensors","t":"m.safetensors"}', '{"t":"../m.safetensors"}', '{"t":1}', '{"t":"m.safetensors","u":"m.safetensors"}', '{"\\u001b[31mt":"m.safetensors"}', '{"t":"m\\u0000.safetensors"}', '[]'),
      twice: fc.boolean(),
      junk: fc.constantFrom('', '', '\u001b[2J', '\u0007x', ' '),
    });
    await fc.assert(
      fc.asyncProperty(arb, async ({ meta, map, twice, junk }) => {
        const fs = new MemoryFiles();
        fs.files.set('d/m.safetensors', shard);
        fs.files.set('d/model.safetensors.index.json', Buffer.from(`{${meta}"weight_map":${map}${twice ? `,"weight_map":${map}` : ''}}${junk}`));
        try {
          const ck = await openSafetensorsIndex(fs, 'd/model.safetensors.index.json');
          // Informational metadata is kept as written, not judged.
          if (meta.includes('8.0')) assert.equal(ck.metadata['total_size'], '8.0');
          assert.ok(!twice && !map.includes('"t":"m.safetensors","t"'), 'a key twice was accepted');
        } catch (e) {
          if (!(e instanceof JaxServeError)) throw e;
          assertGoodMessage(e, 'model.safetensors.index.json');
        }
      }),
      { seed: fuzzSeed, numRuns: fuzzRuns(150) },
    );
  });

  it('index size: one as large as a 1M-tensor index (72 MB) opens; one over MAX_INDEX_BYTES is refused in one line before it is read', async function () {
    this.timeout(120_000);
    const dir = tempDir();
    try {
      const shard = Buffer.concat([Buffer.from([53, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}'), Buffer.alloc(1)]);
      writeFileSync(join(dir.path, 'm.safetensors'), shard);
      const index = join(dir.path, 'model.safetensors.index.json');
      // JSON whitespace pads the index to the size a 1M-tensor index has (the limit was 64 MiB).
      const body = '{"metadata":{},"weight_map":{"t":"m.safetensors"}}';
      writeFileSync(index, Buffer.concat([Buffer.from(body), Buffer.alloc(72_000_000 - body.length, 0x20)]));
      const ck = await openCheckpoint(new NodeFileOpener(), index);
      assert.deepEqual(ck.tensors.map((t) => t.name), ['t']);
      // Past the limit: a sparse file, refused by its size (nothing past the limit is read).
      truncateSync(index, MAX_INDEX_BYTES + 1);
      assertRefused(runCli(['inspect', index]), 'model.safetensors.index.json');
    } finally {
      dir.remove();
    }
  });

  it('safetensors: every spelling of an offset or dimension but plain digits is refused; plain digits are read', async () => {
    const header = (a: string, b: string, d: string) => `{"t":{"dtype":"F32","shape":[${d}],"data_offsets":[${a},${b}]}}`;
    const file = (h: string) => {
      const fs = new MemoryFiles();
      const t = Buffer.from(h);
      const n = Buffer.alloc(8);
      n.writeBigUInt64LE(BigInt(t.length));
      fs.files.set('s.safetensors', Buffer.concat([n, t, Buffer.alloc(8)]));
      return fs;
    };
    const spellings = (v: number) => [`${v}.0`, `${v}e0`, `${v}E+0`, `${v}.000`, `${v * 10}e-1`, `-${v}`, ...(v === 0 ? ['-0', '0.0e5'] : [])];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(0, 1, 2), fc.nat(), async (which, pick) => {
        const plain = ['0', '8', '2'];
        assert.ok(await openSafetensorsFile(file(header(plain[0]!, plain[1]!, plain[2]!)), 's.safetensors'));
        const v = Number(plain[which]);
        const s = spellings(v);
        const spelled = [...plain];
        spelled[which] = s[pick % s.length]!;
        const e = await openSafetensorsFile(file(header(spelled[0]!, spelled[1]!, spelled[2]!)), 's.safetensors').then(
          () => assert.fail(`${spelled.join(' ')} was accepted`),
          (x: unknown) => x as JaxServeError,
        );
        assert.ok(e instanceof JaxServeError && e.code === 'E_FORMAT', String(e));
        assert.match(e.message, /non-negative integers/);
        assertGoodMessage(e, 's.safetensors');
      }),
      { seed: fuzzSeed, numRuns: fuzzRuns(60) },
    );
  });

  it('deep JSON in a header, an index or __metadata__ gives our own error, never a stack overflow', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('extra', 'metadata', 'shape', 'offsets', 'index-metadata', 'index-map'), fc.oneof(fc.integer({ min: 100, max: 140 }), fc.constantFrom(10_000, 200_000)), async (where, depth) => {
        const deep = `${'['.repeat(depth)}${']'.repeat(depth)}`;
        const fs = new MemoryFiles();
        const st = (h: string, n = 0) => {
          const t = Buffer.from(h);
          const len = Buffer.alloc(8);
          len.writeBigUInt64LE(BigInt(t.length));
          return Buffer.concat([len, t, Buffer.alloc(n)]);
        };
        let run: () => Promise<unknown>;
        if (where.startsWith('index')) {
          fs.files.set('d/m.safetensors', st('{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 1));
          fs.files.set('d/model.safetensors.index.json', Buffer.from(where === 'index-metadata' ? `{"metadata":{"x":${deep}},"weight_map":{"t":"m.safetensors"}}` : `{"weight_map":{"t":"m.safetensors","u":${deep}}}`));
          run = () => openSafetensorsIndex(fs, 'd/model.safetensors.index.json');
        } else {
          const h =
            where === 'extra'
              ? `{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":${deep}}}`
              : where === 'metadata'
                ? `{"__metadata__":{"x":${deep}},"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`
                : where === 'shape'
                  ? `{"t":{"dtype":"U8","shape":${deep},"data_offsets":[0,1]}}`
                  : `{"t":{"dtype":"U8","shape":[1],"data_offsets":${deep}}}`;
          fs.files.set('d/m.safetensors', st(h, 1));
          run = () => openSafetensorsFile(fs, 'd/m.safetensors');
        }
        try {
          await run();
          // Only nesting within the limits may open: serde's 127 in a header field the reference
          // ignores, our 128 in the index's informational metadata.
          assert.ok((where === 'extra' && depth + 2 <= 127) || (where === 'index-metadata' && depth + 2 <= 128), `${where} at depth ${depth} was accepted`);
        } catch (e) {
          if (!(e instanceof JaxServeError)) throw new Error(`${where} at depth ${depth}: ${String(e)}`);
          assertGoodMessage(e, where.startsWith('index') ? 'model.safetensors.index.json' : 'm.safetensors');
          if (depth > 130) assert.match(e.message, /nest|depth/);
        }
      }),
      { seed: fuzzSeed, numRuns: fuzzRuns(40) },
    );
  });

  it('flax: the issue\'s cases are refused naming both key paths; their sound neighbours are read', async () => {
    const open = (root: Parameters<typeof enc>[0]) => {
      const fs = new MemoryFiles();
      fs.files.set('f.msgpack', enc(root));
      return openFlaxMsgpackFile(fs, 'f.msgpack');
    };
    const f32 = (n: number, shape = [m.int(n)]) => ndExt(m.arr(shape), m.str('float32'), m.bin(Buffer.alloc(4 * n)));
    const refused = async (root: Parameters<typeof enc>[0], re: RegExp) => {
      const e = await open(root).then(() => assert.fail(`accepted; expected ${re}`), (x: unknown) => x as JaxServeError);
      assert.ok(e instanceof JaxServeError, String(e));
      assert.match(e.message, re);
      assertGoodMessage(e, 'f.msgpack');
    };
    await refused(m.map([[m.str('a'), f32(1)], [m.str('a'), f32(1)]]), /\["a"\] appears twice/);
    await refused(m.map([[m.str('a.b'), f32(1)], [m.str('a'), m.map([[m.str('b'), f32(1)]])]]), /\["a\.b"\] and \["a", "b"\] both flatten to the name "a\.b"/);
    await refused(m.map([[m.int(1), f32(1)], [m.str('1'), f32(1)]]), /\[1\] and \["1"\] both flatten/);
    await refused(m.map([[m.str('w'), f32(2, [m.f64(2)])]]), /float 2\.0/);
    const chunked = (shape: [string, ReturnType<typeof m.int>][], chunks: ReturnType<typeof f32>[]) =>
      m.map([[m.str('w'), m.map([[m.str('__msgpack_chunked_array__'), m.bool(true)], [m.str('shape'), m.map(shape.map(([k, v]) => [m.str(k), v]))], [m.str('chunks'), m.map(chunks.map((c, i) => [m.str(String(i)), c]))]])]]);
    await refused(chunked([['0', m.int(1)]], [f32(1, [])]), /chunk 0 is a 0-d \(scalar\) array/);
    await refused(chunked([['0', m.int(5)]], [f32(2), f32(2)]), /holds 16 bytes but float32\[5\] needs 20/);
    await refused(chunked([['0', m.f64(4)]], [f32(2), f32(2)]), /shape entry "0" is the float 4\.0/);
    const ok = await open(chunked([['0', m.int(2)], ['1', m.int(2)]], [f32(3), f32(1)]));
    assert.deepEqual(ok.tensors.map((t) => [t.name, t.shape]), [['w', [2, 2]]]);
    const neighbours = await open(m.map([[m.str('a.b'), f32(1)], [m.str('a'), m.map([[m.str('c'), f32(1)]])], [m.int(1), f32(2, [m.int(-1)])], [m.str('2'), f32(1)]]));
    assert.deepEqual(neighbours.tensors.map((t) => [t.name, t.shape]), [['a.b', [1]], ['a.c', [1]], ['1', [2]], ['2', [1]]]);
  });

  it('npz: two members for one array are refused naming the member; odd but distinct names are read as numpy reads them', async () => {
    const arr = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", Buffer.alloc(8));
    const open = (names: string[]) => {
      const fs = new MemoryFiles();
      fs.files.set('z.npz', zip(names.map((name) => ({ name, data: arr, deflate: false }))));
      return openNpz(fs, 'z.npz');
    };
    for (const [names, re] of [
      [['w.npy', 'w.npy'], /two members named "w\.npy"/],
      [['w.npy', 'w'], /members "w\.npy" and "w" are both the array "w"/],
      [['w.npy', 'w.npy\u0000x'], /two members named "w\.npy"/],
      [['w.npy.npy', 'w.npy'], /both the array "w\.npy"/],
    ] as const) {
      const e = await open([...names]).then(() => assert.fail(`${names.join(', ')} accepted`), (x: unknown) => x as JaxServeError);
      assert.match(e.message, re);
      assertGoodMessage(e, 'z.npz');
    }
    const ck = await open(['../w.npy', '/w.npy', './w.npy', 'w.npy', 'd/w.npy']);
    assert.deepEqual(ck.tensors.map((t) => t.name), ['../w', '/w', './w', 'w', 'd/w']);
  });
});

describe('hostile formats: we accept exactly what the reference readers accept', function () {
  const PER_FAMILY = fuzzRuns(200);
  let dir: ReturnType<typeof tempDir>;
  const cases: { family: Family; file: string }[] = [];
  const verdicts = new Map<string, { accept: boolean; tensors: [string, number[], string][]; values: string[]; error: string | null; flags: string[] }>();
  before(function () {
    const python = venvPython(this);
    this.timeout(120_000);
    dir = tempDir();
    const arbs: Record<Family, fc.Arbitrary<Buffer>> = { safetensors: safetensorsFileArb, flax: flaxFileArb, npz: npzFileArb };
    for (const family of Object.keys(arbs) as Family[]) {
      fc.sample(arbs[family], { seed: fuzzSeed, numRuns: PER_FAMILY }).forEach((bytes, i) => {
        const file = join(dir.path, `${family}-${i}.${EXT[family]}`);
        writeFileSync(file, bytes);
        cases.push({ family, file });
      });
    }
    const list = join(dir.path, 'list.json');
    writeFileSync(list, JSON.stringify(cases.map((c) => ({ file: c.file, kind: c.family }))));
    const out = execFileSync(python, [resolve(__dirname, '../../../python/fixtures/reference_readers.py'), 'read', list], { encoding: 'utf8', maxBuffer: 64 << 20 });
    for (const line of out.trim().split('\n')) {
      const v = JSON.parse(line) as { file: string } & Parameters<typeof verdicts.set>[1];
      verdicts.set(v.file, v);
    }
  });
  after(() => dir?.remove());

  for (const family of ['safetensors', 'flax', 'npz'] as Family[]) {
    it(`${family}: accept/refuse and the leaves agree, but for the listed exceptions`, async function () {
      this.timeout(60_000);
      const stats = { agree: 0, bothRefuse: 0, exceptions: new Map<string, number>() };
      for (const c of cases.filter((x) => x.family === family)) {
        const ref = verdicts.get(c.file);
        assert.ok(ref, `no reference verdict for ${c.file}`);
        const got = await ours(c.file);
        if (got.error) assertGoodMessage(got.error, c.file);
        if (process.env.JAX_SERVE_FUZZ_VERBOSE) console.log(`${ref.accept ? 'ACC' : 'REF'} ${got.error ? 'REF' : 'ACC'} ${c.file.split('/').pop()} ${ref.error ?? ''} || ${got.error?.message.replace(/^.*?: /, '') ?? ''}`);
        if (family === 'safetensors') {
          // The fast path must never take a header the reference refuses.
          const bytes = readFileSync(c.file);
          const n = bytes.length >= 8 ? Number(bytes.readBigUInt64LE(0)) : 0;
          const fast = n > 0 && n <= bytes.length ? fastHeaderEntries(bytes.subarray(8, 8 + n), bytes.subarray(8, 8 + n).toString('utf8'), 64) : undefined;
          assert.ok(fast === undefined || ref.accept, `${c.file}: the fast path read a header the reference refuses (${ref.error})`);
        }
        if (ref.accept && got.ck) {
          const sort = <T>(xs: T[]) => xs.map((x) => JSON.stringify(x)).sort();
          const tensors = got.ck.tensors.map((t) => [t.name, [...t.shape], t.dtype]);
          assert.deepEqual(sort(tensors), sort(ref.tensors), `${c.file}: tensors differ from the reference`);
          if (family !== 'safetensors') assert.deepEqual(sort((got.ck.values ?? []).map((v) => v.name)), sort(ref.values), `${c.file}: values differ`);
          stats.agree++;
        } else if (ref.accept && got.error) {
          const why = ref.flags.find((f) => EXCEPTIONS[f]?.ours.test(got.error!.message));
          assert.ok(why, `${c.file}: the reference accepts it (flags ${ref.flags.join(', ') || 'none'}) but we refuse: ${got.error.message}`);
          stats.exceptions.set(why, (stats.exceptions.get(why) ?? 0) + 1);
        } else if (!ref.accept && got.ck) {
          assert.fail(`${c.file}: the reference refuses it (${ref.error}) but we accept it`);
        } else stats.bothRefuse++;
      }
      // Each family must exercise both sides, or the comparison proves little.
      assert.ok(stats.agree >= 5 && stats.bothRefuse >= 5, `${family}: ${JSON.stringify({ ...stats, exceptions: [...stats.exceptions] })}`);
      if (process.env.JAX_SERVE_FUZZ_VERBOSE) console.log(family, { ...stats, exceptions: Object.fromEntries(stats.exceptions) });
    });
  }

  it('a sample of the refused files, through the CLI: exit 2, one clean line naming the file', function () {
    this.timeout(60_000);
    for (const family of ['safetensors', 'flax', 'npz'] as Family[]) {
      const refused = cases.filter((c) => c.family === family && !verdicts.get(c.file)!.accept).slice(0, 3);
      assert.ok(refused.length > 0, family);
      for (const c of refused) assertRefused(runCli(['inspect', c.file]), c.file, `inspect ${c.file.split('/').pop()}`);
    }
  });
});
