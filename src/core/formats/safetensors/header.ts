/**
 * The safetensors header: `u64 N (little-endian) | N bytes of UTF-8 JSON | data`. Validation follows
 * the reference reader (huggingface/safetensors `tensor.rs`, ../shared/reference/formats-and-layouts.md §3.3):
 * every check there is made here, with a message that names the file and the offending tensor.
 */
import { formatError, limitError, type JaxServeError } from '../../errors';
import { MAX_HEADER_BYTES, MAX_TENSOR_RANK } from '../../limits';
import { DTYPE_BITS, isDType } from '../../dtype';
import { fastHeaderEntries, plainEntry, type EntryMaker, type HeaderTensor } from './fastJson';
import { clip, notU64, walkJson } from './jsonKeys';
import { quoted, shownJson } from '../quote';
import { jsonDepth } from '../../json';
import { safeName } from '../../text';

export interface HeaderOptions {
  maxHeaderBytes?: number;
  maxRank?: number;
}

export type { HeaderTensor } from './fastJson';

export interface ParsedHeader<T extends HeaderTensor = HeaderTensor> {
  /** Sorted by data offset, which is file order. */
  readonly tensors: T[];
  /** `__metadata__`, string to string; a null-prototype object so keys like `__proto__` stay data. */
  readonly metadata: Record<string, string>;
  /** Absolute file offset of the data buffer: 8 + N. */
  readonly dataStart: number;
}

/** Reads N from the first 8 bytes and checks it against the file size and the limit. */
export function parseHeaderLength(file: string, first8: Uint8Array, fileSize: number, opts: HeaderOptions = {}): number {
  if (fileSize < 8 || first8.length < 8) {
    throw formatError(file, `the file is ${fileSize} bytes; a safetensors file starts with an 8-byte header length.`);
  }
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  const max = opts.maxHeaderBytes ?? MAX_HEADER_BYTES;
  if (n === 0n) throw formatError(file, 'the header length is 0; a safetensors header is a JSON object of at least 2 bytes.');
  if (n > BigInt(max)) {
    if (n > BigInt(fileSize)) {
      throw formatError(file, `the header length field says ${n} bytes but the file has ${fileSize}; this is not a safetensors file, or it is truncated.`);
    }
    throw limitError(file, 'the header length', n, max, 'maxHeaderBytes');
  }
  if (8 + Number(n) > fileSize) {
    throw formatError(file, `the header is ${n} bytes but the file has only ${fileSize - 8} after the length field; the file is truncated.`);
  }
  return Number(n);
}

/**
 * Parses and validates the JSON header; `fileSize` is needed to check that the data ends at the end.
 * `make` builds each entry's object (plain {name, dtype, shape, begin, end} by default).
 */
export function parseHeaderJson<T extends HeaderTensor = HeaderTensor>(
  file: string,
  headerBytes: Uint8Array,
  fileSize: number,
  opts: HeaderOptions = {},
  make: EntryMaker<T> = plainEntry as EntryMaker<T>,
  /** False where the caller proves the names distinct itself (a sharded open, against its index). */
  checkNames = true,
): ParsedHeader<T> {
  const dataStart = 8 + headerBytes.length;
  if (headerBytes[0] !== 0x7b /* { */) {
    throw formatError(file, 'the header does not begin with "{"; this is not a safetensors file.');
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    throw formatError(file, 'the header is not valid UTF-8.');
  }
  const maxRank = opts.maxRank ?? MAX_TENSOR_RANK;
  const { tensors, metadata } = fastHeaderEntries(headerBytes, text, maxRank, make, checkNames) ?? slowHeaderEntries(file, text, maxRank, make);

  // Writers emit headers in offset order, so sorting is usually a no-op: check before paying for it.
  let sorted = true;
  for (let i = 1; i < tensors.length && sorted; i++) sorted = tensors[i - 1]!.begin <= tensors[i]!.begin;
  if (!sorted) tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  try {
    checkLayout(file, tensors, fileSize - dataStart);
  } catch (e) {
    // A name twice, when the caller checks names, shows here as an overlap: it is the problem to word.
    if (!checkNames) refuseNameTwice(file, tensors);
    throw e;
  }
  return { tensors, metadata, dataStart };
}

