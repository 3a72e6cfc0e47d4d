/**
 * A launch, sized: the Serve panel's form (a LaunchProfile) as `fit` options, and a fit report as the
 * panel's Fit section shows it (a level, a headline, the numbers, the changes that would fit).
 */
import type { Accelerator } from './accelerators';
import { parseEnv } from './launchProfile';
import { FEW_SEQUENCES, gib as gibOf, type FitEngine, type FitReport } from './fit';
import type { FitOptions } from './fitFolder';
import type { FitView, LaunchProfile } from './serveTypes';

const ENGINES: Readonly<Record<string, FitEngine>> = { vllm: 'vllm', 'vllm-tpu': 'vllm', sglang: 'sglang', 'sglang-jax': 'sglang-jax' };
const DTYPES: Readonly<Record<string, FitOptions['dtype']>> = { auto: 'auto', bfloat16: 'bf16', bf16: 'bf16', float16: 'f16', half: 'f16', f16: 'f16', float32: 'f32', float: 'f32', f32: 'f32' };

/** XLA's allocator limit as environment variables set it: the newer name first, as XLA reads them. */
export function xlaFraction(env: Readonly<Record<string, string | undefined>>): number | undefined {
  for (const name of ['XLA_CLIENT_MEM_FRACTION', 'XLA_PYTHON_CLIENT_MEM_FRACTION']) {
    const f = Number(env[name]?.trim());
    if (env[name] !== undefined) return f > 0 && f <= 1 ? f : undefined;
  }
  return undefined;
}

/** The launch's environment as Start reads it; a malformed one (Start refuses it) sets nothing here. */
function envVars(text: string | undefined): Record<string, string> {
  try {
    return parseEnv(text ?? '');
  } catch {
    return {};
  }
}

/** The fit options of a launch, or why it is not sized. */
export function launchFitOptions(p: LaunchProfile, accelerator: Accelerator | undefined): FitOptions | string {
  const engine = ENGINES[p.engine];
  if (!engine) return 'Fit sizes vLLM, SGLang and SGLang-JAX launches.';
  if (!p.model.trim()) return 'Choose a model folder to size the launch.';
  if (!accelerator) return 'Choose an accelerator to size the launch.';
  const tp = p.tensorParallel !== undefined && Number.isSafeInteger(p.tensorParallel) && p.tensorParallel >= 1 ? p.tensorParallel : 1;
  const count = p.deviceCount !== undefined && Number.isSafeInteger(p.deviceCount) && p.deviceCount >= 1 ? p.deviceCount : tp;
  const len = p.maxModelLen !== undefined && Number.isSafeInteger(p.maxModelLen) && p.maxModelLen >= 1 ? p.maxModelLen : undefined;
  const fraction = p.memoryFraction !== undefined && p.memoryFraction > 0 && p.memoryFraction <= 1 ? p.memoryFraction : undefined;
  return {
    engine,
    accelerator,
    count,
    tp,
    maxModelLen: len,
    memoryFraction: fraction,
    dtype: DTYPES[(p.dtype ?? 'auto').trim().toLowerCase()] ?? 'keep',
    kvDType: 'auto',
    xlaMemFraction: engine === 'sglang-jax' ? xlaFraction(envVars(p.env)) : undefined,
  };
}

const gib = (b: number) => gibOf(b, 1);
const int = (n: number) => n.toLocaleString('en-US');
/** A max length to offer: a multiple of 256 when there is room for one. */
const roundLen = (n: number) => (n >= 512 ? Math.floor(n / 256) * 256 : n);

export function fitView(r: FitReport): FitView {
  const lines = [
    `Weights: ${gib(r.weightBytes)} (${int(r.paramCount)} parameters, ${r.dtype}); ${gib(r.weightBytesPerDevice)} a device at TP ${r.tp}.`,
    `Usable a device: ${r.reasons.budgetBytesPerDevice}; reserve ${gib(r.reserveBytes)}.`,
    `KV cache: ${int(r.kvBytesPerTokenPerDevice)} bytes a token a device; ${int(r.kvTokens)} tokens in ${gib(r.poolBytesPerDevice)}.`,
    `Valid TP: ${r.validTp.join(', ') || 'none'}; the smallest that fits: ${r.minTp ?? 'none'}.`,
  ];
  const tp = r.minTp !== null && r.minTp !== r.tp ? r.minTp : undefined;
  if (!r.fits) {
    // A shorter max length helps only when the KV cache is all that is short (a valid TP, room for the weights).
    const kvOnly = r.minTp !== null && r.validTp.includes(r.tp) && r.tp <= r.count && r.weightBytesPerDevice + r.reserveBytes <= r.budgetBytesPerDevice;
    const len = kvOnly && r.longestMaxModelLen > 0 && r.longestMaxModelLen < r.maxModelLen ? roundLen(r.longestMaxModelLen) : undefined;
    return { level: 'red', headline: `Does not fit: ${r.problems[0] ?? ''}`, lines, suggestTp: tp, suggestMaxModelLen: len };
  }
  const at = `${r.maxConcurrency.toFixed(1)} sequences of ${int(r.maxModelLen)} tokens at once`;
  if (r.maxConcurrency < FEW_SEQUENCES) {
    const len = roundLen(r.longestMaxModelLenForFew);
    return { level: 'amber', headline: `Fits, with room for only ${at}.`, lines, suggestMaxModelLen: len > 0 && len < r.maxModelLen ? len : undefined, suggestTp: tp };
  }
  return { level: 'green', headline: `Fits: ${gib(r.weightBytesPerDevice)} of weights a device, KV cache for ${at}.`, lines };
}
