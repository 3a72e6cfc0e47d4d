/**
 * Fast paths for the two JSON documents opening a checkpoint reads most: safetensors headers and
 * sharded indexes. JSON.parse builds a generic object per tensor (a 100,000-tensor model spends most
 * of its open time there); these scanners read the usual shape straight into the result.
 *
 * They scan the document's bytes (cheaper to read than its characters) and cut strings from its
 * decoding, so they take only an ASCII document, where byte and character positions agree.
 *
 * They accept a strict subset of JSON: strings without escapes, keys not starting with a digit
 * (JSON.parse enumerates those first, which could reorder equal offsets), whole-number sizes, no
 * duplicate or unknown keys. On anything else they return undefined and the caller parses with
 * JSON.parse, which also produces every error message. So a fast result always equals what the
 * JSON.parse path gives for the same text (a property test checks it). Two exceptions, each left to
 * a caller that finds it: a header read for a sharded open may name a tensor twice (the check
 * against the index finds it), and an index may list a tensor twice.
 */
import { isDType, type DType } from '../../dtype';

/** One tensor's header entry, as both header parsers return it. */
export interface HeaderTensor {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: number[];
  /** Offsets relative to the start of the data buffer (the reference's `data_offsets`). */
  readonly begin: number;
  readonly end: number;
}

/** Makes the object a header entry becomes (the reader's tensor reference, so there is one object per tensor). */
export type EntryMaker<T extends HeaderTensor> = (name: string, dtype: DType, shape: number[], begin: number, end: number) => T;

export const plainEntry: EntryMaker<HeaderTensor> = (name, dtype, shape, begin, end) => ({ name, dtype, shape, begin, end });

/**
 * A copy of `s` that does not keep the text it was cut from: V8 keeps a slice's whole parent alive,
 * and every path built from a shard name would hold the whole index text (78 MB for a million tensors).
 */
function detached(s: string): string {
  return new TextDecoder().decode(new TextEncoder().encode(s));
}

/** Thrown inside the index scanner to leave the fast path; never escapes this module. */
const BAIL = Symbol('bail');

function fast<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch (e) {
    if (e === BAIL) return undefined;
    throw e;
  }
}

/** Where the last readUint stopped (a module variable: a returned pair would allocate per number). */
let uintEnd = 0;

/** A canonical non-negative integer below 2^53 at b[i]; -1 when there is none. */
function readUint(b: Uint8Array, i: number): number {
  const start = i;
  let v = 0;
  let c = b[i]!;
  while (c >= 0x30 && c <= 0x39) {
    v = v * 10 + (c - 0x30);
    c = b[++i]!;
  }
  const n = i - start;
  if (n === 0 || n > 15 || (n > 1 && b[start] === 0x30) || c === 0x2e || c === 0x65 || c === 0x45) return -1;
  uintEnd = i;
  return v;
}

/**
 * Where the plain string whose text starts at b[i] ends (its closing quote), or -1 when it has an
 * escape, a control character or a byte outside ASCII (which only the JSON.parse path judges), or
 * runs off the end.
 */
function plainEnd(b: Uint8Array, i: number): number {
  const n = b.length;
  for (; i < n; i++) {
    const c = b[i]!;
    if (c === 0x22) return i;
    if (c < 0x20 || c === 0x5c || c >= 0x80) return -1;
  }
  return -1;
}

/**
 * Where the key whose opening quote is at b[i] closes: a plain string (see plainEnd) not starting
 * with a digit (JSON.parse would enumerate it first); -1 otherwise.
 */
function keyEnd(b: Uint8Array, i: number): number {
  if (b[i] !== 0x22) return -1;
  const c0 = b[i + 1]!;
  if (c0 >= 0x30 && c0 <= 0x39) return -1;
  return plainEnd(b, i + 1);
}

const ascii = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0));
const DTYPE_KEY = ascii('{"dtype":"');
const SHAPE_KEY = ascii(',"shape":[');
const OFFSETS_KEY = ascii(',"data_offsets":[');
const METADATA_KEY = ascii('"__metadata__"');
const NULL = ascii('null');

/** Whether b holds `text` at i. */
function bytesAt(b: Uint8Array, i: number, text: Uint8Array): boolean {
  for (let k = 0; k < text.length; k++) if (b[i + k] !== text[k]) return false;
  return true;
}

/** The entry texts a header's tensors are matched against: a layer's tensors repeat a handful. */
const RECENT_MIDDLES = 16;

