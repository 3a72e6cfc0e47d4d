/**
 * The HF sharded-checkpoint index (`*.safetensors.index.json`, `flax_model.msgpack.index.json`):
 * {"metadata": {...}, "weight_map": {tensor: shard file}}. Shared by every sharded format.
 */
import * as path from 'node:path';
import type { Checkpoint, CheckpointFormat, ScalarLeaf, TensorRef } from '../checkpoint';
import { formatError, JaxServeError, limitError } from '../errors';
import type { FileOpener } from '../io/byteSource';
import { MAX_INDEX_BYTES, MAX_SHARD_COUNT, SHARD_OPEN_CONCURRENCY } from '../limits';
import { fastIndexEntries } from './safetensors/fastJson';

/**
 * A shard name from an index must stay inside the index's folder. The check is on the name itself
 * (not the resolved real path) so that the HF cache, whose snapshot files are symlinks into
 * `blobs/`, still opens.
 */
export function checkShardName(indexFile: string, name: string): void {
  const bad = (why: string) => formatError(indexFile, `weight_map names shard ${JSON.stringify(name)}, which ${why}; shard names must be plain relative file names inside the index's folder.`);
  if (name.length === 0) throw bad('is empty');
  if (name.includes('\0')) throw bad('contains a NUL character');
  if (name.includes('\\')) throw bad('contains a backslash');
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) throw bad('is an absolute path');
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(name)) throw bad('is a URL');
  if (name.split('/').some((seg) => seg === '..')) throw bad('climbs out with ".."');
}

interface ParsedIndex {
  weightMap: Map<string, string>;
  metadata: Record<string, string>;
}

export function parseIndexJson(indexFile: string, bytes: Uint8Array, opts: IndexOptions = {}): ParsedIndex {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw formatError(indexFile, 'the index is not valid UTF-8.');
  }
  const parsed = fastIndexEntries(text) ?? slowIndexEntries(indexFile, text);
  const shards = new Set<string>();
  const maxShards = opts.maxShardCount ?? MAX_SHARD_COUNT;
  for (const file of parsed.weightMap.values()) {
    if (shards.has(file)) continue; // each distinct shard name is checked once
    checkShardName(indexFile, file);
    shards.add(file);
    if (shards.size > maxShards) throw limitError(indexFile, 'the number of shard files', shards.size, maxShards, 'maxShardCount');
  }
  return parsed;
}

/** The general path: JSON.parse, then each part checked; every index error message comes from here. */
function slowIndexEntries(indexFile: string, text: string): ParsedIndex {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw formatError(indexFile, `not valid JSON (${(e as Error).message}).`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw formatError(indexFile, 'the index is not a JSON object.');
  const { weight_map: wm, metadata: md } = json as Record<string, unknown>;
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) {
    throw formatError(indexFile, 'the index has no "weight_map" object mapping tensor names to shard files.');
  }
  const weightMap = new Map<string, string>();
  const map = wm as Record<string, unknown>;
  for (const name in map) {
    const file = map[name];
    if (typeof file !== 'string') throw formatError(indexFile, `weight_map[${JSON.stringify(name)}] is not a string file name.`);
    weightMap.set(name, file);
  }
  const metadata: Record<string, string> = Object.create(null);
  if (typeof md === 'object' && md !== null && !Array.isArray(md)) {
    for (const [k, v] of Object.entries(md as Record<string, unknown>)) metadata[k] = typeof v === 'string' ? v : JSON.stringify(v);
  } else if (md !== undefined && md !== null) {
    throw formatError(indexFile, '"metadata" must be an object.');
  }
  return { weightMap, metadata };
}

export interface IndexOptions {
  maxIndexBytes?: number;
  maxShardCount?: number;
  concurrency?: number;
}

export interface ShardContent {
  tensors: TensorRef[];
  values?: ScalarLeaf[];
}

/**
 * Opens every shard an index names (bounded concurrency) and joins them into one Checkpoint,
 * checking that each tensor sits in the shard the index says and that every listed tensor exists.
 * `indexName` gives a tensor's key in weight_map (safetensors: its name; flax: keys joined by "/").
 */
export async function openShardedIndex(
  opener: FileOpener,
  indexFile: string,
  opts: IndexOptions,
  how: { format: CheckpointFormat; openShard: (file: string) => Promise<ShardContent>; indexName: (t: TensorRef) => string },
): Promise<Checkpoint> {
  const bytes = await opener.readSmall(indexFile, opts.maxIndexBytes ?? MAX_INDEX_BYTES);
  const { weightMap, metadata } = parseIndexJson(indexFile, bytes, opts);
  const dir = path.dirname(indexFile);
  // Shards in name order: HF names (model-00001-of-00003) sort into their natural order.
  const shardNames = [...new Set(weightMap.values())].sort();
  const contents = await mapBounded(shardNames, opts.concurrency ?? SHARD_OPEN_CONCURRENCY, async (name) => {
    const file = path.join(dir, name);
    try {
      return await how.openShard(file);
    } catch (e) {
      if (e instanceof JaxServeError && e.code === 'E_NOT_FOUND') {
        throw new JaxServeError('E_NOT_FOUND', `${indexFile} names shard ${JSON.stringify(name)}, which does not exist (${file}).`);
      }
      throw e;
    }
  });
  const tensors: TensorRef[] = [];
  const values: ScalarLeaf[] = [];
  const files: string[] = [];
  shardNames.forEach((name, i) => {
    files.push(path.join(dir, name));
    values.push(...(contents[i]!.values ?? []));
    for (const t of contents[i]!.tensors) {
      const key = how.indexName(t);
      const listed = weightMap.get(key);
      if (listed === undefined) {
        throw formatError(indexFile, `shard ${JSON.stringify(name)} holds tensor ${JSON.stringify(key)}, which weight_map does not list.`);
      }
      if (listed !== name) {
        throw formatError(indexFile, `tensor ${JSON.stringify(key)} is in shard ${JSON.stringify(name)} but weight_map says ${JSON.stringify(listed)}.`);
      }
      tensors.push(t);
    }
  });
  if (tensors.length !== weightMap.size) {
    const present = new Set(tensors.map(how.indexName));
    const missing = [...weightMap.keys()].find((k) => !present.has(k))!;
    throw formatError(indexFile, `weight_map lists tensor ${JSON.stringify(missing)} in ${JSON.stringify(weightMap.get(missing))}, but that shard does not hold it.`);
  }
  return { format: how.format, location: indexFile, files, tensors, metadata, ...(values.length > 0 ? { values } : {}) };
}

/** Maps with at most `limit` calls in flight, keeping order; the first rejection rejects all. */
export async function mapBounded<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
