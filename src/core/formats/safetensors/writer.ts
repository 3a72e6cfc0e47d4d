/**
 * Streams tensors into safetensors files: the header is laid out from the specs first, then each
 * tensor's bytes are written as they are produced, so memory holds one chunk, not a model.
 * Layout follows the reference writer: tensors sorted by descending element size then name, header
 * padded with spaces to a multiple of 8, so every tensor's file offset is aligned to its element size.
 */
import { JaxServeError, throwIfAborted } from '../../errors';
import type { ByteSink } from '../../io/byteSource';
import { DEFAULT_MAX_SHARD_BYTES, MAX_HEADER_BYTES, SAFETENSORS_INDEX_NAME, SAFETENSORS_SINGLE_NAME } from '../../limits';
import { DTYPE_BITS, type DType } from '../../dtype';

export interface TensorSpec {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
}

/**
 * A tensor's bytes: all at once, or chunks in order (row-major, little-endian), or tiles that
 * `writeTiles` puts at offsets within the tensor in any order (a tiled transpose), every byte once.
 */
export type TensorData = Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array> | TensorFill;

export interface TensorFill {
  writeTiles(writeAt: (offset: number, bytes: Uint8Array) => Promise<void>): Promise<void>;
}

function isTiles(d: TensorData): d is TensorFill {
  return typeof (d as TensorFill).writeTiles === 'function';
}

export interface WriteOptions {
  /** `__metadata__`; defaults to {"format": "pt"}, which transformers writes and some loaders need. */
  metadata?: Record<string, string>;
  signal?: AbortSignal;
  /** Called after each chunk with tensor bytes written so far and their total. */
  onProgress?: (done: number, total: number) => void;
  /**
   * Tensors given as positioned fills (TensorFill) that may be filled at once, when the sink has
   * positioned writes: later tensors start while earlier ones finish (default 1, one at a time).
   */
  concurrentFills?: number;
}

export interface PlacedTensor {
  readonly spec: TensorSpec;
  readonly begin: number;
  readonly end: number;
}

export interface SafetensorsLayout {
  /** The 8-byte length and the padded JSON: the first bytes of the file. */
  readonly head: Uint8Array;
  readonly tensors: readonly PlacedTensor[];
  readonly fileSize: number;
}

export const DEFAULT_METADATA: Readonly<Record<string, string>> = Object.freeze({ format: 'pt' });

export function tensorByteLength(spec: TensorSpec): number {
  const bits = BigInt(DTYPE_BITS[spec.dtype]) * spec.shape.reduce((a, d) => a * BigInt(d), 1n);
  if (bits % 8n !== 0n) throw new JaxServeError('E_USAGE', `tensor ${JSON.stringify(spec.name)}: ${spec.dtype}${JSON.stringify(spec.shape)} is not a whole number of bytes.`);
  const bytes = bits / 8n;
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) throw new JaxServeError('E_USAGE', `tensor ${JSON.stringify(spec.name)} is too large.`);
  return Number(bytes);
}

