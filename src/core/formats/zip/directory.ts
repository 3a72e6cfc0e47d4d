/**
 * Reads a zip file's central directory (with zip64) through a ByteSource: member names, methods,
 * sizes and where each member's data starts. Only what .npz needs: stored (0) and deflated (8)
 * members, no encryption, no multi-disk. Spec: PKWARE APPNOTE 6.3 §4.3.
 */
import { formatError, limitError } from '../../errors';
import { readExactly, type ByteSource } from '../../io/byteSource';

export interface ZipMember {
  readonly name: string;
  /** 0 stored, 8 deflate. */
  readonly method: number;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  /** CRC-32 of the uncompressed bytes, as the directory records it. */
  readonly crc32: number;
  /** Absolute offset of the member's (possibly compressed) data. */
  readonly dataOffset: number;
}

export const MAX_ZIP_MEMBERS = 1_000_000;
const EOCD_SIG = 0x06054b50;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_EOCD_SIG = 0x06064b50;
const CENTRAL_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;

async function bytesAt(src: ByteSource, offset: number, n: number): Promise<DataView & { u8: Uint8Array }> {
  if (offset < 0 || offset + n > src.size) throw formatError(src.name, `the zip directory points at bytes ${offset}..${offset + n}, outside the file (${src.size} bytes).`);
  const b = new Uint8Array(n);
  await readExactly(src, offset, b);
  return Object.assign(new DataView(b.buffer), { u8: b });
}

const u64 = (v: DataView, at: number) => {
  const n = v.getBigUint64(at, true);
  return n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.POSITIVE_INFINITY : Number(n);
};

export async function readZipDirectory(src: ByteSource, maxMembers = MAX_ZIP_MEMBERS): Promise<ZipMember[]> {
  const file = src.name;
  // The end record (22 bytes + up to 64 KiB comment) is at the end: search backwards for it.
  const tailLen = Math.min(src.size, 22 + 0xffff);
  const tail = await bytesAt(src, src.size - tailLen, tailLen);
  let eocd = -1;
  for (let i = tailLen - 22; i >= 0; i--) {
    if (tail.getUint32(i, true) === EOCD_SIG) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw formatError(file, 'not a zip archive (no end-of-central-directory record).');
  let count = tail.getUint16(eocd + 10, true);
  let cdSize = tail.getUint32(eocd + 12, true);
  let cdOffset = tail.getUint32(eocd + 16, true);
  if (tail.getUint16(eocd + 4, true) !== 0 || tail.getUint16(eocd + 6, true) !== 0) throw formatError(file, 'multi-disk zip archives are not supported.');
  const eocdAbs = src.size - tailLen + eocd;
  if (eocdAbs >= 20) {
    const loc = await bytesAt(src, eocdAbs - 20, 20);
    if (loc.getUint32(0, true) === ZIP64_LOCATOR_SIG) {
      const z = await bytesAt(src, u64(loc, 8), 56);
      if (z.getUint32(0, true) !== ZIP64_EOCD_SIG) throw formatError(file, 'the zip64 locator does not point at a zip64 end record.');
      count = u64(z, 32);
      cdSize = u64(z, 40);
      cdOffset = u64(z, 48);
    }
  }
  if (count > maxMembers) throw limitError(file, 'the number of zip members', count, maxMembers, 'maxMembers');
  const cd = await bytesAt(src, cdOffset, cdSize);
  const members: ZipMember[] = [];
  let p = 0;
  for (let k = 0; k < count; k++) {
    if (p + 46 > cdSize || cd.getUint32(p, true) !== CENTRAL_SIG) throw formatError(file, `zip central directory entry ${k} is malformed.`);
    const flags = cd.getUint16(p + 8, true);
    const method = cd.getUint16(p + 10, true);
    const crc32 = cd.getUint32(p + 16, true);
    let compressedSize = cd.getUint32(p + 20, true);
    let uncompressedSize = cd.getUint32(p + 24, true);
    const nameLen = cd.getUint16(p + 28, true);
    const extraLen = cd.getUint16(p + 30, true);
    const commentLen = cd.getUint16(p + 32, true);
    let localOffset = cd.getUint32(p + 42, true);
    if (p + 46 + nameLen + extraLen + commentLen > cdSize) throw formatError(file, `zip central directory entry ${k} runs past the directory.`);
    const name = new TextDecoder().decode(cd.u8.subarray(p + 46, p + 46 + nameLen));
    // zip64 extra field (id 1): the 0xFFFFFFFF fields, in order, as u64.
    let e = p + 46 + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = cd.getUint16(e, true);
      const size = cd.getUint16(e + 2, true);
      if (id === 1) {
        let q = e + 4;
        const next = () => {
          if (q + 8 > e + 4 + size) throw formatError(file, `zip member ${JSON.stringify(name)} has a short zip64 extra field.`);
          q += 8;
          return u64(cd, q - 8);
        };
        if (uncompressedSize === 0xffffffff) uncompressedSize = next();
        if (compressedSize === 0xffffffff) compressedSize = next();
        if (localOffset === 0xffffffff) localOffset = next();
      }
      e += 4 + size;
    }
    if (flags & 1) throw formatError(file, `zip member ${JSON.stringify(name)} is encrypted.`);
    const local = await bytesAt(src, localOffset, 30);
    if (local.getUint32(0, true) !== LOCAL_SIG) throw formatError(file, `zip member ${JSON.stringify(name)} has no local header at byte ${localOffset}.`);
    const dataOffset = localOffset + 30 + local.getUint16(26, true) + local.getUint16(28, true);
    if (dataOffset + compressedSize > src.size) throw formatError(file, `zip member ${JSON.stringify(name)} runs past the end of the file; the archive is truncated.`);
    members.push({ name, method, compressedSize, uncompressedSize, crc32, dataOffset });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return members;
}
