/**
 * Process control: a stand-in engine (test/fixtures/standin/engine.mjs: vLLM's startup lines, a
 * worker in its group, /health) through start, ready, stop; escalation to SIGKILL; an early exit
 * explained; a busy port; 50 start/stop cycles leaving nothing; the watchdog stopping the group
 * when the CLI that started it is SIGKILLed; and the real `transformers serve` on the canonical
 * tiny model: started from its spec, ready, a greedy chat streamed, stopped.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { ENGINES, generate, listModels, type LaunchOptions } from '../../src/core/index';
import { freePort, groupAlive, ServerProcess } from '../../src/core/node/index';
import { canonicalFixtures } from '../fixtures/canonical';
import { rejectsWith, tempDir, venvPython } from './helpers';

const ROOT = resolve(__dirname, '../../..');
const STANDIN = join(ROOT, 'test/fixtures/standin/engine.mjs');
const WATCHDOG = join(ROOT, 'dist/serverWatchdog.js');
const CLI = join(ROOT, 'dist/cli.js');

/** Running, not a zombie waiting to be reaped (an orphaned worker is one until init collects it). */
const pidAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return !existsSync('/proc/self');
  }
};

async function standin(mode: 'ok' | 'fail' | 'stubborn', port?: number) {
  const lines: string[] = [];
  const launch: LaunchOptions = { model: '/exports/tiny', host: '127.0.0.1', port: port ?? (await freePort()), command: [process.execPath, STANDIN] };
  const server = await ServerProcess.start({ spec: ENGINES.vllm, launch, env: { STANDIN_MODE: mode }, watchdog: WATCHDOG, onLine: (l) => lines.push(l), healthIntervalMs: 50 });
  const workerPid = async () => {
    for (let i = 0; i < 100 && !lines.some((l) => l.startsWith('worker pid')); i++) await new Promise((r) => setTimeout(r, 20));
    return Number(lines.find((l) => l.startsWith('worker pid'))!.split(' ')[2]);
  };
  return { server, lines, workerPid };
}

