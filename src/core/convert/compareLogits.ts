/**
 * How close two sets of logits are, per prompt: the numbers `jax-serve verify` reports. KL is
 * KL(p_jax ‖ p_export), averaged over positions, in float64 with log-sum-exp; top-k agreement is
 * the mean share of the k most likely tokens both sides rank in their top k.
 */
import { JaxServeError } from '../errors';
export interface LogitsComparison {
  readonly positions: number;
  readonly maxAbsDiff: number;
  readonly kl: number;
  readonly top1: number;
  readonly top5: number;
}

function logSoftmax(x: ArrayLike<number>, from: number, n: number, out: Float64Array): void {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, x[from + i]!);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(x[from + i]! - max);
  const lse = max + Math.log(sum);
  for (let i = 0; i < n; i++) out[i] = x[from + i]! - lse;
}

/** Indices of the k largest of out[0..n). */
function topK(v: Float64Array, k: number): Set<number> {
  const idx = Array.from({ length: v.length }, (_, i) => i);
  idx.sort((a, b) => v[b]! - v[a]!);
  return new Set(idx.slice(0, k));
}

/** Compares (positions × vocab) logits; `reference` is the JAX side. */
export function compareLogits(reference: ArrayLike<number>, other: ArrayLike<number>, vocab: number): LogitsComparison {
  if (reference.length !== other.length || reference.length % vocab !== 0) {
    throw new JaxServeError('E_FORMAT', `logits of different sizes: ${reference.length} and ${other.length} values for a vocabulary of ${vocab}.`);
  }
  const positions = reference.length / vocab;
  let maxAbsDiff = 0;
  for (let i = 0; i < reference.length; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(reference[i]! - other[i]!));
  const lp = new Float64Array(vocab);
  const lq = new Float64Array(vocab);
  let kl = 0;
  let top1 = 0;
  let top5 = 0;
  const k = Math.min(5, vocab);
  for (let t = 0; t < positions; t++) {
    logSoftmax(reference, t * vocab, vocab, lp);
    logSoftmax(other, t * vocab, vocab, lq);
    let s = 0;
    for (let i = 0; i < vocab; i++) s += Math.exp(lp[i]!) * (lp[i]! - lq[i]!);
    kl += s;
    const a = topK(lp, k);
    const b = topK(lq, k);
    if ([...topK(lp, 1)][0] === [...topK(lq, 1)][0]) top1++;
    let both = 0;
    for (const i of a) if (b.has(i)) both++;
    top5 += both / k;
  }
  return { positions, maxAbsDiff, kl: kl / positions, top1: top1 / positions, top5: top5 / positions };
}
