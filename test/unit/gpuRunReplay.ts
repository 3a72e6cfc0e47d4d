/**
 * The GPU run of SGLang-JAX, as tests replay it: the recorded runs (test/fixtures/sglang-jax-*
 * folders with `replies-good.json`), the exports they served rebuilt here, and a server that answers
 * as the recorded engine did. Shared by the unit tests (sglangJaxRun.test.ts) and the extension-host
 * suite (the Serve panel's Check Against Source), so both replay one copy.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { shapedLlamaFixtures } from '../fixtures/canonical';
import { repoRoot } from '../repoRoot';

const ROOT = repoRoot();
export const CLI = join(ROOT, 'dist/cli.js');
const FIXTURES = join(ROOT, 'test/fixtures');
/** Every prompt the run recorded replies for (the built-in check prompts among them). */
export const GPU_RUN_PROMPTS = join(ROOT, 'scripts/gpu/prompts.json');

/** The recorded one-device runs' folders: the good export's replies and the broken-RoPE one's. */
export function gpuRuns(): string[] {
  return readdirSync(FIXTURES)
    .filter((d) => d.startsWith('sglang-jax-') && ['replies-good.json', 'replies-broken.json'].every((f) => existsSync(join(FIXTURES, d, f))))
    .map((d) => join(FIXTURES, d));
}

/** A JSON file of a run's folder (recorded files of several shapes: each test says what it reads). */
export const runJson = (dir: string, file: string) => JSON.parse(readFileSync(join(dir, file), 'utf8'));

export type GpuRunExports = Record<'export128' | 'export128-broken-rope', string>;

/**
 * The exports the run served, rebuilt here by the run's own steps (shaped_llama.py, then our
 * converter, once with the broken-RoPE rules), cached outside the clone; their sha256 must equal
 * what the device run recorded, or the replay would compare against another model.
 */
export function rebuiltExports(python: string, run: string): GpuRunExports {
  const rules = join(ROOT, 'scripts/gpu/broken-rope.rules.json');
  const shape = { headDim: 128, heads: 4, kvHeads: 2 };
  return {
    export128: rebuiltExport(python, run, 'export128', shape),
    'export128-broken-rope': rebuiltExport(python, run, 'export128-broken-rope', shape, rules),
  };
}

/**
 * One export a run served, rebuilt here as the run made it (shaped_llama.py at `shape`, then our
 * converter, with `rules` when given), cached outside the clone, and checked against the sha256 the
 * run recorded for it: a replay must compare against the model that was served.
 */
export function rebuiltExport(python: string, run: string, name: string, shape: { headDim: number; heads: number; kvHeads: number }, rules?: string): string {
  const m = shapedLlamaFixtures(python, shape);
  const key = createHash('sha256').update(name).update(m.dir).update(readFileSync(CLI)).update(rules ? readFileSync(rules) : '').digest('hex').slice(0, 12);
  const base = join(process.env.JAX_SERVE_CACHE ?? join(homedir(), '.cache', 'jax-serve'), 'fixtures', `gpu-run-export-${key}`);
  const out = join(base, name);
  if (!existsSync(join(base, 'done'))) {
    const tmp = `${base}.partial-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    // In an extension host process.execPath may be the editor's binary: run it as Node.
    execFileSync(process.execPath, [CLI, 'convert', join(m.dir, 'jax/nnx.msgpack'), '-o', join(tmp, name), '--config-from', join(m.dir, 'hf'), '--tokenizer-from', join(m.dir, 'hf'), ...(rules ? ['--rules', rules] : [])], { stdio: 'pipe', env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' } });
    rmSync(base, { recursive: true, force: true });
    renameSync(tmp, base);
    execFileSync('touch', [join(base, 'done')]);
  }
  const recorded = readFileSync(join(run, 'exports.sha256'), 'utf8');
  for (const file of ['model.safetensors', 'config.json', 'tokenizer.json']) {
    const want = new RegExp(`^([0-9a-f]{64})\\s+${name.replace(/[-.]/g, '\\$&')}/${file.replace('.', '\\.')}$`, 'm').exec(recorded)?.[1];
    const got = createHash('sha256').update(readFileSync(join(out, file))).digest('hex');
    assert.equal(got, want, `${name}/${file} rebuilt here differs from the one the run served (${join(run, 'exports.sha256')})`);
  }
  return out;
}

/**
 * A server that answers as the recorded SGLang-JAX did: the recorded reply for each prompt and API
 * (non-streamed), the recorded raw stream for "hello" (streamed), /get_model_info, /v1/models, and
 * the recorded 400 for an OpenAI request without `model`.
 */
export async function replay(run: string, replies: string): Promise<{ url: string; server: Server; seen: Record<string, unknown>[] }> {
  const r = runJson(run, replies) as Record<'generate' | 'completions' | 'chat', Record<string, unknown>>;
  const seen: Record<string, unknown>[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const send = (status: number, text: string, type = 'application/json') => res.writeHead(status, { 'content-type': type }).end(text);
      if (req.method === 'GET' && req.url === '/get_model_info') return send(200, readFileSync(join(run, 'get-model-info.json'), 'utf8'));
      if (req.method === 'GET' && req.url === '/v1/models') return send(200, readFileSync(join(run, replies === 'replies-good.json' ? 'v1-models.json' : 'v1-models-broken.json'), 'utf8'));
      const b = JSON.parse(body || '{}') as Record<string, unknown>;
      seen.push({ url: req.url, ...b });
      const api = req.url === '/generate' ? 'generate' : req.url === '/v1/completions' ? 'completions' : req.url === '/v1/chat/completions' ? 'chat' : undefined;
      if (!api) return send(404, '{"detail":"Not Found"}');
      if (api !== 'generate' && typeof b.model !== 'string') return send(400, readFileSync(join(run, 'e-completions-no-model.json'), 'utf8'));
      const prompt = api === 'generate' ? b.text : api === 'completions' ? b.prompt : (b.messages as { content: string }[])[0]!.content;
      if (b.stream) {
        if (prompt !== 'hello') return send(404, '{"detail":"not recorded"}');
        return send(200, readFileSync(join(run, `t-${api}.sse`), 'utf8'), 'text/event-stream');
      }
      const reply = r[api][String(prompt)];
      return reply ? send(200, JSON.stringify(reply)) : send(404, '{"detail":"not recorded"}');
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, seen };
}
