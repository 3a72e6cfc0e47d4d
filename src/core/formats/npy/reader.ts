/**
 * numpy arrays on disk: a single `.npy`, or an `.npz` (a zip of `.npy` members, stored by np.savez,
 * deflated by np.savez_compressed, zip64 past 4 GB). Headers only: a deflated member's header is
 * read by inflating just its first bytes. Arrays whose dtype is not a tensor type (objects, records,
 * opaque void such as a bfloat16 saved without ml_dtypes) are listed as values saying why.
 */
import { inflateRawSync, constants as zlibConstants } from 'node:zlib';
import { pathFromName, type Checkpoint, type ScalarLeaf, type TensorRef } from '../../checkpoint';
import { formatError } from '../../errors';
import { readExactly, type ByteSource, type FileOpener } from '../../io/byteSource';
import { DTYPE_BITS } from '../../tensor/dtype';
import { readZipDirectory, type ZipMember } from '../zip/directory';
import { npyPrefix, parseNpyHeader, type NpyHeader } from './header';

/** Reads bytes [0, n) of a member: positioned for stored ones, a partial inflate for deflated ones. */
async function memberHead(src: ByteSource, m: ZipMember | undefined, n: number): Promise<Uint8Array> {
  if (!m || m.method === 0) {
    const start = m?.dataOffset ?? 0;
    const avail = m ? m.compressedSize : src.size;
    const b = new Uint8Array(Math.min(n, avail));
    await readExactly(src, start, b);
    return b;
  }
  // Deflated: enough compressed input for n output bytes is at most n + a little (deflate never
  // expands much); inflate what is there, flushing partial output.
  const take = Math.min(m.compressedSize, n + 1024);
  const comp = new Uint8Array(take);
  await readExactly(src, m.dataOffset, comp);
  try {
    return new Uint8Array(inflateRawSync(comp, { finishFlush: zlibConstants.Z_SYNC_FLUSH })).subarray(0, n);
  } catch (e) {
    throw formatError(src.name, `member ${JSON.stringify(m.name)} does not inflate (${(e as Error).message}).`);
  }
}

async function npyHeaderOf(src: ByteSource, where: string, m: ZipMember | undefined): Promise<NpyHeader> {
  const first = await memberHead(src, m, 12);
  const { headerStart, headerLength } = npyPrefix(where, first);
  const all = await memberHead(src, m, headerStart + headerLength);
  if (all.length < headerStart + headerLength) throw formatError(where, 'the .npy header is truncated.');
  const text = new TextDecoder('latin1').decode(all.subarray(headerStart));
  return parseNpyHeader(where, text, headerStart + headerLength);
}

function entry(
  file: string,
  name: string,
  h: NpyHeader,
  storedBytes: number,
  range: (dataBytes: number) => TensorRef['source'],
): { tensor?: TensorRef; value?: ScalarLeaf } {
  const path = pathFromName(name);
  if (!h.dtype.ok) return { value: { name, path, value: `<array ${JSON.stringify(h.shape)} not read: ${h.dtype.why}>` } };
  const bytes = h.shape.reduce((a, d) => a * d, 1) * (DTYPE_BITS[h.dtype.dtype] / 8);
  if (storedBytes !== h.dataOffset + bytes) {
    throw formatError(file, `array ${JSON.stringify(name)} (${h.descr}${JSON.stringify(h.shape)}) needs ${bytes} data bytes after its header, but ${storedBytes - h.dataOffset} are stored.`);
  }
  return {
    tensor: {
      name,
      path,
      dtype: h.dtype.dtype,
      shape: h.shape,
      bytes,
      source: range(bytes),
      ...(h.dtype.bigEndian && DTYPE_BITS[h.dtype.dtype] > 8 ? { bigEndian: true } : {}),
      ...(h.fortranOrder && h.shape.length > 1 ? { order: 'F' as const } : {}),
    },
  };
}

export async function openNpz(opener: FileOpener, file: string): Promise<Checkpoint> {
  const src = await opener.open(file);
  try {
    const members = await readZipDirectory(src);
    const tensors: TensorRef[] = [];
    const values: ScalarLeaf[] = [];
    for (const m of members) {
      if (!m.name.endsWith('.npy')) continue;
      if (m.method !== 0 && m.method !== 8) throw formatError(file, `member ${JSON.stringify(m.name)} uses zip method ${m.method}; only stored and deflated members are read.`);
      const name = m.name.slice(0, -4);
      const h = await npyHeaderOf(src, `${file} (member ${m.name})`, m);
      const e = entry(file, name, h, m.uncompressedSize, (bytes) =>
        m.method === 0
          ? { file, offset: m.dataOffset + h.dataOffset, length: bytes }
          : { file, offset: m.dataOffset, length: bytes, deflate: { compressedLength: m.compressedSize, skip: h.dataOffset, crc32: m.crc32 } },
      );
      if (e.tensor) tensors.push(e.tensor);
      if (e.value) values.push(e.value);
    }
    return { format: 'npz', location: file, files: [file], tensors, metadata: Object.create(null), ...(values.length ? { values } : {}) };
  } finally {
    await src.close();
  }
}

export async function openNpy(opener: FileOpener, file: string): Promise<Checkpoint> {
  const src = await opener.open(file);
  try {
    const h = await npyHeaderOf(src, file, undefined);
    const name = (file.split(/[\\/]/).pop() ?? file).replace(/\.npy$/, '');
    const e = entry(file, name, h, src.size, (bytes) => ({ file, offset: h.dataOffset, length: bytes }));
    return { format: 'npy', location: file, files: [file], tensors: e.tensor ? [e.tensor] : [], metadata: Object.create(null), ...(e.value ? { values: [e.value] } : {}) };
  } finally {
    await src.close();
  }
}
