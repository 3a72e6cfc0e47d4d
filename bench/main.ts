/**
 * Benchmarks, each printing a ratio against a peer run side by side in this process tree:
 *   open   the index and all headers of a synthetic sharded checkpoint read and validated (warm
 *          cache, median), against Python json.load of the index plus safe_open listing every shard
 *          (design.md bar: 200 shards / 100k tensors ≤ 150 ms)
 *   stats  GB/s of exact statistics over one tensor in f32 and bf16, decoding included, against
 *          numpy computing the same (bar: ≥ 1 GB/s per core)
 * `--smoke` runs small sizes (CI); without it, the full sizes of the quality bars.
 * The peer runs with $JAX_SERVE_PYTHON (the test venv), or is skipped with a line saying so.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  NodeFileOpener,
  openAtomicFileSink,
  openCheckpoint,
  tensorStats,
  writeSafetensors,
  writeShardedSafetensors,
  type TensorSpec,
} from '../src/core/index';

const smoke = process.argv.includes('--smoke');
const python = process.env.JAX_SERVE_PYTHON;
const peerScript = resolve(__dirname, '..', 'bench', 'peer.py');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function peer(args: string[]): Record<string, number> | undefined {
  if (!python) return undefined;
  return JSON.parse(execFileSync(python, [peerScript, ...args], { encoding: 'utf8', maxBuffer: 16 << 20 }));
}

async function benchOpen(dir: string): Promise<void> {
  const shards = smoke ? 20 : 200;
  const perShard = 500;
  const specs: TensorSpec[] = Array.from({ length: shards * perShard }, (_, i) => ({ name: `model.layers.${Math.floor(i / 10)}.w${i % 10}.weight`, dtype: 'BF16', shape: [2, 2] }));
  const d = join(dir, 'open');
  mkdirSync(d);
  await writeShardedSafetensors((f) => openAtomicFileSink(join(d, f)), specs, () => new Uint8Array(8), { maxShardBytes: perShard * 8 });
  const opener = new NodeFileOpener();
  const runs = smoke ? 5 : 9;
  await openCheckpoint(opener, d); // warm the page cache
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const ck = await openCheckpoint(opener, d);
    times.push(performance.now() - t0);
    if (ck.tensors.length !== specs.length) throw new Error('open: wrong tensor count');
  }
  const ours = median(times);
  const p = peer(['open', d, String(runs)]);
  const line = `open   ${shards} shards, ${specs.length.toLocaleString('en-US')} tensors: jax-serve ${ours.toFixed(1)} ms (median of ${runs})`;
  console.log(p ? `${line}, python json+safe_open ${p.ms!.toFixed(1)} ms → ${(p.ms! / ours).toFixed(2)}× ${smoke ? '' : `(bar ≤ 150 ms)`}` : `${line}; peer skipped (no JAX_SERVE_PYTHON)`);
}

async function benchStats(dir: string, dtype: 'F32' | 'BF16'): Promise<void> {
  const bytes = smoke ? 64 << 20 : 1 << 30;
  const n = bytes / (dtype === 'F32' ? 4 : 2);
  const file = join(dir, `stats-${dtype}.safetensors`);
  const chunk = 1 << 22;
  await writeSafetensors(await openAtomicFileSink(file), [{ name: 't', dtype, shape: [n] }], function* () {
    // Pseudo-random normal-ish values, written chunk by chunk (bounded memory).
    let seed = 12345;
    for (let done = 0; done < bytes; done += chunk) {
      const f = new Float32Array(Math.min(chunk, bytes - done) / (dtype === 'F32' ? 4 : 2));
      for (let i = 0; i < f.length; i++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        f[i] = (seed / 2 ** 32 - 0.5) * 4;
      }
      if (dtype === 'F32') yield new Uint8Array(f.buffer);
      else yield new Uint8Array(Uint16Array.from(new Uint32Array(f.buffer), (u) => u >>> 16).buffer);
    }
  });
  const opener = new NodeFileOpener();
  const t = (await openCheckpoint(opener, file)).tensors[0]!;
  await tensorStats(opener, t); // warm
  const runs = smoke ? 3 : 5;
  const rates: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await tensorStats(opener, t);
    rates.push(bytes / ((performance.now() - t0) / 1000) / 1e9);
  }
  const ours = median(rates);
  const p = peer(['stats', file, 't', String(runs)]);
  const line = `stats  ${dtype} ${(bytes / 2 ** 20).toFixed(0)} MiB: jax-serve ${ours.toFixed(2)} GB/s on one core (median of ${runs})`;
  console.log(p ? `${line}, numpy ${p.gbps!.toFixed(2)} GB/s → ${(ours / p.gbps!).toFixed(2)}× ${smoke ? '' : '(bar ≥ 1 GB/s)'}` : `${line}; peer skipped (no JAX_SERVE_PYTHON)`);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'jax-serve-bench-'));
  try {
    console.log(`jax-serve benchmarks (${smoke ? 'smoke sizes' : 'full sizes'})`);
    await benchOpen(dir);
    await benchStats(dir, 'F32');
    await benchStats(dir, 'BF16');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : String(e));
  process.exitCode = 1;
});
