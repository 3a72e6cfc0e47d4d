/**
 * The HF sharded-checkpoint index (`*.safetensors.index.json`, `flax_model.msgpack.index.json`):
 * {"metadata": {...}, "weight_map": {tensor: shard file}}. Shared by every sharded format.
 */
import * as path from 'node:path';
import type { Checkpoint, CheckpointFormat, ScalarLeaf, TensorRef } from '../checkpoint';
import { formatError, JaxServeError, limitError } from '../errors';
import type { FileOpener } from '../io/byteSource';
import { MAX_INDEX_BYTES, MAX_SHARD_COUNT, SHARD_OPEN_CONCURRENCY } from '../limits';
import { parseJsonText } from '../json';
import { safeName } from '../text';
import { quoted } from './quote';
import { fastIndexEntries, type IndexEntries } from './safetensors/fastJson';
import { nameTwice } from './safetensors/header';
import { walkJson } from './safetensors/jsonKeys';

/**
 * A shard name from an index must stay inside the index's folder. The check is on the name itself
 * (not the resolved real path) so that the HF cache, whose snapshot files are symlinks into
 * `blobs/`, still opens.
 */
export function checkShardName(indexFile: string, name: string): void {
  const bad = (why: string) => formatError(indexFile, `weight_map names shard ${quoted(name)}, which ${why}; shard names must be plain relative file names inside the index's folder.`);
  if (name.length === 0) throw bad('is empty');
  if (name.includes('\0')) throw bad('contains a NUL character');
  if (name.includes('\\')) throw bad('contains a backslash');
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) throw bad('is an absolute path');
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(name)) throw bad('is a URL');
  if (name.split('/').some((seg) => seg === '..')) throw bad('climbs out with ".."');
}

/**
 * weight_map's entries in text order, its shard names checked and no tensor listed twice. An index
 * sorted by name (HF's writers and ours sort it) shows that by its order; any other takes a set.
 */
export function parseIndexJson(indexFile: string, bytes: Uint8Array, opts: IndexOptions = {}): IndexEntries {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw formatError(indexFile, 'the index is not valid UTF-8.');
  }
  const index = fastIndexEntries(bytes, text) ?? slowIndexEntries(indexFile, text, opts);
  const maxShards = opts.maxShardCount ?? MAX_SHARD_COUNT;
  for (const [i, file] of index.shards.entries()) {
    checkShardName(indexFile, file);
    if (i + 1 > maxShards) throw limitError(indexFile, 'the number of shard files', i + 1, maxShards, 'maxShardCount');
  }
  if (!(index.ascending ?? strictlyAscending(index.names))) {
    const seen = new Set<string>();
    for (const name of index.names) {
      if (seen.has(name)) throw formatError(indexFile, `${listedTwice(name)}.`);
      seen.add(name);
    }
  }
  return index;
}

const listedTwice = (name: string) => `weight_map lists tensor ${quoted(name)} twice; each tensor must be listed once`;

function strictlyAscending(names: readonly string[]): boolean {
  for (let k = 1; k < names.length; k++) if (!(names[k - 1]! < names[k]!)) return false;
  return true;
}

/**
 * The general path: a depth-bounded JSON.parse, then each part checked; every index error message
 * comes from here. Like transformers (Python's json), the index's metadata is informational: its
 * values are kept as written (a `total_size` of `8.0` or `1e400` is shown, not judged). A key twice
 * is refused where it would hide something: "weight_map" or "metadata" twice, or a tensor listed
 * twice in weight_map (Python's json would keep the last one without a word).
 */
