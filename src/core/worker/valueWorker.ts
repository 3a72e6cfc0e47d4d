/**
 * The host side of the value worker: one worker thread, started on first use, that computes
 * statistics, histograms and slices. Jobs can run side by side; each can be cancelled and reports
 * progress. Sources that are not plain files (Orbax leaves) are read here and handed over.
 */
import { Worker } from 'node:worker_threads';
import { valueOpener, type Checkpoint, type TensorRef } from '../checkpoint';
import { isErrorCode, JaxServeError } from '../errors';
import { readExactly, type FileOpener } from '../io/byteSource';
import type { PlannedTensor } from '../convert/plan';
import type { Piece, TiledTensor } from '../convert/tiled';
import type { Layout, Transform } from '../convert/transforms';
import type { ValueDiff } from '../diff';
import type { Histogram } from '../tensor/histogram';
import type { Slice, SliceRequest } from '../tensor/slice';
import type { TensorStats } from '../tensor/stats';
import { tensorData, type FromWorker, type Job, type JobResult, type ToWorker } from './protocol';

export interface JobOptions {
  signal?: AbortSignal;
  /** Fraction of the job done, 0..1, at most about a hundred times. */
  onProgress?: (fraction: number) => void;
}

interface Running {
  resolve(r: JobResult): void;
  reject(e: Error): void;
  onProgress?: (fraction: number) => void;
  opener: FileOpener;
  /** A compare job's other checkpoint. */
  otherOpener?: FileOpener;
}

export class ValueWorker {
  private worker: Worker | undefined;
  private readonly jobs = new Map<number, Running>();
  private nextId = 1;

  /** `script`: the bundled worker (dist/valueWorker.js). `files`: the opener of checkpoints with no opener of their own. */
  constructor(
    private readonly script: string,
    private readonly files: FileOpener,
  ) {}

  /**
   * Statistics and a `bins`-bin histogram. With `firstPass`, a float tensor's histogram (a second
   * pass) is left out (undefined); with `stats` known, only that second pass runs.
   */
  async stats(ck: Checkpoint, t: TensorRef, bins: number, opts: JobOptions & { firstPass?: boolean; stats?: TensorStats } = {}): Promise<{ stats: TensorStats; histogram: Histogram | null | undefined }> {
    const r = await this.run(ck, t, { kind: 'stats', bins, firstPass: opts.firstPass, stats: opts.stats }, opts);
    if (r.kind !== 'stats') throw new JaxServeError('E_IO', 'the value worker answered a stats job with something else');
    return { stats: r.stats, histogram: r.histogram };
  }

  async slice(ck: Checkpoint, t: TensorRef, request: SliceRequest, opts: JobOptions = {}): Promise<Slice> {
    const r = await this.run(ck, t, { kind: 'slice', request }, opts);
    if (r.kind !== 'slice') throw new JaxServeError('E_IO', 'the value worker answered a slice job with something else');
    return r.slice;
  }

  /** Reads a whole tensor and applies a conversion chain on the worker's thread. */
  async convert(ck: Checkpoint, t: TensorRef, layout: Layout, transforms: readonly Transform[], opts: JobOptions = {}): Promise<Uint8Array> {
    const r = await this.run(ck, t, { kind: 'convert', layout, transforms }, opts);
    if (r.kind !== 'convert') throw new JaxServeError('E_IO', 'the value worker answered a convert job with something else');
    return r.bytes;
  }

  /** Makes tile `index` of `planned` (convert/tiled's tileSet at `budget`) on the worker's thread. */
  async tile(ck: Checkpoint, t: TensorRef, planned: TiledTensor, budget: number, index: number, opts: JobOptions = {}): Promise<Piece[]> {
    const r = await this.run(ck, t, { kind: 'tile', planned, budget, index }, opts);
    if (r.kind !== 'tile') throw new JaxServeError('E_IO', 'the value worker answered a tile job with something else');
    return r.pieces;
  }

  /** Hands a tile's buffers back to the thread once they are written, to be used for its next tiles. */
  recycle(pieces: readonly Piece[]): void {
    const buffers = [...new Set(pieces.map((p) => p.bytes.buffer as ArrayBuffer))].filter((b) => b.byteLength > 0);
    if (this.worker && buffers.length) this.worker.postMessage({ type: 'recycle', buffers } satisfies ToWorker, buffers);
  }