/** An entry's text from its "{" to its first offset (where it lies in the header), and the dtype and shape it says. */
interface Middle {
  readonly at: number;
  readonly length: number;
  readonly dtype: DType;
  readonly shape: number[];
}

/** What the last middleEnd read (module variables: returning them would allocate per entry). */
let middleDtype: DType | undefined;
let rank = 0;
const dims: number[] = [];

/**
 * Reads `{"dtype":"X","shape":[d,…],"data_offsets":[` at b[i]; where it ends, or -1 when the text
 * is not in that form (the JSON.parse path then judges it).
 */
function middleEnd(b: Uint8Array, s: string, i: number, maxRank: number): number {
  if (!bytesAt(b, i, DTYPE_KEY)) return -1;
  const dq = plainEnd(b, i + 10);
  if (dq < 0) return -1;
  const d = s.slice(i + 10, dq);
  if (!isDType(d)) return -1;
  middleDtype = d;
  i = dq + 1;
  if (!bytesAt(b, i, SHAPE_KEY)) return -1;
  i += 10;
  rank = 0;
  if (b[i] === 0x5d) i++;
  else {
    for (;;) {
      const v = readUint(b, i);
      if (v < 0 || rank === maxRank) return -1;
      dims[rank++] = v;
      i = uintEnd;
      const c = b[i++];
      if (c === 0x5d) break;
      if (c !== 0x2c) return -1;
    }
  }
  return bytesAt(b, i, OFFSETS_KEY) ? i + 17 : -1;
}

/**
 * The shape middleEnd read, as a frozen array shared with a middle of the same shape: dimensions
 * copied out at their exact length, as a growing array would reserve room for 17 numbers.
 */
function middleShape(middles: readonly Middle[]): number[] {
  for (const m of middles) {
    const r = m.shape;
    if (r.length !== rank) continue;
    let d = 0;
    while (d < rank && r[d] === dims[d]) d++;
    if (d === rank) return r;
  }
  return Object.freeze(dims.slice(0, rank)) as number[];
}

/** Whether b holds at i the `length` bytes it holds at `at`. */
function sameBytes(b: Uint8Array, i: number, at: number, length: number): boolean {
  for (let k = 0; k < length; k++) if (b[i + k] !== b[at + k]) return false;
  return true;
}

/**
 * A safetensors header's entries (in text order) and metadata, or undefined to use JSON.parse.
 * It reads the form every known writer emits (the reference serde writer, safetensors' Python and
 * torch front ends, ours): no whitespace, entry keys in the order dtype, shape, data_offsets.
 *
 * It scans the header's bytes (a byte read is cheaper than a character's) and cuts names from
 * `text`, their decoding: only an ASCII header, where the two line up, takes this path.
 */