export function layoutSafetensors(specs: readonly TensorSpec[], metadata: Record<string, string> = DEFAULT_METADATA): SafetensorsLayout {
  const seen = new Set<string>();
  for (const s of specs) {
    if (s.name === '__metadata__') throw new JaxServeError('E_USAGE', 'a tensor cannot be named "__metadata__".');
    if (seen.has(s.name)) throw new JaxServeError('E_USAGE', `tensor ${JSON.stringify(s.name)} is given twice.`);
    seen.add(s.name);
    for (const d of s.shape) {
      if (!Number.isSafeInteger(d) || d < 0) throw new JaxServeError('E_USAGE', `tensor ${JSON.stringify(s.name)} has an invalid shape ${JSON.stringify(s.shape)}.`);
    }
  }
  const ordered = [...specs].sort((a, b) => DTYPE_BITS[b.dtype] - DTYPE_BITS[a.dtype] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const tensors: PlacedTensor[] = [];
  let offset = 0;
  for (const spec of ordered) {
    const end = offset + tensorByteLength(spec);
    tensors.push({ spec, begin: offset, end });
    offset = end;
  }
  // Build the JSON by hand so key order is ours (a tensor named "0" would otherwise jump first).
  const parts: string[] = [];
  if (header.__metadata__) parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  for (const t of tensors) {
    parts.push(`${JSON.stringify(t.spec.name)}:{"dtype":"${t.spec.dtype}","shape":${JSON.stringify(t.spec.shape)},"data_offsets":[${t.begin},${t.end}]}`);
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded > MAX_HEADER_BYTES) throw new JaxServeError('E_LIMIT', `the safetensors header would be ${padded} bytes, over the format's ${MAX_HEADER_BYTES}; write more shards.`);
  const head = new Uint8Array(8 + padded).fill(0x20, 8);
  new DataView(head.buffer).setBigUint64(0, BigInt(padded), true);
  head.set(json, 8);
  return { head, tensors, fileSize: head.length + offset };
}

async function* chunksOf(data: Exclude<TensorData, TensorFill>): AsyncIterable<Uint8Array> {
  if (data instanceof Uint8Array) yield data;
  else yield* data;
}

/** A tensor whose data gave more or fewer bytes than its shape needs. */
function wrongSize(spec: TensorSpec, got: number, want: number): JaxServeError {
  return new JaxServeError('E_USAGE', `tensor ${JSON.stringify(spec.name)} produced ${got > want ? 'more than' : 'only'} ${got} bytes; ${spec.dtype}${JSON.stringify(spec.shape)} needs ${want}.`);
}

/**
 * Writes one safetensors file into `sink` and commits it. `data` is asked for each tensor in file
 * order; a tensor that yields more or fewer bytes than its shape needs aborts the file.
 */
export async function writeSafetensors(
  sink: ByteSink,
  specs: readonly TensorSpec[],
  data: (spec: TensorSpec) => TensorData | Promise<TensorData>,
  opts: WriteOptions = {},
): Promise<SafetensorsLayout> {
  // Fills still running (concurrentFills > 1), and the first failure among them.
  const fills = new Set<Promise<void>>();
  let failed: { error: unknown } | undefined;
  const settle = () => Promise.allSettled(fills);
  try {
    const layout = layoutSafetensors(specs, opts.metadata ?? DEFAULT_METADATA);
    await sink.write(layout.head);
    const total = layout.fileSize - layout.head.length;
    let done = 0;
    const concurrent = Math.max(1, opts.concurrentFills ?? 1);
    for (const t of layout.tensors) {
      throwIfAborted(opts.signal);
      if (failed) throw failed.error;
      const want = t.end - t.begin;
      let got = 0;
      const d = await data(t.spec);
      if (isTiles(d)) {
        const { writeAt, skip } = sink;
        if (!writeAt || !skip) throw new JaxServeError('E_UNSUPPORTED', `tensor ${JSON.stringify(t.spec.name)} is written in tiles, which needs a file (random access) to write to.`);
        const base = layout.head.length + t.begin;
        const name = t.spec.name;
        const fill = d
          .writeTiles(async (offset, bytes) => {
            if (offset < 0 || offset + bytes.length > want) throw new JaxServeError('E_USAGE', `tensor ${JSON.stringify(name)}: a tile at ${offset} (+${bytes.length}) lies outside its ${want} bytes.`);
            await writeAt.call(sink, base + offset, bytes);
            got += bytes.length;
            done += bytes.length;
            opts.onProgress?.(done, total);
            throwIfAborted(opts.signal);
          })
          .then(() => {
            if (got !== want) throw wrongSize(t.spec, got, want);
          });
        await skip.call(sink, want);
        if (concurrent === 1) await fill;
        else {
          const tracked: Promise<void> = fill.then(
            () => void fills.delete(tracked),
            (e: unknown) => {
              fills.delete(tracked);
              failed ??= { error: e };
            },
          );
          fills.add(tracked);
          if (fills.size >= concurrent) await Promise.race(fills);
        }
        continue;
      }
      for await (const chunk of chunksOf(d)) {
        got += chunk.length;
        if (got > want) break;
        await sink.write(chunk);
        done += chunk.length;
        opts.onProgress?.(done, total);
        throwIfAborted(opts.signal);
      }
      if (got !== want) throw wrongSize(t.spec, got, want);
    }
    await settle();
    if (failed) throw failed.error;
    await sink.commit();
    return layout;
  } catch (e) {
    // No fill may still be writing when the file is removed.
    await settle();
    await sink.abort();
    throw e;
  }
}

export interface ShardPlan {
  /** File names, HF style: model.safetensors alone, else model-0000K-of-0000N.safetensors. */
  readonly files: readonly { name: string; specs: TensorSpec[]; bytes: number }[];
  /** The index JSON to write when there is more than one file; undefined otherwise. */
  readonly index: string | undefined;
}

/**
 * Greedy in the given order, like transformers' split: a tensor that would push the current shard
 * past `maxShardBytes` starts a new one; a tensor larger than the limit gets a shard of its own.
 */
export function planShards(specs: readonly TensorSpec[], maxShardBytes = DEFAULT_MAX_SHARD_BYTES, baseName = 'model'): ShardPlan {
  const groups: { specs: TensorSpec[]; bytes: number }[] = [];
  for (const s of specs) {
    const n = tensorByteLength(s);
    const cur = groups[groups.length - 1];
    if (!cur || (cur.bytes + n > maxShardBytes && cur.specs.length > 0)) groups.push({ specs: [s], bytes: n });
    else {
      cur.specs.push(s);
      cur.bytes += n;
    }
  }
  if (groups.length === 0) groups.push({ specs: [], bytes: 0 });
  if (groups.length === 1) {
    const single = baseName === 'model' ? SAFETENSORS_SINGLE_NAME : `${baseName}.safetensors`;
    return { files: [{ name: single, ...groups[0]! }], index: undefined };
  }
  const pad = (k: number) => String(k).padStart(5, '0');
  const files = groups.map((g, i) => ({ name: `${baseName}-${pad(i + 1)}-of-${pad(groups.length)}.safetensors`, ...g }));
  const weightMap: Record<string, string> = {};
  const entries: [string, string][] = [];
  for (const f of files) for (const s of f.specs) entries.push([s.name, f.name]);
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [k, v] of entries) weightMap[k] = v;
  const total = files.reduce((a, f) => a + f.bytes, 0);
  const index = JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2) + '\n';
  return { files, index };
}

