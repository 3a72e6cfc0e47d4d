/**
 * A health scan: statistics over every tensor of a checkpoint, and the ones worth a look — NaN or
 * ±Inf elements (a diverged run, a bad cast), all zeros (an uninitialised or dropped weight), a
 * constant (every element the same), and extreme magnitudes (past what bf16/f16 training usually
 * produces). The statistics come from a caller-given function, so the extension runs them on its
 * worker thread and the CLI in-process.
 */
import type { Checkpoint, TensorRef } from '../checkpoint';
import { throwIfAborted } from '../errors';
import type { TensorStats } from './stats';

export type HealthCode = 'nan' | 'inf' | 'all-zero' | 'constant' | 'extreme';

export interface HealthFinding {
  readonly tensor: string;
  readonly code: HealthCode;
  readonly severity: 'error' | 'warning';
  readonly message: string;
}

export interface HealthReport {
  readonly scanned: number;
  /** Numeric tensors in the checkpoint; `scanned` is less when the time budget ran out. */
  readonly total: number;
  /** False when the scan stopped at its time budget before the last tensor. */
  readonly complete: boolean;
  readonly findings: readonly HealthFinding[];
}

/** Magnitudes past this are reported as extreme (f16 overflows at 65504). */
export const EXTREME_MAGNITUDE = 1e4;

const NUMERIC = /^(F|BF|I|U)\d|^F8/;

/** The findings for one tensor's statistics. */
export function healthOf(t: Pick<TensorRef, 'name' | 'dtype'>, s: TensorStats): HealthFinding[] {
  const out: HealthFinding[] = [];
  const add = (code: HealthCode, severity: HealthFinding['severity'], message: string) => out.push({ tensor: t.name, code, severity, message: `${t.name}: ${message}` });
  if (s.nan > 0) add('nan', 'error', `${s.nan} NaN of ${s.count} elements.`);
  if (s.posInf + s.negInf > 0) add('inf', 'error', `${s.posInf} +Inf and ${s.negInf} −Inf of ${s.count} elements.`);
  if (s.count > 0 && s.zeros === s.count) add('all-zero', 'warning', `all ${s.count} elements are zero (never initialised, or lost in a conversion?).`);
  else if (s.count > 1 && s.finite === s.count && s.min === s.max) add('constant', 'warning', `all ${s.count} elements are ${s.min}.`);
  const peak = Math.max(Math.abs(s.min ?? 0), Math.abs(s.max ?? 0));
  if (/^(F|BF)/.test(t.dtype) && peak > EXTREME_MAGNITUDE) add('extreme', 'warning', `values reach ${peak.toPrecision(4)} (past ${EXTREME_MAGNITUDE}; float16 overflows at 65504).`);
  return out;
}

export interface ScanOptions {
  readonly signal?: AbortSignal;
  /** Tensors done so far, of all. */
  readonly onProgress?: (done: number, total: number) => void;
  /** Stop after this much time with what was found so far (`complete: false`). */
  readonly budgetMs?: number;
  /** The clock (tests give their own). */
  readonly now?: () => number;
}

/**
 * Scans every numeric tensor, one at a time, with `stats` computing each one's statistics. A
 * checkpoint may hold a million tensors: the scan reports progress, honours the signal, and ends at
 * its time budget with a partial report rather than running on unseen.
 */
export async function healthScan(ck: Checkpoint, stats: (t: TensorRef) => Promise<TensorStats>, opts: ScanOptions = {}): Promise<HealthReport> {
  const numeric = ck.tensors.filter((t) => NUMERIC.test(t.dtype));
  const findings: HealthFinding[] = [];
  const now = opts.now ?? Date.now;
  const end = opts.budgetMs === undefined ? Infinity : now() + opts.budgetMs;
  let i = 0;
  for (; i < numeric.length; i++) {
    throwIfAborted(opts.signal);
    if (now() > end) break;
    findings.push(...healthOf(numeric[i]!, await stats(numeric[i]!)));
    opts.onProgress?.(i + 1, numeric.length);
  }
  return { scanned: i, total: numeric.length, complete: i === numeric.length, findings };
}
