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
import { DTYPE_BITS } from '../../dtype';
import { readZipDirectory, type ZipMember } from '../zip/directory';
import { safeName } from '../../text';
import { quoted } from '../quote';
import { decodeNpyHeader, NPY_MAGIC, npyPrefix, parseNpyHeader, typestrBytes, type NpyHeader } from './header';

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
    throw formatError(src.name, `member ${quoted(m.name)} does not inflate (${safeName((e as Error).message)}).`);
  }
}

async function npyHeaderOf(src: ByteSource, where: string, m: ZipMember | undefined): Promise<NpyHeader> {
  const first = await memberHead(src, m, 12);
  const { headerStart, headerLength, major } = npyPrefix(where, first);
  const all = await memberHead(src, m, headerStart + headerLength);
  if (all.length < headerStart + headerLength) throw formatError(where, 'the .npy header is truncated.');
  return parseNpyHeader(where, decodeNpyHeader(where, all.subarray(headerStart), major), headerStart + headerLength, major);
}

/**
 * One array's entry. Like numpy.load, the data must hold every element the header promises (it
 * stops reading there: bytes after them are ignored, as numpy ignores them).
 */
function entry(
  file: string,
  name: string,
  h: NpyHeader,
  storedBytes: number,
  range: (dataBytes: number) => TensorRef['source'],
): { tensor?: TensorRef; value?: ScalarLeaf } {
  const path = pathFromName(name);
  const elements = h.shape.reduce((a, d) => a * BigInt(d), 1n);
  const need = elements * BigInt(h.dtype.ok ? DTYPE_BITS[h.dtype.dtype] / 8 : typestrBytes(h.descr));
  const stored = BigInt(storedBytes - h.dataOffset);
  if (stored < need && h.descr !== 'structured' && !/^[<>|=]?O/.test(h.descr)) {
    throw formatError(file, `array ${quoted(name)} (${safeName(h.descr)}[${h.shape.join(', ')}]) needs ${need} data bytes after its header, but ${stored < 0n ? 0 : stored} are stored.`);
  }
  if (!h.dtype.ok) return { value: { name, path, value: `<array [${h.shape.join(', ')}] not read: ${safeName(h.dtype.why)}>` } };
  const bytes = Number(need);
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

/** zip methods Python's zipfile reads; we inflate the first two only. */
const ZIP_METHODS: Readonly<Record<number, string>> = { 0: 'stored', 8: 'deflate', 12: 'bzip2', 14: 'lzma' };

/**
 * The key numpy.load gives each member, and the member it reads for that key (`NpzFile`): the key
 * is the name without ".npy", and a key that is also some member's full name reads that member;
 * of two members with one name, the last. A member whose key reads another member would list the
 * same array twice and hide one, so it is refused, naming both.
 */
function checkNpzNames(file: string, members: readonly ZipMember[]): void {
  const byFullName = new Map<string, number>();
  const byKey = new Map<string, number>();
  members.forEach((m, i) => {
    byKey.set(m.name.endsWith('.npy') ? m.name.slice(0, -4) : m.name, i);
    byFullName.set(m.name, i);
  });
  members.forEach((m, i) => {
    const key = m.name.endsWith('.npy') ? m.name.slice(0, -4) : m.name;
    const read = byFullName.get(key) ?? byKey.get(key)!;
    if (read === i) return;
    const other = members[read]!;
    throw formatError(
      file,
      other.name === m.name
        ? `it has two members named ${quoted(m.name)}; numpy.load reads only the last of them, so which array is meant is unclear. Keep one.`
        : `its members ${quoted(m.name)} and ${quoted(other.name)} are both the array ${quoted(key)} to numpy.load, which reads only ${quoted(other.name)}. Rename one.`,
    );
  });
}

export async function openNpz(opener: FileOpener, file: string): Promise<Checkpoint> {
  const src = await opener.open(file);
  try {
    const members = await readZipDirectory(src);
    checkNpzNames(file, members);
    const tensors: TensorRef[] = [];
    const values: ScalarLeaf[] = [];
    for (const m of members) {
      const method = ZIP_METHODS[m.method];
      if (m.method !== 0 && m.method !== 8) {
        throw formatError(file, `member ${quoted(m.name)} uses zip method ${method ?? m.method}; only stored and deflated members (what numpy writes) are read.`);
      }
      // numpy.load reads any member that starts with the .npy magic as an array, and any other as
      // bytes; ".npy" in the name only sets the key.
      const name = m.name.endsWith('.npy') ? m.name.slice(0, -4) : m.name;
      const magic = await memberHead(src, m, NPY_MAGIC.length);
      if (magic.length < NPY_MAGIC.length || NPY_MAGIC.some((x, i) => magic[i] !== x)) {
        values.push({ name, path: pathFromName(name), value: `<${m.uncompressedSize} bytes, not a .npy array>` });
        continue;
      }
      const h = await npyHeaderOf(src, `${file} (member ${safeName(m.name)})`, m);
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