/** The tensors (in offset order) tile the data buffer exactly, each its dtype and shape's size. */
function checkLayout(file: string, tensors: readonly HeaderTensor[], dataBytes: number): void {
  let expected = 0;
  let lastDtype: string | undefined;
  let lastBits = 0;
  for (const t of tensors) {
    // The usual entry, checked with plain numbers; anything else takes the checks below, which word the problem.
    if (t.begin === expected) {
      if (t.dtype !== lastDtype) lastBits = DTYPE_BITS[(lastDtype = t.dtype)];
      let bits = lastBits;
      for (let k = 0; k < t.shape.length; k++) bits *= t.shape[k]!;
      if (bits <= Number.MAX_SAFE_INTEGER && bits % 8 === 0 && t.end - t.begin === bits / 8) {
        expected = t.end;
        continue;
      }
    }
    if (t.begin !== expected) {
      throw formatError(
        file,
        t.begin > expected
          ? `tensor ${quoted(t.name)} starts at data byte ${t.begin} but the previous tensor ends at ${expected}; the data buffer must have no holes.`
          : `tensor ${quoted(t.name)} starts at data byte ${t.begin}, inside the previous tensor (ends at ${expected}); tensors must not overlap.`,
      );
    }
    if (t.end < t.begin) throw formatError(file, `tensor ${quoted(t.name)} has data_offsets [${t.begin}, ${t.end}]: end is before begin.`);
    const nbits = tensorBits(t.shape, DTYPE_BITS[t.dtype]);
    if (nbits === undefined) {
      throw formatError(file, `tensor ${quoted(t.name)} has shape ${shownJson(t.shape)}: its size in bits overflows 64 bits, as the reference reader also refuses.`);
    }
    if (typeof nbits === 'bigint' ? nbits % 8n !== 0n : nbits % 8 !== 0) {
      throw formatError(file, `tensor ${quoted(t.name)} is ${nbits} bits of ${t.dtype}, not a whole number of bytes.`);
    }
    const want = typeof nbits === 'bigint' ? nbits / 8n : nbits / 8;
    if (typeof want === 'bigint' ? BigInt(t.end - t.begin) !== want : t.end - t.begin !== want) {
      throw formatError(
        file,
        `tensor ${quoted(t.name)} has ${t.end - t.begin} bytes (data_offsets [${t.begin}, ${t.end}]) but ${t.dtype}${shownJson(t.shape)} needs ${want}.`,
      );
    }
    expected = t.end;
  }
  if (expected !== dataBytes) {
    throw formatError(
      file,
      expected < dataBytes
        ? `the tensors cover ${expected} data bytes but the file has ${dataBytes}; there are ${dataBytes - expected} trailing bytes.`
        : `the tensors need ${expected} data bytes but the file has ${dataBytes}; the file is truncated.`,
    );
  }
}

function refuseNameTwice(file: string, tensors: readonly HeaderTensor[]): void {
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw nameTwice(file, t.name);
    names.add(t.name);
  }
}

/** A header naming a tensor twice, for whichever check finds it. */
export function nameTwice(file: string, name: string): JaxServeError {
  return formatError(file, `the header names ${quoted(name)} twice; duplicate keys are not allowed.`);
}

/**
 * serde_json (behind the reference reader) refuses nesting past 127 levels (its recursion limit of
 * 128 counts the top-level value's opening too); JSON.parse has none, and a value that deep would
 * overflow any recursive walk after it.
 */
export const SAFETENSORS_MAX_JSON_DEPTH = 127;

/** The fields of a tensor entry; serde refuses a second copy of any of them (others are ignored). */
const ENTRY_FIELDS = new Set(['dtype', 'shape', 'data_offsets']);

/** The general path: JSON.parse, then each entry checked; every header error message comes from here. */
function slowHeaderEntries<T extends HeaderTensor>(file: string, text: string, maxRank: number, make: EntryMaker<T>): { tensors: T[]; metadata: Record<string, string> } {
  const depth = jsonDepth(text, SAFETENSORS_MAX_JSON_DEPTH);
  if (depth > SAFETENSORS_MAX_JSON_DEPTH) {
    throw formatError(file, `the header nests JSON more than ${SAFETENSORS_MAX_JSON_DEPTH} levels deep; the reference reader refuses it, and so does this one.`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw formatError(file, `the header is not valid JSON (${safeName((e as Error).message)}).`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw formatError(file, 'the header is not a JSON object.');
  }
  const issue = headerTextIssue(text);
  if (issue !== undefined) throw formatError(file, `${issue}.`);

  const metadata: Record<string, string> = Object.create(null);
  const tensors: T[] = [];
  const obj = json as Record<string, unknown>;
  for (const name in obj) {
    const value = obj[name];
    if (name === '__metadata__') {
      if (value === null) continue;
      if (typeof value !== 'object' || Array.isArray(value)) {
        throw formatError(file, '__metadata__ must be an object mapping strings to strings.');
      }
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') {
          throw formatError(file, `__metadata__[${quoted(k)}] is ${jsonType(v)}; metadata values must be strings.`);
        }
        metadata[k] = v;
      }
      continue;
    }
    const e = parseEntry(file, name, value, maxRank);
    tensors.push(make(e.name, e.dtype, e.shape, e.begin, e.end));
  }
  return { tensors, metadata };
}

