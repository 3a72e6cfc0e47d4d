/**
 * Bit-exact interchange with the real Python `safetensors` (torch and numpy writers) in the pinned
 * venv. `npm test` sets JAX_SERVE_PYTHON and JAX_SERVE_REQUIRE_PYTHON=1, so these never skip there;
 * a bare `npm run test:unit` without the venv skips them and says why.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { DTYPE_BITS, openCheckpoint, readExactly, writeSafetensors, writeShardedSafetensors, type Checkpoint, type DType, type TensorSpec } from '../../src/core/index';
import { NodeFileOpener, openAtomicFileSink } from '../../src/core/node/index';
import { prng, randomBytes, tempDir, venvPython } from './helpers';

let python: string | undefined;
const script = resolve(__dirname, '../../../python/fixtures/safetensors_interop.py');

interface Entry {
  dtype: string;
  shape: number[];
  sha256: string;
}

function py(...args: string[]): unknown {
  return JSON.parse(execFileSync(python!, [script, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 }));
}

async function ourHashes(ck: Checkpoint): Promise<Record<string, Entry>> {
  const opener = new NodeFileOpener();
  const out: Record<string, Entry> = {};
  for (const t of ck.tensors) {
    const src = await opener.open(t.source.file);
    const b = new Uint8Array(t.bytes);
    await readExactly(src, t.source.offset, b);
    await src.close();
    out[t.name] = { dtype: t.dtype, shape: [...t.shape], sha256: createHash('sha256').update(b).digest('hex') };
  }
  return out;
}

describe('bit-exact interchange with Python safetensors', function () {
  // Each case starts Python and imports torch (seconds on a busy 2-core machine).
  this.timeout(120_000);
  let dir: ReturnType<typeof tempDir>;
  before(function () {
    python = venvPython(this);
    dir = tempDir();
  });
  after(() => dir?.remove());

  it('reads every file Python wrote (torch every dtype, numpy, sharded index) bit for bit', async () => {
    const manifest = py('write', dir.path) as Record<string, { metadata: Record<string, string>; tensors: Record<string, Entry>; skipped?: string[] }>;
    assert.ok(Object.keys(manifest).length >= 3);
    const dtypesSeen = new Set<string>();
    for (const [file, want] of Object.entries(manifest)) {
      const ck = await openCheckpoint(new NodeFileOpener(), join(dir.path, file));
      assert.deepEqual({ ...ck.metadata }, want.metadata, file);
      assert.deepEqual(await ourHashes(ck), want.tensors, file);
      for (const e of Object.values(want.tensors)) dtypesSeen.add(e.dtype);
    }
    // The torch writer must have covered the dtypes a model actually uses.
    for (const d of ['BF16', 'F16', 'F32', 'F64', 'F8_E4M3', 'F8_E5M2', 'I64', 'BOOL']) assert.ok(dtypesSeen.has(d), d);
  });

  it('Python loads every file we wrote (every dtype torch knows, 0-d, empty, shards) bit for bit', async () => {
    const rand = prng(11);
    const dtypes: DType[] = ['BOOL', 'U8', 'I8', 'I16', 'U16', 'I32', 'U32', 'I64', 'U64', 'F16', 'BF16', 'F32', 'F64', 'F8_E4M3', 'F8_E5M2', 'F8_E4M3FNUZ', 'F8_E5M2FNUZ', 'F8_E8M0', 'C64'];
    const specs: TensorSpec[] = dtypes.flatMap((dtype) => [
      { name: `w.${dtype}`, dtype, shape: [3, 7] },
      { name: `w.${dtype}.scalar`, dtype, shape: [] },
      { name: `w.${dtype}.empty`, dtype, shape: [2, 0] },
    ]);
    const bytes = (s: TensorSpec) => {
      const b = randomBytes(rand, (s.shape.reduce((a, c) => a * c, 1) * DTYPE_BITS[s.dtype]) / 8);
      return s.dtype === 'BOOL' ? b.map((x) => x & 1) : b;
    };
    const data = new Map(specs.map((s) => [s.name, bytes(s)]));
    const file = join(dir.path, 'ours.safetensors');
    await writeSafetensors(await openAtomicFileSink(file, { sources: [] }), specs, (s) => data.get(s.name)!);
    const got = py('read', file) as { metadata: Record<string, string>; tensors: Record<string, Entry> };
    assert.deepEqual(got.metadata, { format: 'pt' });
    const want = Object.fromEntries(specs.map((s) => [s.name, { dtype: s.dtype, shape: [...s.shape], sha256: createHash('sha256').update(data.get(s.name)!).digest('hex') }]));
    assert.deepEqual(got.tensors, want);

    const shardDir = join(dir.path, 'shards');
    mkdirSync(shardDir);
    const plan = await writeShardedSafetensors((f) => openAtomicFileSink(join(shardDir, f), { sources: [] }), specs, (s) => data.get(s.name)!, { maxShardBytes: 256 });
    assert.ok(plan.files.length > 2);
    const merged: Record<string, Entry> = {};
    for (const f of plan.files) Object.assign(merged, (py('read', join(shardDir, f.name)) as { tensors: Record<string, Entry> }).tensors);
    assert.deepEqual(merged, want);
  });
});
