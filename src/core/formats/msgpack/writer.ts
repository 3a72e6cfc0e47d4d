/**
 * Writes a flax.serialization msgpack document, streaming: nested maps of string keys whose leaves
 * are ndarrays (ext type 1 holding [shape, dtype name, C-order bytes]), with arrays over 1 GiB split
 * into flax's `__msgpack_chunked_array__` form, exactly as `flax.serialization.to_bytes` lays them
 * out (msgpack-python's smallest encodings). Tensor bytes are pulled one array at a time, so any size
 * streams in bounded memory. Format facts: ../shared/reference/formats-and-layouts.md §2.
 */
import { JaxServeError } from '../../errors';
import type { ByteSink } from '../../io/byteSource';
import { DTYPE_BITS, type DType } from '../../dtype';

/** flax.serialization.MAX_CHUNK_SIZE: arrays with more bytes are written in chunks of this size. */
export const FLAX_MAX_CHUNK_BYTES = 2 ** 30;

const NUMPY_NAME: Partial<Record<DType, string>> = {
  BOOL: 'bool', U8: 'uint8', I8: 'int8', U16: 'uint16', I16: 'int16', U32: 'uint32', I32: 'int32', U64: 'uint64', I64: 'int64',
  F16: 'float16', BF16: 'bfloat16', F32: 'float32', F64: 'float64', F8_E4M3: 'float8_e4m3fn', F8_E5M2: 'float8_e5m2',
};

export interface MsgpackLeaf {
  /** Key path (strings; list indices as "0", "1", as flax stores state dicts). */
  readonly path: readonly string[];
  readonly dtype: DType;
  readonly shape: readonly number[];
}

/** Streams of one leaf's bytes, C order, little-endian. */
export type LeafBytes = (leaf: MsgpackLeaf) => AsyncIterable<Uint8Array>;

