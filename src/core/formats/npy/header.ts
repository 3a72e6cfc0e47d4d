/**
 * The .npy header: magic "\x93NUMPY", version, a little-endian header length (u16 for v1, u32 for
 * v2/v3), then a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }.
 * The literal is parsed as data by a small tokenizer that accepts only that grammar; it is never
 * evaluated. Spec: numpy/lib/format.py (NEP 1).
 */
import { formatError } from '../../errors';
import type { DType } from '../../tensor/dtype';

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

function dtypeOf(descr: string): NpyHeader['dtype'] {
  if (/^[<>|=]?O/.test(descr)) return { ok: false, why: 'dtype is Python objects (pickled); refused, since loading it would run code' };
  const m = /^([<>|=])([a-zA-Z])(\d+)$/.exec(descr);
  if (!m) return { ok: false, why: `dtype ${JSON.stringify(descr)} is not a plain numeric type` };
  const [, order, kind, size] = m as unknown as [string, string, string, string];
  if (kind === 'V') {
    return { ok: false, why: `dtype ${descr} is opaque void bytes${size === '2' ? ' — most likely a bfloat16 array saved without ml_dtypes; re-save it with ml_dtypes imported, or as uint16' : ''}` };
  }
  const dtype = KIND_TO_DTYPE[`${kind}${size}`];
  if (!dtype) return { ok: false, why: `dtype ${descr} has no safetensors equivalent` };
  return { ok: true, dtype, bigEndian: order === '>' };
}

/** Reads the version and header length from the first 10 bytes; returns the header's byte range. */
export function npyPrefix(file: string, b: Uint8Array): { headerStart: number; headerLength: number } {
  if (b.length < NPY_PREFIX_BYTES || NPY_MAGIC.some((x, i) => b[i] !== x)) throw formatError(file, 'not a .npy array (no \\x93NUMPY magic).');
  const major = b[6]!;
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  if (major === 1) return { headerStart: 10, headerLength: dv.getUint16(8, true) };
  if (major === 2 || major === 3) {
    if (b.length < 12) throw formatError(file, 'the .npy header is truncated.');
    const n = dv.getUint32(8, true);
    if (n > MAX_NPY_HEADER_BYTES) throw formatError(file, `the .npy header claims ${n} bytes, over the limit of ${MAX_NPY_HEADER_BYTES}.`);
    return { headerStart: 12, headerLength: n };
  }
  throw formatError(file, `unknown .npy format version ${major}.${b[7]}.`);
}

/** Parses the dict literal (latin-1 for v1/v2, UTF-8 for v3; both ASCII in practice). */
export function parseNpyHeader(file: string, text: string, dataOffset: number): NpyHeader {
  const tok = new Tokens(file, text);
  const dict = tok.value();
  tok.end();
  if (!(dict instanceof Map)) throw formatError(file, 'the .npy header is not a dict.');
  const descr = dict.get('descr');
  const fortran = dict.get('fortran_order');
  const shape = dict.get('shape');
  if (typeof fortran !== 'boolean') throw formatError(file, "the .npy header has no 'fortran_order' boolean.");
  if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    throw formatError(file, "the .npy header has no 'shape' tuple of non-negative integers.");
  }
  if (Array.isArray(descr)) return { descr: 'structured', fortranOrder: fortran, shape: shape as number[], dataOffset, dtype: { ok: false, why: 'structured (record) dtypes are not tensors' } };
  if (typeof descr !== 'string') throw formatError(file, "the .npy header has no 'descr' string.");
  return { descr, fortranOrder: fortran, shape: shape as number[], dataOffset, dtype: dtypeOf(descr) };
}

type Lit = string | number | boolean | null | Lit[] | Map<string, Lit>;

/** A tokenizer for the literal subset numpy writes: dicts, tuples/lists, strings, ints, True/False/None. */
class Tokens {
  private i = 0;
  constructor(private readonly file: string, private readonly s: string) {}
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
      for (;;) {
        this.ws();
        if (this.s[this.i] === close) {
          this.i++;
          return out;
        }
        out.push(this.value(depth + 1));
        this.ws();
        if (this.s[this.i] === ',') this.i++;
        else if (this.s[this.i] !== close) this.fail(`expected "," or "${close}"`);
      }
    }
    if (c === "'" || c === '"') {
      const end = this.s.indexOf(c, this.i + 1);
      if (end < 0) this.fail('unterminated string');
      const v = this.s.slice(this.i + 1, end);
      if (v.includes('\\')) this.fail('escapes in strings are not numpy header syntax');
      this.i = end + 1;
      return v;
    }
    const word = /^(True|False|None|-?\d+)L?/.exec(this.s.slice(this.i, this.i + 32));
    if (!word) this.fail('unexpected text');
    this.i += word[0].length;
    const w = word[1]!;
    if (w === 'True') return true;
    if (w === 'False') return false;
    if (w === 'None') return null;
    const n = Number(w);
    if (!Number.isSafeInteger(n)) this.fail('an integer is too large');
    return n;
  }
}
