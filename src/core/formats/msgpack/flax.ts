/**
 * A scanned flax.serialization document as a Checkpoint: ndarray leaves become tensors named by
 * their key path joined with '.', lists (stored as {"0": …, "1": …}) become numeric path keys,
 * chunked arrays (`__msgpack_chunked_array__`, written for arrays over 1 GiB) become one tensor
 * whose bytes are the chunks in order, and Python scalars, strings and complex numbers are kept as
 * values. Format facts: ../shared/reference/formats-and-layouts.md §2.
 *
 * "Accepted" means what `flax.serialization.msgpack_restore` restores, with the same leaves: the
 * same ndarray decoding (`_ndarray_from_bytes`: numpy's reshape rules, -1 inferred, float dims
 * refused), the same unchunking (`_unchunk_array_leaves_in_place`: only maps reached through maps,
 * keyed by presence of the marker, shape and chunks keyed "0".."n-1", chunks numpy can concatenate).
 * Where flax keeps something a tensor name cannot say, we refuse and name both key paths: a key
 * twice in one map (msgpack keeps the last silently), and two leaves whose names flatten to one
 * (`"a.b"` beside `a` → `b`, the integer 1 beside the string "1"). Chunks flax would convert while
 * concatenating (mixed dtypes, msgpack lists of numbers) are refused too: there are no file bytes
 * that are that tensor.
 */
import { pathKey, type ByteRange, type PathKey, type ScalarLeaf, type TensorRef } from '../../checkpoint';
import { formatError } from '../../errors';
import { DTYPE_BITS, type DType } from '../../dtype';
import { typestrDtype } from '../npy/header';
import { quoted } from '../quote';
import { describeNode, isInteger, type MsgKey, type MsgNode } from './scanner';

/** numpy dtype names (as flax writes `arr.dtype.name`) to safetensors spelling. */
const NUMPY_TO_DTYPE: Readonly<Record<string, DType>> = {
  bool: 'BOOL',
  uint8: 'U8',
  int8: 'I8',
  uint16: 'U16',
  int16: 'I16',
  uint32: 'U32',
  int32: 'I32',
  uint64: 'U64',
  int64: 'I64',
  float16: 'F16',
  bfloat16: 'BF16',
  float32: 'F32',
  float64: 'F64',
  complex64: 'C64',
  float8_e4m3fn: 'F8_E4M3',
  float8_e5m2: 'F8_E5M2',
  float8_e4m3fnuz: 'F8_E4M3FNUZ',
  float8_e5m2fnuz: 'F8_E5M2FNUZ',
  float8_e8m0fnu: 'F8_E8M0',
};

export function numpyDtype(name: string): DType | undefined {
  return Object.prototype.hasOwnProperty.call(NUMPY_TO_DTYPE, name) ? NUMPY_TO_DTYPE[name] : undefined;
}

/** A dtype name as np.dtype reads it in flax: the names flax writes, and numpy type strings ('<f4'). */
function flaxDtype(name: string): { dtype: DType; bigEndian: boolean } | undefined {
  const d = numpyDtype(name);
  return d ? { dtype: d, bigEndian: false } : typestrDtype(name);
}

/** The marker key flax's `_chunk` writes; its presence (not its value) makes a map a chunked array. */
const CHUNKED = '__msgpack_chunked_array__';

const INT64_MAX = 2n ** 63n - 1n;
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

const keyOf = (k: MsgKey): PathKey => (typeof k === 'number' ? k : typeof k === 'bigint' ? k.toString() : pathKey(k));

/** A key path as a message shows it: ["params", "a.b"], [1] beside ["1"]. */
function showKeys(keys: readonly MsgKey[]): string {
  return `[${keys.map((k) => (typeof k === 'string' ? quoted(k) : String(k))).join(', ')}]`;
}

export interface FlaxTree {
  tensors: TensorRef[];
  values: ScalarLeaf[];
}

interface Walk {
  readonly file: string;
  readonly out: FlaxTree;
  /** Each leaf's name and the key path that gave it, to refuse two leaves with one name. */
  readonly names: Map<string, readonly MsgKey[]>;
}

