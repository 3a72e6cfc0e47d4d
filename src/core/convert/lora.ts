/**
 * LoRA adapters in JAX checkpoints, as the libraries write them (reference: flax/nnx/nn/lora.py,
 * qwix/_src/providers/lora.py):
 *  - `nnx.LoRALinear`: `M.kernel` (in, out) beside `M.lora.lora_a` (in, r) and `M.lora.lora_b` (r, out);
 *  - the `nnx.LoRA` wrapper: `M.base_module.kernel` beside `M.lora_a`, `M.lora_b`;
 *  - qwix (Tunix): `M.P_lora_a`, `M.P_lora_b` beside the weight `M.P` (`kernel`, an einsum's `w`),
 *    A (in…, r), B (r, out…).
 * Both flax forms add x·A·B unscaled (alpha = r); qwix scales by alpha / r and stores no alpha.
 * The leaves come from SRC or from an adapter-only file (`nnx.state(model, nnx.LoRAParam)`) beside it.
 * They are never conversion targets: each pair becomes a PEFT adapter module or is merged.
 */
import type { DType } from '../dtype';
import { JaxServeError } from '../errors';
import type { Problem } from './planRow';
import { loraMap } from './loraMap';
import type { Layout, Transform } from './transforms';

export type LoraLayout = 'nnx-lora-linear' | 'nnx-lora' | 'qwix';

/** What the flags ask for: a PEFT adapter beside the base export, or the deltas merged into it. */
export type LoraMode = 'adapter' | 'merge';

interface Leaf {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: DType;
}

/** One LoRA pair found in the source, before the plan has mapped its base kernel. */
export interface LoraPair {
  readonly layout: LoraLayout;
  /** The base kernel's source name. */
  readonly base: string;
  readonly a: Leaf;
  readonly b: Leaf;
  /** Whether A and B come from the adapter-only file (--lora-from) rather than SRC. */
  readonly inAdapterFile: boolean;
}

export interface LoraLeaves {
  /** SRC names that are LoRA leaves: left out of the mapping (never "unmapped"). */
  readonly leaves: ReadonlySet<string>;
  /** SRC names under a wrapper (`M.base_module.kernel`) and the names the preset's rules see (`M.kernel`). */
  readonly renamed: ReadonlyMap<string, string>;
  readonly pairs: readonly LoraPair[];
  readonly problems: readonly Problem[];
}

/** One adapted module of the plan: what `--dry-run --json` lists under `adapters`. */
export interface PlannedAdapter {
  /** The HF module (`model.layers.0.self_attn.q_proj`). */
  readonly module: string;
  readonly rank: number;
  readonly alpha: number;
  readonly layout: LoraLayout;
  /** Source names of the base kernel and the factors. */
  readonly base: string;
  readonly a: string;
  readonly b: string;
  readonly inAdapterFile: boolean;
  /** The kernel's layout and conversion chain (its cast left out): where the factors land (loraMap). */
  readonly source: Layout;
  readonly transforms: readonly Transform[];
  readonly aLayout: Layout;
  readonly bLayout: Layout;
  /** The kernel's axes A covers (its inputs), in order; B covers the others. */
  readonly inAxes: readonly number[];
  /** The HF weight's (out, in). */
  readonly rows: number;
  readonly cols: number;
}

/** The leaf patterns, most specific first: `M.lora.lora_a` is also `….lora_a`. */
function leafOf(name: string): { module: string; side: 'a' | 'b'; layout: LoraLayout; param?: string } | undefined {
  let m = /^(.+)\.lora\.lora_([ab])$/.exec(name);
  if (m) return { module: m[1]!, side: m[2] as 'a' | 'b', layout: 'nnx-lora-linear' };
  m = /^(.+)\.lora_([ab])$/.exec(name);
  if (m) return { module: m[1]!, side: m[2] as 'a' | 'b', layout: 'nnx-lora' };
  m = /^(.+)\.([^.]+)_lora_([ab])$/.exec(name);
  if (m) return { module: m[1]!, side: m[3] as 'a' | 'b', layout: 'qwix', param: m[2]! };
  return undefined;
}

