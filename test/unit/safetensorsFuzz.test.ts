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
