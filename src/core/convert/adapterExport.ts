/**
 * The two LoRA exports. `--lora adapter`: a PEFT adapter folder beside the base export
 * (adapter_config.json and adapter_model.safetensors, the form peft, vLLM and SGLang load:
 * `base_model.model.<module>.lora_A.weight` (r, in), `lora_B.weight` (out, r)). `--lora merge`:
 * W + (alpha / r) · lora_B · lora_A folded into each adapted weight in f32, then cast.
 */
import { valueOpener, type Checkpoint } from '../checkpoint';
import { JaxServeError, throwIfAborted } from '../errors';
import type { FileOpener } from '../io/byteSource';
import { writeSafetensors, type TensorData } from '../formats/safetensors/writer';
import { decodeChunk } from '../tensor/decode';
import { dtypeBytes, type DType } from '../dtype';
import { encodeValues } from './encode';
import { loraMap, mergeInto, peftFactors } from './loraMap';
import type { PlannedAdapter } from './lora';
import type { Plan, PlannedTensor } from './plan';
import { applyTransforms, layoutAfter } from './transforms';
import { tileable, tiledTensorData } from './tiled';
import { readWholeTensor } from './wholeTensor';
import type { ExportTarget } from './execute';

/** Where an adapter's factors are read: SRC, or the adapter-only file (--lora-from). */
export interface AdapterSources {
  readonly ck: Checkpoint;
  readonly adapter?: Checkpoint;
  readonly files: FileOpener;
}

/** Tensors by name, per checkpoint: an adapter reads two of thousands. */
const byName = new WeakMap<Checkpoint, Map<string, Checkpoint['tensors'][number]>>();

function tensorOf(ck: Checkpoint | undefined, name: string): Checkpoint['tensors'][number] | undefined {
  if (!ck) return undefined;
  let m = byName.get(ck);
  if (!m) byName.set(ck, (m = new Map(ck.tensors.map((t) => [t.name, t]))));
  return m.get(name);
}

async function values(src: AdapterSources, inAdapterFile: boolean, name: string): Promise<Float64Array> {
  const ck = inAdapterFile ? src.adapter : src.ck;
  const t = tensorOf(ck, name);
  if (!ck || !t) throw new JaxServeError('E_NOT_FOUND', `the plan names LoRA leaf ${name}, which ${inAdapterFile ? 'the adapter file' : 'the source'} no longer has; plan again.`);
  return Float64Array.from(decodeChunk(t.dtype, await readWholeTensor(valueOpener(ck, src.files), t)));
}

/** PEFT's lora_A (r, in) and lora_B (out, r) of one adapter, in f64. */
export async function adapterFactors(a: PlannedAdapter, src: AdapterSources): Promise<{ loraA: Float64Array; loraB: Float64Array }> {
  const map = loraMap(a.source, a.transforms, a.inAxes, a.a);
  return peftFactors(map, await values(src, a.inAdapterFile, a.a), await values(src, a.inAdapterFile, a.b), a.rank);
}

/** A weight with its adapter merged: the base chain run in f32, the delta added, then the target's dtype. */
export async function mergedTensor(p: PlannedTensor, ck: Checkpoint, files: FileOpener, src: AdapterSources, signal?: AbortSignal): Promise<Uint8Array> {
  const a = p.merge!;
  const kernel = await readWholeTensor(valueOpener(ck, files), tensorOf(ck, p.from)!, signal);
  const f32 = p.source.dtype === 'F32' ? [] : [{ op: 'cast', dtype: 'F32' } as const];
  const w = applyTransforms(kernel, p.source, [...f32, ...a.transforms]);
  const { loraA, loraB } = await adapterFactors(a, src);
  const merged = mergeInto(new Float32Array(w.bytes.buffer, w.bytes.byteOffset, w.bytes.length / 4), a.rows, a.cols, loraA, loraB, a.rank, a.alpha / a.rank);
  return p.target.dtype === 'F32' ? new Uint8Array(merged.buffer) : encodeValues(p.target.dtype, merged);
}

/** A weight whose f32 copy fits this is merged whole; a larger one in tiles (the memory bar). */
export const MERGE_WHOLE_BYTES = 64 << 20;

/**
 * A merged weight too large to hold whole: the base chain runs in tiles (its cast left for last),
 * and each tile gets its elements' delta, s · Σ_k lora_B[o, k] · lora_A[k, i], added in f64 and
 * rounded once to the target's dtype. Memory is a tile and the two factors.
 */
