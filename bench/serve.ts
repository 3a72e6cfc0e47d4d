/**
 * The streaming client's cost per chunk: a local server sends a chat stream of N chunks (vLLM's
 * chunk shape, serving-engines.md §1.4) as fast as it can, and the time to read, parse and hand
 * over each chunk is measured, against Python's openai client reading the same stream
 * (issue 6 bar: < 0.2 ms per chunk).
 */
import { spawn } from 'node:child_process';
import { generate } from '../src/core/index';
import { serveStream } from './streamServer';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export async function benchServe(smoke: boolean, python: string, peerScript: string): Promise<void> {
  const n = smoke ? 2_000 : 20_000;
  const chunk = (i: number) => `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1790000000, model: 'm', choices: [{ index: 0, delta: { content: ` tok${i}` }, logprobs: null, finish_reason: i === n - 1 ? 'length' : null }] })}\n\n`;
  const body = Buffer.from(Array.from({ length: n }, (_, i) => chunk(i)).join('') + 'data: [DONE]\n\n');
  const server = await serveStream(body);
  const url = server.url;
  try {
    const runs = smoke ? 5 : 9;
    await generate({ baseUrl: url, api: 'chat', model: 'm', prompt: 'x' }); // warm
    const per: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      const r = await generate({ baseUrl: url, api: 'chat', model: 'm', prompt: 'x' });
      per.push((performance.now() - t0) / r.tokens);
    }
    const ours = median(per);
    const line = `client  ${n.toLocaleString('en-US')} chat chunks from a local server: jax-serve ${(ours * 1000).toFixed(1)} µs per chunk (median of ${runs}; bar < 200 µs)`;
    // The peer runs as a child while this process keeps serving.
    const peer = await new Promise<string>((resolve, reject) => {
      const p = spawn(python, [peerScript, 'sse', url, String(runs)]);
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      p.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`peer sse exited ${code}`))));
    });
    const p = JSON.parse(peer) as { msPerChunk: number };
    console.log(`${line}, python openai client ${(p.msPerChunk * 1000).toFixed(1)} µs → ${(p.msPerChunk / ours).toFixed(2)}×`);
  } finally {
    server.close();
  }
}
