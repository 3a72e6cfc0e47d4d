/**
 * What a safetensors index says before any shard is opened: each tensor's name and shard. A view
 * can show these names at once (a 100,000-tensor index lists in a fraction of the time its shard
 * headers take to read and validate); nothing here is checked against the shards, so nothing
 * here may be used to read values: that takes the Checkpoint openCheckpoint gives.
 */
import * as path from 'node:path';
import { pathFromName, type CheckpointFormat, type PathKey } from '../checkpoint';
import { openerWithin, type FileOpener } from '../io/byteSource';
import { MAX_INDEX_BYTES, SAFETENSORS_INDEX_SUFFIX } from '../limits';
import type { IndexEntries } from './safetensors/fastJson';
import { parseIndexJson, type IndexOptions } from './shardedIndex';

/** A tensor as the index lists it: name and shard file, no header facts. */
export class ListedTensor {
  private _path: PathKey[] | undefined;
  constructor(
    readonly name: string,
    /** The shard's name as weight_map gives it (relative to the index's folder). */
    readonly shard: string,
  ) {}
  /** Split on first use, as a TensorRef's is: a name tree asks for every one, a flat list for none. */
  get path(): readonly PathKey[] {
    return (this._path ??= pathFromName(this.name));
  }
}

export interface IndexListing {
  /** The format openCheckpoint will give the checkpoint. */
  readonly format: CheckpointFormat;
  readonly location: string;
  /** The shard files, in the order openCheckpoint reads them. */
  readonly files: readonly string[];
  /** The index's own metadata, as written. */
  readonly metadata: Readonly<Record<string, string>>;
  /**
   * In the order openCheckpoint yields them when each shard's header lists its tensors in the
   * index's order: shards in name order, the index's order within each.
   */
  readonly tensors: readonly ListedTensor[];
  /** The index as parsed, for openCheckpoint (`parsedIndex`), which then does not read it again. */
  readonly index: IndexEntries;
}

/**
 * The listing of `location` when it is a safetensors index; undefined for any other checkpoint
 * (whose names come only with its headers). The index is parsed and its shard names checked as
 * openCheckpoint does; reads nothing but the index, and nothing outside `location`.
 */
export async function listSafetensorsIndex(opener: FileOpener, location: string, opts: IndexOptions = {}): Promise<IndexListing | undefined> {
  if (!location.endsWith(SAFETENSORS_INDEX_SUFFIX)) return undefined;
  const within = await openerWithin(opener, location);
  const bytes = await within.readSmall(location, opts.maxIndexBytes ?? MAX_INDEX_BYTES);
  const index = parseIndexJson(location, bytes, opts);
  const byShard = index.shards.map((): ListedTensor[] => []);
  for (let k = 0; k < index.names.length; k++) byShard[index.shardOf[k]!]!.push(new ListedTensor(index.names[k]!, index.shards[index.shardOf[k]!]!));
  // Shards in name order, as openCheckpoint reads them.
  const order = index.shards.map((name, id) => ({ name, id })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const dir = path.dirname(location);
  return {
    format: 'safetensors-sharded',
    location,
    files: order.map((s) => path.join(dir, s.name)),
    metadata: index.metadata,
    tensors: order.flatMap((s) => byShard[s.id]!),
    index,
  };
}
