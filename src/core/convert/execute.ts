/**
 * Executes a plan: reads each source tensor, applies its transforms, writes HF safetensors (sharded
 * with an index past the shard size, `__metadata__ {"format":"pt"}`), config.json, and the tokenizer
 * files, into a target that becomes visible only when complete. The source is only read.
 */
import * as path from 'node:path';
import { valueOpener, type Checkpoint, type TensorRef } from '../checkpoint';
import { JaxServeError, throwIfAborted } from '../errors';
import { openerWithin, type ByteSink, type ByteSource, type FileOpener } from '../io/byteSource';
import { writeOrder, writeShardedSafetensors, type TensorFill, type TensorSpec } from '../formats/safetensors/writer';
import { planHasErrors, type Plan, type PlannedTensor } from './plan';
import { convertSelected, DEFAULT_TILE_BUDGET_BYTES, tileable, tiledTensorData, tileSet } from './tiled';
import { positionable } from '../tensor/sourceReader';
import { checkTokenizerFolder, compatTokenizerConfig } from './tokenizer';
import { LookAhead, type TensorConverter } from './lookAhead';
import { applyTransforms } from './transforms';
import { readWholeTensor } from './wholeTensor';
import { MERGE_WHOLE_BYTES, mergedTensor, mergedTiles, writeAdapter } from './adapterExport';
import { configJson } from './configJson';

/** Where an export is written (core/node's OutputFolder: a temporary folder renamed when done). */
export interface ExportTarget {
  sink(name: string): Promise<ByteSink>;
  writeFile(name: string, text: string): Promise<void>;
  /** Copies what `from` reads (opened, and checked, by the caller) into the export as `name`. */
  copyFrom(from: ByteSource, name: string): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/** Tokenizer and generation files copied from --tokenizer-from, when present (HF names). */
export const TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'tokenizer.model',
  'added_tokens.json',
  'vocab.json',
  'merges.txt',
  'chat_template.jinja',
  'chat_template.json',
] as const;

export interface ExecuteOptions {
  maxShardBytes?: number;
  /** A folder with tokenizer files to copy (tokenizer.json, tokenizer_config.json, chat template, …). */
  tokenizerFrom?: string;
  /** A folder whose generation_config.json is copied (the base model's). */
  generationConfigFrom?: string;
  signal?: AbortSignal;
  onProgress?: (doneBytes: number, totalBytes: number) => void;
  /** Tensors over this many bytes are converted in tiles (default 96 MiB). */
  tileBudgetBytes?: number;
  /**
   * Threads that read and convert whole tensors ahead of the writer (core's ValueWorker), so an
   * export keeps more than one core busy. Without them everything runs on this thread.
   */
  converters?: readonly TensorConverter[];
  /**
   * LoRA: the adapter-only checkpoint the plan's factors come from (--lora-from); for --lora adapter,
   * the folder the PEFT adapter is written to and the base model path its config names. The base is
   * committed first, then the adapter.
   */
  lora?: { readonly adapterCheckpoint?: Checkpoint; readonly adapterTarget?: ExportTarget; readonly baseModel?: string };
}

export interface ExportResult {
  readonly files: readonly string[];
  readonly bytes: number;
  /** What the user should know about the copied files (warnings, compatibility rewrites). */
  readonly notes: readonly string[];
}