describe('server processes', function () {
  this.timeout(120_000);

  it('starts in its own group, reads the phases, is ready on the ready line and /health, and stop leaves no process of the group', async () => {
    const { server, workerPid } = await standin('ok');
    await server.ready();
    const s = server.state;
    assert.equal(s.status, 'ready');
    assert.deepEqual(s.startup.phases.map((p) => p.phase), ['starting', 'weights', 'kv-cache', 'http', 'ready']);
    assert.deepEqual(s.startup.progress, { done: 3, total: 3 });
    const worker = await workerPid();
    assert.ok(pidAlive(worker));
    await server.stop(2000);
    assert.equal(server.state.status, 'stopped');
    assert.ok(!groupAlive(s.pid!) && !pidAlive(worker), 'the worker in its group is gone too');
  });

  it('escalates to SIGKILL when the engine ignores SIGINT and SIGTERM', async () => {
    const { server, workerPid } = await standin('stubborn');
    await server.ready();
    const worker = await workerPid();
    const t0 = Date.now();
    await server.stop(300);
    assert.ok(Date.now() - t0 >= 600, 'waited out SIGINT and SIGTERM');
    assert.ok(!groupAlive(server.state.pid!) && !pidAlive(worker));
  });

  it('explains an early exit from its last lines; refuses a port in use before starting', async () => {
    const { server } = await standin('fail');
    await rejectsWith(server.ready(), 'E_SERVER', /^vLLM exited by itself \(code 1\) before it was ready: weights are missing from the export/);
    assert.equal(server.state.status, 'failed');
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as { port: number }).port;
    try {
      await rejectsWith(standin('ok', port), 'E_USAGE', new RegExp(`Port ${port} on 127\\.0\\.0\\.1 is in use`));
    } finally {
      busy.close();
    }
    await rejectsWith(
      ServerProcess.start({ spec: ENGINES.vllm, launch: { model: '/m', host: '127.0.0.1', port: await freePort(), command: ['/no/such/engine'] } }).then((s) => s.ready()),
      'E_SERVER',
      /\/no\/such\/engine: not found\. Choose the interpreter or command where the engine is installed/,
    );
  });

  it('50 start/stop cycles leave no process behind (stopped while starting, and once ready)', async () => {
    const pids: number[] = [];
    for (let i = 0; i < 50; i++) {
      const { server, workerPid } = await standin('ok');
      if (i % 2 === 0) await server.ready();
      else {
        const stopped = server.stop(1000);
        await rejectsWith(server.ready(), 'E_CANCELLED', /Stopped before it was ready/);
        await stopped;
      }
      if (i % 2 === 0) {
        pids.push(await workerPid());
        await server.stop(1000);
      }
      pids.push(server.state.pid!);
      assert.ok(!groupAlive(server.state.pid!), `cycle ${i}: group ${server.state.pid} alive`);
    }
    assert.deepEqual(pids.filter(pidAlive), []);
  });

  it('the watchdog stops the group when the CLI that started it is killed (SIGKILL: no chance to clean up)', async () => {
    const port = await freePort();
    const cli = spawn(process.execPath, [CLI, 'serve', '/exports/tiny', '--engine', 'vllm', '--port', String(port), '--command', `${process.execPath} ${STANDIN}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    cli.stdout.on('data', (d) => (out += d));
    cli.stderr.on('data', (d) => (err += d));
    for (let i = 0; i < 300 && !/ready at /.test(out); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(out, new RegExp(`ready at http://127\\.0\\.0\\.1:${port} \\(model "/exports/tiny"\\)`), out + err);
    assert.match(out, /\] weights 3\/3\n/);
    const worker = Number(/worker pid (\d+)/.exec(err)![1]);
    assert.ok(pidAlive(worker));
    cli.kill('SIGKILL');
    for (let i = 0; i < 200 && pidAlive(worker); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(!pidAlive(worker), 'the watchdog stopped the server group');
  });

  it('runs the real transformers serve on the canonical tiny model 3 times: ready, a greedy chat streamed, stopped, nothing left', async function () {
    const python = venvPython(this);
    this.timeout(300_000);
    const fx = canonicalFixtures(python);
    const model = join(fx.dir, 'hf');
    const texts: string[] = [];
    // transformers serve lists the Hugging Face cache at /v1/models; an empty one makes that list
    // the same on every machine.
    const hubCache = tempDir();
    try {
      for (let cycle = 0; cycle < 3; cycle++) {
        const lines: string[] = [];
        const server = await ServerProcess.start({
          spec: ENGINES['transformers-serve'],
          launch: { model, host: '127.0.0.1', port: await freePort(), python, extraArgs: ['--device', 'cpu'] },
          env: { HF_HUB_CACHE: hubCache.path },
          watchdog: WATCHDOG,
          onLine: (l) => lines.push(l),
        });
        try {
          await server.ready();
          const s = server.state.startup;
          assert.deepEqual(s.phases.map((p) => p.phase), ['starting', 'weights', 'http', 'ready'], lines.slice(-20).join('\n'));
          assert.equal(s.progress?.total, 21, 'the weights bar counts the 21 tensors');
          const name = ENGINES['transformers-serve'].modelName({ model, host: '', port: 0 });
          if (cycle === 0) {
            // Served from a folder, it does not list that folder: the client cannot guess the name, and says so.
            assert.deepEqual(await listModels(server.url), []);
            await rejectsWith(generate({ baseUrl: server.url, api: 'chat', prompt: 'hi', maxTokens: 2, modelHint: 'name it' }), 'E_SERVER', /^http:\/\/127\.0\.0\.1:\d+\/v1\/models lists no model, and the request needs a model name: name it\.$/);
            assert.equal(name, model, 'a server we start is asked for the folder it serves');
          }
          const r = await generate({ baseUrl: server.url, api: 'chat', model: name, prompt: 'hi', maxTokens: 6, temperature: 0 });
          assert.equal(r.model, model, 'the name sent');
          assert.equal(r.finishReason, 'length');
          assert.equal(r.usage?.completionTokens, 6);
          assert.ok(r.ttftMs! > 0 && r.text.length > 0);
          texts.push(r.text);
        } finally {
          await server.stop();
        }
        assert.ok(!groupAlive(server.state.pid!), `cycle ${cycle}: the group is gone`);
      }
    } finally {
      hubCache.remove();
    }
    assert.equal(new Set(texts).size, 1, 'greedy: the same text every time');
  });
});
