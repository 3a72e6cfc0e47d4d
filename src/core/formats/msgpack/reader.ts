/**
 * Opens Flax msgpack checkpoints header-only: `flax.serialization.to_bytes` files (any name) and HF
 * `flax_model.msgpack` with its sharded `flax_model.msgpack.index.json` (weight_map keys joined by "/").
 */
import type { Checkpoint } from '../../checkpoint';
import type { FileOpener } from '../../io/byteSource';
import { openShardedIndex, type IndexOptions } from '../shardedIndex';
import { flaxTree, type FlaxTree } from './flax';
import { scanMsgpack, type ScanOptions } from './scanner';

export interface MsgpackOptions extends ScanOptions, IndexOptions {}

async function readFlaxFile(opener: FileOpener, file: string, opts: MsgpackOptions): Promise<FlaxTree> {
  const src = await opener.open(file);
  try {
    return flaxTree(file, await scanMsgpack(src, opts));
  } finally {
    await src.close();
  }
}

export async function openFlaxMsgpackFile(opener: FileOpener, file: string, opts: MsgpackOptions = {}): Promise<Checkpoint> {
  const { tensors, values } = await readFlaxFile(opener, file, opts);
  return { format: 'flax-msgpack', location: file, files: [file], tensors, metadata: Object.create(null), ...(values.length > 0 ? { values } : {}) };
}

export async function openFlaxMsgpackIndex(opener: FileOpener, indexFile: string, opts: MsgpackOptions = {}): Promise<Checkpoint> {
  return openShardedIndex(opener, indexFile, opts, {
    format: 'flax-msgpack-sharded',
    openShard: (file) => readFlaxFile(opener, file, opts),
    indexName: (t) => t.path.join('/'),
  });
}
