/**
 * Walks a msgpack document and records its structure: maps, arrays, small values, and for every
 * array payload (bin, and the ndarray extension flax.serialization writes) only where its bytes lie.
 * Nothing large is read, so a 100 GB `flax_model.msgpack` costs what its keys cost.
 * Wire format: msgpack spec; flax ext codes: ../shared/reference/formats-and-layouts.md §2.2.
 */
import { formatError, limitError } from '../../errors';
import type { ByteSource } from '../../io/byteSource';
import { MAX_MSGPACK_DEPTH, MAX_MSGPACK_NODES, MAX_MSGPACK_STRING_BYTES } from '../../limits';
import { ByteCursor } from './cursor';

/** A map key as msgpack wrote it: a string, or an integer (a bigint past 2^53). */
export type MsgKey = string | number | bigint;

export type MsgNode =
  | { readonly kind: 'map'; readonly entries: readonly (readonly [MsgKey, MsgNode])[] }
  | { readonly kind: 'array'; readonly items: readonly MsgNode[] }
  /** A scalar; integers past 2^53 are bigints; `float` marks a msgpack float (2.0 is not the int 2 to numpy). */
  | { readonly kind: 'value'; readonly value: null | boolean | number | bigint | string; readonly float?: true }
  /**
   * A flax ndarray (ext 1) or numpy scalar (ext 3), as `_ndarray_from_bytes` decodes it: the dtype
   * name, the shape as written (integers, a negative one asking numpy to infer it; null for a nil
   * shape, which leaves the array flat), and where the data bytes lie in the file.
   */
  | { readonly kind: 'ndarray'; readonly dtype: string; readonly shape: readonly (number | bigint)[] | null; readonly offset: number; readonly length: number; readonly scalar: boolean }
  /** A Python complex (ext 2). */
  | { readonly kind: 'complex'; readonly re: number | bigint | boolean; readonly im: number | bigint | boolean }
  /** A msgpack timestamp (ext -1). */
  | { readonly kind: 'timestamp'; readonly seconds: bigint; readonly nanoseconds: number }
  /** Raw bytes (bin) or an extension we do not know: where they are, not what. */
  | { readonly kind: 'bytes'; readonly offset: number; readonly length: number; readonly ext?: number };

/** A msgpack integer (not a float, not a bool). */
export function isInteger(n: MsgNode): n is Extract<MsgNode, { kind: 'value' }> & { value: number | bigint } {
  return n.kind === 'value' && ((typeof n.value === 'number' && !n.float) || typeof n.value === 'bigint');
}

/** A node as a message names its kind: "the float 2.0", "a map", "the string "x"". */
export function describeNode(n: MsgNode): string {
  switch (n.kind) {
    case 'value':
      if (n.value === null) return 'nil';
      if (typeof n.value === 'boolean') return `the boolean ${n.value}`;
      if (typeof n.value === 'string') return 'a string';
      if (n.float) return `the float ${Number.isInteger(n.value) ? (n.value as number).toFixed(1) : String(n.value)}`;
      return `the integer ${n.value}`;
    case 'ndarray':
      return n.scalar ? 'a numpy scalar' : 'an array';
    case 'bytes':
      return n.ext === undefined ? 'raw bytes' : `a msgpack extension of type ${n.ext}`;
    case 'array':
      return 'a list';
    case 'map':
      return 'a map';
    case 'complex':
      return 'a complex number';
    case 'timestamp':
      return 'a timestamp';
  }
}

export interface ScanOptions {
  maxDepth?: number;
  maxNodes?: number;
  maxStringBytes?: number;
}

export const FLAX_EXT_NDARRAY = 1;
export const FLAX_EXT_COMPLEX = 2;
export const FLAX_EXT_NPSCALAR = 3;

class Scanner {
  private nodes = 0;
  private readonly maxDepth: number;
  private readonly maxNodes: number;
  private readonly maxString: number;
  constructor(private readonly c: ByteCursor, private readonly file: string, opts: ScanOptions) {
    this.maxDepth = opts.maxDepth ?? MAX_MSGPACK_DEPTH;
    this.maxNodes = opts.maxNodes ?? MAX_MSGPACK_NODES;
    this.maxString = opts.maxStringBytes ?? MAX_MSGPACK_STRING_BYTES;
  }

  private fail(at: number, why: string): never {
    throw formatError(this.file, `${why} (at byte ${at}).`);
  }