/** Finds the LoRA leaves of SRC and of an adapter-only file, paired, each with its base kernel in SRC. */
export function findLora(src: readonly Leaf[], adapter?: readonly Leaf[]): LoraLeaves {
  const names = new Set(src.map((t) => t.name));
  const leaves = new Set<string>();
  const renamed = new Map<string, string>();
  const problems: Problem[] = [];
  const pending = new Map<string, { a?: Leaf; b?: Leaf; layout: LoraLayout; base?: string; inAdapterFile: boolean }>();
  const clashed = new Set<string>();
  const collect = (list: readonly Leaf[], inAdapterFile: boolean) => {
    for (const t of list) {
      const leaf = leafOf(t.name);
      if (!leaf) {
        if (inAdapterFile) problems.push({ severity: 'error', code: 'lora', tensor: t.name, message: `${t.name} in the adapter file is not a LoRA leaf (…lora.lora_a, …lora_a, …<param>_lora_a and their _b).` });
        continue;
      }
      if (!inAdapterFile) leaves.add(t.name);
      const key = `${leaf.layout}:${leaf.module}:${leaf.param ?? ''}`;
      const p = pending.get(key) ?? { layout: leaf.layout, inAdapterFile };
      // Both files hold this module's factors: which are the trained ones cannot be told, so neither is taken.
      if (p.inAdapterFile !== inAdapterFile) {
        problems.push({ severity: 'error', code: 'lora', tensor: t.name, message: `${t.name} is in both the source and the adapter file (--lora-from): leave the LoRA leaves in one of them (convert the base without them, or drop --lora-from).` });
        pending.delete(key);
        clashed.add(key);
        continue;
      }
      if (clashed.has(key)) continue;
      const candidates = leaf.layout === 'nnx-lora-linear' ? [`${leaf.module}.kernel`] : leaf.layout === 'nnx-lora' ? [`${leaf.module}.base_module.kernel`, `${leaf.module}.kernel`] : [`${leaf.module}.${leaf.param}`];
      p.base = candidates.find((c) => names.has(c));
      if (leaf.side === 'a') p.a = t;
      else p.b = t;
      pending.set(key, p);
    }
  };
  collect(src, false);
  if (adapter) collect(adapter, true);
  const pairs: LoraPair[] = [];
  for (const p of pending.values()) {
    const one = (p.a ?? p.b)!;
    if (!p.a || !p.b) {
      problems.push({ severity: 'error', code: 'lora', tensor: one.name, message: `${one.name}: its LoRA partner (${one.name.replace(/_([ab])$/, (_, s: string) => `_${s === 'a' ? 'b' : 'a'}`)}) is missing; an adapter needs both factors.` });
      continue;
    }
    if (!p.base) {
      problems.push({ severity: 'error', code: 'lora', tensor: p.a.name, message: `${p.a.name}: no base kernel for it in the source (looked for ${leafOf(p.a.name)!.module}.kernel${p.layout === 'nnx-lora' ? ' and .base_module.kernel' : ''}).` });
      continue;
    }
    if (p.base.includes('.base_module.')) renamed.set(p.base, p.base.replace('.base_module.', '.'));
    pairs.push({ layout: p.layout, base: p.base, a: p.a, b: p.b, inAdapterFile: p.inAdapterFile });
  }
  // The wrapper's other leaves (its bias) are the base module's too.
  const wrapped = new Set(pairs.filter((p) => p.base.includes('.base_module.')).map((p) => p.base.slice(0, p.base.indexOf('.base_module.'))));
  for (const t of src) {
    if (renamed.has(t.name) || leaves.has(t.name) || !t.name.includes('.base_module.')) continue;
    if (wrapped.has(t.name.slice(0, t.name.indexOf('.base_module.')))) renamed.set(t.name, t.name.replace('.base_module.', '.'));
  }
  return { leaves, renamed, pairs, problems };
}

/** The planned tensor an adapter's base kernel became, as much as the adapter needs of it. */
interface BaseTarget {
  readonly from: string;
  readonly to: string;
  readonly source: Layout;
  readonly transforms: readonly Transform[];
}

/**
 * The adapters of the plan: each pair's base kernel must have become one HF weight; the factors'
 * shapes must compose to the kernel's; where they land is checked now (loraMap), so a dry run
 * reports what the export would refuse. `alpha` is --lora-alpha, else r (flax adds A·B unscaled);
 * qwix scales by alpha / r and does not store alpha, so it must be given.
 */
