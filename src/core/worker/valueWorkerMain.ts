/**
 * The value worker's thread: runs statistics, histograms, slices and tensor conversions with the
 * same core functions the CLI uses. Plain files are read here directly; other sources ask the host for each range.
 */
import { parentPort } from 'node:worker_threads';
import type { TensorRef } from '../checkpoint';
import { isErrorCode, JaxServeError, throwIfAborted } from '../errors';
import type { ByteSource, FileOpener } from '../io/byteSource';
import { NodeFileOpener } from '../node/fileOpener';
import { HandleCache } from '../node/handleCache';
import { convertSelected, tileSet, type Piece } from '../convert/tiled';
import { SourceReader } from '../tensor/sourceReader';
import { compareValues } from '../diff';
import { applyTransforms } from '../convert/transforms';
import { codeBits } from '../tensor/codeCounts';
import { tensorHistogram } from '../tensor/histogram';
import { tensorStats } from '../tensor/stats';
import { readWholeTensor } from '../convert/wholeTensor';
import { tensorSlice } from '../tensor/slice';
import type { FromWorker, JobResult, TensorData, ToWorker } from './protocol';

const port = parentPort;
if (!port) throw new Error('valueWorkerMain runs only as a worker thread.');
const post = (m: FromWorker) => port.postMessage(m);
const jobs = new Map<number, AbortController>();
const reads = new Map<number, { resolve: (b: Uint8Array) => void; reject: (e: Error) => void }>();
let nextRead = 1;

/** Reads through the host for job `id` (its `other` tensor's checkpoint when set): one message per range. */
const hostOpener = (id: number, other = false): FileOpener => ({
  async open(file: string): Promise<ByteSource> {
    return {
      name: file,
      size: Number.MAX_SAFE_INTEGER,
      read: (offset, target) =>
        new Promise<number>((resolve, reject) => {
          const rid = nextRead++;
          reads.set(rid, {
            resolve: (b) => {
              target.set(b.subarray(0, target.length));
              resolve(Math.min(b.length, target.length));
            },
            reject,
          });
          post({ type: 'read', id, rid, file, offset, length: target.length, other });
        }),
      close: async () => undefined,
    };
  },
  readSmall: () => Promise.reject(new JaxServeError('E_UNSUPPORTED', 'not available in the value worker')),
  kind: async () => 'file',
});
// Jobs come one tensor at a time (a health scan sends a million): keep their shards open between jobs.
// Reads of a tile's rows are small and many: made on this thread, which may block (see OpenerOptions).
const fileOpener = new HandleCache(new NodeFileOpener(undefined, { syncReadBytes: 1 << 20 }));

/**
 * Tiles' buffers, kept between jobs: the host hands a tile's buffers back once written ('recycle').
 * Fresh memory costs a page fault per 4 KiB (a new 16 MiB buffer takes as long as transposing a
 * third of it). Jobs can interleave at their awaits, so each takes its own.
 */
const spare: ArrayBuffer[] = [];
let spareBytes = 0;
const SPARE_BYTES = 96 << 20;

function takeBuffer(n: number): Uint8Array {
  if (n === 0) return new Uint8Array(0);
  const i = spare.findIndex((b) => b.byteLength >= n);
  if (i < 0) return new Uint8Array(n);
  const [b] = spare.splice(i, 1);
  spareBytes -= b!.byteLength;
  return new Uint8Array(b!, 0, n);
}

function keepBuffer(b: ArrayBuffer): void {
  if (b.byteLength === 0 || spareBytes + b.byteLength > SPARE_BYTES) return;
  spare.push(b);
  spareBytes += b.byteLength;
}

function asTensorRef(t: TensorData): TensorRef {
  return { ...t, path: [] };
}

