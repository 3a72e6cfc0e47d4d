/**
 * The accelerators `fit` knows, as data: each device's memory as its driver reports it, with where
 * that figure comes from (../shared/reference/gpu-memory-rules.md, "Accelerator memory"). NVIDIA's
 * marketed "80 GB" and "141 GB" are not the figures to use: 141e9 bytes under-states an H200 by 6.5 %.
 */
import { JaxServeError } from '../errors';

export interface Accelerator {
  /** The lower-case name `--gpu` takes. */
  readonly name: string;
  readonly title: string;
  /** Memory per device, in bytes. */
  readonly memoryBytes: number;
  /** A GPU runs XLA with its allocator limit (SGLang-JAX); a TPU gives XLA the whole HBM. */
  readonly kind: 'gpu' | 'tpu';
  /** Where the memory figure comes from. */
  readonly source: string;
}

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const SMI = 'nvidia-smi memory.total';

export const ACCELERATORS: readonly Accelerator[] = [
  { name: 'h100', title: 'NVIDIA H100 80GB HBM3', memoryBytes: 81559 * MiB, kind: 'gpu', source: `${SMI} 81559 MiB (public nvidia-smi printouts of "NVIDIA H100 80GB HBM3")` },
  { name: 'h200', title: 'NVIDIA H200', memoryBytes: 143771 * MiB, kind: 'gpu', source: `${SMI} 143771 MiB (the lent H200's own nvidia-smi, 2026-12-04)` },
  { name: 'a100-40', title: 'NVIDIA A100 40GB', memoryBytes: 40960 * MiB, kind: 'gpu', source: `${SMI} 40960 MiB (public nvidia-smi printouts of "A100-SXM4-40GB")` },
  { name: 'a100-80', title: 'NVIDIA A100 80GB', memoryBytes: 81920 * MiB, kind: 'gpu', source: `${SMI} 81920 MiB (public nvidia-smi printouts of "A100-SXM4-80GB" and "A100 80GB PCIe")` },
  { name: 'l4', title: 'NVIDIA L4', memoryBytes: 23034 * MiB, kind: 'gpu', source: `${SMI} 23034 MiB (public nvidia-smi printouts of "NVIDIA L4")` },
  { name: 'l40s', title: 'NVIDIA L40S', memoryBytes: 46068 * MiB, kind: 'gpu', source: `${SMI} 46068 MiB (public nvidia-smi printouts of "NVIDIA L40S")` },
  { name: 'v5e', title: 'TPU v5e (per chip)', memoryBytes: 16 * GiB, kind: 'tpu', source: '16 GiB of HBM per chip (cloud.google.com/tpu/docs/v5e)' },
  { name: 'v6e', title: 'TPU v6e (per chip)', memoryBytes: 32 * GiB, kind: 'tpu', source: '32 GiB of HBM per chip (cloud.google.com/tpu/docs/v6e)' },
];

/** A user's own accelerator, as the setting or `--gpu NAME=SIZE` gives it. */
export interface AcceleratorEntry {
  readonly name: unknown;
  readonly memory: unknown;
  readonly kind?: unknown;
  readonly source?: unknown;
}

const SIZE = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)$/i;
const UNIT: Record<string, number> = { b: 1, kib: 2 ** 10, mib: MiB, gib: GiB, tib: 2 ** 40, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12 };

/** Bytes in "23034 MiB", "80 GB", "24GiB"; undefined when it is not a size. */
export function parseMemorySize(text: string): number | undefined {
  const m = SIZE.exec(text.trim());
  if (!m) return undefined;
  const bytes = Math.round(Number(m[1]) * UNIT[m[2]!.toLowerCase()]!);
  return bytes > 0 && Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** A user's entry as an Accelerator; `where` names the setting or flag in the error. */
export function userAccelerator(e: AcceleratorEntry, where: string): Accelerator {
  const name = typeof e.name === 'string' ? e.name.trim().toLowerCase() : '';
  if (!/^[a-z0-9][a-z0-9._-]{0,39}$/.test(name)) throw new JaxServeError('E_USAGE', `${where}: an accelerator's name must be 1–40 letters, digits, '.', '_' or '-'.`);
  const memoryBytes = typeof e.memory === 'number' ? e.memory * MiB : typeof e.memory === 'string' ? parseMemorySize(e.memory) : undefined;
  if (memoryBytes === undefined || !(memoryBytes > 0) || !Number.isSafeInteger(memoryBytes)) {
    throw new JaxServeError('E_USAGE', `${where}: ${name}'s memory must be a size such as "23034 MiB" or "24 GiB" (a number is MiB, as nvidia-smi prints it).`);
  }
  const kind = e.kind === 'tpu' ? 'tpu' : 'gpu';
  const source = typeof e.source === 'string' && e.source.trim() !== '' ? e.source.trim().slice(0, 200) : `given in ${where}`;
  return { name, title: name, memoryBytes, kind, source };
}

/**
 * The accelerator `--gpu` names: a known name, one of `extra`, or `NAME=SIZE` for one not listed.
 * An unknown name is a usage error that lists the known ones.
 */
export function acceleratorNamed(text: string, extra: readonly Accelerator[] = []): Accelerator {
  const eq = text.indexOf('=');
  if (eq > 0) return userAccelerator({ name: text.slice(0, eq), memory: text.slice(eq + 1) }, `--gpu ${text}`);
  const name = text.trim().toLowerCase();
  const found = [...extra, ...ACCELERATORS].find((a) => a.name === name);
  if (!found) {
    const known = [...ACCELERATORS, ...extra].map((a) => a.name).join(', ');
    throw new JaxServeError('E_USAGE', `--gpu ${JSON.stringify(text).slice(0, 60)}: unknown accelerator; choose one of ${known}, or give NAME=SIZE (e.g. rtx4090=24564MiB).`);
  }
  return found;
}