export function mergedTiles(p: PlannedTensor, ck: Checkpoint, files: FileOpener, src: AdapterSources, budget: number, signal?: AbortSignal): TensorData {
  const a = p.merge!;
  const chain: PlannedTensor = { ...p, transforms: a.transforms, target: layoutAfter(p.source, a.transforms) };
  if (!tileable(chain)) throw new JaxServeError('E_UNSUPPORTED', `${p.to}: merging its adapter needs it whole (${a.rows} × ${a.cols}), and its conversion cannot run in tiles; export the adapter with --lora adapter instead.`);
  const tiles = tiledTensorData(chain, tensorOf(ck, p.from)!, valueOpener(ck, files), budget, signal);
  const inSize = dtypeBytes(chain.target.dtype)!;
  const outSize = dtypeBytes(p.target.dtype)!;
  const scale = a.alpha / a.rank;
  let factors: Promise<{ loraA: Float64Array; loraB: Float64Array }> | undefined;
  const merge = async (offset: number, bytes: Uint8Array): Promise<{ offset: number; bytes: Uint8Array }> => {
    const { loraA, loraB } = await (factors ??= adapterFactors(a, src));
    const first = offset / inSize;
    const values = Float64Array.from(decodeChunk(chain.target.dtype, bytes));
    for (let k = 0; k < values.length; k++) {
      const o = Math.floor((first + k) / a.cols);
      const i = (first + k) % a.cols;
      // The same sum, in the same order, as mergeInto's, so tiles and whole give the same bits.
      let d = 0;
      for (let r = 0; r < a.rank; r++) d += loraB[o * a.rank + r]! * scale * loraA[r * a.cols + i]!;
      values[k]! += d;
    }
    return { offset: first * outSize, bytes: encodeValues(p.target.dtype, values) };
  };
  if (isTensorFill(tiles)) return { writeTiles: (writeAt) => tiles.writeTiles(async (offset, bytes) => { const m = await merge(offset, bytes); await writeAt(m.offset, m.bytes); }) };
  return (async function* () {
    let at = 0;
    for await (const bytes of tiles as AsyncIterable<Uint8Array>) {
      yield (await merge(at, bytes)).bytes;
      at += bytes.length;
    }
  })();
}

const isTensorFill = (d: TensorData): d is Extract<TensorData, { writeTiles: unknown }> => typeof (d as { writeTiles?: unknown }).writeTiles === 'function';

/**
 * target_modules as PEFT, vLLM and SGLang all read it: a list (SGLang refuses a regex string). A
 * leaf name (`q_proj`) where every such module has an adapter; the modules' full paths where only
 * some do, so the list selects exactly the adapted modules.
 */
export function targetModules(plan: Pick<Plan, 'tensors' | 'adapters'>): string[] {
  const adapted = new Set(plan.adapters.map((a) => a.module));
  const leaves = [...new Set(plan.adapters.map((a) => a.module.split('.').at(-1)!))].sort();
  const out: string[] = [];
  for (const leaf of leaves) {
    const all = plan.tensors.map((t) => t.to.replace(/\.weight$/, '')).filter((m) => m.split('.').at(-1) === leaf);
    if (all.every((m) => adapted.has(m))) out.push(leaf);
    else out.push(...all.filter((m) => adapted.has(m)).sort());
  }
  return out;
}

/** The most common value among the modules; the others go in PEFT's per-module pattern. */
function common(values: readonly number[]): number {
  const counts = new Map<number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]![0];
}

/** adapter_config.json: LoRA, causal LM, no bias, rsLoRA, DoRA, fan_in_fan_out or modules_to_save. */
export function adapterConfig(plan: Pick<Plan, 'tensors' | 'adapters'>, baseModel: string): Record<string, unknown> {
  const r = common(plan.adapters.map((a) => a.rank));
  const alpha = common(plan.adapters.map((a) => a.alpha));
  const pattern = (key: 'rank' | 'alpha', base: number) => Object.fromEntries(plan.adapters.filter((a) => a[key] !== base).map((a) => [a.module, a[key]]));
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: baseModel,
    revision: null,
    r,
    lora_alpha: alpha,
    target_modules: targetModules(plan),
    rank_pattern: pattern('rank', r),
    alpha_pattern: pattern('alpha', alpha),
    lora_dropout: 0.0,
    bias: 'none',
    fan_in_fan_out: false,
    use_rslora: false,
    use_dora: false,
    modules_to_save: null,
    init_lora_weights: true,
    layers_to_transform: null,
    layers_pattern: null,
    inference_mode: true,
  };
}

/** Writes the PEFT adapter of `plan` into `target` (not committed: the caller commits it with the base). */
export async function writeAdapter(plan: Plan, src: AdapterSources, target: ExportTarget, baseModel: string, signal?: AbortSignal): Promise<string[]> {
  const weightDtype = new Map(plan.tensors.map((t) => [t.to, t.target.dtype]));
  const specs: { name: string; dtype: DType; shape: number[]; make: () => Promise<Uint8Array> }[] = [];
  // One adapter's factors are made once and both written from them.
  for (const a of [...plan.adapters].sort((x, y) => (x.module < y.module ? -1 : 1))) {
    const dtype = weightDtype.get(`${a.module}.weight`) ?? 'F32';
    let made: Promise<{ loraA: Float64Array; loraB: Float64Array }> | undefined;
    const factors = () => (made ??= adapterFactors(a, src));
    const key = `base_model.model.${a.module}`;
    specs.push({ name: `${key}.lora_A.weight`, dtype, shape: [a.rank, a.cols], make: async () => encodeValues(dtype, (await factors()).loraA) });
    specs.push({ name: `${key}.lora_B.weight`, dtype, shape: [a.rows, a.rank], make: async () => encodeValues(dtype, (await factors()).loraB) });
  }
  const byName = new Map(specs.map((s) => [s.name, s]));
  await writeSafetensors(await target.sink('adapter_model.safetensors'), specs, (s) => {
    throwIfAborted(signal);
    return byName.get(s.name)!.make();
  }, { metadata: { format: 'pt' } });
  await target.writeFile('adapter_config.json', JSON.stringify(adapterConfig(plan, baseModel), null, 2) + '\n');
  return ['adapter_model.safetensors', 'adapter_config.json'];
}
