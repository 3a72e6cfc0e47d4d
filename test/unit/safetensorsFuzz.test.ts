/**
 * Property tests of the safetensors reader and writer. Seeds are fixed (JAX_SERVE_FUZZ_SEED, default
 * below) and the run count comes from JAX_SERVE_FUZZ_RUNS, so CI is repeatable; fast-check prints the
 * seed and the shrunk counterexample on failure.
 */
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { DTYPE_BITS, JaxServeError, openSafetensorsFile, readExactly, writeSafetensors, type DType, type TensorSpec } from '../../src/core/index';
import { MemoryFiles, rawSafetensors } from './helpers';

const seed = Number(process.env.JAX_SERVE_FUZZ_SEED ?? 20261126);
const numRuns = Number(process.env.JAX_SERVE_FUZZ_RUNS ?? 200);
const params = { seed, numRuns, timeout: 2000, markInterruptAsFailure: true } as const;

const byteDtypes = (Object.keys(DTYPE_BITS) as DType[]).filter((d) => DTYPE_BITS[d] % 8 === 0);
const specArb = fc.record({
  name: fc.string({ minLength: 1, maxLength: 12, unit: 'grapheme' }).filter((s) => s !== '__metadata__'),
  dtype: fc.constantFrom(...byteDtypes),
  shape: fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 4 }),
});
const specsArb = fc.uniqueArray(specArb, { selector: (s) => s.name, maxLength: 8 });

async function writeToMemory(specs: TensorSpec[]) {
  const fs = new MemoryFiles();
  const fill = (s: TensorSpec) => {
    const n = (s.shape.reduce((a, b) => a * b, 1) * DTYPE_BITS[s.dtype]) / 8;
    return Uint8Array.from({ length: n }, (_, i) => (i * 31 + s.name.length) & 255);
  };
  await writeSafetensors(fs.sink('f.safetensors'), specs, fill);
  return { fs, fill };
}

/** Either a clean JaxServeError or a checkpoint whose tensors tile the data exactly, inside the file. */
async function openIsSafe(fs: MemoryFiles) {
  const size = fs.files.get('f.safetensors')!.length;
  try {
    const ck = await openSafetensorsFile(fs, 'f.safetensors');
    let end = -1;
    for (const t of ck.tensors) {
      if (end >= 0) assert.equal(t.source.offset, end);
      end = t.source.offset + t.bytes;
      assert.ok(end <= size);
    }
    if (ck.tensors.length > 0) assert.equal(end, size);
  } catch (e) {
    if (!(e instanceof JaxServeError)) throw new Error(`not a JaxServeError: ${String(e)}`);
    assert.match(e.message, /f\.safetensors/);
  }
}

describe(`safetensors fuzzing (seed ${seed}, ${numRuns} runs)`, () => {
  it('writer then reader returns every tensor bit for bit', async () => {
    await fc.assert(
      fc.asyncProperty(specsArb, async (specs) => {
        const { fs, fill } = await writeToMemory(specs);
        const ck = await openSafetensorsFile(fs, 'f.safetensors');
        assert.equal(ck.tensors.length, specs.length);
        const src = await fs.open('f.safetensors');
        for (const t of ck.tensors) {
          const spec = specs.find((s) => s.name === t.name)!;
          assert.deepEqual([t.dtype, t.shape], [spec.dtype, spec.shape]);
          const got = new Uint8Array(t.bytes);
          await readExactly(src, t.source.offset, got);
          assert.deepEqual(got, fill(spec));
        }
      }),
      params,
    );
  });

  it('any byte mutation, truncation or extension gives a valid checkpoint or a clear error', async () => {
    await fc.assert(
      fc.asyncProperty(
        specsArb,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
        fc.integer({ min: -16, max: 16 }),
        async (specs, flips, resize) => {
          const { fs } = await writeToMemory(specs);
          let b = fs.files.get('f.safetensors')!.slice();
          for (const [pos, val] of flips) b[pos % b.length] = val;
          if (resize < 0) b = b.subarray(0, Math.max(0, b.length + resize));
          else if (resize > 0) b = Uint8Array.from([...b, ...new Uint8Array(resize)]);
          fs.files.set('f.safetensors', b);
          await openIsSafe(fs);
        },
      ),
      params,
    );
  });

  it('arbitrary JSON headers give a valid checkpoint or a clear error', async () => {
    const entry = fc.record(
      { dtype: fc.oneof(fc.constantFrom(...byteDtypes, 'F4', 'X'), fc.anything()), shape: fc.oneof(fc.array(fc.integer({ min: -2, max: 4 }), { maxLength: 3 }), fc.anything()), data_offsets: fc.oneof(fc.tuple(fc.nat(64), fc.nat(64)), fc.anything()) },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.string({ maxLength: 6 }), fc.oneof(entry, fc.jsonValue())), fc.nat(64), async (header, dataLen) => {
        const fs = new MemoryFiles();
        fs.files.set('f.safetensors', rawSafetensors(JSON.stringify(header), new Uint8Array(dataLen)));
        await openIsSafe(fs);
      }),
      params,
    );
  });
});

