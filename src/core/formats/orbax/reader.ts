/**
 * Orbax checkpoints, read through the Python sidecar (python/sidecar): orbax's on-disk layout
 * (OCDBT B+trees, zarr v2/v3, zstd chunks, per-process databases) is not declared stable, and
 * tensorstore already reads every variant. This module turns the sidecar's answers into the one
 * checkpoint model; each tensor's bytes come through a FileOpener whose "files" are its leaves.
 */
import * as path from 'node:path';
import { pathKey, type Checkpoint, type ScalarLeaf, type TensorRef } from '../../checkpoint';
import { formatError, JaxServeError } from '../../errors';
import type { ByteSource, FileOpener } from '../../io/byteSource';
import { MAX_TENSOR_RANK } from '../../limits';
import { DTYPE_BITS } from '../../dtype';
import { numpyDtype } from '../msgpack/flax';
import { safeName } from '../../text';

/** One leaf array as the sidecar lists it. */
export interface OrbaxLeaf {
  /** Key path shown to the user (a trailing NNX `value` removed). */
  readonly keys: readonly string[];
  /** The array's name inside the checkpoint (all keys joined with '.'). */
  readonly param: string;
  /** numpy dtype name: float32, bfloat16, float8_e4m3fn, … */
  readonly dtype: string;
  readonly shape: readonly number[];
}

export interface OrbaxTree {
  /** The folder that holds the pytree (the opened path, or the step/item inside it). */
  readonly item: string;
  readonly tensors: readonly OrbaxLeaf[];
  readonly values: readonly { readonly keys: readonly string[]; readonly value: string }[];
  readonly metadata: Readonly<Record<string, string>>;
}

/** What reads Orbax: the Python sidecar in practice. */
export interface OrbaxBackend {
  open(location: string, signal?: AbortSignal): Promise<OrbaxTree>;
  /** Bytes [offset, offset+length) of a leaf in C order, little-endian; whole elements. */
  read(item: string, param: string, offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array>;
}

/** File names that mark an Orbax checkpoint (orbax `format_utils`, `metadata/checkpoint.py`). */
export const ORBAX_MARKERS = ['_METADATA', '_CHECKPOINT_METADATA', 'manifest.ocdbt'] as const;

export async function openOrbax(backend: OrbaxBackend, location: string, signal?: AbortSignal): Promise<Checkpoint> {
  const tree = await backend.open(location, signal);
  const leaves = new Map<string, { param: string; bytes: number }>();
  const tensors: TensorRef[] = tree.tensors.map((leaf) => {
    const dtype = numpyDtype(leaf.dtype);
    const name = leaf.keys.join('.');
    if (dtype === undefined) throw formatError(tree.item, `array ${JSON.stringify(safeName(name))} has dtype ${safeName(String(leaf.dtype))}, which has no safetensors equivalent.`);
    // The sidecar checks shapes before tensorstore opens them; this side does not trust it to: byte
    // counts are doubles here, exact only while they stay safe integers.
    const sane = Array.isArray(leaf.shape) && leaf.shape.length <= MAX_TENSOR_RANK && leaf.shape.every((d) => Number.isSafeInteger(d) && d >= 0);
    const bytes = sane ? (leaf.shape.reduce((a, b) => a * b, 1) * DTYPE_BITS[dtype]) / 8 : NaN;
    if (!Number.isSafeInteger(bytes)) throw formatError(tree.item, `array ${JSON.stringify(safeName(name))} declares shape [${String(leaf.shape).slice(0, 200)}], which no real array has.`);
    // A leaf's "file": unique per leaf, and reads in messages as the array's place in the folder.
    const file = path.join(tree.item, leaf.param);
    leaves.set(file, { param: leaf.param, bytes });
    return { name, path: leaf.keys.map(pathKey), dtype, shape: leaf.shape, bytes, source: { file, offset: 0, length: bytes } };
  });
  const values: ScalarLeaf[] = tree.values.map((v) => ({ name: v.keys.join('.'), path: v.keys.map(pathKey), value: v.value }));
  return {
    format: 'orbax',
    location,
    files: [tree.item],
    tensors,
    metadata: tree.metadata,
    values,
    opener: new OrbaxLeafOpener(backend, tree.item, leaves),
  };
}

/** Opens a leaf as a ByteSource; every read is a sidecar request. */
class OrbaxLeafOpener implements FileOpener {
  constructor(
    private readonly backend: OrbaxBackend,
    private readonly item: string,
    private readonly leaves: ReadonlyMap<string, { param: string; bytes: number }>,
  ) {}

  async open(file: string): Promise<ByteSource> {
    const leaf = this.leaves.get(file);
    if (!leaf) throw new JaxServeError('E_NOT_FOUND', `${file}: not an array of the Orbax checkpoint ${this.item}.`);
    const { backend, item } = this;
    return {
      name: file,
      size: leaf.bytes,
      async read(offset: number, target: Uint8Array): Promise<number> {
        const n = Math.min(target.length, leaf.bytes - offset);
        if (n <= 0) return 0;
        const b = await backend.read(item, leaf.param, offset, n);
        target.set(b);
        return b.length;
      },
      async close() {},
    };
  }

  async readSmall(file: string): Promise<Uint8Array> {
    throw new JaxServeError('E_UNSUPPORTED', `${file}: Orbax leaves are read through the sidecar, not as files.`);
  }

  async kind(file: string): Promise<'file' | undefined> {
    return this.leaves.has(file) ? 'file' : undefined;
  }
}
