/**
 * The workspace the integration tests open: files written by the real Python safetensors (torch and
 * numpy writers), flax, numpy and orbax, plus ones only our writer can make quickly (100,000 tensors, hostile names) and
 * malformed ones.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeSafetensors, writeShardedSafetensors, type TensorSpec } from '../../src/core/index';
import { openAtomicFileSink } from '../../src/core/node/index';
import { canonicalFixtures } from '../fixtures/canonical';

export const HOSTILE_NAME = '<img src=x onerror="document.body.dataset.pwned=1">.weight';
export const HOSTILE_METADATA = '<script>document.body.dataset.pwned=2</script>';
export const BIG_TENSOR_COUNT = 100_000;
/** Tensors of sharded-broken/, two per shard. */
export const BROKEN_SHARD_TENSORS = 6;

const EDIT_EXPORT = `
import sys
from safetensors.numpy import load_file, save_file
t = load_file(sys.argv[1])
del t["model.norm.weight"]
w = t["model.layers.1.self_attn.q_proj.weight"].copy(); w[3, 5] += 0.5; t["model.layers.1.self_attn.q_proj.weight"] = w
save_file(t, sys.argv[2])
`;

export interface FixtureOptions {
  python?: string;
  /** Folder holding python/fixtures (the repo root). */
  root: string;
}

export async function buildWorkspace(dir: string, opts: FixtureOptions): Promise<void> {
  mkdirSync(dir, { recursive: true });
  if (opts.python) {
    execFileSync(opts.python, [resolve(opts.root, 'python/fixtures/safetensors_interop.py'), 'write', join(dir, 'python')], { stdio: ['ignore', 'ignore', 'inherit'] });
    execFileSync(opts.python, [resolve(opts.root, 'python/fixtures/flax_msgpack.py'), 'write', join(dir, 'flax')], { stdio: ['ignore', 'ignore', 'inherit'] });
    execFileSync(opts.python, [resolve(opts.root, 'python/fixtures/npz.py'), 'write', join(dir, 'numpy')], { stdio: ['ignore', 'ignore', 'inherit'] });
    execFileSync(opts.python, [resolve(opts.root, 'python/fixtures/orbax_ckpt.py'), 'write', join(dir, 'orbax')], { stdio: ['ignore', 'ignore', 'inherit'] });
    execFileSync(opts.python, [resolve(opts.root, 'python/fixtures/health.py'), 'write', join(dir, 'health')], { stdio: ['ignore', 'ignore', 'inherit'] });
    // Export folders for preflight: the canonical HF model as transformers wrote it, and one without a tokenizer.
    const canonical = canonicalFixtures(opts.python);
    cpSync(join(canonical.dir, 'hf'), join(dir, 'exports', 'ready'), { recursive: true });
    cpSync(join(canonical.dir, 'hf'), join(dir, 'exports', 'no-tokenizer'), { recursive: true });
    rmSync(join(dir, 'exports', 'no-tokenizer', 'tokenizer.json'));
    // An export gone wrong, for Compare Checkpoints: numpy and safetensors drop the final norm and
    // nudge one element of layer 1's q_proj.
    mkdirSync(join(dir, 'exports', 'edited'), { recursive: true });
    execFileSync(opts.python, ['-c', EDIT_EXPORT, join(canonical.dir, 'hf', 'model.safetensors'), join(dir, 'exports', 'edited', 'model.safetensors')]);
    // JAX sources for the convert / import / verify commands.
    mkdirSync(join(dir, 'jax'), { recursive: true });
    cpSync(join(canonical.dir, 'jax', 'nnx.msgpack'), join(dir, 'jax', 'nnx.msgpack'));
  }
  // 100,000 small tensors in 4 shards with an index, as a large model's layout looks to the viewer.
  const big: TensorSpec[] = Array.from({ length: BIG_TENSOR_COUNT }, (_, i) => ({ name: `model.layers.${Math.floor(i / 10)}.block.${i % 10}.weight`, dtype: 'BF16', shape: [2, 3] }));
  mkdirSync(join(dir, 'big'), { recursive: true });
  await writeShardedSafetensors((f) => openAtomicFileSink(join(dir, 'big', f), { sources: [], overwrite: true }), big, () => new Uint8Array(12), { maxShardBytes: 12 * 25_000 });
  // A sharded index whose second shard is not safetensors: the index lists its tensors, validation refuses the shard.
  const layers: TensorSpec[] = Array.from({ length: BROKEN_SHARD_TENSORS }, (_, i) => ({ name: `model.layers.${i}.w`, dtype: 'F32', shape: [2, 2] }));
  mkdirSync(join(dir, 'sharded-broken'), { recursive: true });
  const plan = await writeShardedSafetensors((f) => openAtomicFileSink(join(dir, 'sharded-broken', f), { sources: [], overwrite: true }), layers, () => new Uint8Array(16), { maxShardBytes: 32 });
  writeFileSync(join(dir, 'sharded-broken', plan.files[1]!.name), Buffer.from('this shard is not safetensors'));

  const hostile: TensorSpec[] = [{ name: HOSTILE_NAME, dtype: 'F32', shape: [2] }, { name: 'plain.weight', dtype: 'F32', shape: [1] }];
  await writeSafetensors(await openAtomicFileSink(join(dir, 'hostile.safetensors'), { sources: [], overwrite: true }), hostile, (s) => new Uint8Array(s.shape[0]! * 4), {
    metadata: { format: 'pt', [HOSTILE_METADATA]: HOSTILE_METADATA },
  });
  writeFileSync(join(dir, 'broken.safetensors'), Buffer.from('this is not a safetensors file at all'));
}