function slowIndexEntries(indexFile: string, text: string, opts: IndexOptions): IndexEntries {
  let json: unknown;
  try {
    json = parseJsonText(indexFile, text, { what: 'the index', ...(opts.maxJsonDepth !== undefined ? { maxDepth: opts.maxJsonDepth } : {}) });
  } catch (e) {
    // JSON.parse's message quotes the text around the error, control characters and all.
    if (e instanceof JaxServeError) throw new JaxServeError(e.code, safeName(e.message));
    throw e;
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw formatError(indexFile, 'the index is not a JSON object.');
  const { weight_map: wm, metadata: md } = json as Record<string, unknown>;
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) {
    throw formatError(indexFile, 'the index has no "weight_map" object mapping tensor names to shard files.');
  }
  if (md !== undefined && md !== null && (typeof md !== 'object' || Array.isArray(md))) {
    throw formatError(indexFile, '"metadata" must be an object.');
  }
  const rawMetadata = new Map<string, string>();
  const issue = walkJson(text, {
    trackKeys: (p) => p.length === 0 || (p.length === 1 && p[0] === 'weight_map'),
    duplicate: (p, key) => {
      if (p.length === 1) return listedTwice(key);
      return key === 'weight_map' || key === 'metadata' ? `the index has two ${quoted(key)} entries; it must have one` : undefined;
    },
    value: (p, kind, start, end) => {
      if (p.length === 2 && p[0] === 'metadata' && kind !== 'string') rawMetadata.set(String(p[1]), text.slice(start, end));
      return undefined;
    },
  });
  if (issue !== undefined) throw formatError(indexFile, `${issue}.`);
  const names: string[] = [];
  const shardOf: number[] = [];
  const shardIds = new Map<string, number>();
  const map = wm as Record<string, unknown>;
  for (const name in map) {
    const file = map[name];
    if (typeof file !== 'string') throw formatError(indexFile, `weight_map[${quoted(name)}] is not a string file name.`);
    let id = shardIds.get(file);
    if (id === undefined) shardIds.set(file, (id = shardIds.size));
    names.push(name);
    shardOf.push(id);
  }
  const metadata: Record<string, string> = Object.create(null);
  if (md) {
    for (const [k, v] of Object.entries(md as Record<string, unknown>)) metadata[k] = typeof v === 'string' ? v : (rawMetadata.get(k) ?? String(v));
  }
  return { names, shardOf, shards: [...shardIds.keys()], metadata };
}

export interface IndexOptions {
  /** The index as parseIndexJson gave it for this file (a listing's): it is not read again. */
  parsedIndex?: IndexEntries;
  maxIndexBytes?: number;
  /** Nesting depth of the index JSON (default MAX_JSON_DEPTH). */
  maxJsonDepth?: number;
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
  how: {
    format: CheckpointFormat;
    openShard: (file: string) => Promise<ShardContent>;
    indexName: (t: TensorRef) => string;
  },
): Promise<Checkpoint> {
  // The index's bytes are not kept past parsing (78 MB for a million tensors).
  const index = opts.parsedIndex ?? parseIndexJson(indexFile, await opener.readSmall(indexFile, opts.maxIndexBytes ?? MAX_INDEX_BYTES), opts);
  const dir = path.dirname(indexFile);
  // Shards in name order: HF names (model-00001-of-00003) sort into their natural order.
  const shardNames = [...index.shards].sort();
  const contents = await mapBounded(shardNames, opts.concurrency ?? SHARD_OPEN_CONCURRENCY, async (name) => {
    const file = path.join(dir, name);
    try {
      return await how.openShard(file);
    } catch (e) {
      if (e instanceof JaxServeError && e.code === 'E_NOT_FOUND') {
        throw new JaxServeError('E_NOT_FOUND', `${indexFile} names shard ${quoted(name)}, which does not exist (${safeName(file)}).`);
      }
      throw e;
    }
  });
  const files = shardNames.map((name) => path.join(dir, name));
  const values = contents.flatMap((c) => c.values ?? []);
  const tensors = shardsMatchIndex(index, shardNames, contents, how.indexName) ? joined(contents.map((c) => c.tensors)) : whatIsWrong(indexFile, index, shardNames, contents, how);
  return { format: how.format, location: indexFile, files, tensors, metadata: index.metadata, ...(values.length > 0 ? { values } : {}) };
}

/**
 * True when each shard holds exactly the tensors weight_map lists for it (which lists each key
 * once): every listed key found in its own shard, none found twice, none left over. An index lists a shard's
 * tensors in their file order when both are sorted by name (HF's writers), so each key is first
 * compared with the tensor after the last one found; only a key not there is looked up, in a map of
 * that shard's keys made then. Looking every name up in a map of 100,000 had missed the cache nearly
 * every time, and was most of an index's check.
 */
