/**
 * Opens safetensors checkpoints header-only: a single file, or a sharded `*.safetensors.index.json`
 * whose shards are read with bounded concurrency and joined into one Checkpoint.
 */
import { pathFromName, type ByteRange, type Checkpoint, type PathKey, type TensorRef } from '../../checkpoint';
import { readExactly, type FileOpener } from '../../io/byteSource';
import { openShardedIndex, type IndexOptions } from '../shardedIndex';
import { parseHeaderJson, parseHeaderLength, type HeaderOptions, type HeaderTensor, type ParsedHeader } from './header';

export interface SafetensorsOptions extends HeaderOptions, IndexOptions {}

/** Where a shard's data buffer starts: shared by its tensors. */
interface Shard {
  readonly file: string;
  readonly dataStart: number;
}

/**
 * A safetensors tensor: its header entry and its file in one object (a 100k-tensor checkpoint opens
 * with one object per tensor; GC is most of the cost of opening one). The key path is split from
 * the name each time it is asked for, never kept: a million kept paths would hold about 180 MB, and
 * splitting one takes well under a microsecond.
 */
class SafetensorsTensor implements TensorRef, HeaderTensor {
  constructor(
    private readonly shard: Shard,
    readonly name: string,
    readonly dtype: HeaderTensor['dtype'],
    readonly shape: number[],
    readonly begin: number,
    readonly end: number,
  ) {}
  get bytes(): number {
    return this.end - this.begin;
  }
  get source(): ByteRange {
    return { file: this.shard.file, offset: this.shard.dataStart + this.begin, length: this.end - this.begin };
  }
  get path(): readonly PathKey[] {
    return pathFromName(this.name);
  }
}

/** What the first read of a header takes. */
const FIRST_READ_BYTES = 64 << 10;

/** Reads and validates one file's header; its entries are the file's tensor references. */
export async function readSafetensorsHeader(opener: FileOpener, file: string, opts: SafetensorsOptions = {}, checkNames = true): Promise<ParsedHeader<TensorRef & HeaderTensor>> {
  const src = await opener.open(file);
  try {
    // One read takes the length and, for most files (a shard of a few hundred tensors has a header
    // of tens of KiB), the whole header: one call to the file system per shard, not two.
    const first = new Uint8Array(Math.min(src.size, FIRST_READ_BYTES));
    if (src.size >= 8) await readExactly(src, 0, first);
    const n = parseHeaderLength(file, first, src.size, opts);
    let header = first.subarray(8, 8 + n);
    if (header.length < n) {
      header = new Uint8Array(n);
      header.set(first.subarray(8));
      await readExactly(src, first.length, header.subarray(first.length - 8));
    }
    const shard: Shard = { file, dataStart: 8 + n };
    return parseHeaderJson(file, header, src.size, opts, (name, dtype, shape, begin, end) => new SafetensorsTensor(shard, name, dtype, shape, begin, end), checkNames);
  } finally {
    await src.close();
  }
}

export async function openSafetensorsFile(opener: FileOpener, file: string, opts: SafetensorsOptions = {}): Promise<Checkpoint> {
  const h = await readSafetensorsHeader(opener, file, opts);
  return { format: 'safetensors', location: file, files: [file], tensors: h.tensors, metadata: h.metadata };
}

export async function openSafetensorsIndex(opener: FileOpener, indexFile: string, opts: SafetensorsOptions = {}): Promise<Checkpoint> {
  return openShardedIndex(opener, indexFile, opts, {
    format: 'safetensors-sharded',
    // A name twice in a header is found by checking the shards against the index.
    openShard: async (file) => ({ tensors: (await readSafetensorsHeader(opener, file, opts, false)).tensors }),
    indexName: (t) => t.name,
  });
}