/** Flattens a scanned document whose data lives in `file`. */
export function flaxTree(file: string, root: MsgNode): FlaxTree {
  const w: Walk = { file, out: { tensors: [], values: [] }, names: new Map() };
  walk(w, root, [], [], true);
  return w.out;
}

/** Refuses a key twice in one map (msgpack-python keeps the last without a word). */
function checkDuplicateKeys(file: string, node: Extract<MsgNode, { kind: 'map' }>, keys: readonly MsgKey[]): void {
  if (node.entries.length < 2) return;
  const seen = new Set<string>();
  for (const [k] of node.entries) {
    const id = `${typeof k === 'string' ? 's' : 'i'}${String(k)}`;
    if (seen.has(id)) {
      throw formatError(file, `the key path ${showKeys([...keys, k])} appears twice (the map at ${showKeys(keys)} has the key ${typeof k === 'string' ? quoted(k) : String(k)} twice); flax would keep only the last one. Remove one.`);
    }
    seen.add(id);
  }
}

/**
 * `unchunk`: flax unchunks only maps reached from the root through maps; a chunked map inside a
 * list stays a plain map of its parts.
 */
function walk(w: Walk, node: MsgNode, path: PathKey[], keys: MsgKey[], unchunk: boolean): void {
  switch (node.kind) {
    case 'map': {
      checkDuplicateKeys(w.file, node, keys);
      if (unchunk && node.entries.some(([k]) => k === CHUNKED)) {
        leaf(w, path, keys);
        w.out.tensors.push(chunkedTensor(w.file, node, path, keys));
        return;
      }
      for (const [k, v] of node.entries) walk(w, v, [...path, keyOf(k)], [...keys, k], unchunk);
      return;
    }
    case 'array':
      node.items.forEach((v, i) => walk(w, v, [...path, i], [...keys, i], false));
      return;
    case 'ndarray': {
      const name = leaf(w, path, keys);
      const a = resolveArray(w.file, `array ${quoted(name)}`, node);
      w.out.tensors.push(tensorRef(w.file, name, path, a.dtype, a.bigEndian, a.shape, [{ file: w.file, offset: node.offset, length: node.length }]));
      return;
    }
    case 'value': {
      const name = leaf(w, path, keys);
      w.out.values.push({ name, path, value: node.value === null ? 'None' : typeof node.value === 'string' ? JSON.stringify(node.value) : String(node.value) });
      return;
    }
    case 'complex': {
      const name = leaf(w, path, keys);
      const re = Number(node.re);
      const im = Number(node.im);
      w.out.values.push({ name, path, value: `(${re}${im < 0 || Object.is(im, -0) ? '-' : '+'}${Math.abs(im)}j)` });
      return;
    }
    case 'timestamp': {
      const name = leaf(w, path, keys);
      w.out.values.push({ name, path, value: `Timestamp(seconds=${node.seconds}, nanoseconds=${node.nanoseconds})` });
      return;
    }
    case 'bytes': {
      const name = leaf(w, path, keys);
      w.out.values.push({ name, path, value: node.ext === undefined ? `<${node.length} bytes>` : `<msgpack extension ${node.ext}, ${node.length} bytes>` });
      return;
    }
  }
}

/** Registers a leaf's name, refusing a second leaf with the same name; returns the name. */
function leaf(w: Walk, path: readonly PathKey[], keys: readonly MsgKey[]): string {
  const name = path.join('.');
  const before = w.names.get(name);
  if (before !== undefined) {
    throw formatError(
      w.file,
      `the key paths ${showKeys(before)} and ${showKeys(keys)} both flatten to the name ${quoted(name)}; flax keeps them apart, but one tensor name cannot. Rename one of the keys.`,
    );
  }
  w.names.set(name, keys);
  return name;
}

interface Resolved {
  dtype: DType;
  bigEndian: boolean;
  dtypeName: string;
  shape: number[];
  count: number;
}