/**
 * What the header's text shows and its parsed value hides, checked the way the reference reads it:
 * a key twice at the top level, a field twice in a tensor entry, a shape dimension or data offset
 * that is not an unsigned integer as written (`8.0`, `8e0`, `-0` parse to integers), a number that
 * overflows, a lone surrogate escape. Duplicate keys inside `__metadata__` and inside unknown
 * fields are kept as the reference keeps them: the last one wins.
 */
function headerTextIssue(text: string): string | undefined {
  return walkJson(
    text,
    {
      trackKeys: (path) => path.length === 0 || (path.length === 1 && path[0] !== '__metadata__'),
      duplicate: (path, key) => {
        if (path.length === 0) return `the header names ${quoted(key)} twice; duplicate keys are not allowed`;
        return ENTRY_FIELDS.has(key) ? `tensor ${quoted(String(path[0]))} has two ${quoted(key)} fields` : undefined;
      },
      value: (path, kind, start, end) => {
        if (kind !== 'number' || path.length !== 3 || path[0] === '__metadata__') return undefined;
        const field = path[1];
        if (field !== 'shape' && field !== 'data_offsets') return undefined;
        const num = text.slice(start, end);
        const what = field === 'shape' ? 'a dimension' : 'a data offset';
        const not = notU64(num);
        if (not !== undefined) {
          return `tensor ${quoted(String(path[0]))} has ${what} written ${clip(num)}, which is ${not}; ${field === 'shape' ? 'dimensions' : 'data_offsets'} must be non-negative integers`;
        }
        if (num.length > 15 && !Number.isSafeInteger(Number(num))) {
          return `tensor ${quoted(String(path[0]))} has ${what} of ${num}, past 2^53 - 1, which this reader cannot represent exactly (only an empty tensor could have it); non-negative integers up to 2^53 - 1 are read`;
        }
        return undefined;
      },
    },
    { serde: true },
  );
}

function parseEntry(file: string, name: string, value: unknown, maxRank: number): HeaderTensor {
  const q = quoted(name);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw formatError(file, `tensor ${q} is ${jsonType(value)}; expected {"dtype", "shape", "data_offsets"}.`);
  }
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (typeof dtype !== 'string') throw formatError(file, `tensor ${q} has no "dtype" string.`);
  if (!isDType(dtype)) throw formatError(file, `tensor ${q} has unknown dtype ${quoted(dtype)}.`);
  if (!Array.isArray(shape)) throw formatError(file, `tensor ${q} has no "shape" array.`);
  if (shape.length > maxRank) throw formatError(file, `tensor ${q} has rank ${shape.length}, over the limit of ${maxRank} (maxRank option).`);
  for (const d of shape) {
    if (!isCount(d)) throw formatError(file, `tensor ${q} has shape ${shownJson(shape)}; dimensions must be non-negative integers.`);
  }
  if (offsets === undefined) throw formatError(file, `tensor ${q} has no "data_offsets" pair.`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !isCount(offsets[0]) || !isCount(offsets[1])) {
    throw formatError(file, `tensor ${q} has data_offsets ${shownJson(offsets)}; expected [begin, end] with non-negative integers.`);
  }
  return { name, dtype, shape: shape as number[], begin: offsets[0] as number, end: offsets[1] as number };
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

const U64_MAX = 2n ** 64n - 1n;

/**
 * A tensor's size in bits as the reference computes it: the product of the dimensions from left to
 * right, then times the bits per element, each step refused when it overflows a u64 (so a 0 late in
 * the shape does not rescue an overflow before it). A number while exact, a bigint past 2^53,
 * undefined on overflow.
 */
export function tensorBits(shape: readonly number[], bitsPerElement: number): number | bigint | undefined {
  let n = 1;
  let exact = true;
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) {
      exact = false;
      break;
    }
  }
  if (exact && Number.isSafeInteger(n * bitsPerElement)) return n * bitsPerElement;
  let big = 1n;
  for (const d of shape) {
    big *= BigInt(d);
    if (big > U64_MAX) return undefined;
  }
  big *= BigInt(bitsPerElement);
  return big > U64_MAX ? undefined : big;
}

/** "a number", "an array", … for messages. */
function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return `a ${typeof v}`;
}
