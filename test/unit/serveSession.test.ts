/**
 * The serve session in plain Node, against a real HTTP server in this process speaking the OpenAI
 * streaming protocol: one server root whatever the user typed (generate, models and metrics), the
 * key on every request, one run at a time, a cancel mid-stream, the sampling both sinks get, and
 * /v1/models read with a cap that stops the transfer; a key kept under its old name; the flushes of
 * a run on the session's clock; and a managed server (the stand-in engine through core's
 * ServerProcess) from start to stop.
 */
import * as assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { MAX_SERVER_REPLY_BYTES } from '../../src/core/index';
import { freePort, ServerProcess } from '../../src/core/node/index';
import type { RunView, SamplingView } from '../../src/shared/serveProtocol';
import { FLUSH_MS, ServeSession, type Clock, type KeyValueStore, type RunSink, type SecretStore, type ServeSessionOptions } from '../../src/extension/serveSession';
import { rejectsWith } from './helpers';

interface Seen {
  readonly path: string;
  readonly authorization: string | undefined;
  readonly body: Record<string, unknown> | undefined;
}

/** What the server does with a generation: the text pieces it streams, a pause between them, and whether it then hangs (or waits for `gate`). */
interface Script {
  pieces: string[];
  delayMs: number;
  hang: boolean;
  /** Sends the pieces before `at` in one write, then waits for `gate` before the rest. */
  gate?: { at: number; open: Promise<void> };
  models: (res: ServerResponse) => void;
}

const METRICS = '# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{model_name="tiny"} 2\nvllm:num_requests_waiting{model_name="tiny"} 1\n';