/** An ndarray node as numpy rebuilds it: np.frombuffer(data, dtype).reshape(shape). */
function resolveArray(file: string, what: string, node: Extract<MsgNode, { kind: 'ndarray' }>): Resolved {
  const dt = flaxDtype(node.dtype);
  if (dt === undefined) {
    throw formatError(file, `${what} has dtype ${quoted(node.dtype)}, which has no safetensors equivalent (supported: ${Object.keys(NUMPY_TO_DTYPE).join(', ')}).`);
  }
  const itemBytes = DTYPE_BITS[dt.dtype] / 8;
  if (node.length % itemBytes !== 0) {
    throw formatError(file, `${what} holds ${node.length} bytes, not a whole number of ${itemBytes}-byte ${node.dtype} elements.`);
  }
  const count = node.length / itemBytes;
  const shape = reshape(file, what, count, itemBytes, node.dtype, node.shape);
  return { ...dt, dtypeName: node.dtype, shape, count };
}

/**
 * numpy's reshape of `count` elements to `dims` (integers as written; null keeps it flat): one
 * negative dimension is inferred, the element counts must agree, and the array's size in bytes
 * (zeros aside) must fit numpy's int64. Dimensions past 2^53 - 1 are refused: a number cannot hold
 * them exactly, and only an empty array could have one.
 */
function reshape(file: string, what: string, count: number, itemBytes: number, dtypeName: string, dims: readonly (number | bigint)[] | null): number[] {
  if (dims === null) return [count];
  const shown = `[${dims.join(', ')}]`;
  const big = dims.map((d) => BigInt(d));
  if (big.some((d) => d > INT64_MAX)) throw formatError(file, `${what} has shape ${shown}, with a dimension past numpy's maximum of 2^63 - 1.`);
  const unknown = big.flatMap((d, i) => (d < 0n ? [i] : []));
  if (unknown.length > 1) throw formatError(file, `${what} has shape ${shown}, with more than one negative (inferred) dimension.`);
  const known = big.reduce((a, d) => (d < 0n ? a : a * d), 1n);
  const n = BigInt(count);
  if (unknown.length === 1) {
    if (known === 0n || n % known !== 0n) throw formatError(file, `${what} holds ${count} elements, which cannot be reshaped to ${shown}.`);
    big[unknown[0]!] = n / known;
  } else if (known !== n) {
    throw formatError(file, `${what} holds ${BigInt(count * itemBytes)} bytes but ${dtypeName}${shown} needs ${known * BigInt(itemBytes)}.`);
  }
  const nonzero = big.reduce((a, d) => (d === 0n ? a : a * d), BigInt(itemBytes));
  if (nonzero > INT64_MAX) throw formatError(file, `${what} has shape ${shown}, larger than numpy can create (its size in bytes overflows int64).`);
  if (big.some((d) => d > SAFE_MAX)) throw formatError(file, `${what} has shape ${shown}, with a dimension past 2^53 - 1, which this reader cannot represent exactly.`);
  return big.map(Number);
}

function tensorRef(file: string, name: string, path: PathKey[], dtype: DType, bigEndian: boolean, shape: number[], segments: ByteRange[]): TensorRef {
  const bytes = segments.reduce((a, s) => a + s.length, 0);
  const [first, ...rest] = segments;
  return {
    name,
    path,
    dtype,
    shape,
    bytes,
    source: first ?? { file, offset: 0, length: 0 },
    ...(rest.length > 0 ? { segments } : {}),
    ...(bigEndian && DTYPE_BITS[dtype] > 8 ? { bigEndian: true } : {}),
  };
}

/** The value under a string key of a map (the last one, as a Python dict keeps it). */
function entry(node: Extract<MsgNode, { kind: 'map' }>, key: string): MsgNode | undefined {
  let v: MsgNode | undefined;
  for (const [k, x] of node.entries) if (k === key) v = x;
  return v;
}

/**
 * flax's `_dict_to_tuple`: `tuple(d[str(i)] for i in range(len(d)))`, so a map whose keys are
 * exactly the strings "0".."n-1"; anything empty that has a length (a list, a string, bytes) gives
 * (). Undefined for anything else.
 */