describe(`JSON fast paths agree with JSON.parse (seed ${seed}, ${numRuns} runs)`, () => {
  /** What the JSON.parse path makes of a header that parses, in its enumeration order. */
  function viaJsonParse(text: string): { tensors: unknown[]; metadata: Record<string, string> } | undefined {
    let obj: Record<string, unknown>;
    try {
      obj = JSON.parse(text);
    } catch {
      return undefined;
    }
    const tensors: unknown[] = [];
    const metadata: Record<string, string> = Object.create(null);
    for (const name in obj) {
      const v = obj[name] as Record<string, unknown>;
      if (name === '__metadata__') Object.assign(metadata, v ?? {});
      else tensors.push({ name, dtype: v.dtype, shape: v.shape, begin: (v.data_offsets as number[])[0], end: (v.data_offsets as number[])[1] });
    }
    return { tensors, metadata };
  }
  const nameArb = fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('0', '12', '__proto__', 'a"b', 'a\\b', 'é', '\u0001', 'model.layers.0.w'));
  const entryArb = fc.record({
    dtype: fc.oneof({ arbitrary: fc.constantFrom(...byteDtypes), weight: 8 }, { arbitrary: fc.constantFrom('X', 'f32'), weight: 1 }),
    shape: fc.array(fc.oneof({ arbitrary: fc.nat(9), weight: 12 }, { arbitrary: fc.constantFrom(1e20, 1.5, -1), weight: 1 }), { maxLength: 3 }),
    data_offsets: fc.tuple(fc.nat(99), fc.nat(99)),
  });
  const headerArb = fc.tuple(
    fc.array(fc.tuple(nameArb, entryArb), { maxLength: 6 }),
    fc.option(fc.dictionary(nameArb, fc.string({ maxLength: 4 }), { maxKeys: 3 })),
    // Writers emit compact JSON (the fast path); indented text must come out the same through JSON.parse.
    fc.constantFrom(undefined, undefined, undefined, 0, 2, '\t'),
  );

  it('safetensors headers: a fast result equals the JSON.parse result; writers\' output takes the fast path', async () => {
    const { fastHeaderEntries } = await import('../../src/core/formats/safetensors/fastJson');
    let hits = 0;
    fc.assert(
      fc.property(headerArb, ([entries, meta, indent]) => {
        const obj: Record<string, unknown> = {};
        if (meta) obj.__metadata__ = meta;
        for (const [k, v] of entries) obj[k] = v;
        const text = JSON.stringify(obj, null, indent) + ' '.repeat(entries.length % 3);
        const fast = fastHeaderEntries(new TextEncoder().encode(text), text, 64);
        if (fast) hits++;
        if (fast) assert.deepEqual({ tensors: fast.tensors, metadata: { ...fast.metadata } }, { ...viaJsonParse(text)!, metadata: { ...viaJsonParse(text)!.metadata } });
      }),
      params,
    );
    assert.ok(hits >= numRuns / 10, `only ${hits} of ${numRuns} cases took the fast path; the property says little`);
    // A duplicate key is left to the JSON.parse path (which reports it).
    const twice = '{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[],"data_offsets":[4,8]}}';
    assert.equal(fastHeaderEntries(new TextEncoder().encode(twice), twice, 64), undefined);
    const fs = new MemoryFiles();
    await writeSafetensors(fs.sink('w.safetensors'), [{ name: 'model.embed.weight', dtype: 'BF16', shape: [2, 3] }, { name: 'lm_head.weight', dtype: 'F32', shape: [4] }], (s) => new Uint8Array(s.dtype === 'F32' ? 16 : 12), { metadata: { format: 'pt' } });
    const bytes = fs.files.get('w.safetensors')!;
    const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    const header = bytes.subarray(8, 8 + n);
    assert.ok(fastHeaderEntries(header, new TextDecoder().decode(header), 64), 'our writer\'s header takes the fast path');
  });

  it('sharded indexes: a fast result equals the JSON.parse result; the HF layout (indent 2, sorted) takes the fast path', async () => {
    const { fastIndexEntries } = await import('../../src/core/formats/safetensors/fastJson');
    let hits = 0;
    const indexArb = fc.tuple(
      fc.dictionary(nameArb, fc.oneof(fc.string({ maxLength: 5 }), fc.constant('model-00001-of-00002.safetensors')), { maxKeys: 6 }),
      fc.option(fc.dictionary(nameArb, fc.oneof(fc.string({ maxLength: 4 }), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })), { maxKeys: 3 })),
      fc.constantFrom(undefined, 2),
    );
    fc.assert(
      fc.property(indexArb, ([wm, meta, indent]) => {
        const text = JSON.stringify(meta === null ? { weight_map: wm } : { metadata: meta, weight_map: wm }, null, indent);
        const fast = fastIndexEntries(new TextEncoder().encode(text), text);
        if (!fast) return;
        hits++;
        const json = JSON.parse(text);
        assert.deepEqual(fast.names.map((n, k) => [n, fast.shards[fast.shardOf[k]!]]), Object.entries(json.weight_map));
        assert.deepEqual({ ...fast.metadata }, Object.fromEntries(Object.entries(json.metadata ?? {}).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)])));
      }),
      params,
    );
    assert.ok(hits >= numRuns / 10, `only ${hits} of ${numRuns} cases took the fast path; the property says little`);
    const hf = JSON.stringify({ metadata: { total_size: 123456 }, weight_map: { 'lm_head.weight': 'model-00002-of-00002.safetensors', 'model.embed_tokens.weight': 'model-00001-of-00002.safetensors' } }, null, 2);
    assert.ok(fastIndexEntries(new TextEncoder().encode(hf), hf), 'the HF index layout takes the fast path');
  });
});