function uint(n: number): number[] {
  if (n < 0x80) return [n];
  if (n < 0x100) return [0xcc, n];
  if (n < 0x10000) return [0xcd, n >> 8, n & 0xff];
  if (n < 2 ** 32) return [0xce, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
  const hi = Math.floor(n / 2 ** 32);
  return [0xcf, ...uint32(hi), ...uint32(n >>> 0)];
}

function uint32(n: number): number[] {
  return [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

function str(s: string): number[] {
  const b = [...new TextEncoder().encode(s)];
  const n = b.length;
  if (n < 32) return [0xa0 | n, ...b];
  if (n < 0x100) return [0xd9, n, ...b];
  if (n < 0x10000) return [0xda, n >> 8, n & 0xff, ...b];
  return [0xdb, ...uint32(n), ...b];
}

function mapHeader(n: number): number[] {
  if (n < 16) return [0x80 | n];
  if (n < 0x10000) return [0xde, n >> 8, n & 0xff];
  return [0xdf, ...uint32(n)];
}

function arrayHeader(n: number): number[] {
  if (n < 16) return [0x90 | n];
  if (n < 0x10000) return [0xdc, n >> 8, n & 0xff];
  return [0xdd, ...uint32(n)];
}

function binHeader(n: number): number[] {
  if (n < 0x100) return [0xc4, n];
  if (n < 0x10000) return [0xc5, n >> 8, n & 0xff];
  return [0xc6, ...uint32(n)];
}

function extHeader(type: number, n: number): number[] {
  const fixed: Record<number, number> = { 1: 0xd4, 2: 0xd5, 4: 0xd6, 8: 0xd7, 16: 0xd8 };
  if (fixed[n] !== undefined) return [fixed[n]!, type];
  if (n < 0x100) return [0xc7, n, type];
  if (n < 0x10000) return [0xc8, n >> 8, n & 0xff, type];
  return [0xc9, ...uint32(n), type];
}

/** The ext 1 wrapper of an ndarray: everything before its data bytes. */
function ndarrayHead(shape: readonly number[], dtypeName: string, dataBytes: number): number[] {
  const inner = [...arrayHeader(3), ...arrayHeader(shape.length), ...shape.flatMap(uint), ...str(dtypeName), ...binHeader(dataBytes)];
  return [...extHeader(1, inner.length + dataBytes), ...inner];
}

interface Node {
  readonly children: Map<string, Node>;
  leaf?: MsgpackLeaf;
}

/** Gathers the many small structural writes (keys, headers) into larger ones. */
class BufferedSink implements ByteSink {
  private buf = new Uint8Array(1 << 20);
  private used = 0;
  constructor(private readonly inner: ByteSink) {}
  async write(chunk: Uint8Array): Promise<void> {
    if (this.used + chunk.length > this.buf.length) await this.flush();
    if (chunk.length >= this.buf.length) return this.inner.write(chunk);
    this.buf.set(chunk, this.used);
    this.used += chunk.length;
  }
  async flush(): Promise<void> {
    if (this.used === 0) return;
    const out = this.buf.slice(0, this.used);
    this.used = 0;
    await this.inner.write(out);
  }
  async commit(): Promise<void> {
    await this.flush();
    await this.inner.commit();
  }
  abort(): Promise<void> {
    return this.inner.abort();
  }
}

/** Writes the leaves as one nested document; keys keep first-seen order. */
export async function writeFlaxMsgpack(target: ByteSink, leaves: readonly MsgpackLeaf[], bytesOf: LeafBytes, opts: { maxChunkBytes?: number } = {}): Promise<void> {
  const sink = new BufferedSink(target);
  const maxChunk = opts.maxChunkBytes ?? FLAX_MAX_CHUNK_BYTES;
  const root: Node = { children: new Map() };
  for (const leaf of leaves) {
    let node = root;
    leaf.path.forEach((k, i) => {
      let next = node.children.get(k);
      if (!next) node.children.set(k, (next = { children: new Map() }));
      if (next.leaf || (i === leaf.path.length - 1 && next.children.size > 0)) {
        throw new JaxServeError('E_USAGE', `${leaf.path.join('.')}: a leaf and a subtree share this key path.`);
      }
      node = next;
    });
    node.leaf = leaf;
  }
  try {
    await writeNode(sink, root, bytesOf, maxChunk);
    await sink.commit();
  } catch (e) {
    await sink.abort();
    throw e;
  }
}

async function writeNode(sink: ByteSink, node: Node, bytesOf: LeafBytes, maxChunk: number): Promise<void> {
  if (node.leaf) return writeLeaf(sink, node.leaf, bytesOf, maxChunk);
  await sink.write(Uint8Array.from(mapHeader(node.children.size)));
  for (const [k, child] of node.children) {
    await sink.write(Uint8Array.from(str(k)));
    await writeNode(sink, child, bytesOf, maxChunk);
  }
}

async function writeLeaf(sink: ByteSink, leaf: MsgpackLeaf, bytesOf: LeafBytes, maxChunk: number): Promise<void> {
  const name = NUMPY_NAME[leaf.dtype];
  if (!name) throw new JaxServeError('E_UNSUPPORTED', `${leaf.path.join('.')}: flax msgpack has no ${leaf.dtype} arrays.`);
  const itemBytes = DTYPE_BITS[leaf.dtype] / 8;
  const count = leaf.shape.reduce((a, b) => a * b, 1);
  const total = count * itemBytes;
  const data = bytesOf(leaf)[Symbol.asyncIterator]();
  let pending: Uint8Array = new Uint8Array(0);
  /** Copies exactly n bytes of the leaf's stream to the sink. */
  const pipe = async (n: number) => {
    let left = n;
    while (left > 0) {
      if (pending.length === 0) {
        const r = await data.next();
        if (r.done) throw new JaxServeError('E_USAGE', `${leaf.path.join('.')}: the data ended ${left} bytes early.`);
        pending = r.value;
      }
      const take = Math.min(left, pending.length);
      await sink.write(pending.subarray(0, take));
      pending = pending.subarray(take);
      left -= take;
    }
  };
  if (total <= maxChunk) {
    await sink.write(Uint8Array.from(ndarrayHead(leaf.shape, name, total)));
    await pipe(total);
  } else {
    // flax's _chunk: {"__msgpack_chunked_array__": True, "shape": {"0": d0, …}, "chunks": {"0": flat slice, …}}
    const perChunk = Math.max(1, Math.floor(maxChunk / itemBytes));
    const chunks = Math.ceil(count / perChunk);
    const head = [...mapHeader(3), ...str('__msgpack_chunked_array__'), 0xc3, ...str('shape'), ...mapHeader(leaf.shape.length)];
    leaf.shape.forEach((d, i) => head.push(...str(String(i)), ...uint(d)));
    head.push(...str('chunks'), ...mapHeader(chunks));
    await sink.write(Uint8Array.from(head));
    for (let c = 0; c < chunks; c++) {
      const n = Math.min(perChunk, count - c * perChunk);
      await sink.write(Uint8Array.from([...str(String(c)), ...ndarrayHead([n], name, n * itemBytes)]));
      await pipe(n * itemBytes);
    }
  }
  let extra = pending.length;
  for (let r = await data.next(); !r.done; r = await data.next()) extra += r.value.length;
  if (extra > 0) throw new JaxServeError('E_USAGE', `${leaf.path.join('.')}: the data is ${extra} bytes longer than ${leaf.dtype}${JSON.stringify(leaf.shape)}.`);
}
