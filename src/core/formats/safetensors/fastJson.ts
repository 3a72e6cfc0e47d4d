/**
 * Fast paths for the two JSON documents opening a checkpoint reads most: safetensors headers and
 * sharded indexes. JSON.parse builds a generic object per tensor (a 100,000-tensor model spends most
 * of its open time there); these scanners read the usual shape straight into the result.
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

class Scanner {
  i = 0;
  constructor(readonly s: string) {}

  ws(): void {
    const s = this.s;
    let i = this.i;
    for (;;) {
      const c = s.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
    this.i = i;
  }

  /** Skips whitespace, then requires `ch`. */
  eat(ch: number): void {
    this.ws();
    if (this.s.charCodeAt(this.i) !== ch) throw BAIL;
    this.i++;
  }

  /** Skips whitespace; true (and consumed) when the next character is `ch`. */
  peekEat(ch: number): boolean {
    this.ws();
    if (this.s.charCodeAt(this.i) !== ch) return false;
    this.i++;
    return true;
  }

  /** A string with no escapes and no control characters. */
  str(): string {
    this.eat(0x22);
    const s = this.s;
    const start = this.i;
    let i = start;
    for (;;) {
      const c = s.charCodeAt(i);
      if (c === 0x22) break;
      if (c === 0x5c || c < 0x20 || c !== c) throw BAIL; // escape, control character, or end of text
      i++;
    }
    this.i = i + 1;
    return s.slice(start, i);
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
    if (this.i !== this.s.length) throw BAIL;
  }
}

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

/** A canonical non-negative integer below 2^53 at s[i]; -1 when there is none. */
function readUint(s: string, i: number): number {
  const start = i;
  let v = 0;
  let c = s.charCodeAt(i);
  while (c >= 0x30 && c <= 0x39) {
    v = v * 10 + (c - 0x30);
    c = s.charCodeAt(++i);
  }
  const n = i - start;
  if (n === 0 || n > 15 || (n > 1 && s.charCodeAt(start) === 0x30) || c === 0x2e || c === 0x65 || c === 0x45) return -1;
  uintEnd = i;
  return v;
}

/** The entry texts a header's tensors are matched against: a layer's tensors repeat a handful. */
const RECENT_MIDDLES = 16;

/** An entry's text from its "{" to its first offset, and the dtype and shape it says. */
interface Middle {
  readonly text: string;
  readonly dtype: DType;
  readonly shape: number[];
}

/** What the last middleEnd read (module variables: returning them would allocate per entry). */
let middleDtype: DType | undefined;
let rank = 0;
const dims: number[] = [];

/**
 * Reads `{"dtype":"X","shape":[d,…],"data_offsets":[` at s[i]; where it ends, or -1 when the text
 * is not in that form (the JSON.parse path then judges it).
 */
