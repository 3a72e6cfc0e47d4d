/**
 * Streams a tensor's bytes in storage order as little-endian chunks that each hold whole elements,
 * whatever the storage: one range, several (chunked Flax arrays), a deflated .npz member, or a
 * big-endian numpy array. Statistics, slices and conversion all read through here.
 */
import { createInflateRaw, crc32 } from 'node:zlib';
import { tensorRanges, type ByteRange, type TensorRef } from '../checkpoint';
import { formatError, JaxServeError, throwIfAborted } from '../errors';
import { safeName } from '../text';
import { readExactly, type ByteSource, type FileOpener } from '../io/byteSource';
import { READ_CHUNK_BYTES } from '../limits';
import { decodeChunk } from './decode';
import { dtypeBytes } from '../dtype';
import type { ReadOptions } from './readOptions';

export type { ReadOptions } from './readOptions';

/**
 * Positioned reads, one chunk ahead: the next read runs in the I/O pool while this chunk is used.
 * With `buffers`, reads alternate between the two: one is read into while the caller holds the other.
 */
async function* plainRange(src: ByteSource, r: ByteRange, chunk: number, buffers?: ReuseBuffers): AsyncGenerator<Uint8Array> {
  let turn = 0;
  const readAt = async (done: number) => {
    const n = Math.min(chunk, r.length - done);
    const b = buffers ? (turn++ & 1 ? buffers[1] : buffers[0]).subarray(0, n) : new Uint8Array(n);
    await readExactly(src, r.offset + done, b);
    return b;
  };
  let next: Promise<Uint8Array> | undefined = r.length > 0 ? readAt(0) : undefined;
  for (let done = 0; next; ) {
    const b = await next;
    done += b.length;
    next = done < r.length ? readAt(done) : undefined;
    // A failed read-ahead is reported when it is awaited; keep it from being "unhandled" meanwhile.
    next?.catch(() => undefined);
    yield b;
  }
}

async function* inflatedRange(src: ByteSource, r: ByteRange & { deflate: NonNullable<ByteRange['deflate']> }, chunk: number): AsyncGenerator<Uint8Array> {
  const inflate = createInflateRaw({ chunkSize: Math.min(chunk, 1 << 20) });
  const feed = (async () => {
    for (let done = 0; done < r.deflate.compressedLength; ) {
      const n = Math.min(1 << 20, r.deflate.compressedLength - done);
      const b = new Uint8Array(n);
      await readExactly(src, r.offset + done, b);
      done += n;
      if (!inflate.write(b)) await new Promise((res) => inflate.once('drain', res));
    }
    inflate.end();
  })();
  feed.catch((e) => inflate.destroy(e));
  let skip = r.deflate.skip;
  let left = r.length;
  let crc = 0;
  try {
    for await (const out of inflate as AsyncIterable<Buffer>) {
      crc = crc32(out, crc);
      let b: Uint8Array = out;
      if (skip > 0) {
        const s = Math.min(skip, b.length);
        skip -= s;
        b = b.subarray(s);
      }
      if (b.length > left) b = b.subarray(0, left);
      left -= b.length;
      if (b.length > 0) yield b;
    }
  } catch (e) {
    throw formatError(src.name, `a compressed member is corrupt (${(e as Error).message}).`);
  } finally {
    inflate.destroy();
  }
  await feed.catch(() => undefined);
  if (left > 0) throw formatError(src.name, `a compressed member ended ${left} bytes early; the archive is truncated or corrupt.`);
  if (r.deflate.crc32 !== undefined && crc !== r.deflate.crc32) {
    throw formatError(src.name, `a compressed member is corrupt: its CRC-32 is ${crc.toString(16)}, the archive records ${r.deflate.crc32.toString(16)}.`);
  }
}

/** Reverses the bytes of each `size`-byte element: big-endian to little-endian. */
export function swapInPlace(b: Uint8Array, size: number): void {
  for (let i = 0; i + size <= b.length; i += size) {
    for (let a = i, z = i + size - 1; a < z; a++, z--) {
      const t = b[a]!;
      b[a] = b[z]!;
      b[z] = t;
    }
  }
}