export function planAdapters(found: LoraLeaves, targets: readonly BaseTarget[], alpha: number | undefined, problems: Problem[]): PlannedAdapter[] {
  const byFrom = new Map<string, BaseTarget[]>();
  for (const t of targets) {
    const list = byFrom.get(t.from);
    if (list) list.push(t);
    else byFrom.set(t.from, [t]);
  }
  const out: PlannedAdapter[] = [];
  if (alpha === undefined && found.pairs.some((p) => p.layout === 'qwix')) {
    problems.push({ severity: 'error', code: 'lora-alpha', message: `qwix LoRA leaves (e.g. ${found.pairs.find((p) => p.layout === 'qwix')!.a.name}): qwix scales by alpha / rank and does not store alpha; pass --lora-alpha A (the LoraProvider's alpha).` });
  }
  for (const p of found.pairs) {
    const mapped = byFrom.get(p.base) ?? [];
    if (mapped.length === 0) {
      problems.push({ severity: 'error', code: 'lora', tensor: p.a.name, message: `${p.a.name}: its base ${p.base} is not converted (see the unmapped tensors), so the adapter has no module to attach to.` });
      continue;
    }
    const rank = p.a.shape.at(-1)!;
    const inAxes = p.b.shape[0] === rank && rank >= 1 ? axesOf(mapped[0]!.source.shape, p.a.shape.slice(0, -1), p.b.shape.slice(1)) : 'none';
    if (inAxes === 'none' || inAxes === 'ambiguous') {
      const why = inAxes === 'none' ? 'do not compose to' : 'fit more than one way into';
      problems.push({ severity: 'error', code: 'lora', tensor: p.a.name, message: `${p.a.name} ${JSON.stringify(p.a.shape)} and ${p.b.name} ${JSON.stringify(p.b.shape)} ${why} ${p.base} ${JSON.stringify(mapped[0]!.source.shape)} (A is (in…, r), B (r, out…), each in the kernel's axis order).` });
      continue;
    }
    // A fused kernel (Gemma's kv_einsum) becomes several weights: each gets the adapter's share (B's slice).
    for (const t of mapped) {
      const transforms = t.transforms.filter((x) => x.op !== 'cast');
      try {
        const map = loraMap(t.source, transforms, inAxes, p.a.name);
        out.push({
        module: t.to.replace(/\.weight$/, ''),
        rank,
        alpha: alpha ?? rank,
        layout: p.layout,
        base: p.base,
        a: p.a.name,
        b: p.b.name,
        inAdapterFile: p.inAdapterFile,
        source: t.source,
        transforms,
        aLayout: { shape: p.a.shape, dtype: p.a.dtype },
        bLayout: { shape: p.b.shape, dtype: p.b.dtype },
        inAxes,
        rows: map.outMap.length,
        cols: map.inMap.length,
        });
      } catch (e) {
        if (!(e instanceof JaxServeError)) throw e;
        problems.push({ severity: 'error', code: 'lora', tensor: p.a.name, message: e.message });
      }
    }
  }
  return out;
}

/**
 * Which axes of `kernel` A's input dims are: `a` and `b` interleaved in order make the kernel's shape
 * (qwix puts in A the kernel's axes the input also has, in the kernel's order, and the rest in B).
 * 'ambiguous' when equal sizes let them fit more than one way.
 */
function axesOf(kernel: readonly number[], a: readonly number[], b: readonly number[]): number[] | 'none' | 'ambiguous' {
  if (a.length + b.length !== kernel.length || kernel.length > 16) return 'none';
  // Inputs first is what flax's LoRA and qwix's dot_general make ((in, out) kernels, (in, r) A): taken
  // whenever it fits, even where a square kernel would fit the other way too.
  if ([...a, ...b].every((d, k) => d === kernel[k])) return a.map((_, k) => k);
  const found: number[][] = [];
  const walk = (k: number, i: number, j: number, taken: number[]): void => {
    if (found.length > 1) return;
    if (k === kernel.length) {
      found.push([...taken]);
      return;
    }
    if (i < a.length && a[i] === kernel[k]) walk(k + 1, i + 1, j, [...taken, k]);
    if (j < b.length && b[j] === kernel[k]) walk(k + 1, i, j + 1, taken);
  };
  walk(0, 0, 0, []);
  return found.length === 0 ? 'none' : found.length > 1 ? 'ambiguous' : found[0]!;
}

/** The plan-level problem when LoRA leaves are there and no --lora says what to do with them. */
export function loraModeProblem(found: LoraLeaves): Problem {
  const modules = found.pairs.length;
  const example = found.pairs[0]?.a.name ?? [...found.leaves][0] ?? '';
  return {
    severity: 'error',
    code: 'lora-mode',
    message: `${modules} module${modules === 1 ? '' : 's'} carry LoRA leaves (e.g. ${example}): pass --lora adapter --adapter-out DIR to write a PEFT adapter beside the base export, or --lora merge to fold them into it. Nothing is written until one is chosen, so no fine-tune is dropped.`,
  };
}
