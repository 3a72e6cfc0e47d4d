/**
 * The .npy header: magic "\x93NUMPY", version, a little-endian header length (u16 for v1, u32 for
 * v2/v3), then a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }.
 * The literal is parsed as data by a small tokenizer that accepts only that grammar; it is never
 * evaluated. Spec: numpy/lib/format.py (NEP 1).
 */
import { formatError } from '../../errors';
import type { DType } from '../../dtype';
import { quoted } from '../quote';

export const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
/** Enough for every header numpy writes (it pads to 64 bytes; huge shapes stay under a few hundred). */
export const NPY_PREFIX_BYTES = 10;
export const MAX_NPY_HEADER_BYTES = 1 << 20;

export interface NpyHeader {
  /** What numpy wrote, e.g. '<f4', '>i8', '|V2'. */
  readonly descr: string;
  readonly fortranOrder: boolean;
  readonly shape: readonly number[];
  /** Offset of the first data byte from the start of the .npy. */
  readonly dataOffset: number;
  /** Our dtype, or why there is none. */
  readonly dtype: { readonly ok: true; readonly dtype: DType; readonly bigEndian: boolean } | { readonly ok: false; readonly why: string };
}

const KIND_TO_DTYPE: Readonly<Record<string, DType>> = {
  b1: 'BOOL', u1: 'U8', i1: 'I8', u2: 'U16', i2: 'I16', u4: 'U32', i4: 'I32', u8: 'U64', i8: 'I64',
  f2: 'F16', f4: 'F32', f8: 'F64', c8: 'C64',
};

/**
 * A numpy type string ('<f4', '>i8', '|u1', 'f2'; the byte-order mark optional, as np.dtype takes
 * it) as our dtype, or undefined when it is not one of the tensor types.
 */
export function typestrDtype(s: string): { dtype: DType; bigEndian: boolean } | undefined {
  const m = /^([<>|=]?)([a-zA-Z])(\d+)$/.exec(s);
  const dtype = m ? KIND_TO_DTYPE[`${m[2]}${m[3]}`] : undefined;
  return dtype && { dtype, bigEndian: m![1] === '>' };
}

/**
 * The type strings numpy writes as 'descr' (`dtype.str`) that are not tensors, with their element
 * size: numpy reads them, so they are listed (as values saying why), not refused.
 */
const OTHER_TYPESTR = /^[<>|=]?(?:([iu])([1248])|b1|f(?:2|4|8|16)|c(?:8|16|32)|([SUV])(\d+)|O8?|[Mm]8(?:\[\w+\])?)$/;

function dtypeOf(descr: string): NpyHeader['dtype'] | undefined {
  if (/^[<>|=]?O8?$/.test(descr)) return { ok: false, why: 'dtype is Python objects (pickled); refused, since loading it would run code' };
  const tensor = typestrDtype(descr);
  if (tensor) return { ok: true, ...tensor };
  const m = OTHER_TYPESTR.exec(descr);
  if (!m) return undefined;
  if (m[3] === 'V') {
    return { ok: false, why: `dtype ${descr} is opaque void bytes${m[4] === '2' ? ' — most likely a bfloat16 array saved without ml_dtypes; re-save it with ml_dtypes imported, or as uint16' : ''}` };
  }
  return { ok: false, why: `dtype ${descr} has no safetensors equivalent` };
}

/** numpy.load reads only these versions (`_header_size_info`). */
const VERSIONS = new Set([1, 2, 3]);

/** numpy.load refuses a header longer than this many characters (its `max_header_size`). */
export const NUMPY_MAX_HEADER_CHARS = 10_000;