  async value(depth: number): Promise<MsgNode> {
    if (depth > this.maxDepth) throw limitError(this.file, 'the nesting depth', depth, this.maxDepth, 'maxDepth');
    if (++this.nodes > this.maxNodes) throw limitError(this.file, 'the number of values', this.nodes, this.maxNodes, 'maxNodes');
    const at = this.c.pos;
    const b = await this.c.u8();
    if (b <= 0x7f) return { kind: 'value', value: b };
    if (b >= 0xe0) return { kind: 'value', value: b - 0x100 };
    if (b >= 0x80 && b <= 0x8f) return this.map(b & 0x0f, depth);
    if (b >= 0x90 && b <= 0x9f) return this.array(b & 0x0f, depth);
    if (b >= 0xa0 && b <= 0xbf) return { kind: 'value', value: await this.str(b & 0x1f) };
    switch (b) {
      case 0xc0:
        return { kind: 'value', value: null };
      case 0xc2:
        return { kind: 'value', value: false };
      case 0xc3:
        return { kind: 'value', value: true };
      case 0xc4:
      case 0xc5:
      case 0xc6:
        return this.bin(await this.c.uint(([1, 2, 4] as const)[b - 0xc4]!));
      case 0xc7:
      case 0xc8:
      case 0xc9:
        return this.ext(await this.c.uint(([1, 2, 4] as const)[b - 0xc7]!), at, depth);
      case 0xca:
        return { kind: 'value', value: await this.c.float(4), float: true };
      case 0xcb:
        return { kind: 'value', value: await this.c.float(8), float: true };
      case 0xcc:
      case 0xcd:
      case 0xce:
        return { kind: 'value', value: await this.c.uint(([1, 2, 4] as const)[b - 0xcc]!) };
      case 0xcf:
        return { kind: 'value', value: await this.c.u64() };
      case 0xd0:
      case 0xd1:
      case 0xd2:
        return { kind: 'value', value: await this.c.int(([1, 2, 4] as const)[b - 0xd0]!) };
      case 0xd3:
        return { kind: 'value', value: await this.c.i64() };
      case 0xd4:
      case 0xd5:
      case 0xd6:
      case 0xd7:
      case 0xd8:
        return this.ext(1 << (b - 0xd4), at, depth);
      case 0xd9:
      case 0xda:
      case 0xdb:
        return { kind: 'value', value: await this.str(await this.c.uint(([1, 2, 4] as const)[b - 0xd9]!)) };
      case 0xdc:
      case 0xdd:
        return this.array(await this.c.uint(b === 0xdc ? 2 : 4), depth);
      case 0xde:
      case 0xdf:
        return this.map(await this.c.uint(b === 0xde ? 2 : 4), depth);
      default:
        return this.fail(at, `byte 0x${b.toString(16)} is not a msgpack type`);
    }
  }

