/**
 * A scanned flax.serialization document as a Checkpoint: ndarray leaves become tensors named by
 * their key path joined with '.', lists (stored as {"0": …, "1": …}) become numeric path keys,
 * chunked arrays (`__msgpack_chunked_array__`, written for arrays over 1 GiB) become one tensor
 * whose bytes are the chunks in order, and Python scalars, strings and complex numbers are kept as
 * values. Format facts: ../shared/reference/formats-and-layouts.md §2.
 */
import { pathKey, type PathKey, type ScalarLeaf, type TensorRef } from '../../checkpoint';
import { formatError } from '../../errors';
import { DTYPE_BITS, type DType } from '../../tensor/dtype';
import type { MsgKey, MsgNode } from './scanner';

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
  return NUMPY_TO_DTYPE[name];
}

const keyOf = (k: MsgKey): PathKey => (typeof k === 'number' ? k : pathKey(k));

export interface FlaxTree {
  tensors: TensorRef[];
  values: ScalarLeaf[];
}

/** Flattens a scanned document whose data lives in `file`. */
export function flaxTree(file: string, root: MsgNode): FlaxTree {
  const out: FlaxTree = { tensors: [], values: [] };
  walk(file, root, [], out);
  return out;
}

function walk(file: string, node: MsgNode, path: PathKey[], out: FlaxTree): void {
  const name = () => path.join('.');
  switch (node.kind) {
    case 'map': {
      const chunked = node.entries.find(([k]) => k === '__msgpack_chunked_array__');
      if (chunked && chunked[1].kind === 'value' && chunked[1].value === true) {
        out.tensors.push(chunkedTensor(file, node, path));
        return;
      }
      for (const [k, v] of node.entries) walk(file, v, [...path, keyOf(k)], out);
      return;
    }
    case 'array':
      node.items.forEach((v, i) => walk(file, v, [...path, i], out));
      return;
    case 'ndarray':
      out.tensors.push(tensor(file, name(), path, node.dtype, node.shape, [{ file, offset: node.offset, length: node.length }]));
      return;
    case 'value':
      out.values.push({ name: name(), path, value: node.value === null ? 'None' : typeof node.value === 'string' ? JSON.stringify(node.value) : String(node.value) });
      return;
    case 'complex':
      out.values.push({ name: name(), path, value: `(${node.re}${node.im < 0 || Object.is(node.im, -0) ? '-' : '+'}${Math.abs(node.im)}j)` });
      return;
    case 'bytes':
      out.values.push({ name: name(), path, value: node.ext === undefined ? `<${node.length} bytes>` : `<msgpack extension ${node.ext}, ${node.length} bytes>` });
      return;
  }
}

function tensor(file: string, name: string, path: PathKey[], dtypeName: string, shape: readonly number[], segments: { file: string; offset: number; length: number }[]): TensorRef {
  const dtype = numpyDtype(dtypeName);
  if (dtype === undefined) {
    throw formatError(file, `array ${JSON.stringify(name)} has dtype ${JSON.stringify(dtypeName)}, which has no safetensors equivalent (supported: ${Object.keys(NUMPY_TO_DTYPE).join(', ')}).`);
  }
  const bytes = segments.reduce((a, s) => a + s.length, 0);
  const want = shape.reduce((a, d) => a * d, 1) * (DTYPE_BITS[dtype] / 8);
  if (bytes !== want) {
    throw formatError(file, `array ${JSON.stringify(name)} holds ${bytes} bytes but ${dtypeName}${JSON.stringify(shape)} needs ${want}.`);
  }
  const [first, ...rest] = segments;
  return {
    name,
    path,
    dtype,
    shape,
    bytes,
    source: first ?? { file, offset: 0, length: 0 },
    ...(rest.length > 0 ? { segments } : {}),
  };
}

/** `{"__msgpack_chunked_array__": true, "shape": {"0": d0, …}, "chunks": {"0": 1-D ndarray, …}}` */
function chunkedTensor(file: string, node: Extract<MsgNode, { kind: 'map' }>, path: PathKey[]): TensorRef {
  const name = path.join('.');
  const get = (k: string) => node.entries.find(([key]) => key === k)?.[1];
  const shapeNode = get('shape');
  const chunksNode = get('chunks');
  const bad = (why: string) => formatError(file, `chunked array ${JSON.stringify(name)}: ${why}.`);
  if (shapeNode?.kind !== 'map' || chunksNode?.kind !== 'map') throw bad('no "shape" and "chunks" maps');
  const shape = indexed(shapeNode).map((d) => (d.kind === 'value' && typeof d.value === 'number' && Number.isSafeInteger(d.value) && d.value >= 0 ? d.value : -1));
  if (shape.includes(-1)) throw bad('the shape is not a list of non-negative integers');
  const chunks = indexed(chunksNode);
  let dtype: string | undefined;
  const segments = chunks.map((c, i) => {
    if (c.kind !== 'ndarray') throw bad(`chunk ${i} is not an array`);
    if (dtype !== undefined && c.dtype !== dtype) throw bad(`chunk ${i} is ${c.dtype}, the others ${dtype}`);
    dtype = c.dtype;
    return { file, offset: c.offset, length: c.length };
  });
  if (dtype === undefined) throw bad('it has no chunks');
  return tensor(file, name, path, dtype, shape, segments);
}

/** The values of a map keyed "0", "1", … in index order, refusing gaps. */
function indexed(node: Extract<MsgNode, { kind: 'map' }>): MsgNode[] {
  const out: MsgNode[] = [];
  for (const [k, v] of node.entries) {
    const i = typeof k === 'number' ? k : Number(k);
    if (!Number.isSafeInteger(i) || i < 0 || i >= node.entries.length) return [];
    out[i] = v;
  }
  return out.length === node.entries.length && !out.includes(undefined as unknown as MsgNode) ? out : [];
}