function dictToTuple(node: MsgNode): MsgNode[] | undefined {
  if (node.kind === 'array') return node.items.length === 0 ? [] : undefined;
  if (node.kind === 'value' && node.value === '') return [];
  if (node.kind === 'bytes' && node.ext === undefined && node.length === 0) return [];
  if (node.kind !== 'map') return undefined;
  const out: MsgNode[] = [];
  const n = node.entries.length;
  for (const [k, v] of node.entries) {
    if (typeof k !== 'string' || !/^(0|[1-9][0-9]*)$/.test(k) || Number(k) >= n || out[Number(k)] !== undefined) return undefined;
    out[Number(k)] = v;
  }
  return out;
}

/**
 * `{"__msgpack_chunked_array__": …, "shape": {"0": d0, …}, "chunks": {"0": ndarray, …}}`, as flax's
 * `_unchunk` restores it: np.concatenate(chunks).reshape(shape).
 */
function chunkedTensor(file: string, node: Extract<MsgNode, { kind: 'map' }>, path: PathKey[], keys: readonly MsgKey[]): TensorRef {
  const name = path.join('.');
  const bad = (why: string) => formatError(file, `chunked array ${quoted(name)}: ${why}.`);
  const shapeNode = entry(node, 'shape');
  const chunksNode = entry(node, 'chunks');
  if (shapeNode?.kind === 'map') checkDuplicateKeys(file, shapeNode, [...keys, 'shape']);
  if (chunksNode?.kind === 'map') checkDuplicateKeys(file, chunksNode, [...keys, 'chunks']);
  if (!shapeNode) throw bad('it has no "shape" entry');
  if (!chunksNode) throw bad('it has no "chunks" entry');
  const dimNodes = dictToTuple(shapeNode);
  if (!dimNodes) throw bad(`its "shape" is ${describeNode(shapeNode)}, not a map keyed "0", "1", … as flax writes it`);
  const dims = dimNodes.map((d, i) => {
    if (!isInteger(d)) throw bad(`shape entry "${i}" is ${describeNode(d)}; numpy takes integer dimensions only`);
    return d.value;
  });
  const chunks = dictToTuple(chunksNode);
  if (!chunks) throw bad(`its "chunks" is ${describeNode(chunksNode)}, not a map keyed "0", "1", … as flax writes it`);
  if (chunks.length === 0) throw bad('it has no chunks; numpy cannot concatenate nothing');
  const segments: ByteRange[] = [];
  let first: Resolved | undefined;
  let count = 0;
  chunks.forEach((c, i) => {
    if (c.kind !== 'ndarray') {
      throw bad(`chunk ${i} is ${describeNode(c)}, not an array${c.kind === 'array' ? ' (numpy would build a new array from the msgpack numbers; there are no file bytes to read)' : '; numpy cannot concatenate it'}`);
    }
    const r = resolveArray(file, `chunk ${i} of chunked array ${quoted(name)}`, c);
    if (r.shape.length === 0) throw bad(`chunk ${i} is a 0-d (scalar) array; numpy cannot concatenate it`);
    if (first) {
      if (r.dtype !== first.dtype || r.bigEndian !== first.bigEndian) {
        throw bad(`chunk ${i} is ${r.dtypeName} but chunk 0 is ${first.dtypeName}; flax would convert them while joining`);
      }
      if (r.shape.length !== first.shape.length || r.shape.some((d, j) => j > 0 && d !== first!.shape[j])) {
        throw bad(`chunk ${i} has shape [${r.shape.join(', ')}] but chunk 0 has [${first.shape.join(', ')}]; numpy cannot concatenate them`);
      }
    } else first = r;
    count += r.count;
    segments.push({ file, offset: c.offset, length: c.length });
  });
  const shape = reshape(file, `chunked array ${quoted(name)}`, count, DTYPE_BITS[first!.dtype] / 8, first!.dtypeName, dims);
  return tensorRef(file, name, path, first!.dtype, first!.bigEndian, shape, segments);
}
