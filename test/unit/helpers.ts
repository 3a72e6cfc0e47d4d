/** Test helpers: in-memory files, sinks, hand-built safetensors bytes, a seedable PRNG, temp folders. */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DTYPE_BITS, JaxServeError, MemoryByteSource, openCheckpoint, readTensorBytes, writeSafetensors, type ByteSink, type ByteSource, type DType, type FileOpener } from '../../src/core/index';
import { NodeFileOpener, openAtomicFileSink } from '../../src/core/node/index';

export class MemoryFiles implements FileOpener {
  readonly files = new Map<string, Uint8Array>();
  async open(path: string): Promise<ByteSource> {
    const b = this.files.get(path);
    if (!b) throw new JaxServeError('E_NOT_FOUND', `${path}: no such file.`);
    return new MemoryByteSource(path, b);
  }
  async readSmall(path: string, maxBytes: number): Promise<Uint8Array> {
    const b = this.files.get(path);
    if (!b) throw new JaxServeError('E_NOT_FOUND', `${path}: no such file.`);
    if (b.length > maxBytes) throw new JaxServeError('E_LIMIT', `${path} too large`);
    return b;
  }
  async kind(path: string): Promise<'file' | 'directory' | undefined> {
    if (this.files.has(path)) return 'file';
    for (const k of this.files.keys()) if (k.startsWith(path + '/')) return 'directory';
    return undefined;
  }
  sink(path: string): ByteSink {
    const chunks: Uint8Array[] = [];
    return {
      write: async (c) => void chunks.push(c.slice()),
      commit: async () => void this.files.set(path, Buffer.concat(chunks)),
      abort: async () => void (chunks.length = 0),
    };
  }
}

/** u64 length + header JSON text (used as given, so tests can write malformed JSON) + data bytes. */
export function rawSafetensors(headerText: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const h = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

/** mulberry32: small, fast, seedable; the seed is printed by tests that fail. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomBytes(rand: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (rand() * 256) | 0;
  return b;
}

export function tempDir(prefix = 'jax-serve-test-'): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Asserts that `p` rejects with a JaxServeError whose code and message match. */
export async function rejectsWith(p: Promise<unknown>, code: string, message: RegExp): Promise<JaxServeError> {
  try {
    await p;
  } catch (e) {
    if (!(e instanceof JaxServeError)) throw new Error(`expected a JaxServeError, got ${String(e)}`);
    if (e.code !== code) throw new Error(`expected code ${code}, got ${e.code}: ${e.message}`);
    if (!message.test(e.message)) throw new Error(`message ${JSON.stringify(e.message)} does not match ${message}`);
    return e;
  }
  throw new Error('expected a rejection, but it resolved');
}

/** The python named by `variable`; skips the test when unset, unless JAX_SERVE_REQUIRE_PYTHON says it must be there. */
function pythonFrom(ctx: Mocha.Context, variable: string, what: string): string {
  const python = process.env[variable];
  if (!python) {
    if (process.env.JAX_SERVE_REQUIRE_PYTHON) throw new Error(`${variable} is not set: run the README test command, which builds ${what}.`);
    ctx.skip();
  }
  return python!;
}

/**
 * The pinned venv's python, for tests that write or read files with the real libraries. `npm test`
 * sets JAX_SERVE_PYTHON and JAX_SERVE_REQUIRE_PYTHON=1, so there these never skip; a bare
 * `npm run test:unit` without the venv skips them and says why.
 */
export function venvPython(ctx: Mocha.Context): string {
  return pythonFrom(ctx, 'JAX_SERVE_PYTHON', 'the venv');
}

/** The HF-Flax venv's python (transformers 4.x Flax), under the same rules as venvPython. */
export function hfFlaxPython(ctx: Mocha.Context): string {
  return pythonFrom(ctx, 'JAX_SERVE_HFFLAX_PYTHON', 'the hfflax venv');
}

/** Runs a python/fixtures script's `write DIR` and returns the manifest it prints. */
export function writeFixtures<T>(python: string, script: string, dir: string): T {
  return JSON.parse(execFileSync(python, [resolve(__dirname, '../../../python/fixtures', script), 'write', dir], { encoding: 'utf8', maxBuffer: 64 << 20 })) as T;
}

/**
 * The built CLI (dist/cli.js) as a child process, without blocking this one: a server in this
 * process (a replay, a proxy) must keep answering while it runs.
 */
export function cliAsync(args: readonly string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const p = spawn(process.execPath, [resolve(__dirname, '../../../dist/cli.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (status) => done({ status, stdout, stderr }));
  });
}

/** A tensor as a safetensors header lists it. */
export interface TensorSpecLike {
  name: string;
  dtype: string;
  shape: number[];
}

/**
 * Rewrites a safetensors `file` with `change` applied to its tensor list: bytes kept where the name
 * and size match, zeros elsewhere (a tensor dropped, added, reshaped or retyped), `metadata` in the header.
 */
export async function rewriteSafetensors(file: string, change: (ts: TensorSpecLike[]) => TensorSpecLike[], metadata: Record<string, string> = { format: 'pt' }): Promise<void> {
  const files = new NodeFileOpener();
  const ck = await openCheckpoint(files, file);
  const bytes = new Map<string, Uint8Array>();
  for (const t of ck.tensors) {
    const parts: Uint8Array[] = [];
    for await (const b of readTensorBytes(files, t)) parts.push(Buffer.from(b));
    bytes.set(t.name, Buffer.concat(parts));
  }
  const specs = change(ck.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape] })));
  rmSync(file);
  await writeSafetensors(
    await openAtomicFileSink(file, { sources: [] }),
    specs.map((t) => ({ ...t, dtype: t.dtype as DType })),
    (s) => {
      const need = (s.shape.reduce((a, b) => a * b, 1) * DTYPE_BITS[s.dtype]) / 8;
      const kept = bytes.get(s.name);
      return kept && kept.length === need ? kept : new Uint8Array(need);
    },
    { metadata },
  );
}
