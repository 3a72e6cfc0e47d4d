/**
 * A whole tensor in memory, in C (row-major) order: what a conversion chain or an element-by-element
 * comparison expects. A Fortran-order npy member holds the same values with the first axis
 * fastest, i.e. the row-major bytes of the transposed array; reading it as if it were row-major
 * would scramble every matrix, so it is put back in order here, the one place whole reads go through.
 */
import type { TensorRef } from '../checkpoint';
import type { FileOpener } from '../io/byteSource';
import { dtypeBytes } from '../dtype';
import { readTensorBytes } from '../tensor/read';
import { transposeBytes } from './transforms';
import { throwIfAborted } from '../errors';
import { positionable, SourceReader } from '../tensor/sourceReader';

/** A cancel is noticed between reads of this size. */
const WHOLE_READ_BYTES = 16 << 20;

export async function readWholeTensor(opener: FileOpener, t: TensorRef, signal?: AbortSignal): Promise<Uint8Array> {
  const bytes = new Uint8Array(t.bytes);
  if (positionable(t)) {
    // Plain storage lands in its final buffer, with no chunk copies.
    const reader = new SourceReader(opener, t);
    try {
      for (let at = 0; at < t.bytes; at += WHOLE_READ_BYTES) {
        throwIfAborted(signal);
        await reader.read(at, bytes.subarray(at, Math.min(t.bytes, at + WHOLE_READ_BYTES)));
      }
    } finally {
      await reader.close();
    }
    return bytes;
  }
  let at = 0;
  for await (const chunk of readTensorBytes(opener, t, { signal })) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  if (t.order !== 'F' || t.shape.length < 2) return bytes;
  const reversed = [...t.shape].reverse();
  return transposeBytes(bytes, reversed, reversed.map((_, i) => reversed.length - 1 - i), dtypeBytes(t.dtype) ?? 1);
}