async function startServer(): Promise<{ url: string; seen: Seen[]; script: Script; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const script: Script = { pieces: [' the', ' cat', ' sat'], delayMs: 0, hang: false, models: (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"object":"list","data":[{"id":"tiny"}]}') };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const path = (req.url ?? '').split('?')[0]!;
      seen.push({ path, authorization: req.headers.authorization, body: raw ? (JSON.parse(raw) as Record<string, unknown>) : undefined });
      if (path === '/v1/models') return script.models(res);
      if (path === '/metrics') return res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(METRICS);
      if (path !== '/v1/completions' && path !== '/v1/chat/completions') return res.writeHead(404).end();
      const chat = path.endsWith('chat/completions');
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = (text: string) => `data: ${JSON.stringify({ choices: [chat ? { index: 0, delta: { content: text } } : { index: 0, text }] })}\n\n`;
      void (async () => {
        const gate = script.gate;
        if (gate) {
          res.write(script.pieces.slice(0, gate.at).map(chunk).join(''));
          await gate.open;
        }
        for (const p of script.pieces.slice(gate?.at ?? 0)) {
          if (res.destroyed) return;
          res.write(chunk(p));
          await new Promise((r) => setTimeout(r, script.delayMs));
        }
        if (script.hang) return; // until the client goes
        res.write(`data: ${JSON.stringify({ choices: [{ index: 0, finish_reason: 'length', ...(chat ? { delta: {} } : { text: '' }) }], usage: { prompt_tokens: 2, completion_tokens: script.pieces.length } })}\n\n`);
        res.end('data: [DONE]\n\n');
      })();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    script,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

/** workspaceState and SecretStorage as a window would keep them, in memory. */
class MemoryStore implements KeyValueStore {
  private readonly values = new Map<string, unknown>();
  get<T>(key: string): T | undefined {
    return this.values.get(key) as T | undefined;
  }
  async update(key: string, value: unknown): Promise<void> {
    this.values.set(key, value);
  }
}

class MemorySecrets implements SecretStore {
  readonly values = new Map<string, string>();
  async get(key: string): Promise<string | undefined> {
    return this.values.get(key);
  }
  async store(key: string, value: string): Promise<void> {
    this.values.set(key, value);
  }
  async delete(key: string): Promise<void> {
    this.values.delete(key);
  }
}

const ROOT = resolve(__dirname, '../../..');
const STANDIN = join(ROOT, 'test/fixtures/standin/engine.mjs');
const LORA_STANDIN = join(ROOT, 'test/fixtures/standin/lora-engine.mjs');

const SETTINGS: SamplingView = { temperature: 0.7, topP: 1, maxTokens: 16, stop: '' };

function session(more: Partial<ServeSessionOptions> = {}): ServeSession {
  return new ServeSession({
    store: new MemoryStore(),
    secrets: new MemorySecrets(),
    startProcess: () => Promise.reject(new Error('these tests start no process')),
    output: { appendLine: () => undefined },
    outputName: 'the test output',
    texts: {
      modelHint: 'give the model',
      apiKeyHint: 'give the key',
      noServer: 'No server: start one, or attach to a running one.',
      busy: (id) => `A generation is running (#${id}); stop it first.`,
      serverSaid: (url) => `${url} said:`,
      unnamedProfile: 'Give the profile a name.',
      noAdapter: (name) => `No adapter ${name} here.`,
    },
    defaultSampling: () => SETTINGS,
    ...more,
  });
}

/** A sink that keeps what it was given (each write with its chunk count), as the panel's page or an editor would. */
function collector(remember: boolean): RunSink & { text: string; writes: number; batches: [string, number][] } {
  const sink = {
    text: '',
    writes: 0,
    batches: [] as [string, number][],
    remember,
    write(text: string, chunks: number) {
      sink.text += text;
      sink.writes++;
      sink.batches.push([text, chunks]);
    },
  };
  return sink;
}

/** A clock whose intervals run only when the test ticks them. */
class FakeClock implements Clock {
  readonly timers = new Map<number, { fn: () => void; ms: number }>();
  private next = 1;
  now(): number {
    return 1_000;
  }
  setInterval(fn: () => void, ms: number): number {
    this.timers.set(this.next, { fn, ms });
    return this.next++;
  }
  clearInterval(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  /** Runs every interval of `ms` once. */
  tick(ms: number): void {
    for (const t of [...this.timers.values()]) if (t.ms === ms) t.fn();
  }
}

const until = async (what: string, test: () => boolean, ms = 5000) => {
  for (const end = Date.now() + ms; !test(); ) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('ServeSession', () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  beforeEach(async () => (server = await startServer()));
  afterEach(() => server.close());

  for (const suffix of ['', '/', '/v1', '/v1/']) {
    it(`attached at "…:PORT${suffix}": generate, models and metrics go to the server's root, each with the key`, async () => {
      const s = session();
      await s.attach(server.url + suffix, undefined, 'sekret');
      assert.equal(s.serverRoot(), server.url);
      const run = await s.runGeneration({ mode: 'completions', prompt: 'Once' }, collector(true)).done;
      assert.equal(run.status, 'done', run.error);
      assert.equal(run.model, 'tiny', 'no name given: the one /v1/models lists');
      assert.deepEqual(await s.listModels(server.url + suffix, 'sekret'), ['tiny']);
      const watch = s.watchGauges();
      try {
        await until('the gauges', () => s.gauges !== undefined);
      } finally {
        watch.dispose();
      }
      assert.deepEqual(s.gauges, { running: 2, waiting: 1 });
      assert.deepEqual(server.seen.map((r) => r.path), ['/v1/models', '/v1/completions', '/v1/models', '/metrics']);
      assert.deepEqual(server.seen.map((r) => r.authorization), server.seen.map(() => 'Bearer sekret'), 'every request carries the key');
      s.dispose();
    });
  }

  it('attached again without a key keeps the one given; an empty key forgets it', async () => {
    const s = session();
    await s.attach(server.url, 'tiny', 'sekret');
    await s.attach(server.url + '/v1', 'tiny');
    await s.runGeneration({ mode: 'chat', prompt: 'hi' }, collector(true)).done;
    await s.attach(server.url, 'tiny', '');
    await s.runGeneration({ mode: 'chat', prompt: 'hi' }, collector(true)).done;
    assert.deepEqual(server.seen.map((r) => [r.path, r.authorization]), [['/v1/chat/completions', 'Bearer sekret'], ['/v1/chat/completions', undefined]]);
    s.dispose();
  });

  it('runs one generation at a time: a second, from either sink, is refused while the first streams, and the first is unaffected', async () => {
    const s = session();
    await s.attach(server.url, 'tiny');
    server.script.delayMs = 30;
    const panel = collector(true);
    const first = s.runGeneration({ mode: 'completions', prompt: 'Once' }, panel);
    assert.equal(first.run.status, 'running');
    assert.equal(s.refusal(), `A generation is running (#${first.run.id}); stop it first.`, 'an editor asks before it opens a document');
    const second = s.runGeneration({ mode: 'completions', prompt: 'Twice' }, collector(false));
    assert.equal(second.run.status, 'error');
    assert.match(second.run.error!, new RegExp(`^A generation is running \\(#${first.run.id}\\); stop it first\\.$`));
    assert.deepEqual(await second.done, second.run);
    const done = await first.done;
    assert.equal(done.status, 'done');
    assert.equal(done.text, ' the cat sat');
    assert.equal(panel.text, done.text, 'the sink got what the run records');
    assert.deepEqual(server.seen.filter((r) => r.path === '/v1/completions').map((r) => r.body?.prompt), ['Once'], 'the refused run sent nothing');
    // The first over, another may run.
    assert.equal(s.refusal(), undefined);
    assert.equal((await s.runGeneration({ mode: 'completions', prompt: 'Again' }, collector(false)).done).status, 'done');
    s.dispose();
  });

  it('a cancel mid-stream ends the run as stopped with what arrived, in the sink and the history alike; the next run starts', async () => {
    const s = session();
    await s.attach(server.url, 'tiny');
    server.script.hang = true;
    const events: RunView[] = [];
    s.onDidChangeRun((r) => events.push(r));
    const panel = collector(true);
    const handle = s.runGeneration({ mode: 'completions', prompt: 'Once' }, panel);
    await until('text in the sink', () => panel.text === ' the cat sat');
    s.cancelRun(handle.run.id + 1); // another run's id stops nothing
    s.cancelRun(handle.run.id);
    const run = await handle.done;
    assert.equal(run.status, 'stopped');
    assert.equal(run.error, undefined);
    assert.equal(run.text, ' the cat sat');
    assert.equal(panel.text, run.text);
    assert.deepEqual(s.history[0], run, 'the history keeps the run as it ended');
    assert.deepEqual(events.map((e) => e.status), ['running', 'stopped']);
    server.script.hang = false;
    assert.equal((await s.runGeneration({ mode: 'completions', prompt: 'Again' }, panel).done).status, 'done');
    s.dispose();
  });

  it('a sink that fails (its editor closed) ends the run as an error, keeping what it took', async () => {
    // The session's clock decides the flushes, so the two writes are apart however slow the machine.
    const clock = new FakeClock();
    const s = session({ clock });
    await s.attach(server.url, 'tiny');
    server.script.hang = true;
    let open!: () => void;
    server.script.gate = { at: 1, open: new Promise<void>((r) => (open = r)) };
    let took = '';
    const sink: RunSink = {
      remember: false,
      write(text) {
        if (took) throw new Error('the editor refused the edit');
        took = text;
      },
    };
    const handle = s.runGeneration({ mode: 'completions', prompt: 'Once' }, sink);
    let settled = false;
    void handle.done.then(() => (settled = true));
    await until('the first piece, written on a tick', () => {
      clock.tick(FLUSH_MS);
      return took !== '';
    });
    open();
    await until('the run to end on the next write', () => {
      clock.tick(FLUSH_MS);
      return settled;
    });
    const run = await handle.done;
    assert.equal(run.status, 'error');
    assert.match(run.error!, /the editor refused the edit$/);
    assert.equal(run.text, took);
    assert.equal(s.history.length, 0, 'an editor run is not in the panel\'s history');
    s.dispose();
  });

  it('the session\'s sampling goes with every run, the panel\'s and an editor\'s, and is told when set', async () => {
    const s = session();
    await s.attach(server.url, 'tiny');
    const told: SamplingView[] = [];
    s.onDidChangeSampling((x) => told.push(x));
    const editor = collector(false);
    await s.runGeneration({ mode: 'completions', prompt: 'a' }, editor).done;
    await s.setSampling({ temperature: 0.3, topP: 0.9, maxTokens: 7, stop: 'END\nSTOP', seed: 5 });
    assert.deepEqual(told, [{ temperature: 0.3, topP: 0.9, maxTokens: 7, stop: 'END\nSTOP', seed: 5 }], 'the panel\'s page shows a sampling set elsewhere (a settings change)');
    await s.runGeneration({ mode: 'completions', prompt: 'b' }, collector(true)).done;
    const after = await s.runGeneration({ mode: 'chat', prompt: 'c' }, editor).done;
    const sent = server.seen.filter((r) => r.path !== '/v1/models').map((r) => ({ temperature: r.body?.temperature, top_p: r.body?.top_p, max_tokens: r.body?.max_tokens, stop: r.body?.stop, seed: r.body?.seed }));
    const set = { temperature: 0.3, top_p: 0.9, max_tokens: 7, stop: ['END', 'STOP'], seed: 5 };
    assert.deepEqual(sent, [{ temperature: 0.7, top_p: 1, max_tokens: 16, stop: undefined, seed: undefined }, set, set]);
    assert.equal(after.mode, 'chat');
    assert.deepEqual(s.history.map((r) => r.prompt), ['b'], 'the history is the panel\'s runs');
    s.dispose();
  });

  it('reads a long /v1/models under the cap whole, and refuses one over it, dropping the transfer at the cap', async function () {
    this.timeout(60_000);
    const s = session();
    // 40 000 names, ~1.5 MB: more than an error body's cap, far less than a reply's.
    const names = Array.from({ length: 40_000 }, (_, i) => `org/model-${i}-${'x'.repeat(20)}`);
    server.script.models = (res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data: names.map((id) => ({ id })) }));
    assert.deepEqual(await s.listModels(server.url, undefined), names);

    // Then one that never ends: the read stops at the cap, and the server sees the connection go.
    let sent = 0;
    let closed = false;
    server.script.models = (res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.on('close', () => (closed = true));
      const block = Buffer.alloc(1 << 20, 0x20);
      const pump = () => {
        while (!res.destroyed && sent < 4 * MAX_SERVER_REPLY_BYTES) {
          sent += block.length;
          if (!res.write(block)) return void res.once('drain', pump);
        }
      };
      res.write('{"data":[');
      pump();
    };
    await rejectsWith(s.listModels(server.url, undefined), 'E_SERVER', /\/v1\/models: the reply is over 64 MiB \(the cap on a whole reply\)/);
    await until('the server to see the client go', () => closed);
    assert.ok(sent < 2 * MAX_SERVER_REPLY_BYTES, `the transfer stopped near the cap (${sent} bytes sent)`);
    s.dispose();
  });

  it('a profile started on the stand-in engine: its states as events, listed while it runs, attached once ready (its root matched however it is spelled), stopped', async function () {
    this.timeout(30_000);
    const listed: [string, number][] = [];
    const s = session({ startProcess: (o) => ServerProcess.start(o), registry: { add: (pid) => listed.push(['add', pid]), remove: (pid) => listed.push(['remove', pid]) } });
    const statuses: string[] = [];
    s.onDidChangeServer((v) => v && statuses.at(-1) !== v.status && statuses.push(v.status));
    const started = await s.startServer({ name: '', engine: 'vllm', model: ROOT, host: '127.0.0.1', command: `${JSON.stringify(process.execPath)} ${JSON.stringify(STANDIN)}` }, await freePort(), undefined);
    assert.equal(started.view.status, 'starting');
    await started.ready;
    const view = s.server!;
    assert.equal(view.status, 'ready');
    assert.equal(view.phase, 'ready');
    assert.deepEqual(s.endpoint, { url: view.url, model: ROOT }, 'generation attaches to the server started');
    assert.equal(s.managedAt(`${view.url}/v1/`)?.spec.id, 'vllm');
    assert.equal(s.managedAt('http://127.0.0.1:1'), undefined, 'another server is not the one started');
    assert.ok(s.busy);
    await s.stopServer();
    assert.equal(s.server?.status, 'stopped');
    assert.deepEqual(statuses, ['starting', 'ready', 'stopping', 'stopped']);
    assert.equal(listed.length, 2);
    assert.deepEqual(listed.map(([what]) => what), ['add', 'remove']);
    assert.equal(listed[0]![1], listed[1]![1], 'the same process group, listed then dropped');
    s.dispose();
  });

  it('a profile with LoRA adapters: their folders read before the spawn, the flags on its command line, their names in its view; a run with one reaches it, a run with another is refused', async function () {
    this.timeout(30_000);
    const dir = mkdtempSync(join(tmpdir(), 'jax-serve-session-lora-'));
    let s: ServeSession | undefined;
    try {
      for (const [name, r] of [['sql', 4], ['chat', 16]] as const) {
        mkdirSync(join(dir, name));
        writeFileSync(join(dir, name, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r, lora_alpha: r, target_modules: ['q_proj'] }));
        writeFileSync(join(dir, name, 'adapter_model.safetensors'), '');
      }
      const live = (s = session({ startProcess: (o) => ServerProcess.start(o) }));
      const profile = { name: '', engine: 'vllm' as const, model: ROOT, host: '127.0.0.1', servedName: 'tiny', command: `${JSON.stringify(process.execPath)} ${JSON.stringify(LORA_STANDIN)}`, adapters: [{ name: 'sql', path: join(dir, 'sql') }, { name: 'chat', path: join(dir, 'chat') }] };
      // A folder it cannot serve stops the start before anything is spawned, naming the file.
      await rejectsWith(s.startServer({ ...profile, adapters: [{ name: 'x', path: join(dir, 'nope') }] }, await freePort(), undefined), 'E_NOT_FOUND', /nope: no such folder \(LoRA adapter "x"\)/);
      assert.equal(s.server, undefined);
      const started = await s.startServer(profile, await freePort(), undefined);
      await started.ready;
      assert.deepEqual(s.server!.adapters, ['sql', 'chat']);
      const run = async (adapter: string | undefined, mode: 'completions' | 'chat' = 'completions') => {
        const sink = collector(true);
        const r = await live.runGeneration({ mode, prompt: 'hi', adapter }, sink).done;
        return { ...r, sink: sink.text };
      };
      const sql = await run('sql');
      assert.equal(sql.status, 'done', sql.error);
      assert.deepEqual([sql.text, sql.sink, sql.model, sql.adapter], ['[lora sql r4]', '[lora sql r4]', 'sql', 'sql'], "vLLM's rule: the adapter's name is the model");
      assert.equal((await run('chat', 'chat')).text, '[lora chat r16]');
      assert.equal((await run(undefined)).text, '[base]');
      const other = await run('nope');
      assert.deepEqual([other.status, other.error], ['error', 'No adapter nope here.']);
      assert.deepEqual(s.history.map((h) => h.adapter), [undefined, 'chat', 'sql'], 'the history keeps the adapter of each run (a refused run is not one)');
      // Attached elsewhere, the started server's adapters are not the attached server's.
      await s.attach(server.url, 'tiny');
      assert.equal((await run('sql')).error, 'No adapter sql here.');
    } finally {
      await s?.stopServer();
      s?.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a key kept under the URL as typed (before keys were kept by server root) is sent, and moved to the root\'s name; forgetting it forgets both', async () => {
    const secrets = new MemorySecrets();
    const typed = `${server.url}/v1/`;
    await secrets.store(`jaxServe.apiKey:${typed}`, 'old-sekret');
    const s = session({ secrets });
    await s.attach(typed, 'tiny');
    await s.runGeneration({ mode: 'completions', prompt: 'a' }, collector(false)).done;
    assert.deepEqual([...secrets.values], [[`jaxServe.apiKey:${server.url}`, 'old-sekret']], 'kept under the new name only');
    await s.runGeneration({ mode: 'completions', prompt: 'b' }, collector(false)).done;
    await secrets.store(`jaxServe.apiKey:${typed}`, 'older');
    await s.attach(typed, 'tiny', '');
    await s.runGeneration({ mode: 'completions', prompt: 'c' }, collector(false)).done;
    assert.deepEqual(server.seen.filter((r) => r.path === '/v1/completions').map((r) => r.authorization), ['Bearer old-sekret', 'Bearer old-sekret', undefined]);
    assert.equal(secrets.values.size, 0);
    s.dispose();
  });

  it('text reaches the sink only on the clock\'s flush ticks, what arrived between two ticks in one write, the rest at the end without a tick', async () => {
    const clock = new FakeClock();
    const s = session({ clock });
    await s.attach(server.url, 'tiny');
    let open!: () => void;
    server.script.gate = { at: 2, open: new Promise<void>((r) => (open = r)) };
    const sink = collector(true);
    const handle = s.runGeneration({ mode: 'completions', prompt: 'Once' }, sink);
    assert.deepEqual([...clock.timers.values()].map((t) => t.ms), [FLUSH_MS], 'one flush timer, on the session\'s clock');
    // Untimed, the real clock would have flushed several times by now.
    await new Promise((r) => setTimeout(r, 4 * FLUSH_MS));
    assert.equal(sink.writes, 0, 'nothing written between ticks');
    await until('the first two pieces, flushed on a tick', () => {
      clock.tick(FLUSH_MS);
      return sink.writes > 0;
    });
    assert.deepEqual(sink.batches, [[' the cat', 2]], 'the two pieces in one write');
    clock.tick(FLUSH_MS);
    open();
    const run = await handle.done;
    assert.equal(run.status, 'done', run.error);
    assert.deepEqual(sink.batches, [[' the cat', 2], [' sat', 3]], 'the last piece flushed at the end, with no tick');
    assert.equal(run.text, ' the cat sat');
    assert.equal(clock.timers.size, 0, 'the flush timer is stopped');
    s.dispose();
  });

  it('a run whose record cannot be kept still ends as it ended (done never rejects); the failure goes to the output', async () => {
    const lines: string[] = [];
    const store = new MemoryStore();
    const s = session({
      output: { appendLine: (l) => lines.push(l) },
      store: {
        get: (k) => store.get(k),
        update: (k, v) => (k === 'jaxServe.runHistory' ? Promise.reject(new Error('the workspace state is gone')) : store.update(k, v)),
      },
    });
    await s.attach(server.url, 'tiny');
    const events: string[] = [];
    s.onDidChangeRun((r) => events.push(r.status));
    const run = await s.runGeneration({ mode: 'completions', prompt: 'Once' }, collector(true)).done;
    assert.equal(run.status, 'done');
    assert.equal(run.text, ' the cat sat');
    assert.deepEqual(events, ['running', 'done']);
    assert.ok(lines.some((l) => l.includes('the workspace state is gone')), lines.join('\n'));
    assert.equal(s.refusal(), undefined, 'the next run may start');
    s.dispose();
  });

  it('a profile saved without a name is refused in the session\'s words', async () => {
    const s = session();
    await rejectsWith(s.saveProfile({ name: '  ', engine: 'vllm', model: '/m', host: '127.0.0.1' }), 'E_USAGE', /^Give the profile a name\.$/);
    assert.deepEqual(s.profiles, []);
    s.dispose();
  });

  it('a run with nothing attached ends at once, saying so', async () => {
    const s = session();
    assert.equal(s.refusal(), 'No server: start one, or attach to a running one.');
    const h = s.runGeneration({ mode: 'completions', prompt: 'x' }, collector(true));
    assert.equal(h.run.status, 'error');
    assert.match(h.run.error!, /^No server: start one, or attach to a running one\.$/);
    assert.equal(server.seen.length, 0);
    s.dispose();
  });
});
