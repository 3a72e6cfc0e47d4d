/**
 * Reads a zip file's central directory (with zip64) through a ByteSource: member names, methods,
 * sizes and where each member's data starts. Only what .npz needs: stored (0) and deflated (8)
 * members, no encryption, no multi-disk. Spec: PKWARE APPNOTE 6.3 §4.3.
 */
import { formatError, limitError } from '../../errors';
import { readExactly, type ByteSource } from '../../io/byteSource';
import { quoted } from '../quote';

export interface ZipMember {
  /**
   * The name as Python's zipfile (and so numpy.load) reads it: UTF-8 when the entry's flag says
   * so, else code page 437, cut at the first NUL.
   */
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

/** Code page 437's upper half: zip's default name encoding, which Python's zipfile applies. */
const CP437_HIGH = "\u00c7\u00fc\u00e9\u00e2\u00e4\u00e0\u00e5\u00e7\u00ea\u00eb\u00e8\u00ef\u00ee\u00ec\u00c4\u00c5\u00c9\u00e6\u00c6\u00f4\u00f6\u00f2\u00fb\u00f9\u00ff\u00d6\u00dc\u00a2\u00a3\u00a5\u20a7\u0192\u00e1\u00ed\u00f3\u00fa\u00f1\u00d1\u00aa\u00ba\u00bf\u2310\u00ac\u00bd\u00bc\u00a1\u00ab\u00bb\u2591\u2592\u2593\u2502\u2524\u2561\u2562\u2556\u2555\u2563\u2551\u2557\u255d\u255c\u255b\u2510\u2514\u2534\u252c\u251c\u2500\u253c\u255e\u255f\u255a\u2554\u2569\u2566\u2560\u2550\u256c\u2567\u2568\u2564\u2565\u2559\u2558\u2552\u2553\u256b\u256a\u2518\u250c\u2588\u2584\u258c\u2590\u2580\u03b1\u00df\u0393\u03c0\u03a3\u03c3\u00b5\u03c4\u03a6\u0398\u03a9\u03b4\u221e\u03c6\u03b5\u2229\u2261\u00b1\u2265\u2264\u2320\u2321\u00f7\u2248\u00b0\u2219\u00b7\u221a\u207f\u00b2\u25a0\u00a0";

/** Bit 11 of the general-purpose flags: the name is UTF-8. */
const FLAG_UTF8 = 0x800;

/** A member name's bytes as zipfile decodes them; undefined when flagged UTF-8 but not UTF-8. */
function decodeName(bytes: Uint8Array, flags: number): string | undefined {
  if (flags & FLAG_UTF8) {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      return undefined;
    }
  }
  let s = '';
  for (const b of bytes) s += b < 0x80 ? String.fromCharCode(b) : CP437_HIGH[b - 0x80]!;
  return s;
}

/** A zip64 field; past 2^53 it could not be a size or an offset in any file this reads. */
const u64 = (v: DataView, at: number, file: string) => {
  const n = v.getBigUint64(at, true);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw formatError(file, `a zip64 field holds ${n}, past any size or offset in a real file; the archive is corrupt.`);
  return Number(n);
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
      const z = await bytesAt(src, u64(loc, 8, file), 56);
      if (z.getUint32(0, true) !== ZIP64_EOCD_SIG) throw formatError(file, 'the zip64 locator does not point at a zip64 end record.');
      count = u64(z, 32, file);
      cdSize = u64(z, 40, file);
      cdOffset = u64(z, 48, file);
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
    const rawName = decodeName(cd.u8.subarray(p + 46, p + 46 + nameLen), flags);
    if (rawName === undefined) throw formatError(file, `zip central directory entry ${k} has a name flagged as UTF-8 that is not valid UTF-8.`);
    // zipfile cuts a name at its first NUL (and compares the whole one with the local header).
    const name = rawName.includes('\0') ? rawName.slice(0, rawName.indexOf('\0')) : rawName;
    // zip64 extra field (id 1): the 0xFFFFFFFF fields, in order, as u64.
    let e = p + 46 + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = cd.getUint16(e, true);
      const size = cd.getUint16(e + 2, true);
      if (id === 1) {
        let q = e + 4;
        const next = () => {
          if (q + 8 > e + 4 + size) throw formatError(file, `zip member ${quoted(name)} has a short zip64 extra field.`);
          q += 8;
          return u64(cd, q - 8, file);
        };
        if (uncompressedSize === 0xffffffff) uncompressedSize = next();
        if (compressedSize === 0xffffffff) compressedSize = next();
        if (localOffset === 0xffffffff) localOffset = next();
      }
      e += 4 + size;
    }
    if (flags & 1) throw formatError(file, `zip member ${quoted(name)} is encrypted.`);
    if (flags & 0x60) throw formatError(file, `zip member ${quoted(name)} uses ${flags & 0x40 ? 'strong encryption' : 'compressed patched data'}, which zip readers (Python's zipfile) do not support.`);
    const local = await bytesAt(src, localOffset, 30);
    if (local.getUint32(0, true) !== LOCAL_SIG) throw formatError(file, `zip member ${quoted(name)} has no local header at byte ${localOffset}.`);
    // Python's zipfile refuses a member whose local header names it differently.
    const localNameLen = local.getUint16(26, true);
    const localName = decodeName((await bytesAt(src, localOffset + 30, localNameLen)).u8, local.getUint16(6, true));
    if (localName !== rawName) {
      throw formatError(file, `zip member ${quoted(rawName)} is named ${localName === undefined ? 'with invalid UTF-8' : quoted(localName)} in its local header; the two names must agree.`);
    }
    const dataOffset = localOffset + 30 + local.getUint16(26, true) + local.getUint16(28, true);
    if (dataOffset + compressedSize > src.size) throw formatError(file, `zip member ${quoted(name)} runs past the end of the file; the archive is truncated.`);
    members.push({ name, method, compressedSize, uncompressedSize, crc32, dataOffset });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return members;
}