  private async str(n: number): Promise<string> {
    if (n > this.maxString) throw limitError(this.file, 'a string length', n, this.maxString, 'maxStringBytes');
    const at = this.c.pos;
    const bytes = await this.c.bytes(n);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      return this.fail(at, 'a string is not valid UTF-8');
    }
  }

  private bin(n: number): MsgNode {
    const offset = this.c.pos;
    this.c.skip(n);
    return { kind: 'bytes', offset, length: n };
  }

  private async array(n: number, depth: number): Promise<MsgNode> {
    const items: MsgNode[] = [];
    for (let i = 0; i < n; i++) items.push(await this.value(depth + 1));
    return { kind: 'array', items };
  }

  private async map(n: number, depth: number): Promise<MsgNode> {
    const entries: [MsgKey, MsgNode][] = [];
    for (let i = 0; i < n; i++) {
      const at = this.c.pos;
      const k = await this.value(depth + 1);
      // flax writes string keys (integer ones for lists saved as pure dicts). msgpack readers take
      // floats, booleans, nil and bytes too, but True == 1 == 1.0 to Python, so such keys could
      // silently merge; they are refused.
      if (!(k.kind === 'value' && typeof k.value === 'string') && !isInteger(k)) {
        this.fail(at, `a map key is ${describeNode(k)}, not a string or an integer`);
      }
      entries.push([(k as { value: MsgKey }).value, await this.value(depth + 1)]);
    }
    return { kind: 'map', entries };
  }

  private async ext(length: number, at: number, depth: number): Promise<MsgNode> {
    const type = await this.c.int(1);
    const start = this.c.pos;
    const end = start + length;
    if (end > this.c.size) this.fail(at, `an extension of ${length} bytes runs past the end of the file; the file is truncated`);
    if (type === FLAX_EXT_NDARRAY || type === FLAX_EXT_NPSCALAR) return this.ndarray(start, end, depth, type === FLAX_EXT_NPSCALAR);
    if (type === FLAX_EXT_COMPLEX) {
      // flax: complex(t[0], t[1]) of msgpack.unpackb(payload): a list whose first two are numbers.
      const v = await this.value(depth + 1);
      const num = (x: MsgNode | undefined) => (x?.kind === 'value' && (typeof x.value === 'number' || typeof x.value === 'bigint' || typeof x.value === 'boolean') ? x.value : undefined);
      const re = v.kind === 'array' ? num(v.items[0]) : undefined;
      const im = v.kind === 'array' ? num(v.items[1]) : undefined;
      if (re === undefined || im === undefined || this.c.pos !== end) this.fail(start, 'a complex extension does not hold [real, imag]');
      return { kind: 'complex', re, im };
    }
    if (type === -1) return this.timestamp(start, length);
    if (type < 0) this.fail(at, `the extension type ${type} is reserved by msgpack; msgpack readers refuse it`);
    this.c.skip(length);
    return { kind: 'bytes', offset: start, length, ext: type };
  }

  /**
   * The ndarray payload as flax decodes it, `shape, dtype_name, buffer = msgpack.unpackb(payload,
   * raw=True)`: a 3-element array; a shape that numpy's reshape takes (a list of integers, one
   * integer, or nil); a dtype name and a buffer that may each be a str or a bin (raw=True reads both
   * as bytes). The buffer is located, not read.
   */
  private async ndarray(start: number, end: number, depth: number, scalar: boolean): Promise<MsgNode> {
    const bad = (why: string): never => this.fail(start, `a flax ndarray extension ${why}`);
    const b = await this.c.u8();
    const n = b >= 0x90 && b <= 0x9f ? b & 0x0f : b === 0xdc ? await this.c.uint(2) : b === 0xdd ? await this.c.uint(4) : -1;
    if (n !== 3) bad('does not hold [shape, dtype, data]');
    const shapeNode = await this.value(depth + 2);
    let shape: (number | bigint)[] | null;
    if (shapeNode.kind === 'array') {
      shape = [];
      for (const d of shapeNode.items) {
        if (!isInteger(d)) bad(`has a shape holding ${describeNode(d)}; numpy takes integer dimensions only`);
        shape.push((d as { value: number | bigint }).value);
      }
    } else if (isInteger(shapeNode)) shape = [shapeNode.value];
    else if (shapeNode.kind === 'value' && shapeNode.value === null) shape = null;
    else return bad(`has a shape that is ${describeNode(shapeNode)}, not a list of integers`);
    const dtypeBytes = await this.rawBytes();
    if (dtypeBytes === undefined) bad('has no dtype name (a string)');
    if (dtypeBytes!.length > 64) bad(`has a dtype name of ${dtypeBytes!.length} bytes; numpy's are short`);
    const dtype = new TextDecoder('latin1').decode(await this.c.bytes(dtypeBytes!.length));
    const data = await this.rawBytes();
    if (data === undefined) bad('has no data bytes');
    this.c.skip(data!.length);
    if (this.c.pos !== end) bad(`says ${end - start} bytes but holds ${this.c.pos - start}`);
    return { kind: 'ndarray', dtype, shape, offset: data!.offset, length: data!.length, scalar };
  }

  /**
   * The header of a str or bin (both are bytes to a raw=True reader): where its bytes start and how
   * many; the cursor is left at their start. Undefined (cursor moved) for anything else.
   */
  private async rawBytes(): Promise<{ offset: number; length: number } | undefined> {
    const b = await this.c.u8();
    let n: number;
    if (b >= 0xa0 && b <= 0xbf) n = b & 0x1f;
    else if (b === 0xd9 || b === 0xc4) n = await this.c.uint(1);
    else if (b === 0xda || b === 0xc5) n = await this.c.uint(2);
    else if (b === 0xdb || b === 0xc6) n = await this.c.uint(4);
    else return undefined;
    if (this.c.pos + n > this.c.size) this.fail(this.c.pos, `a ${n}-byte value runs past the end of the file; the file is truncated`);
    return { offset: this.c.pos, length: n };
  }

  /** msgpack's timestamp extension (type -1), as msgpack-python's Timestamp reads and checks it. */
  private async timestamp(start: number, length: number): Promise<MsgNode> {
    let seconds: bigint;
    let nanoseconds: number;
    if (length === 4) {
      seconds = BigInt(await this.c.uint(4));
      nanoseconds = 0;
    } else if (length === 8) {
      const v = BigInt(await this.c.u64());
      nanoseconds = Number(v >> 34n);
      seconds = v & (2n ** 34n - 1n);
    } else if (length === 12) {
      nanoseconds = await this.c.uint(4);
      seconds = BigInt(await this.c.i64());
    } else return this.fail(start, `a msgpack timestamp has ${length} bytes, not 4, 8 or 12`);
    if (nanoseconds > 999_999_999) this.fail(start, `a msgpack timestamp has ${nanoseconds} nanoseconds, more than a second`);
    return { kind: 'timestamp', seconds, nanoseconds };
  }
}

/** Scans one whole msgpack document; anything after it is an error (a file holds one document). */
export async function scanMsgpack(src: ByteSource, opts: ScanOptions = {}): Promise<MsgNode> {
  const c = new ByteCursor(src);
  if (src.size === 0) throw formatError(src.name, 'the file is empty.');
  const root = await new Scanner(c, src.name, opts).value(0);
  if (c.pos !== src.size) {
    throw formatError(src.name, `the msgpack document ends at byte ${c.pos} but the file has ${src.size} bytes; it is not a single flax msgpack document.`);
  }
  return root;
}
