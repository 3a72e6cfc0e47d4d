/**
 * Fast paths for the two JSON documents opening a checkpoint reads most: safetensors headers and
 * sharded indexes. JSON.parse builds a generic object per tensor (a 100,000-tensor model spends most
 * of its open time there); these scanners read the usual shape straight into the result.
 *
 * They accept a strict subset of JSON: strings without escapes, keys not starting with a digit
 * (JSON.parse enumerates those first, which could reorder equal offsets), whole-number sizes, no
 * duplicate or unknown keys. On anything else they return undefined and the caller parses with
 * JSON.parse, which also produces every error message. So a fast result always equals what the
 * JSON.parse path gives for the same text (a property test checks it).
 */
import { isDType, type DType } from '../../tensor/dtype';
import type { HeaderTensor } from './header';

/** Thrown inside the scanners to leave the fast path; never escapes this module. */
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

  /** Consumes `"name":` when it comes next (no string is allocated for the inner keys). */
  keyIs(quotedWithColon: string): boolean {
    this.ws();
    if (!this.s.startsWith(quotedWithColon, this.i)) return false;
    this.i += quotedWithColon.length;
    return true;
  }

  /** A non-negative integer written canonically, below 2^53. */
  uint(): number {
    this.ws();
    const s = this.s;
    const start = this.i;
    let i = start;
    let v = 0;
    for (;;) {
      const c = s.charCodeAt(i);
      if (c < 0x30 || c > 0x39) break;
      v = v * 10 + (c - 0x30);
      i++;
    }
    const n = i - start;
    if (n === 0 || n > 15 || (n > 1 && s.charCodeAt(start) === 0x30)) throw BAIL;
    const next = s.charCodeAt(i);
    if (next === 0x2e || next === 0x65 || next === 0x45) throw BAIL; // fraction or exponent
    this.i = i;
    return v;
  }

  uintArray(max: number): number[] {
    this.eat(0x5b); // [
    const out: number[] = [];
    if (this.peekEat(0x5d)) return out;
    do {
      out.push(this.uint());
      if (out.length > max) throw BAIL;
    } while (this.peekEat(0x2c));
    this.eat(0x5d);
    return out;
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

/** Reads a dtype string; a header repeats a few dtypes, so the last one is matched in place first. */
class DtypeReader {
  private last: DType | undefined;
  private lastQuoted = '';

  read(sc: Scanner): DType {
    sc.ws();
    if (this.last !== undefined && sc.s.startsWith(this.lastQuoted, sc.i)) {
      sc.i += this.lastQuoted.length;
      return this.last;
    }
    const d = sc.str();
    if (!isDType(d)) throw BAIL;
    this.last = d;
    this.lastQuoted = `"${d}"`;
    return d;
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

/** A safetensors header's entries (in text order) and metadata, or undefined to use JSON.parse. */
export function fastHeaderEntries(text: string, maxRank: number): { tensors: HeaderTensor[]; metadata: Record<string, string> } | undefined {
  return fast(() => {
    const sc = new Scanner(text);
    const tensors: HeaderTensor[] = [];
    const metadata: Record<string, string> = Object.create(null);
    const names = new Set<string>();
    const dtypes = new DtypeReader();
    sc.eat(0x7b);
    if (!sc.peekEat(0x7d)) {
      do {
        const name = sc.key();
        if (names.has(name)) throw BAIL;
        names.add(name);
        if (name === '__metadata__') {
          sc.ws();
          if (text.startsWith('null', sc.i)) sc.i += 4;
          else {
            sc.eat(0x7b);
            if (!sc.peekEat(0x7d)) {
              do {
                const k = sc.key();
                metadata[k] = sc.str();
              } while (sc.peekEat(0x2c));
              sc.eat(0x7d);
            }
          }
          continue;
        }
        let dtype: DType | undefined;
        let shape: number[] | undefined;
        let begin = -1;
        let end = -1;
        sc.eat(0x7b);
        do {
          // Writers spell these keys without spaces before the colon; any other spelling bails.
          if (dtype === undefined && sc.keyIs('"dtype":')) dtype = dtypes.read(sc);
          else if (shape === undefined && sc.keyIs('"shape":')) shape = sc.uintArray(maxRank);
          else if (begin < 0 && sc.keyIs('"data_offsets":')) {
            sc.eat(0x5b);
            begin = sc.uint();
            sc.eat(0x2c);
            end = sc.uint();
            sc.eat(0x5d);
          } else throw BAIL;
        } while (sc.peekEat(0x2c));
        sc.eat(0x7d);
        if (dtype === undefined || shape === undefined || begin < 0) throw BAIL;
        tensors.push({ name, dtype, shape, begin, end });
      } while (sc.peekEat(0x2c));
      sc.eat(0x7d);
    }
    sc.end();
    return { tensors, metadata };
  });
}

/**
 * A sharded index's weight_map (in text order) and metadata (values as strings, numbers and other
 * JSON as their JSON text), or undefined to use JSON.parse.
 */
export function fastIndexEntries(text: string): { weightMap: Map<string, string>; metadata: Record<string, string> } | undefined {
  return fast(() => {
    const sc = new Scanner(text);
    const weightMap = new Map<string, string>();
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
            do {
              const name = sc.key();
              if (weightMap.has(name)) throw BAIL;
              weightMap.set(name, sc.str());
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
              // As the JSON.parse path: strings kept, anything else as its JSON.stringify.
              metadata[mk] = sc.s.charCodeAt(sc.i) === 0x22 ? sc.str() : JSON.stringify(JSON.parse(sc.numberText()));
            } while (sc.peekEat(0x2c));
            sc.eat(0x7d);
          }
        } else throw BAIL;
      } while (sc.peekEat(0x2c));
      sc.eat(0x7d);
    }
    sc.end();
    if (!sawMap) throw BAIL;
    return { weightMap, metadata };
  });
}