async function run(id: number, t: TensorData, proxied: boolean, job: Extract<ToWorker, { type: 'job' }>['job'], signal: AbortSignal): Promise<JobResult> {
  const opener = proxied ? hostOpener(id) : fileOpener;
  const ref = asTensorRef(t);
  let last = 0;
  const onProgress = (fraction: number) => {
    if (fraction - last >= 0.01 || fraction >= 1) {
      last = fraction;
      post({ type: 'progress', id, fraction });
    }
  };
  if (job.kind === 'slice') return { kind: 'slice', slice: await tensorSlice(opener, ref, job.request, signal) };
  if (job.kind === 'compare') {
    const other = asTensorRef(job.other);
    const planned = (side: 'left' | 'right') => (job.planned?.side === side ? job.planned.planned : undefined);
    const diff = await compareValues(
      { opener, tensor: ref, planned: planned('left') },
      { opener: job.otherProxied ? hostOpener(id, true) : fileOpener, tensor: other, planned: planned('right') },
      { rtol: job.rtol, atol: job.atol, signal, onProgress },
    );
    return { kind: 'compare', diff };
  }
  if (job.kind === 'tile') {
    const tiles = tileSet(job.planned, ref.bytes, job.budget);
    const bufs = { read: takeBuffer(tiles.readBytes), out: takeBuffer(tiles.outBytes) };
    const reader = new SourceReader(opener, ref);
    let pieces: Piece[] = [];
    try {
      throwIfAborted(signal);
      return { kind: 'tile', pieces: (pieces = await tiles.make(job.index, reader, bufs)) };
    } finally {
      // What the pieces hold moves to the host (and comes back); the rest stays here.
      for (const b of [bufs.read.buffer, bufs.out.buffer] as ArrayBuffer[]) if (!pieces.some((p) => p.bytes.buffer === b)) keepBuffer(b);
      await reader.close();
    }
  }
  if (job.kind === 'convert') {
    // One layer of a scanned kernel: only its slice is read.
    const selected = await convertSelected({ source: job.layout, transforms: job.transforms }, ref, opener);
    if (selected) return { kind: 'convert', bytes: selected };
    return { kind: 'convert', bytes: applyTransforms(await readWholeTensor(opener, ref, signal), job.layout, job.transforms).bytes };
  }
  if (job.firstPass && !codeBits(ref.dtype)) return { kind: 'stats', stats: await tensorStats(opener, ref, { signal, onProgress }), histogram: undefined };
  const { stats, histogram } = await tensorHistogram(opener, ref, job.bins, { signal, onProgress, stats: job.stats });
  return { kind: 'stats', stats, histogram };
}

/** The buffers of a result that move to the host instead of being copied. */
function moved(result: JobResult): ArrayBuffer[] {
  if (result.kind === 'convert') return [result.bytes.buffer as ArrayBuffer];
  if (result.kind === 'tile') return [...new Set(result.pieces.map((p) => p.bytes.buffer as ArrayBuffer))];
  return [];
}

port.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'job': {
      const ac = new AbortController();
      jobs.set(m.id, ac);
      run(m.id, m.tensor, m.proxied, m.job, ac.signal).then(
        // A converted tensor's buffer moves to the host instead of being copied.
        (result) => port.postMessage({ type: 'result', id: m.id, result } satisfies FromWorker, moved(result)),
        (e: unknown) => {
          const code = e instanceof JaxServeError ? e.code : 'E_IO';
          post({ type: 'error', id: m.id, code, message: e instanceof Error ? e.message : String(e) });
        },
      ).finally(() => jobs.delete(m.id));
      return;
    }
    case 'cancel':
      jobs.get(m.id)?.abort();
      return;
    case 'recycle':
      for (const b of m.buffers) keepBuffer(b);
      return;
    case 'readReply': {
      const r = reads.get(m.rid);
      reads.delete(m.rid);
      if (!r) return;
      if (m.bytes) r.resolve(m.bytes);
      else r.reject(new JaxServeError(m.error && isErrorCode(m.error.code) ? m.error.code : 'E_IO', m.error?.message ?? 'read failed'));
      return;
    }
  }
});
