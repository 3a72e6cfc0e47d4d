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

export type MsgKey = string | number;

export type MsgNode =
  | { readonly kind: 'map'; readonly entries: readonly (readonly [MsgKey, MsgNode])[] }
  | { readonly kind: 'array'; readonly items: readonly MsgNode[] }
  | { readonly kind: 'value'; readonly value: null | boolean | number | string }
  /** A flax ndarray (ext 1) or numpy scalar (ext 3): dtype name as numpy spells it, data offset in the file. */
  | { readonly kind: 'ndarray'; readonly dtype: string; readonly shape: readonly number[]; readonly offset: number; readonly length: number; readonly scalar: boolean }
  /** A Python complex (ext 2). */
  | { readonly kind: 'complex'; readonly re: number; readonly im: number }
  /** Raw bytes (bin) or an extension we do not know: where they are, not what. */
  | { readonly kind: 'bytes'; readonly offset: number; readonly length: number; readonly ext?: number };

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
        return { kind: 'value', value: await this.c.float(4) };
      case 0xcb:
        return { kind: 'value', value: await this.c.float(8) };
      case 0xcc:
      case 0xcd:
      case 0xce:
      case 0xcf:
        return { kind: 'value', value: await this.c.uint(([1, 2, 4, 8] as const)[b - 0xcc]!) };
      case 0xd0:
      case 0xd1:
      case 0xd2:
      case 0xd3:
        return { kind: 'value', value: await this.c.int(([1, 2, 4, 8] as const)[b - 0xd0]!) };
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
      if (k.kind !== 'value' || (typeof k.value !== 'string' && typeof k.value !== 'number')) {
        this.fail(at, 'a map key is not a string or an integer');
      }
      entries.push([k.value as MsgKey, await this.value(depth + 1)]);
    }
    return { kind: 'map', entries };
  }

  private async ext(length: number, at: number, depth: number): Promise<MsgNode> {
    const type = await this.c.int(1);
    const start = this.c.pos;
    const end = start + length;
    if (end > this.c.size) this.fail(at, `an extension of ${length} bytes runs past the end of the file; the file is truncated`);
    if (type === FLAX_EXT_NDARRAY || type === FLAX_EXT_NPSCALAR) {
      // Payload: msgpack [shape, dtype name, data bytes].
      const v = await this.value(depth + 1);
      if (v.kind !== 'array' || v.items.length !== 3) this.fail(start, 'a flax ndarray extension does not hold [shape, dtype, data]');
      const [shapeNode, dtypeNode, dataNode] = v.items as [MsgNode, MsgNode, MsgNode];
      const shape = shapeNode.kind === 'array' ? shapeNode.items.map((d) => (d.kind === 'value' && typeof d.value === 'number' && Number.isSafeInteger(d.value) && d.value >= 0 ? d.value : -1)) : [];
      if (shapeNode.kind !== 'array' || shape.includes(-1)) this.fail(start, 'a flax ndarray has a shape that is not a list of non-negative integers');
      if (dtypeNode.kind !== 'value' || typeof dtypeNode.value !== 'string') this.fail(start, 'a flax ndarray has no dtype name');
      if (dataNode.kind !== 'bytes' || dataNode.ext !== undefined) this.fail(start, 'a flax ndarray has no data bytes');
      if (this.c.pos !== end) this.fail(start, `a flax ndarray extension says ${length} bytes but holds ${this.c.pos - start}`);
      return { kind: 'ndarray', dtype: dtypeNode.value as string, shape, offset: dataNode.offset, length: dataNode.length, scalar: type === FLAX_EXT_NPSCALAR };
    }
    if (type === FLAX_EXT_COMPLEX) {
      const v = await this.value(depth + 1);
      const parts = v.kind === 'array' ? v.items.map((x) => (x.kind === 'value' && typeof x.value === 'number' ? x.value : NaN)) : [];
      if (parts.length !== 2 || this.c.pos !== end) this.fail(start, 'a complex extension does not hold [real, imag]');
      return { kind: 'complex', re: parts[0]!, im: parts[1]! };
    }
    this.c.skip(length);
    return { kind: 'bytes', offset: start, length, ext: type };
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