/** Bytes per read: whole elements, at least one. */
const chunkBytesOf = (elementBytes: number, want: number) => Math.max(elementBytes, Math.floor(want / elementBytes) * elementBytes);

/** Two buffers that reads alternate between, so a long stream allocates (and the kernel zeroes) no page per chunk. */
export type ReuseBuffers = readonly [Uint8Array, Uint8Array];

/**
 * Yields the tensor's bytes in order; every chunk but the last has a multiple of the element size.
 * With `buffers`, plain ranges are read into them (chunks no longer than the shorter one), so each
 * chunk is valid only until the next one is asked for.
 */
export async function* readTensorBytes(opener: FileOpener, t: TensorRef, opts: ReadOptions & { buffers?: ReuseBuffers } = {}): AsyncGenerator<Uint8Array> {
  const size = dtypeBytes(t.dtype) ?? 1;
  const chunk = chunkBytesOf(size, Math.min(opts.chunkBytes ?? READ_CHUNK_BYTES, opts.buffers ? Math.min(opts.buffers[0].length, opts.buffers[1].length) : Infinity));
  let carry = new Uint8Array(0);
  for (const r of tensorRanges(t)) {
    const src = await opener.open(r.file);
    try {
      const pieces = r.deflate ? inflatedRange(src, { ...r, deflate: r.deflate }, chunk) : plainRange(src, r, chunk, opts.buffers);
      for await (const piece of pieces) {
        throwIfAborted(opts.signal);
        // Re-cut to whole elements: inflate output and chunk pieces can split an element.
        let b = piece;
        if (carry.length > 0) {
          const joined = new Uint8Array(carry.length + b.length);
          joined.set(carry);
          joined.set(b, carry.length);
          b = joined;
        }
        const whole = b.length - (b.length % size);
        carry = b.slice(whole);
        if (whole === 0) continue;
        const out = b.subarray(0, whole);
        if (t.bigEndian && size > 1) swapInPlace(out, size);
        yield out;
      }
    } finally {
      await src.close();
    }
  }
  if (carry.length > 0) throw formatError(t.source.file, `tensor ${JSON.stringify(t.name)} ends in the middle of an element.`);
}

/**
 * The tensor's elements as numbers, chunk by chunk (see decodeChunk). Bytes are read into two
 * reused buffers (the caller's `buffers`, or its own) and converted dtypes decode into one more, so
 * each yielded array is valid only until the next one is asked for.
 */
export async function* readTensorValues(opener: FileOpener, t: TensorRef, opts: ReadOptions & { buffers?: ReuseBuffers } = {}): AsyncGenerator<ArrayLike<number>> {
  const size = dtypeBytes(t.dtype) ?? 1;
  const chunkBytes = chunkBytesOf(size, opts.chunkBytes ?? READ_CHUNK_BYTES);
  // A tensor of one chunk (most of a checkpoint's) is one read: nothing to reuse.
  const buffers = opts.buffers ?? (t.bytes > chunkBytes ? ([new Uint8Array(chunkBytes), new Uint8Array(chunkBytes)] as const) : undefined);
  let scratch = new Float32Array(0);
  for await (const chunk of readTensorBytes(opener, t, { ...opts, buffers })) {
    if (scratch.length < chunk.length / size) scratch = new Float32Array(Math.ceil(chunk.length / size));
    let values: ArrayLike<number>;
    try {
      values = decodeChunk(t.dtype, chunk, scratch);
    } catch (e) {
      // The decoder knows the dtype, not the file: say which tensor of which file.
      if (e instanceof JaxServeError && e.code === 'E_UNSUPPORTED') throw new JaxServeError(e.code, `${t.source.file}: tensor ${JSON.stringify(safeName(t.name)).slice(0, 200)}: ${e.message}`);
      throw e;
    }
    yield values;
  }
}
