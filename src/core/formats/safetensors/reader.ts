/**
 * Opens safetensors checkpoints header-only: a single file, or a sharded `*.safetensors.index.json`
 * whose shards are read with bounded concurrency and joined into one Checkpoint.
 */
import { pathFromName, type ByteRange, type Checkpoint, type PathKey, type TensorRef } from '../../checkpoint';
import { readExactly, type FileOpener } from '../../io/byteSource';
import { openShardedIndex, type IndexOptions } from '../shardedIndex';
import { parseHeaderJson, parseHeaderLength, type HeaderOptions, type HeaderTensor, type ParsedHeader } from './header';

export interface SafetensorsOptions extends HeaderOptions, IndexOptions {}

/** Reads and validates one file's header. */
export async function readSafetensorsHeader(opener: FileOpener, file: string, opts: SafetensorsOptions = {}): Promise<ParsedHeader> {
  const src = await opener.open(file);
  try {
    const first8 = new Uint8Array(8);
    if (src.size >= 8) await readExactly(src, 0, first8);
    const n = parseHeaderLength(file, first8, src.size, opts);
    const header = new Uint8Array(n);
    await readExactly(src, 8, header);
    return parseHeaderJson(file, header, src.size, opts);
  } finally {
    await src.close();
  }
}

/**
 * A safetensors tensor. The key path is split from the name on first use: a 100k-tensor checkpoint
 * opens without 100k arrays that a table of names never needs.
 */
class SafetensorsTensor implements TensorRef {
  private _path: PathKey[] | undefined;
  // Built on first use too: opening allocates as little per tensor as it can (GC is most of the
  // cost of opening 100k tensors).
  private _source: ByteRange | undefined;
  constructor(
    private readonly file: string,
    private readonly dataStart: number,
    private readonly t: HeaderTensor,
  ) {}
  get name(): string {
    return this.t.name;
  }
  get dtype(): HeaderTensor['dtype'] {
    return this.t.dtype;
  }
  get shape(): readonly number[] {
    return this.t.shape;
  }
  get bytes(): number {
    return this.t.end - this.t.begin;
  }
  get source(): ByteRange {
    return (this._source ??= { file: this.file, offset: this.dataStart + this.t.begin, length: this.bytes });
  }
  get path(): readonly PathKey[] {
    return (this._path ??= pathFromName(this.name));
  }
}

function tensorRefs(file: string, h: ParsedHeader): TensorRef[] {
  return h.tensors.map((t) => new SafetensorsTensor(file, h.dataStart, t));
}

export async function openSafetensorsFile(opener: FileOpener, file: string, opts: SafetensorsOptions = {}): Promise<Checkpoint> {
  const h = await readSafetensorsHeader(opener, file, opts);
  return { format: 'safetensors', location: file, files: [file], tensors: tensorRefs(file, h), metadata: h.metadata };
}

export async function openSafetensorsIndex(opener: FileOpener, indexFile: string, opts: SafetensorsOptions = {}): Promise<Checkpoint> {
  return openShardedIndex(opener, indexFile, opts, {
    format: 'safetensors-sharded',
    openShard: async (file) => ({ tensors: tensorRefs(file, await readSafetensorsHeader(opener, file, opts)) }),
    indexName: (t) => t.name,
    keyIsName: true,
  });
}