export function fastHeaderEntries<T extends HeaderTensor = HeaderTensor>(
  b: Uint8Array,
  text: string,
  maxRank: number,
  make: EntryMaker<T> = plainEntry as EntryMaker<T>,
  /** False where the caller proves the names distinct itself (a sharded open, against its index). */
  checkNames = true,
): { tensors: T[]; metadata: Record<string, string> } | undefined {
  // UTF-8 decodes to one character per byte only when every byte is ASCII.
  if (text.length !== b.length || b[0] !== 0x7b) return undefined;
  const tensors: T[] = [];
  const metadata: Record<string, string> = Object.create(null);
  const names = new Set<string>();
  let sawMetadata = false;
  const middles: Middle[] = [];
  let nextMiddle = 0;
  let evict = -1;
  let i = 1;
  if (b[i] === 0x7d) i++;
  else {
    for (;;) {
      const q = keyEnd(b, i);
      if (q < 0 || b[q + 1] !== 0x3a) return undefined;
      // A name twice (__metadata__ included): the JSON.parse path reports it.
      if (q - i === METADATA_KEY.length - 1 && bytesAt(b, i, METADATA_KEY)) {
        i = q + 2;
        if (sawMetadata) return undefined;
        sawMetadata = true;
        if (bytesAt(b, i, NULL)) i += 4;
        else {
          if (b[i] !== 0x7b) return undefined;
          i++;
          if (b[i] === 0x7d) i++;
          else {
            for (;;) {
              const kq = keyEnd(b, i);
              if (kq < 0 || b[kq + 1] !== 0x3a || b[kq + 2] !== 0x22) return undefined;
              const vq = plainEnd(b, kq + 3);
              if (vq < 0) return undefined;
              metadata[text.slice(i + 1, kq)] = text.slice(kq + 3, vq);
              i = vq + 1;
              const c = b[i++];
              if (c === 0x7d) break;
              if (c !== 0x2c) return undefined;
            }
          }
        }
      } else {
        const name = text.slice(i + 1, q);
        i = q + 2;
        if (checkNames) {
          const known = names.size;
          names.add(name);
          if (names.size === known) return undefined;
        }
        // An entry's text up to its offsets repeats across layers (the same dtype and shape), so a
        // text seen before is matched whole against where it was seen, and its dtype and shape
        // reused; the next one tried is the one after the last match, as a layer's tensors come in a cycle.
        let kind: Middle | undefined;
        for (let n = 0, k = nextMiddle; n < middles.length; n++, k = k + 1 === middles.length ? 0 : k + 1) {
          const m = middles[k]!;
          if (sameBytes(b, i, m.at, m.length)) {
            kind = m;
            nextMiddle = k + 1 === middles.length ? 0 : k + 1;
            break;
          }
        }
        if (kind === undefined) {
          const at = i;
          i = middleEnd(b, text, i, maxRank);
          if (i < 0) return undefined;
          kind = { at, length: i - at, dtype: middleDtype!, shape: middleShape(middles) };
          if (middles.length < RECENT_MIDDLES) middles.push(kind);
          else middles[(evict = (evict + 1) % RECENT_MIDDLES)] = kind;
          nextMiddle = 0;
        } else i += kind.length;
        const begin = readUint(b, i);
        if (begin < 0 || b[uintEnd] !== 0x2c) return undefined;
        const end = readUint(b, uintEnd + 1);
        if (end < 0 || b[uintEnd] !== 0x5d || b[uintEnd + 1] !== 0x7d) return undefined;
        i = uintEnd + 2;
        tensors.push(make(name, kind.dtype, kind.shape, begin, end));
      }
      const c = b[i++];
      if (c === 0x7d) break;
      if (c !== 0x2c) return undefined;
    }
  }
  // The reference writer pads the header with spaces; anything else goes the JSON.parse way.
  while (b[i] === 0x20) i++;
  return i === b.length ? { tensors, metadata } : undefined;
}

/**
 * A sharded index's weight_map in text order: each tensor's name and its shard, as a number into
 * `shards` (the distinct shard names, in the order first listed). A name listed twice is kept twice:
 * the caller refuses it (a sharded open finds it while checking the index against the headers,
 * without a map of every name).
 */
export interface IndexEntries {
  readonly names: string[];
  readonly shardOf: number[];
  readonly shards: string[];
  /** Values as strings; numbers and other JSON as their JSON text. */
  readonly metadata: Record<string, string>;
  /** True when the scan saw every name after the one before it (so none twice): the check needs no set. */
  readonly ascending?: boolean;
}

/** Reads JSON's structure from bytes, cutting strings from their decoding (an ASCII text, so the two line up). */
class Scanner {
  i = 0;
  constructor(
    readonly b: Uint8Array,
    readonly s: string,
  ) {}