export async function executePlan(plan: Plan, ck: Checkpoint, files: FileOpener, target: ExportTarget, opts: ExecuteOptions = {}): Promise<ExportResult> {
  const stateDict = plan.architecture === 'state-dict';
  if (planHasErrors(plan) || (!plan.config && !stateDict)) {
    const first = plan.problems.filter((p) => p.severity === 'error').slice(0, 3).map((p) => p.message);
    throw new JaxServeError('E_USAGE', `the plan has errors; nothing was written:\n  ${first.join('\n  ')}`);
  }
  const notes: string[] = [];
  const opener = valueOpener(ck, files);
  const byName = new Map(plan.tensors.map((t) => [t.to, t]));
  const sources = new Map(ck.tensors.map((t) => [t.name, t]));
  const specs: TensorSpec[] = plan.tensors.map((t) => ({ name: t.to, dtype: t.target.dtype, shape: t.target.shape }));
  const budget = opts.tileBudgetBytes ?? DEFAULT_TILE_BUDGET_BYTES;
  const converters = opts.converters ?? [];
  // With converter threads, a tensor whose chain runs in tiles is cut into tiles they make side by
  // side (the tensors after it start while it finishes); without them, only what is over the budget is.
  const tileJob = Math.min(budget, TILE_JOB_BYTES);
  const slots = new Slots(2 * converters.length);
  // Tiles read at any offset: a deflated or Fortran-order source is read whole, as without threads.
  const onConverters = (p: PlannedTensor, src: TensorRef) => converters.length > 0 && !p.merge && tileable(p) && positionable(src);
  const routeOf = (p: PlannedTensor, src: TensorRef) => route(p, src, onConverters(p, src) ? Math.min(budget, WHOLE_ON_CONVERTERS_BYTES) : budget);
  const inWriteOrder = writeOrder(specs, opts.maxShardBytes).map((n) => byName.get(n)!);
  // The look-ahead takes what the threads make whole: chains that cannot run in tiles. Small tensors
  // whose chain can (norms, biases) are made here: queued behind a thread's tiles they would hold up
  // the writer, and so the start of the tensors after them.
  const ahead = converters.length ? new LookAhead(inWriteOrder, sources, converters, ck, (p, src) => !p.merge && !onConverters(p, src) && routeOf(p, src) !== 'tiles', opts.signal) : undefined;
  const written: string[] = [];
  const adapterSources = { ck, adapter: opts.lora?.adapterCheckpoint, files };
  try {
    // The tokenizer is checked against the config before any tensor is written.
    if (opts.tokenizerFrom) {
      const found = (await checkTokenizerFolder(await openerWithin(files, opts.tokenizerFrom), opts.tokenizerFrom, plan.config)).filter((f) => f.code !== 'tokenizer-class');
      const errors = found.filter((f) => f.severity === 'error');
      if (errors.length) throw new JaxServeError(errors.some((f) => f.code === 'no-tokenizer') ? 'E_NOT_FOUND' : 'E_FORMAT', `--tokenizer-from ${opts.tokenizerFrom}: ${errors.map((f) => f.message).join(' ')}`);
      notes.push(...found.filter((f) => f.severity === 'warning').map((f) => f.message));
    }
    const shards = await writeShardedSafetensors(
      (name) => {
        written.push(name);
        return target.sink(name);
      },
      specs,
      async (spec) => {
        throwIfAborted(opts.signal);
        const p = byName.get(spec.name)!;
        const src = sources.get(p.from);
        if (!src) throw new JaxServeError('E_NOT_FOUND', `the plan names source tensor ${p.from}, which the checkpoint no longer has; plan again.`);
        const early = ahead?.take(p);
        if (early) return early;
        // Whole up to the smaller of the merge's own bound and the tile budget; in tiles past it.
        if (p.merge) return p.target.shape.reduce((x, y) => x * y, 4) <= Math.min(MERGE_WHOLE_BYTES, budget) ? mergedTensor(p, ck, files, adapterSources, opts.signal) : mergedTiles(p, ck, files, adapterSources, budget, opts.signal);
        // Small tensors are converted whole; large ones in tiles, so memory stays bounded. One layer
        // of a scanned kernel is small even when the kernel is not: only its slice is read.
        const how = routeOf(p, src);
        if (how === 'selected') return (await convertSelected(p, src, opener))!;
        if (how === 'whole') return convertTensor(p, src, opener, opts.signal);
        return onConverters(p, src) ? tilesOnConverters(p, src, ck, converters, slots, tileJob, opts.signal) : tiledTensorData(p, src, opener, budget, opts.signal);
      },
      { maxShardBytes: opts.maxShardBytes, metadata: { format: 'pt' }, onProgress: opts.onProgress, concurrentFills: converters.length ? FILLS_AT_ONCE : 1 },
    );
    if (plan.config) {
      await target.writeFile('config.json', configJson(plan.config) + '\n');
      written.push('config.json');
    }
    if (stateDict) {
      // The mapping report: which JAX array became which state_dict entry, and how.
      const mapping = plan.tensors.map((t) => ({ from: t.from, to: t.to, transforms: t.transforms, shape: t.target.shape, dtype: t.target.dtype }));
      await target.writeFile('mapping.json', JSON.stringify({ source: plan.source, preset: plan.preset.id, tensors: mapping }, null, 2) + '\n');
      written.push('mapping.json');
    }
    written.push(...(await copyTokenizer(files, target, opts, notes)));
    const to = plan.lora === 'adapter' ? opts.lora?.adapterTarget : undefined;
    if (plan.lora === 'adapter') {
      if (!to) throw new JaxServeError('E_USAGE', '--lora adapter needs --adapter-out DIR, the folder for the PEFT adapter.');
      await writeAdapter(plan, adapterSources, to, opts.lora?.baseModel ?? plan.source, opts.signal);
    }
    // The base first: a base standing alone is a whole base model; an adapter beside a base it was
    // not made for (an old one kept by a failed --overwrite) would look complete and be wrong.
    await target.commit();
    await to?.commit();
    return { files: written, bytes: shards.files.reduce((a, f) => a + f.bytes, 0), notes };
  } catch (e) {
    ahead?.drop();
    await opts.lora?.adapterTarget?.abort();
    await target.abort();
    throw e;
  }
}

