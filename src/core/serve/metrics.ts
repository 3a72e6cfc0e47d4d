/**
 * Server gauges from `/metrics` (Prometheus text exposition): requests running and waiting, and how
 * full the KV cache is. vLLM always exposes them (serving-engines.md §1.6: vllm:num_requests_running,
 * vllm:num_requests_waiting, vllm:kv_cache_usage_perc, older vllm:gpu_cache_usage_perc); SGLang only
 * with --enable-metrics (§2.5: sglang:num_running_reqs, sglang:num_queue_reqs, sglang:token_usage).
 * transformers serve has none (404): then there are no gauges, not zeros.
 */
import { boundedRequest, serverRoot } from './request';

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface ServerGauges {
  readonly running?: number;
  readonly waiting?: number;
  /** 0–1. */
  readonly kvCacheUse?: number;
}

/** Names per gauge, first match wins; values of one name are summed over its label sets (engines, models). */
const GAUGE_NAMES: Readonly<Record<keyof ServerGauges, readonly string[]>> = {
  running: ['vllm:num_requests_running', 'sglang:num_running_reqs'],
  waiting: ['vllm:num_requests_waiting', 'sglang:num_queue_reqs'],
  kvCacheUse: ['vllm:kv_cache_usage_perc', 'vllm:gpu_cache_usage_perc', 'sglang:token_usage'],
};

function parseValue(s: string): number {
  if (s === '+Inf' || s === 'Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  return Number(s); // NaN stays NaN
}

/** Reads `name{a="x",b="y"} value [timestamp]` lines; comments, blank and malformed lines are skipped. */
export function parsePrometheus(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)/.exec(line);
    if (!m) continue;
    const name = m[1]!;
    let i = name.length;
    const labels: Record<string, string> = {};
    if (line[i] === '{') {
      i++;
      for (;;) {
        while (line[i] === ' ' || line[i] === ',') i++;
        if (line[i] === '}') {
          i++;
          break;
        }
        const k = /^[A-Za-z_][A-Za-z0-9_]*/.exec(line.slice(i));
        if (!k || line[i + k[0].length] !== '=' || line[i + k[0].length + 1] !== '"') {
          i = -1;
          break;
        }
        i += k[0].length + 2;
        let v = '';
        // Label values escape \\, \" and \n (the exposition format's only escapes).
        while (i < line.length && line[i] !== '"') {
          if (line[i] === '\\' && i + 1 < line.length) {
            const c = line[++i];
            v += c === 'n' ? '\n' : c;
          } else v += line[i];
          i++;
        }
        if (line[i] !== '"') {
          i = -1;
          break;
        }
        i++;
        labels[k[0]] = v;
      }
      if (i < 0) continue;
    }
    const rest = line.slice(i).trim().split(/\s+/);
    if (rest[0] === undefined || rest[0] === '') continue;
    const value = parseValue(rest[0]);
    if (Number.isNaN(value) && rest[0] !== 'NaN') continue;
    out.push({ name, labels, value });
  }
  return out;
}

/** The gauges a metrics text holds; none when it holds none of the names. */
export function gaugesFrom(samples: readonly Sample[]): ServerGauges | undefined {
  const g: { -readonly [K in keyof ServerGauges]: number } = {};
  let any = false;
  for (const key of Object.keys(GAUGE_NAMES) as (keyof ServerGauges)[]) {
    for (const name of GAUGE_NAMES[key]) {
      const values = samples.filter((s) => s.name === name).map((s) => s.value);
      if (values.length === 0) continue;
      // Several engines (data parallel) or models each report their own: the server's total. The
      // cache use is a fraction per engine: their mean.
      const sum = values.reduce((a, b) => a + b, 0);
      g[key] = key === 'kvCacheUse' ? sum / values.length : sum;
      any = true;
      break;
    }
  }
  return any ? g : undefined;
}

/** How long one read of /metrics may take: the panel asks again every few seconds. */
const METRICS_TIMEOUT_MS = 3000;

/**
 * Reads `/metrics` at the server's root once. Undefined when the server has no metrics endpoint or
 * none of the gauges; a network failure rejects (the caller decides whether the server is gone).
 */
export async function fetchGauges(baseUrl: string, apiKey?: string, signal?: AbortSignal, fetchImpl: typeof fetch = fetch): Promise<ServerGauges | undefined> {
  const r = await boundedRequest(serverRoot(baseUrl) + '/metrics', { apiKey, signal, timeoutMs: METRICS_TIMEOUT_MS }, fetchImpl);
  return r.ok ? gaugesFrom(parsePrometheus(r.body)) : undefined;
}