/** Reads the version and header length from the first bytes; returns the header's byte range. */
export function npyPrefix(file: string, b: Uint8Array): { headerStart: number; headerLength: number; major: number } {
  if (b.length < NPY_PREFIX_BYTES || NPY_MAGIC.some((x, i) => b[i] !== x)) throw formatError(file, 'not a .npy array (no \\x93NUMPY magic).');
  const major = b[6]!;
  if (!VERSIONS.has(major) || b[7] !== 0) throw formatError(file, `unknown .npy format version ${major}.${b[7]}; numpy reads 1.0, 2.0 and 3.0.`);
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  if (major === 1) return { headerStart: 10, headerLength: dv.getUint16(8, true), major };
  if (b.length < 12) throw formatError(file, 'the .npy header is truncated.');
  const n = dv.getUint32(8, true);
  if (n > MAX_NPY_HEADER_BYTES) throw formatError(file, `the .npy header claims ${n} bytes, over the limit of ${MAX_NPY_HEADER_BYTES}.`);
  return { headerStart: 12, headerLength: n, major };
}

/** The header's bytes as numpy decodes them: latin-1 for v1/v2, UTF-8 (strict) for v3. */
export function decodeNpyHeader(file: string, bytes: Uint8Array, major: number): string {
  try {
    return new TextDecoder(major >= 3 ? 'utf-8' : 'latin1', { fatal: true }).decode(bytes);
  } catch {
    throw formatError(file, 'the .npy header (format 3.0) is not valid UTF-8.');
  }
}

const KEYS = ['descr', 'fortran_order', 'shape'];
const INT64_MAX = 2n ** 63n - 1n;

/**
 * Parses the dict literal as numpy.load checks it (`_read_array_header`): at most 10,000
 * characters; a dict with exactly the keys descr, fortran_order, shape; a shape that is a tuple of
 * non-negative integers; a boolean fortran_order; a descr numpy reads.
 */
export function parseNpyHeader(file: string, text: string, dataOffset: number, major = 1): NpyHeader {
  if (text.length > NUMPY_MAX_HEADER_CHARS && Array.from(text).length > NUMPY_MAX_HEADER_CHARS) {
    throw formatError(file, `the .npy header is ${Array.from(text).length} characters; numpy.load refuses more than ${NUMPY_MAX_HEADER_CHARS} (its max_header_size).`);
  }
  const tok = new Tokens(file, text, major <= 2);
  const dict = tok.value();
  tok.end();
  if (!(dict instanceof Map)) throw formatError(file, 'the .npy header is not a dict.');
  const keys = [...dict.keys()].sort();
  if (keys.join() !== KEYS.join()) throw formatError(file, `the .npy header has the keys ${keys.map((k) => quoted(k)).join(', ')}; numpy requires exactly 'descr', 'fortran_order' and 'shape'.`);
  const descr = dict.get('descr');
  const fortran = dict.get('fortran_order');
  const shape = dict.get('shape');
  if (typeof fortran !== 'boolean') throw formatError(file, "the .npy header has no 'fortran_order' boolean.");
  if (!(shape instanceof Tuple) || !shape.items.every((d) => typeof d === 'number' && d >= 0)) {
    throw formatError(file, "the .npy header has no 'shape' tuple of non-negative integers.");
  }
  const dims = shape.items as number[];
  if (Array.isArray(descr)) return { descr: 'structured', fortranOrder: fortran, shape: dims, dataOffset, dtype: { ok: false, why: 'structured (record) dtypes are not tensors' } };
  if (typeof descr !== 'string') throw formatError(file, "the .npy header has no 'descr' string.");
  const dtype = dtypeOf(descr);
  if (dtype === undefined) throw formatError(file, `the .npy header's descr ${quoted(descr)} is not a numpy type string.`);
  // numpy refuses an array whose size in bytes (its zero dimensions aside) overflows int64.
  const nonzero = dims.reduce((a, d) => (d === 0 ? a : a * BigInt(d)), BigInt(typestrBytes(descr)));
  if (nonzero > INT64_MAX) throw formatError(file, `the .npy header's shape (${dims.join(', ')}) is larger than numpy can create.`);
  return { descr, fortranOrder: fortran, shape: dims, dataOffset, dtype };
}

