/**
 * numpy .npy/.npz written by the real numpy: stored and deflated members, zip64, C and Fortran
 * order, big-endian, 0-d, empty; non-tensor arrays listed with the reason; malformed input refused.
 */
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openCheckpoint, readTensorBytes, tensorStats } from '../../src/core/index';
import { NodeFileOpener } from '../../src/core/node/index';
import { rejectsWith, tempDir, venvPython, writeFixtures } from './helpers';


describe('numpy .npy/.npz written by numpy', function () {
  let dir: ReturnType<typeof tempDir>;
  let manifest: Record<string, { tensors: Record<string, { dtype: string; shape: number[]; order: string; sha256: string }>; values: string[] }>;
  before(function () {
    const python = venvPython(this);
    this.timeout(60_000);
    dir = tempDir();
    manifest = writeFixtures(python, 'npz.py', dir.path);
  });
  after(() => dir?.remove());

  it('reads every array bit for bit (little-endian, storage order), with dtype, shape and order', async () => {
    const opener = new NodeFileOpener();
    for (const [file, want] of Object.entries(manifest)) {
      const ck = await openCheckpoint(opener, join(dir.path, file));
      const got: typeof want.tensors = {};
      for (const t of ck.tensors) {
        const h = createHash('sha256');
        for await (const c of readTensorBytes(opener, t, { chunkBytes: 4096 })) h.update(c);
        got[t.name] = { dtype: t.dtype, shape: [...t.shape], order: t.order ?? 'C', sha256: h.digest('hex') };
      }
      assert.deepEqual(got, want.tensors, file);
      assert.deepEqual((ck.values ?? []).map((v) => v.name).sort(), [...want.values].sort(), file);
    }
  });

  it('says why an array is not a tensor: pickled objects, records, a bfloat16 saved as opaque |V2', async () => {
    const opener = new NodeFileOpener();
    const values = (f: string) => Object.fromEntries((ck(f) as never as { values: { name: string; value: string }[] }).values.map((v) => [v.name, v.value]));
    const ck = (f: string) => cache.get(f);
    const cache = new Map<string, unknown>();
    for (const f of ['stored.npz', 'objects.npz']) cache.set(f, await openCheckpoint(opener, join(dir.path, f)));
    assert.match(values('stored.npz')['bf16_opaque']!, /opaque void .* bfloat16 .* ml_dtypes/);
    assert.match(values('stored.npz')['records']!, /structured/);
    assert.match(values('objects.npz')['obj']!, /pickled.*refused/);
  });

  it('computes statistics through a deflated member across many inflate chunks', async () => {
    const opener = new NodeFileOpener();
    const ck = await openCheckpoint(opener, join(dir.path, 'compressed_big.npz'));
    const t = ck.tensors[0]!;
    assert.ok(t.source.deflate, 'member is deflated');
    const st = await tensorStats(opener, t, { chunkBytes: 1000 });
    assert.equal(st.count, 512 * 700);
    assert.equal(st.nan, 0);
    assert.ok(Math.abs(st.mean!) < 0.01 && Math.abs(st.std! - 1) < 0.01, `${st.mean} ${st.std}`);
  });

  it('refuses a truncated archive and a corrupt compressed member, naming the file', async () => {
    const opener = new NodeFileOpener();
    const bytes = readFileSync(join(dir.path, 'stored.npz'));
    const cut = join(dir.path, 'cut.npz');
    writeFileSync(cut, bytes.subarray(0, bytes.length - 30));
    await rejectsWith(openCheckpoint(opener, cut), 'E_FORMAT', /cut\.npz: /);
    const comp = Buffer.from(readFileSync(join(dir.path, 'compressed_big.npz')));
    const bad = join(dir.path, 'bad.npz');
    comp.fill(0xff, 2000, 4000); // inside the deflate stream, after the header
    writeFileSync(bad, comp);
    const ck = await openCheckpoint(opener, bad);
    await rejectsWith(tensorStats(opener, ck.tensors[0]!), 'E_FORMAT', /bad\.npz: a compressed member/);
  });

  it('refuses a .npy whose header is not the numpy literal, without evaluating it', async () => {
    const f = join(dir.path, 'evil.npy');
    const header = "{'descr': __import__('os').system('true'), 'fortran_order': False, 'shape': (1,), }";
    const h = Buffer.from(header.padEnd(118) + '\n');
    writeFileSync(f, Buffer.concat([Buffer.from([0x93]), Buffer.from('NUMPY'), Buffer.from([1, 0, h.length, 0]), h, Buffer.alloc(4)]));
    await rejectsWith(openCheckpoint(new NodeFileOpener(), f), 'E_FORMAT', /evil\.npy: the \.npy header is not a numpy header literal/);
  });
});
