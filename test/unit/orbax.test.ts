/**
 * Orbax through the Python sidecar: checkpoints written by the real orbax-checkpoint (OCDBT zarr2,
 * zarr3, one folder per array, an NNX state, a CheckpointManager root, two jax processes) read bit
 * for bit, range by range, without importing jax or orbax (so nothing is restored); and every way
 * the sidecar or its input can be wrong gives a clear error, not a hang.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, readFileSync, rmSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { checkpointFileInFolder, openCheckpoint, readExactly, readTensorBytes, tensorSlice, valueOpener, type Checkpoint } from '../../src/core/index';
import { NodeFileOpener, PythonSidecar, sidecarScript } from '../../src/core/node/index';
import { prng, rejectsWith, tempDir, venvPython, writeFixtures } from './helpers';

type Manifest = Record<string, { tensors: Record<string, { dtype: string; shape: number[]; sha256: string }>; values: Record<string, string> }>;

const SCRIPT = sidecarScript(resolve(__dirname, '../../..'));
const CLI = resolve(__dirname, '../../../dist/cli.js');

async function allBytes(ck: Checkpoint, name: string): Promise<Buffer> {
  const t = ck.tensors.find((x) => x.name === name)!;
  const parts: Uint8Array[] = [];
  for await (const b of readTensorBytes(valueOpener(ck, new NodeFileOpener()), t, { chunkBytes: 4096 })) parts.push(Buffer.from(b));
  return Buffer.concat(parts);
}

describe('Orbax checkpoints through the Python sidecar', function () {
  let dir: ReturnType<typeof tempDir>;
  let manifest: Manifest;
  let python: string;
  let sidecar: PythonSidecar;
  const open = (p: string) => openCheckpoint(new NodeFileOpener(), p, { orbax: sidecar });

  before(function () {
    python = venvPython(this);
    this.timeout(300_000);
    dir = tempDir();
    manifest = writeFixtures(python, 'orbax_ckpt.py', dir.path);
    sidecar = new PythonSidecar({ python, script: SCRIPT });
  });
  after(() => {
    sidecar?.dispose();
    dir?.remove();
  });

  it('reads every array of every layout bit for bit, with dtype, shape and the other leaves', async function () {
    this.timeout(60_000);
    assert.deepEqual(Object.keys(manifest).sort(), ['manager', 'multiprocess', 'nnx', 'per_array', 'tree', 'zarr3']);
    for (const [name, want] of Object.entries(manifest)) {
      const ck = await open(join(dir.path, name));
      assert.equal(ck.format, 'orbax');
      const got: typeof want.tensors = {};
      for (const t of ck.tensors) {
        got[t.name] = { dtype: t.dtype, shape: [...t.shape], sha256: createHash('sha256').update(await allBytes(ck, t.name)).digest('hex') };
      }
      assert.deepEqual(got, want.tensors, name);
      assert.deepEqual(Object.fromEntries((ck.values ?? []).map((v) => [v.name, v.value])), want.values, name);
    }
  });

  it('presents an nnx.State without the trailing value key, and says so', async () => {
    const ck = await open(join(dir.path, 'nnx'));
    assert.ok(ck.tensors.some((t) => t.name === 'layers.0.kernel'));
    assert.ok(ck.tensors.every((t) => t.path.at(-1) !== 'value'));
    assert.deepEqual(ck.tensors.find((t) => t.name === 'layers.1.bias')!.path, ['layers', 1, 'bias']);
    assert.match(ck.metadata['orbax.nnx'] ?? '', /value/);
  });

  it('opens a CheckpointManager root at its latest step, and a multi-process checkpoint whole; says the step, its commit time and the sharding', async () => {
    const m = await open(join(dir.path, 'manager'));
    assert.match(m.metadata['orbax.opened'] ?? '', /latest of 2 steps: 3; item: default/);
    assert.equal(m.files[0], join(dir.path, 'manager', '3', 'default'));
    assert.equal(m.metadata['orbax.step'], '3');
    assert.match(m.metadata['orbax.committed'] ?? '', /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
    assert.equal((await open(join(dir.path, 'manager', '1')))!.metadata['orbax.step'], '1');
    // A MaxText run folder holds the manager root as checkpoints/: the run opens at its latest step too.
    cpSync(join(dir.path, 'manager'), join(dir.path, 'maxtext_run', 'checkpoints'), { recursive: true });
    assert.equal((await open(join(dir.path, 'maxtext_run'))).metadata['orbax.step'], '3');
    assert.equal(await checkpointFileInFolder(new NodeFileOpener(), join(dir.path, 'maxtext_run')), join(dir.path, 'maxtext_run', 'checkpoints', '3', '_CHECKPOINT_METADATA'));
    const mp = await open(join(dir.path, 'multiprocess'));
    assert.equal(mp.metadata['orbax.processes'], '2');
    // Two processes saved on a mesh of two devices: one array split over it, one replicated.
    assert.equal(mp.metadata['orbax.sharding'], 'NamedSharding mesh x=2: 2 arrays (1 partitioned, 1 replicated)');
    assert.equal((await open(join(dir.path, 'nnx'))).metadata['orbax.sharding'], 'SingleDeviceSharding (cpu:0): 7 arrays');
    // Opening orbax's own marker files opens their folder (what the editor does for _METADATA).
    const viaFile = await openCheckpoint(new NodeFileOpener(), join(dir.path, 'tree', '_METADATA'), { orbax: sidecar });
    assert.equal(viaFile.tensors.length, manifest.tree!.tensors ? Object.keys(manifest.tree!.tensors).length : -1);
  });

  it('reads any byte range of a many-chunk array in C order (300 ranges, seeded)', async function () {
    this.timeout(60_000);
    for (const layout of ['tree', 'zarr3', 'per_array']) {
      const ck = await open(join(dir.path, layout));
      const t = ck.tensors.find((x) => x.name === 'params.big')!;
      const whole = await allBytes(ck, t.name);
      const src = await valueOpener(ck, new NodeFileOpener()).open(t.source.file);
      const rand = prng(20261126);
      for (let i = 0; i < 100; i++) {
        const a = Math.floor(rand() * (t.bytes / 4));
        const n = 1 + Math.floor(rand() * Math.min(2000, t.bytes / 4 - a));
        const b = new Uint8Array(n * 4);
        await readExactly(src, a * 4, b);
        assert.ok(Buffer.from(b).equals(whole.subarray(a * 4, (a + n) * 4)), `${layout} [${a}, ${a + n})`);
      }
    }
  });

  it('serves 2-D slices of a 3-D array', async () => {
    const ck = await open(join(dir.path, 'tree'));
    const t = ck.tensors.find((x) => x.name === 'params.big')!;
    const all = new Float32Array(new Uint8Array(await allBytes(ck, t.name)).buffer);
    const s = await tensorSlice(valueOpener(ck, new NodeFileOpener()), t, { rowAxis: 0, colAxis: 2, index: [0, 2, 0], rowStart: 5, rowCount: 7, colStart: 100, colCount: 30 });
    assert.equal(s.rows, 7);
    assert.equal(s.cols, 25);
    for (let r = 0; r < s.rows; r++) for (let c = 0; c < s.cols; c++) assert.equal(s.values[r * s.cols + c], all[(5 + r) * 375 + 2 * 125 + 100 + c]);
  });

  it('never imports jax or orbax for checkpoints with _METADATA: nothing is restored', async () => {
    const fresh = new PythonSidecar({ python, script: SCRIPT });
    try {
      const ck = await openCheckpoint(new NodeFileOpener(), join(dir.path, 'tree'), { orbax: fresh });
      await allBytes(ck, 'params.big');
      assert.deepEqual(await fresh.modules(), []);
    } finally {
      fresh.dispose();
    }
  });

  it('without _METADATA, lists the arrays from the store (OCDBT and per-array folders), values intact', async () => {
    for (const layout of ['tree', 'per_array', 'zarr3']) {
      const copy = join(dir.path, `${layout}-no-metadata`);
      cpSync(join(dir.path, layout), copy, { recursive: true });
      rmSync(join(copy, '_METADATA'));
      const ck = await open(copy);
      assert.match(ck.metadata['orbax.structure'] ?? '', /listed from the array store/, layout);
      const want = manifest[layout]!;
      // Scalars look like 0-d arrays in the store; the arrays are all there, bit for bit.
      for (const [name, facts] of Object.entries(want.tensors)) {
        const t = ck.tensors.find((x) => x.name === name);
        assert.ok(t, `${layout}: ${name}`);
        assert.equal(createHash('sha256').update(await allBytes(ck, name)).digest('hex'), facts.sha256, `${layout}: ${name}`);
      }
      assert.ok(ck.tensors.some((t) => t.name === 'step' && t.shape.length === 0), `${layout}: the step scalar as a 0-d array`);
    }
  });

  it('refuses what is not a finished Orbax checkpoint, naming the folder', async () => {
    await rejectsWith(open(join(dir.path, 'nothing-here')), 'E_NOT_FOUND', /nothing-here: no such file or folder/);
    mkdirSync(join(dir.path, 'empty'));
    await rejectsWith(open(join(dir.path, 'empty')), 'E_FORMAT', /empty: not an Orbax checkpoint/);
    cpSync(join(dir.path, 'tree'), join(dir.path, 'unfinished'), { recursive: true });
    rmSync(join(dir.path, 'unfinished', 'manifest.ocdbt'));
    await rejectsWith(open(join(dir.path, 'unfinished')), 'E_FORMAT', /not finalized/);
    // A step holding two items: the user must say which.
    cpSync(join(dir.path, 'manager', '1', 'default'), join(dir.path, 'manager', '1', 'other'), { recursive: true });
    await rejectsWith(open(join(dir.path, 'manager', '1')), 'E_USAGE', /holds 2 items \(default, other\)/);
    // Without a sidecar, the user is told what is needed.
    await rejectsWith(openCheckpoint(new NodeFileOpener(), join(dir.path, 'tree')), 'E_UNSUPPORTED', /Orbax folders need Python with tensorstore/);
  });

  it('refuses an array name in _METADATA that leads outside the folder', async () => {
    const bad = join(dir.path, 'hostile');
    cpSync(join(dir.path, 'per_array'), bad, { recursive: true });
    const md = JSON.parse(readFileSync(join(bad, '_METADATA'), 'utf8'));
    // Keys are joined with '.', so a '/' inside one key is the way out of a per-array layout.
    md.tree_metadata["('x',)"] = { key_metadata: [{ key: '../per_array/params.embed', key_type: 2 }], value_metadata: { value_type: 'np.ndarray' } };
    writeFileSync(join(bad, '_METADATA'), JSON.stringify(md));
    await rejectsWith(open(bad), 'E_UNSAFE_PATH', /points outside the checkpoint folder/);
  });

  it('reports a missing interpreter, a Python without tensorstore, a crash and a broken protocol', async function () {
    this.timeout(60_000);
    const tree = join(dir.path, 'tree');
    const missing = new PythonSidecar({ python: join(dir.path, 'no-such-python'), script: SCRIPT, interpreterHint: 'Set jaxServe.pythonPath.' });
    await rejectsWith(openCheckpoint(new NodeFileOpener(), tree, { orbax: missing }), 'E_UNSUPPORTED', /no-such-python" was not found\. Set jaxServe\.pythonPath\./);

    // A real Python whose environment has no tensorstore (an empty venv).
    const bare = join(dir.path, 'bare-venv');
    execFileSync(python, ['-m', 'venv', '--without-pip', bare]);
    const noTs = new PythonSidecar({ python: join(bare, 'bin', 'python'), script: SCRIPT });
    try {
      await rejectsWith(openCheckpoint(new NodeFileOpener(), tree, { orbax: noTs }), 'E_UNSUPPORTED', /cannot import tensorstore.*pip install tensorstore/);
    } finally {
      noTs.dispose();
    }

    // Killed mid-session: what was pending fails, the next request starts a new process.
    const s = new PythonSidecar({ python, script: SCRIPT });
    try {
      const ck = await openCheckpoint(new NodeFileOpener(), tree, { orbax: s });
      const pid = s.pid!;
      process.kill(pid, 'SIGKILL');
      await rejectsWith(allBytes(ck, 'params.big'), 'E_IO', /sidecar .* exited \(SIGKILL\)/);
      const again = await allBytes(ck, 'params.big');
      assert.equal(again.length, 40 * 3 * 125 * 4);
      assert.notEqual(s.pid, pid);
    } finally {
      s.dispose();
    }

    // Something that is not our sidecar on the other end.
    const fake = join(dir.path, 'fake-python');
    writeFileSync(fake, '#!/bin/sh\necho "Welcome to something else"\ncat >/dev/null\n');
    chmodSync(fake, 0o755);
    const f = new PythonSidecar({ python: fake, script: SCRIPT });
    try {
      await rejectsWith(f.hello(), 'E_IO', /broke the protocol: it printed "Welcome to something else"/);
    } finally {
      f.dispose();
    }
  });

  it('honours cancellation of a read', async () => {
    const ck = await open(join(dir.path, 'tree'));
    const t = ck.tensors.find((x) => x.name === 'params.big')!;
    const ac = new AbortController();
    ac.abort();
    await rejectsWith(sidecar.read(ck.files[0]!, 'params.big', 0, t.bytes, ac.signal), 'E_CANCELLED', /Cancelled/);
    // The sidecar still answers afterwards.
    assert.equal((await sidecar.read(ck.files[0]!, 'params.big', 0, 8)).length, 8);
  });

  it('the CLI inspects and computes stats of an Orbax folder with --python', () => {
    const out = JSON.parse(execFileSync(process.execPath, [CLI, 'inspect', join(dir.path, 'nnx'), '--python', python, '--json'], { encoding: 'utf8' }));
    assert.equal(out.format, 'orbax');
    assert.ok(out.tensors.some((t: { name: string }) => t.name === 'up.kernel'));
    const st = JSON.parse(execFileSync(process.execPath, [CLI, 'stats', join(dir.path, 'multiprocess'), 'w', '--python', python, '--json'], { encoding: 'utf8' }));
    assert.equal(st.count, 48);
    assert.equal(st.max, Math.fround(47 / 7));
  });
});