  /**
   * Compares `left` (of `leftCk`) with `right` (of `rightCk`) element by element, one side first
   * converted by its plan entry (see core/diff).
   */
  async compare(leftCk: Checkpoint, left: TensorRef, rightCk: Checkpoint, right: TensorRef, planned: { side: 'left' | 'right'; planned: PlannedTensor } | undefined, tol: { rtol: number; atol: number }, opts: JobOptions = {}): Promise<ValueDiff> {
    const job: Job = { kind: 'compare', other: tensorData(right), otherProxied: rightCk.opener !== undefined, planned, ...tol };
    const r = await this.run(leftCk, left, job, opts, valueOpener(rightCk, this.files));
    if (r.kind !== 'compare') throw new JaxServeError('E_IO', 'the value worker answered a compare job with something else');
    return r.diff;
  }

  /**
   * Starts the thread now rather than on the first job: it takes tens of milliseconds to load, which
   * a caller can hide behind its own work (an export's open and plan). An idle thread does not keep
   * the process alive.
   */
  warm(): void {
    if (!this.worker) this.start().unref();
  }

  /** Jobs running now (the executor gives new ones to the least busy worker). */
  get busy(): number {
    return this.jobs.size;
  }

  /** Stops the thread; running jobs fail as cancelled. */
  async dispose(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    this.failAll(new JaxServeError('E_CANCELLED', 'The value worker was stopped.'));
    await w?.terminate();
  }

  private run(ck: Checkpoint, t: TensorRef, job: Job, opts: JobOptions, otherOpener?: FileOpener): Promise<JobResult> {
    if (opts.signal?.aborted) return Promise.reject(new JaxServeError('E_CANCELLED', 'Cancelled.'));
    const worker = this.start();
    // A running job keeps the process alive; an idle worker does not.
    worker.ref();
    const id = this.nextId++;
    return new Promise<JobResult>((resolve, reject) => {
      const onAbort = () => worker.postMessage({ type: 'cancel', id } satisfies ToWorker);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      const done = () => opts.signal?.removeEventListener('abort', onAbort);
      this.jobs.set(id, {
        resolve: (r) => (done(), resolve(r)),
        reject: (e) => (done(), reject(e)),
        onProgress: opts.onProgress,
        opener: valueOpener(ck, this.files),
        otherOpener,
      });
      worker.postMessage({ type: 'job', id, tensor: tensorData(t), proxied: ck.opener !== undefined, job } satisfies ToWorker);
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(this.script);
    this.worker = w;
    w.on('message', (m: FromWorker) => void this.onMessage(w, m));
    w.on('error', (e) => this.failAll(new JaxServeError('E_IO', `The value worker failed: ${e.message}`)));
    w.on('exit', (code) => {
      if (this.worker === w) this.worker = undefined;
      this.failAll(new JaxServeError('E_IO', `The value worker exited (code ${code}).`));
    });
    return w;
  }

  private async onMessage(w: Worker, m: FromWorker): Promise<void> {
    switch (m.type) {
      case 'progress':
        this.jobs.get(m.id)?.onProgress?.(m.fraction);
        return;
      case 'result':
      case 'error': {
        const job = this.jobs.get(m.id);
        this.jobs.delete(m.id);
        if (!job) return;
        if (m.type === 'result') job.resolve(m.result);
        else job.reject(new JaxServeError(isErrorCode(m.code) ? m.code : 'E_IO', m.message));
        if (this.jobs.size === 0) w.unref();
        return;
      }
      case 'read': {
        const job = this.jobs.get(m.id);
        try {
          if (!job) throw new JaxServeError('E_CANCELLED', 'the job was cancelled');
          const opener = m.other ? job.otherOpener : job.opener;
          if (!opener) throw new JaxServeError('E_IO', 'the worker asked for the other tensor of a job that has none');
          const src = await opener.open(m.file);
          const b = new Uint8Array(m.length);
          try {
            await readExactly(src, m.offset, b);
          } finally {
            await src.close();
          }
          w.postMessage({ type: 'readReply', rid: m.rid, bytes: b } satisfies ToWorker, [b.buffer]);
        } catch (e) {
          const code = e instanceof JaxServeError ? e.code : 'E_IO';
          w.postMessage({ type: 'readReply', rid: m.rid, error: { code, message: e instanceof Error ? e.message : String(e) } } satisfies ToWorker);
        }
        return;
      }
    }
  }

  private failAll(e: Error): void {
    const jobs = [...this.jobs.values()];
    this.jobs.clear();
    for (const j of jobs) j.reject(e);
  }
}
