/**
 * The recorded tensor-parallel runs: every test/fixtures folder whose versions.txt says `count=N` with
 * N > 1, made by scripts/gpu/sglang-jax-run.sh with COUNT=N and scripts/gpu/import-records.sh
 * (sglang-jax-<commit>-jax<version>-<date>-tp<N>[-cpu|-on<G>gpu]). A folder whose name starts `handwritten-`
 * was written by hand, not recorded, and its HANDWRITTEN.md says how each number was made.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES } from './recordedRuns';

export interface TpRun {
  readonly name: string;
  readonly dir: string;
  /** The TP size (versions.txt `count`). */
  readonly tp: number;
  /** `cpu` for XLA host devices, else the GPU platform. */
  readonly device: string;
  readonly handwritten: boolean;
  /** A file of the run's folder, as text; undefined when it has none. */
  text(file: string): string | undefined;
}

export function tpRuns(): TpRun[] {
  return readdirSync(FIXTURES)
    .filter((d) => /(^|-)tp\d+(-|$)/.test(d) && existsSync(join(FIXTURES, d, 'versions.txt')))
    .map((name) => {
      const dir = join(FIXTURES, name);
      const versions = readFileSync(join(dir, 'versions.txt'), 'utf8');
      const val = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(versions)?.[1];
      return {
        name,
        dir,
        tp: Number(val('count') ?? '1'),
        device: val('device') ?? 'cuda',
        handwritten: name.startsWith('handwritten-'),
        text: (file: string) => (existsSync(join(dir, file)) ? readFileSync(join(dir, file), 'utf8') : undefined),
      };
    })
    .filter((r) => r.tp > 1);
}

/** The `jax-serve serve` arguments a run recorded for its TP launch (tp<N>.cli-args): each flag's value, and the engine's own (`--arg`) in order. */
export function recordedServe(run: TpRun): { args: string[]; value: (flag: string) => string; extra: string[] } {
  const args = run.text(`tp${run.tp}.cli-args`)!.trimEnd().split('\n');
  return { args, value: (flag) => args[args.indexOf(flag) + 1]!, extra: args.flatMap((a, i) => (args[i - 1] === '--arg' ? [a] : [])) };
}

/** `key=value` of an SGLang-JAX log line (its ServerArgs, its memory profile). */
export function logged(log: string, key: string): string | undefined {
  return new RegExp(`\\b${key}=([^,)\\s]+)`).exec(log)?.[1];
}

/** nvidia-smi --query-gpu=index,name,memory.total,memory.used --format=csv: MiB by GPU index. */
export function gpuMemory(csv: string): { index: number; name: string; totalMiB: number; usedMiB: number }[] {
  return csv
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split(',').map((x) => x.trim()))
    .map(([index, name, total, used]) => ({ index: Number(index), name: name!, totalMiB: parseInt(total!, 10), usedMiB: parseInt(used!, 10) }));
}