/** The order writeShardedSafetensors asks for tensor data: shard by shard, each in its file order. */
export function writeOrder(specs: readonly TensorSpec[], maxShardBytes = DEFAULT_MAX_SHARD_BYTES): string[] {
  return planShards(specs, maxShardBytes).files.flatMap((f) => layoutSafetensors(f.specs).tensors.map((t) => t.spec.name));
}

export function indexFileName(baseName = 'model'): string {
  return baseName === 'model' ? SAFETENSORS_INDEX_NAME : `${baseName}.safetensors.index.json`;
}

/**
 * Writes a sharded checkpoint: every shard (each atomically), then the index last, so a folder
 * with an index is a folder whose shards are all complete.
 */
export async function writeShardedSafetensors(
  openSink: (fileName: string) => Promise<ByteSink>,
  specs: readonly TensorSpec[],
  data: (spec: TensorSpec) => TensorData | Promise<TensorData>,
  opts: WriteOptions & { maxShardBytes?: number; baseName?: string } = {},
): Promise<ShardPlan> {
  const plan = planShards(specs, opts.maxShardBytes, opts.baseName);
  const total = plan.files.reduce((a, f) => a + f.bytes, 0);
  let before = 0;
  for (const f of plan.files) {
    const base = before;
    await writeSafetensors(await openSink(f.name), f.specs, data, {
      ...opts,
      onProgress: opts.onProgress && ((done) => opts.onProgress!(base + done, total)),
    });
    before += f.bytes;
  }
  if (plan.index !== undefined) {
    const sink = await openSink(indexFileName(opts.baseName));
    try {
      await sink.write(new TextEncoder().encode(plan.index));
      await sink.commit();
    } catch (e) {
      await sink.abort();
      throw e;
    }
  }
  return plan;
}