function middleEnd(s: string, i: number, maxRank: number): number {
  if (!s.startsWith('{"dtype":"', i)) return -1;
  const dq = s.indexOf('"', i + 10);
  const d = s.slice(i + 10, dq);
  if (dq < 0 || !isDType(d)) return -1;
  middleDtype = d;
  i = dq + 1;
  if (!s.startsWith(',"shape":[', i)) return -1;
  i += 10;
  rank = 0;
  if (s.charCodeAt(i) === 0x5d) i++;
  else {
    for (;;) {
      const v = readUint(s, i);
      if (v < 0 || rank === maxRank) return -1;
      dims[rank++] = v;
      i = uintEnd;
      const c = s.charCodeAt(i++);
      if (c === 0x5d) break;
      if (c !== 0x2c) return -1;
    }
  }
  return s.startsWith(',"data_offsets":[', i) ? i + 17 : -1;
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

/**
 * Whether s holds `text` at i: a cut compared whole is 2.4 times as fast as startsWith at a
 * position (12.4 against 5.2 ms for 100,000 shard names of 32 characters).
 */
function textAt(s: string, i: number, text: string): boolean {
  return s.substring(i, i + text.length) === text;
}

/** An escape or a control character, which only the JSON.parse path judges. */
const NOT_PLAIN = /[\\\u0000-\u001f]/;

/**
 * A safetensors header's entries (in text order) and metadata, or undefined to use JSON.parse.
 * It reads the form every known writer emits (the reference serde writer, safetensors' Python and
 * torch front ends, ours): no whitespace, entry keys in the order dtype, shape, data_offsets.
 */
export function fastHeaderEntries<T extends HeaderTensor = HeaderTensor>(
  s: string,
  maxRank: number,
  make: EntryMaker<T> = plainEntry as EntryMaker<T>,
  /** False where the caller proves the names distinct itself (a sharded open, against its index). */
  checkNames = true,
): { tensors: T[]; metadata: Record<string, string> } | undefined {
  const tensors: T[] = [];
  const metadata: Record<string, string> = Object.create(null);
  const names = new Set<string>();
  let sawMetadata = false;
  const middles: Middle[] = [];
  let nextMiddle = 0;
  let evict = -1;
  // One look at the whole text: then no string in it needs checking for escapes.
  if (s.charCodeAt(0) !== 0x7b || NOT_PLAIN.test(s)) return undefined;
  let i = 1;
  if (s.charCodeAt(i) === 0x7d) i++;
  else {
    for (;;) {
      if (s.charCodeAt(i) !== 0x22) return undefined;
      const q = s.indexOf('"', i + 1);
      if (q < 0) return undefined;
      const c0 = s.charCodeAt(i + 1);
      if (c0 >= 0x30 && c0 <= 0x39) return undefined;
      const name = s.slice(i + 1, q);
      i = q + 1;
      if (s.charCodeAt(i) !== 0x3a) return undefined;
      i++;
      // A name twice (__metadata__ included): the JSON.parse path reports it.
      if (name === '__metadata__') {
        if (sawMetadata) return undefined;
        sawMetadata = true;
        if (s.startsWith('null', i)) i += 4;
        else {
          if (s.charCodeAt(i) !== 0x7b) return undefined;
          i++;
          if (s.charCodeAt(i) === 0x7d) i++;
          else {
            for (;;) {
              if (s.charCodeAt(i) !== 0x22) return undefined;
              const kq = s.indexOf('"', i + 1);
              if (kq < 0 || s.charCodeAt(kq + 1) !== 0x3a || s.charCodeAt(kq + 2) !== 0x22) return undefined;
              const vq = s.indexOf('"', kq + 3);
              if (vq < 0) return undefined;
              const k0 = s.charCodeAt(i + 1);
              if (k0 >= 0x30 && k0 <= 0x39) return undefined;
              metadata[s.slice(i + 1, kq)] = s.slice(kq + 3, vq);
              i = vq + 1;
              const c = s.charCodeAt(i++);
              if (c === 0x7d) break;
              if (c !== 0x2c) return undefined;
            }
          }
        }
      } else {
        if (checkNames) {
          const known = names.size;
          names.add(name);
          if (names.size === known) return undefined;
        }
        // An entry's text up to its offsets repeats across layers (the same dtype and shape), so a
        // text seen before is matched whole, in one comparison, and its dtype and shape reused;
        // the next one tried is the one after the last match, as a layer's tensors come in a cycle.
        let kind: Middle | undefined;
        for (let n = 0, k = nextMiddle; n < middles.length; n++, k = k + 1 === middles.length ? 0 : k + 1) {
          const m = middles[k]!;
          if (textAt(s, i, m.text)) {
            kind = m;
            nextMiddle = k + 1 === middles.length ? 0 : k + 1;
            break;
          }
        }
        if (kind === undefined) {
          const at = i;
          i = middleEnd(s, i, maxRank);
          if (i < 0) return undefined;
          kind = { text: s.slice(at, i), dtype: middleDtype!, shape: middleShape(middles) };
          if (middles.length < RECENT_MIDDLES) middles.push(kind);
          else middles[(evict = (evict + 1) % RECENT_MIDDLES)] = kind;
          nextMiddle = 0;
        } else i += kind.text.length;
        const dtype = kind.dtype;
        const shape = kind.shape;
        const begin = readUint(s, i);
        if (begin < 0 || s.charCodeAt(uintEnd) !== 0x2c) return undefined;
        const end = readUint(s, uintEnd + 1);
        if (end < 0 || s.charCodeAt(uintEnd) !== 0x5d || s.charCodeAt(uintEnd + 1) !== 0x7d) return undefined;
        i = uintEnd + 2;
        tensors.push(make(name, dtype, shape, begin, end));
      }
      const c = s.charCodeAt(i++);
      if (c === 0x7d) break;
      if (c !== 0x2c) return undefined;
    }
  }
  // The reference writer pads the header with spaces; anything else goes the JSON.parse way.
  while (s.charCodeAt(i) === 0x20) i++;
  return i === s.length ? { tensors, metadata } : undefined;
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
}

/** A sharded index's entries, or undefined to use JSON.parse. */
export function fastIndexEntries(text: string): IndexEntries | undefined {
  return fast(() => {
    const sc = new Scanner(text);
    const names: string[] = [];
    const shardOf: number[] = [];
    const shards: string[] = [];
    const shardIds = new Map<string, number>();
    const metadata: Record<string, string> = Object.create(null);
    let sawMap = false;
    let sawMeta = false;
    sc.eat(0x7b);
    if (!sc.peekEat(0x7d)) {
      do {
        const k = sc.key();
        if (k === 'weight_map' && !sawMap) {
          sawMap = true;
          sc.eat(0x7b);
          if (!sc.peekEat(0x7d)) {
            // Shard names repeat: one string each, not one per tensor (a million-tensor index
            // would hold a million copies), and the text of a repeat is compared, not cut out.
            let shard = '';
            let id = -1;
            do {
              names.push(sc.key());
              sc.ws();
              const at = sc.i + 1;
              if (shard !== '' && sc.s.charCodeAt(sc.i) === 0x22 && textAt(sc.s, at, shard) && sc.s.charCodeAt(at + shard.length) === 0x22) sc.i = at + shard.length + 1;
              else {
                const next = sc.str();
                id = shardIds.get(next) ?? -1;
                if (id < 0) {
                  shardIds.set((shard = detached(next)), (id = shards.length));
                  shards.push(shard);
                } else shard = shards[id]!;
              }
              shardOf.push(id);
            } while (sc.peekEat(0x2c));
            sc.eat(0x7d);
          }
        } else if (k === 'metadata' && !sawMeta) {
          sawMeta = true;
          sc.eat(0x7b);
          if (!sc.peekEat(0x7d)) {
            do {
              const mk = sc.key();
              sc.ws();
              // As the JSON.parse path: strings kept, numbers as written (informational, not judged).
              metadata[mk] = sc.s.charCodeAt(sc.i) === 0x22 ? sc.str() : sc.numberText();
            } while (sc.peekEat(0x2c));
            sc.eat(0x7d);
          }
        } else throw BAIL;
      } while (sc.peekEat(0x2c));
      sc.eat(0x7d);
    }
    sc.end();
    if (!sawMap) throw BAIL;
    return { names, shardOf, shards, metadata };
  });
}