/**
 * Working memory of one tile made on a converter thread: tiles of about 16 MiB keep every thread busy
 * on one large tensor (an lm_head, an embedding), and the few in flight stay well under the 512 MB bar.
 */
const TILE_JOB_BYTES = 32 << 20;

/**
 * With converter threads, tensors whose chain runs in tiles are made whole, on this thread, only up
 * to this size (a norm, a bias: well under a millisecond each); larger ones go to the threads as
 * tiles, whose buffers the threads reuse.
 */
const WHOLE_ON_CONVERTERS_BYTES = 256 << 10;

/** Tensors being filled at once: enough that a small tensor's tile never waits for a large one's last. */
const FILLS_AT_ONCE = 4;

/** How a tensor's bytes are made: whole in memory, one layer read out of a scanned kernel, or in tiles. */
type Route = 'whole' | 'selected' | 'tiles';

function route(p: PlannedTensor, src: TensorRef, wholeMax: number): Route {
  if (p.transforms[0]?.op === 'select' && p.bytes <= wholeMax && positionable(src)) return 'selected';
  return src.bytes <= wholeMax && p.bytes <= wholeMax ? 'whole' : 'tiles';
}

/** Tiles in flight across every tensor being filled: a few per converter thread, so memory holds a few tiles. */
class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(count: number) {
    this.free = count;
  }
  async run<T>(f: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await f();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
}

/**
 * A tensor's tiles made on the converter threads, each written where it belongs as soon as it is back
 * and its buffers handed back to its thread: reads, transposes and writes overlap, and memory holds
 * the tiles in flight.
 */
function tilesOnConverters(p: PlannedTensor, src: TensorRef, ck: Checkpoint, converters: readonly TensorConverter[], slots: Slots, budget: number, signal: AbortSignal | undefined): TensorFill {
  const planned = { from: p.from, source: p.source, target: p.target, transforms: p.transforms };
  const count = tileSet(planned, src.bytes, budget).count;
  return {
    async writeTiles(writeAt) {
      // After a failure no further tile starts, and the fill ends only once none is still writing.
      let failure: { error: unknown } | undefined;
      await Promise.all(
        Array.from({ length: count }, (_, i) =>
          slots
            .run(async () => {
              if (failure) return;
              throwIfAborted(signal);
              const worker = converters.reduce((a, b) => (b.busy < a.busy ? b : a));
              const pieces = await worker.tile(ck, src, planned, budget, i, { signal });
              for (const piece of pieces) await writeAt(piece.offset, piece.bytes);
              worker.recycle(pieces);
            })
            .catch((e: unknown) => void (failure ??= { error: e })),
        ),
      );
      if (failure) throw failure.error;
    },
  };
}

/** One tensor within the budget, whole in memory: read, transform. Import uses it too. */
export async function convertTensor(t: PlannedTensor, src: TensorRef, opener: FileOpener, signal?: AbortSignal): Promise<Uint8Array> {
  return applyTransforms(await readWholeTensor(opener, src, signal), t.source, t.transforms).bytes;
}

/** Copies `name` through the handle that was checked, so what is copied is what was checked. */
async function copyChecked(files: FileOpener, from: string, target: ExportTarget, name: string): Promise<void> {
  const src = await files.open(from);
  try {
    await target.copyFrom(src, name);
  } finally {
    await src.close();
  }
}

async function copyTokenizer(files: FileOpener, target: ExportTarget, opts: ExecuteOptions, notes: string[]): Promise<string[]> {
  const copied: string[] = [];
  if (opts.tokenizerFrom) {
    const tok = await openerWithin(files, opts.tokenizerFrom);
    for (const name of TOKENIZER_FILES) {
      const from = path.join(opts.tokenizerFrom, name);
      if ((await tok.kind(from)) !== 'file') continue;
      if (name === 'tokenizer_config.json') {
        const { text, changed } = compatTokenizerConfig(new TextDecoder().decode(await tok.readSmall(from, 64 << 20)), from);
        await target.writeFile(name, text);
        if (changed.length) notes.push(`tokenizer_config.json rewritten so transformers 4.x and 5.x both load it: ${changed.join('; ')}.`);
      } else await copyChecked(tok, from, target, name);
      copied.push(name);
    }
    if (!copied.includes('tokenizer.json') && !copied.includes('tokenizer.model')) {
      throw new JaxServeError('E_NOT_FOUND', `${opts.tokenizerFrom}: no tokenizer.json or tokenizer.model to copy; vLLM and SGLang need one of them.`);
    }
  }
  const gen = opts.generationConfigFrom ?? opts.tokenizerFrom;
  if (gen) {
    const genFiles = await openerWithin(files, gen);
    const from = path.join(gen, 'generation_config.json');
    if ((await genFiles.kind(from)) === 'file') {
      await copyChecked(genFiles, from, target, 'generation_config.json');
      copied.push('generation_config.json');
    }
  }
  return copied;
}