function shardsMatchIndex(index: IndexEntries, shardNames: readonly string[], contents: readonly ShardContent[], indexName: (t: TensorRef) => string): boolean {
  const place = new Map(shardNames.map((name, i) => [name, i]));
  const shardAt = index.shards.map((name) => place.get(name)!);
  const keys: (Map<string, number> | null)[] = [];
  const seen = contents.map((c) => new Uint8Array(c.tensors.length));
  const next = new Array<number>(contents.length).fill(0);
  const found = new Array<number>(contents.length).fill(0);
  for (let k = 0; k < index.names.length; k++) {
    const s = shardAt[index.shardOf[k]!]!;
    const name = index.names[k]!;
    const { tensors } = contents[s]!;
    let at: number | undefined = next[s]!;
    if (at >= tensors.length || indexName(tensors[at]!) !== name) {
      if (keys[s] === undefined) keys[s] = keysOf(tensors, indexName) ?? null;
      at = keys[s]?.get(name);
      if (at === undefined) return false;
    }
    if (seen[s]![at]) return false;
    seen[s]![at] = 1;
    next[s] = at + 1;
    found[s]!++;
  }
  // Each entry took its own tensor of its shard: equal counts leave no tensor over, so none shares
  // a key with another (the index lists each key once).
  return contents.every((c, s) => found[s] === c.tensors.length);
}

/** Key → position in `tensors`; undefined when two tensors share a key. */
function keysOf(tensors: readonly TensorRef[], indexName: (t: TensorRef) => string): Map<string, number> | undefined {
  const keys = new Map<string, number>();
  for (const [i, t] of tensors.entries()) keys.set(indexName(t), i);
  return keys.size === tensors.length ? keys : undefined;
}

/**
 * The shards and the index disagree (or a flax shard has two tensors with one key): finds the first
 * problem, in shard order, and throws it in words. Returns the tensors only when there is none to
 * word (a check above was stricter than these).
 */
function whatIsWrong(indexFile: string, index: IndexEntries, shardNames: readonly string[], contents: readonly ShardContent[], how: { indexName: (t: TensorRef) => string }): TensorRef[] {
  const weightMap = new Map(index.names.map((name, k) => [name, index.shards[index.shardOf[k]!]!]));
  const tensors: TensorRef[] = [];
  // Where each weight_map key was found: two tensors with one key (flax keys "a/b" beside a → b)
  // would make the index ambiguous.
  const seen = new Map<string, string>();
  shardNames.forEach((name, i) => {
    for (const t of contents[i]!.tensors) {
      const key = how.indexName(t);
      const listed = weightMap.get(key);
      if (listed === undefined) {
        throw formatError(indexFile, `shard ${quoted(name)} holds tensor ${quoted(key)}, which weight_map does not list.`);
      }
      if (listed !== name) {
        throw formatError(indexFile, `tensor ${quoted(key)} is in shard ${quoted(name)} but weight_map says ${quoted(listed)}.`);
      }
      const before = seen.get(key);
      // A header's own check words a name twice (a sharded open leaves that check to this one).
      if (before === t.name) throw nameTwice(path.join(path.dirname(indexFile), name), t.name);
      if (before !== undefined) {
        throw formatError(indexFile, `two tensors of shard ${quoted(name)} have the weight_map key ${quoted(key)} (${quoted(before)} and ${quoted(t.name)}); each key must name one tensor.`);
      }
      seen.set(key, t.name);
      tensors.push(t);
    }
  });
  // Every tensor found is listed, once: so a size difference means a listed tensor is missing.
  const missing = [...weightMap.keys()].find((k) => !seen.has(k));
  if (missing !== undefined) {
    throw formatError(indexFile, `weight_map lists tensor ${quoted(missing)} in ${quoted(weightMap.get(missing)!)}, but that shard does not hold it.`);
  }
  return tensors;
}

/**
 * The arrays one after another: concat sizes the result once and copies each array whole (a fifth
 * of the time of a push per element; flatMap judges each element's kind). The arrays go to it a few
 * thousand at a time: a raised maxShardCount must not pass the engine's limit on arguments.
 */
function joined<T>(arrays: readonly T[][]): T[] {
  let out: T[] = [];
  for (let i = 0; i < arrays.length; i += JOINED_AT_ONCE) out = out.concat(...arrays.slice(i, i + JOINED_AT_ONCE));
  return out;
}

const JOINED_AT_ONCE = 4096;

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