/** Bytes per element of a type string (1 when numpy's is not known here; only used as a lower bound). */
export function typestrBytes(descr: string): number {
  const m = /^[<>|=]?([a-zA-Z])(\d*)/.exec(descr);
  if (!m || m[2] === '') return /^[<>|=]?[OMm]/.test(descr) ? 8 : 1;
  const n = Number(m[2]);
  return m[1] === 'U' ? 4 * n : n;
}

/** A Python tuple, told apart from a list: numpy's shape must be a tuple. */
class Tuple {
  constructor(readonly items: Lit[]) {}
}

type Lit = string | number | boolean | null | Lit[] | Tuple | Map<string, Lit>;

/**
 * A tokenizer for the literal subset numpy writes: dicts, tuples and lists, strings without
 * escapes, integers (a Python 2 `L` suffix in format 1.0/2.0 files, as numpy filters it),
 * True/False/None. It never evaluates anything. `(x)` is x, not a tuple, as in Python.
 */
class Tokens {
  private i = 0;
  constructor(private readonly file: string, private readonly s: string, private readonly python2Longs: boolean) {}
  private ws() {
    while (this.i < this.s.length && /\s/.test(this.s[this.i]!)) this.i++;
  }
  private fail(why: string): never {
    throw formatError(this.file, `the .npy header is not a numpy header literal: ${why} at character ${this.i}.`);
  }
  end(): void {
    this.ws();
    if (this.i !== this.s.length) this.fail('unexpected trailing text');
  }
  value(depth = 0): Lit {
    if (depth > 8) this.fail('too deeply nested');
    this.ws();
    const c = this.s[this.i];
    if (c === '{') {
      this.i++;
      const m = new Map<string, Lit>();
      for (;;) {
        this.ws();
        if (this.s[this.i] === '}') {
          this.i++;
          return m;
        }
        const k = this.value(depth + 1);
        if (typeof k !== 'string') this.fail('a dict key is not a string');
        // Python keeps the last of two equal keys; a header that says two things is refused.
        if (m.has(k)) this.fail(`the key ${quoted(k)} appears twice`);
        this.ws();
        if (this.s[this.i++] !== ':') this.fail('expected ":"');
        m.set(k, this.value(depth + 1));
        this.ws();
        if (this.s[this.i] === ',') this.i++;
        else if (this.s[this.i] !== '}') this.fail('expected "," or "}"');
      }
    }
    if (c === '(' || c === '[') {
      const close = c === '(' ? ')' : ']';
      this.i++;
      const out: Lit[] = [];
      let comma = false;
      for (;;) {
        this.ws();
        if (this.s[this.i] === close) {
          this.i++;
          if (close === ']') return out;
          // (x) is a parenthesised x; () and (x,) are tuples.
          return out.length === 1 && !comma ? out[0]! : new Tuple(out);
        }
        out.push(this.value(depth + 1));
        this.ws();
        comma = this.s[this.i] === ',';
        if (comma) this.i++;
        else if (this.s[this.i] !== close) this.fail(`expected "," or "${close}"`);
      }
    }
    if (c === "'" || c === '"') {
      const end = this.s.indexOf(c, this.i + 1);
      if (end < 0) this.fail('unterminated string');
      const v = this.s.slice(this.i + 1, end);
      if (v.includes('\\') || v.includes('\n')) this.fail('escapes and line breaks in strings are not numpy header syntax');
      this.i = end + 1;
      return v;
    }
    const word = /^(True|False|None|-?(?:0+|[1-9][0-9]*))(L?)(?![\w.])/.exec(this.s.slice(this.i, this.i + 64));
    if (!word || (word[2] && (!this.python2Longs || /^[TFN]/.test(word[1]!)))) this.fail('unexpected text');
    this.i += word[0].length;
    const w = word[1]!;
    if (w === 'True') return true;
    if (w === 'False') return false;
    if (w === 'None') return null;
    const n = Number(w) || 0; // -0 is 0
    if (!Number.isSafeInteger(n)) this.fail('an integer past 2^53 - 1, which this reader cannot represent exactly');
    return n;
  }
}