  ws(): void {
    const b = this.b;
    let i = this.i;
    for (;;) {
      const c = b[i];
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
    this.i = i;
  }

  /** Skips whitespace, then requires `ch`. */
  eat(ch: number): void {
    this.ws();
    if (this.b[this.i] !== ch) throw BAIL;
    this.i++;
  }

  /** Skips whitespace; true (and consumed) when the next character is `ch`. */
  peekEat(ch: number): boolean {
    this.ws();
    if (this.b[this.i] !== ch) return false;
    this.i++;
    return true;
  }

  /** A string with no escapes, no control characters, only ASCII. */
  str(): string {
    this.eat(0x22);
    const start = this.i;
    const q = plainEnd(this.b, start);
    if (q < 0) throw BAIL;
    this.i = q + 1;
    return this.s.slice(start, q);
  }

  /** A key: a plain string that does not start with a digit. */
  key(): string {
    const k = this.str();
    const c = k.charCodeAt(0);
    if (c >= 0x30 && c <= 0x39) throw BAIL;
    this.eat(0x3a); // :
    return k;
  }

  /** The text of a JSON number (validated by its grammar). */
  numberText(): string {
    this.ws();
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(this.s.slice(this.i, this.i + 64));
    if (!m) throw BAIL;
    this.i += m[0].length;
    return m[0];
  }

  /** Only whitespace may follow the top-level value. */
  end(): void {
    this.ws();
    if (this.i !== this.b.length) throw BAIL;
  }
}

/** Skips JSON whitespace from b[i]. */
function skipWs(b: Uint8Array, i: number): number {
  for (;;) {
    const c = b[i];
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
    else return i;
  }
}

/** Whether the bytes b[a..aEnd) come strictly before b[c..cEnd) (for ASCII, the order of the strings). */
function bytesBefore(b: Uint8Array, a: number, aEnd: number, c: number, cEnd: number): boolean {
  const n = Math.min(aEnd - a, cEnd - c);
  for (let k = 0; k < n; k++) {
    const x = b[a + k]!;
    const y = b[c + k]!;
    if (x !== y) return x < y;
  }
  return aEnd - a < cEnd - c;
}

/**
 * weight_map's entries, from just inside its "{" (the map is not empty) to just past its "}": where
 * that is, and whether the names ascend (by their bytes), or undefined to leave the fast path. The
 * loop every tensor takes, kept to local variables.
 */
function weightMap(b: Uint8Array, text: string, i: number, names: string[], shardOf: number[], shards: string[]): { end: number; ascending: boolean } | undefined {
  const shardIds = new Map<string, number>();
  // Shard names repeat: one string each, not one per tensor (a million-tensor index would hold a
  // million copies), and a repeat's bytes are compared with where the shard was last named.
  let shardAt = -1;
  let shardLength = 0;
  let id = -1;
  let lastAt = 0;
  let lastEnd = -1;
  let ascending = true;
  for (;;) {
    i = skipWs(b, i);
    const at = i + 1;
    const q = keyEnd(b, i);
    if (q < 0) return undefined;
    if (ascending && lastEnd >= 0) ascending = bytesBefore(b, lastAt, lastEnd, at, q);
    lastAt = at;
    lastEnd = q;
    names.push(text.slice(at, q));
    i = skipWs(b, q + 1);
    if (b[i] !== 0x3a) return undefined;
    i = skipWs(b, i + 1);
    if (b[i] !== 0x22) return undefined;
    const from = i + 1;
    if (shardAt >= 0 && b[from + shardLength] === 0x22 && sameBytes(b, from, shardAt, shardLength)) i = from + shardLength + 1;
    else {
      const sq = plainEnd(b, from);
      if (sq < 0) return undefined;
      const next = text.slice(from, sq);
      id = shardIds.get(next) ?? -1;
      if (id < 0) {
        const shard = detached(next);
        shardIds.set(shard, (id = shards.length));
        shards.push(shard);
      }
      shardAt = from;
      shardLength = sq - from;
      i = sq + 1;
    }
    shardOf.push(id);
    i = skipWs(b, i);
    const c = b[i++];
    if (c === 0x7d) return { end: i, ascending };
    if (c !== 0x2c) return undefined;
  }
}

/**
 * A sharded index's entries, or undefined to use JSON.parse. Like the header scan it reads bytes and
 * takes only an ASCII index (`text` is `b` decoded).
 */
export function fastIndexEntries(b: Uint8Array, text: string): IndexEntries | undefined {
  if (text.length !== b.length) return undefined;
  return fast(() => {
    const sc = new Scanner(b, text);
    const names: string[] = [];
    const shardOf: number[] = [];
    const shards: string[] = [];
    const metadata: Record<string, string> = Object.create(null);
    let sawMap = false;
    let sawMeta = false;
    let ascending = true;
    sc.eat(0x7b);
    if (!sc.peekEat(0x7d)) {
      do {
        const k = sc.key();
        if (k === 'weight_map' && !sawMap) {
          sawMap = true;
          sc.eat(0x7b);
          if (!sc.peekEat(0x7d)) {
            const map = weightMap(b, text, sc.i, names, shardOf, shards);
            if (!map) throw BAIL;
            sc.i = map.end;
            ascending = map.ascending;
          }
        } else if (k === 'metadata' && !sawMeta) {
          sawMeta = true;
          sc.eat(0x7b);
          if (!sc.peekEat(0x7d)) {
            do {
              const mk = sc.key();
              sc.ws();
              // As the JSON.parse path: strings kept, numbers as written (informational, not judged).
              metadata[mk] = b[sc.i] === 0x22 ? sc.str() : sc.numberText();
            } while (sc.peekEat(0x2c));
            sc.eat(0x7d);
          }
        } else throw BAIL;
      } while (sc.peekEat(0x2c));
      sc.eat(0x7d);
    }
    sc.end();
    if (!sawMap) throw BAIL;
    return { names, shardOf, shards, metadata, ascending };
  });
}
