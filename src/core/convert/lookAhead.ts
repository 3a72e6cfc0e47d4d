/**
 * The export's other cores: converter threads (core's ValueWorker) read and convert the tensors made
 * whole (small ones, and chains that cannot run in tiles) ahead of the safetensors writer, which
 * takes them in its own order. Larger tensors go to the same threads as tiles (execute.ts).
 */
import type { Checkpoint, TensorRef } from '../checkpoint';
import type { PlannedTensor } from './plan';
import type { Piece, TiledTensor } from './tiled';
import type { Layout, Transform } from './transforms';

/** Reads a tensor and applies a chain on another thread (ValueWorker.convert), whole or one tile of it (ValueWorker.tile). */
export interface TensorConverter {
  readonly busy: number;
  convert(ck: Checkpoint, t: TensorRef, layout: Layout, transforms: readonly Transform[], opts: { signal?: AbortSignal }): Promise<Uint8Array>;
  tile(ck: Checkpoint, t: TensorRef, planned: TiledTensor, budget: number, index: number, opts: { signal?: AbortSignal }): Promise<Piece[]>;
  /** Hands a tile's buffers back once written (the thread reuses them). */
  recycle(pieces: readonly Piece[]): void;
}

/**
 * Working memory the look-ahead may hold, in estimated bytes (source + converted + cast copies of
 * each tensor in flight): with the tiled path's budget it keeps the peak under the 512 MB bar.
 */
const LOOKAHEAD_BYTES = 128 << 20;

/**
 * Conversions started ahead of the writer on the converter threads, in the order the writer asks
 * for them, while their estimated working memory fits LOOKAHEAD_BYTES (the next one always
 * starts): the tensors `whole` picks. Tiled tensors stay with the writer.
 */
export class LookAhead {
  private readonly started = new Map<PlannedTensor, { bytes: Promise<Uint8Array>; cost: number }>();
  private held = 0;
  private next = 0;
  private readonly position: ReadonlyMap<PlannedTensor, number>;

  constructor(
    private readonly order: readonly PlannedTensor[],
    private readonly sources: ReadonlyMap<string, TensorRef>,
    private readonly converters: readonly TensorConverter[],
    private readonly ck: Checkpoint,
    /** True for a tensor made whole (or as one layer of a scanned kernel); tiled ones stay with the writer. */
    private readonly whole: (p: PlannedTensor, src: TensorRef) => boolean,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.position = new Map(order.map((p, i) => [p, i]));
  }

  private eligible(p: PlannedTensor): TensorRef | undefined {
    const src = this.sources.get(p.from);
    return src && this.whole(p, src) ? src : undefined;
  }

  private fill(): void {
    while (this.next < this.order.length) {
      const p = this.order[this.next]!;
      const src = this.eligible(p);
      if (!src) {
        // The writer converts this one itself; look further only once it is past it.
        if (this.started.size > 0) return;
        this.next++;
        continue;
      }
      const cost = Math.min(src.bytes, p.bytes) + 2 * p.bytes;
      if (this.started.size > 0 && this.held + cost > LOOKAHEAD_BYTES) return;
      const worker = this.converters.reduce((a, b) => (b.busy < a.busy ? b : a));
      const bytes = worker.convert(this.ck, src, p.source, p.transforms, { signal: this.signal });
      bytes.catch(() => undefined); // awaited by take(); a failure after an abort is not unhandled
      this.started.set(p, { bytes, cost });
      this.held += cost;
      this.next++;
    }
  }

  /** The converted bytes of `p` when the look-ahead has (or now starts) it. */
  take(p: PlannedTensor): Promise<Uint8Array> | undefined {
    const at = this.position.get(p)!;
    if (!this.started.has(p) && at >= this.next) {
      this.next = at;
      this.fill();
    }
    const got = this.started.get(p);
    if (!got) {
      // The writer converts p itself; the look-ahead goes on after it.
      this.next = Math.max(this.next, at + 1);
      this.fill();
      return undefined;
    }
    this.started.delete(p);
    return got.bytes.finally(() => {
      this.held -= got.cost;
      this.fill();
    });
  }

  drop(): void {
    this.started.clear();
  }
}

