import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { openCheckpoint } from '../../../src/core/index';
import { NodeFileOpener } from '../../../src/core/node/index';
import type { CheckpointEditorInfo } from '../../../src/extension/checkpointEditor';
import { loadTranscripts, startReplay } from '../../unit/replayServer';
import { until } from '../waits';
import { closeAllEditorsReverted, EXTENSION_ID, extensionApi, generation } from './editors';

const ws = () => vscode.workspace.workspaceFolders![0]!.uri.fsPath;

const api = extensionApi;

async function editorFor(file: string): Promise<CheckpointEditorInfo | undefined> {
  return (await api()).checkpointEditors.list().find((e) => e.uri === vscode.Uri.file(file).toString());
}

/** Opens `file` in our editor and waits until it opened or failed (what the page shows is the UI tests'). */
async function openAndWait(file: string): Promise<CheckpointEditorInfo> {
  await vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(file), 'jaxServe.checkpoint');
  return until(`the editor of ${file} opened`, async () => {
    const e = await editorFor(file);
    return e?.tensorCount !== undefined || e?.error !== undefined ? e : undefined;
  });
}

describe('checkpoint editor in the real VS Code', () => {
  afterEach(async () => {
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
  });

  it('runs in the real extension host and contributes the editor with lazy activation', () => {
    const ext = vscode.extensions.getExtension(EXTENSION_ID)!;
    const editors = ext.packageJSON.contributes.customEditors as { viewType: string }[];
    assert.deepEqual(editors.map((e) => e.viewType), ['jaxServe.checkpoint']);
    assert.deepEqual(ext.packageJSON.activationEvents, []);
    assert.equal(vscode.env.uiKind, vscode.UIKind.Web);
  });

  it('opens a file written by Python safetensors', async () => {
    const e = await openAndWait(join(ws(), 'python', 'torch_all.safetensors'));
    assert.equal(e.error, undefined);
    assert.ok(e.tensorCount! >= 50, String(e.tensorCount));
  });

  it('opens a Flax msgpack written by flax.serialization, and its HF sharded index', async () => {
    const mixed = await openAndWait(join(ws(), 'flax', 'mixed.msgpack'));
    assert.equal(mixed.error, undefined);
    assert.equal(mixed.tensorCount, 14);
    const sharded = await openAndWait(join(ws(), 'flax', 'hf_sharded', 'flax_model.msgpack.index.json'));
    assert.equal(sharded.tensorCount, 5);
  });

  it('opens numpy .npz (stored and deflated) and .npy written by numpy', async () => {
    for (const [file, count] of [['stored.npz', 8], ['compressed.npz', 8], ['single.npy', 1]] as const) {
      const e = await openAndWait(join(ws(), 'numpy', file));
      assert.equal(e.error, undefined, file);
      assert.equal(e.tensorCount, count, file);
    }
  });

  it('opens Orbax checkpoints through the Python sidecar: a _METADATA file, a step folder, a manager root', async () => {
    assert.ok(vscode.workspace.getConfiguration('jaxServe').get<string>('pythonPath'), 'the harness sets jaxServe.pythonPath to the venv');
    const tree = await openAndWait(join(ws(), 'orbax', 'tree', '_METADATA'));
    assert.equal(tree.error, undefined);
    assert.equal(tree.tensorCount, 8);
    // "Open as Checkpoint" on folders: a multi-process item, and a CheckpointManager root (latest step).
    await vscode.commands.executeCommand('jaxServe.openCheckpoint', vscode.Uri.file(join(ws(), 'orbax', 'multiprocess')));
    const mp = await until('multiprocess editor', async () => {
      const e = await editorFor(join(ws(), 'orbax', 'multiprocess', '_METADATA'));
      return e?.tensorCount !== undefined || e?.error ? e : undefined;
    });
    assert.equal(mp.error, undefined);
    assert.equal(mp.tensorCount, 2);
    await vscode.commands.executeCommand('jaxServe.openCheckpoint', vscode.Uri.file(join(ws(), 'orbax', 'manager')));
    const mgr = await until('manager editor', async () => {
      const e = await editorFor(join(ws(), 'orbax', 'manager', '3', '_CHECKPOINT_METADATA'));
      return e?.tensorCount !== undefined || e?.error ? e : undefined;
    });
    assert.equal(mgr.error, undefined);
    assert.equal(mgr.tensorCount, 1);
  });

  it('"Preflight Export Folder" puts findings in the Problems panel, per file', async () => {
    const ready = vscode.Uri.file(join(ws(), 'exports', 'ready'));
    const broken = vscode.Uri.file(join(ws(), 'exports', 'no-tokenizer'));
    // The engine given skips the pick: `default` is vLLM's and SGLang's rules, as the CLI without --engine.
    const report = (await vscode.commands.executeCommand('jaxServe.preflight', ready, 'default')) as { architecture?: string } | undefined;
    await vscode.commands.executeCommand('jaxServe.preflight', broken, 'default');
    assert.equal(report?.architecture, 'LlamaForCausalLM');
    const errorsUnder = (folder: vscode.Uri) =>
      vscode.languages
        .getDiagnostics()
        .filter(([uri]) => uri.fsPath.startsWith(folder.fsPath))
        .flatMap(([, ds]) => ds.filter((d) => d.severity === vscode.DiagnosticSeverity.Error && d.source === 'jax-serve preflight'));
    assert.deepEqual(errorsUnder(ready), []);
    const errs = errorsUnder(broken);
    assert.deepEqual(errs.map((d) => d.code), ['no-tokenizer']);
    assert.match(errs[0]!.message, /no tokenizer\.json or tokenizer\.model/);
  });

  it('"Preflight Export Folder" for SGLang-JAX: the head_dim finding (64, not a multiple of 128) in the Problems panel on config.json, with its evidence', async () => {
    const ready = vscode.Uri.file(join(ws(), 'exports', 'ready'));
    const report = (await vscode.commands.executeCommand('jaxServe.preflight', ready, 'sglang-jax')) as { engines: string[] };
    assert.deepEqual(report.engines, ['sglang-jax']);
    const ds = vscode.languages.getDiagnostics(vscode.Uri.file(join(ready.fsPath, 'config.json'))).filter((d) => d.source === 'jax-serve preflight');
    const headDim = ds.find((d) => d.code === 'sglang-jax-head-dim');
    assert.ok(headDim, `diagnostics on config.json: ${ds.map((d) => d.code).join(', ')}`);
    assert.equal(headDim.severity, vscode.DiagnosticSeverity.Error);
    assert.match(headDim.message, /head_dim 64 is not a multiple of 128: SGLang-JAX cddbf6f1 .*memory_pool\.py.*sglang-jax-headdim16-fail\.log/);
    // The float32 export gets the engine's own note about TPU speed, as information.
    assert.equal(ds.find((d) => d.code === 'sglang-jax-dtype')?.severity, vscode.DiagnosticSeverity.Information);
    // Back to vLLM's and SGLang's rules: the SGLang-JAX findings go.
    await vscode.commands.executeCommand('jaxServe.preflight', ready, 'default');
    assert.deepEqual(vscode.languages.getDiagnostics(vscode.Uri.file(join(ready.fsPath, 'config.json'))).filter((d) => String(d.code).startsWith('sglang-jax')), []);
  });

  it('runs a jax-serve preflight task through the CLI; the $jax-serve problem matcher reports its findings', async function () {
    this.timeout(60_000);
    await api();
    const tasks = await vscode.tasks.fetchTasks({ type: 'jax-serve' });
    const broken = join(ws(), 'exports', 'no-tokenizer');
    const task = tasks.find((t) => t.definition.action === 'preflight' && t.definition.source === broken);
    assert.ok(task, `tasks offered: ${tasks.map((t) => t.name).join(', ')}`);
    const ended = new Promise<number | undefined>((resolve) => {
      const sub = vscode.tasks.onDidEndTaskProcess((e) => {
        if (e.execution.task.definition.source === broken) {
          sub.dispose();
          resolve(e.exitCode);
        }
      });
    });
    await vscode.tasks.executeTask(task);
    assert.equal(await ended, 1, 'preflight exits 1 on errors');
    const found = await until('problem-matcher diagnostics', () => {
      const ds = vscode.languages
        .getDiagnostics()
        .filter(([uri]) => uri.fsPath.startsWith(broken))
        .flatMap(([, d]) => d.filter((x) => x.source === 'jax-serve' && /no tokenizer\.json/.test(x.message)));
      return ds.length > 0 ? ds : undefined;
    });
    assert.equal(found[0]!.severity, vscode.DiagnosticSeverity.Error);
  });

  it('a preflight task in tasks.json with "engine": "sglang-jax" runs the CLI with --engine; the matcher reports the head_dim error', async function () {
    this.timeout(60_000);
    await api();
    const ready = join(ws(), 'exports', 'ready');
    const folder = vscode.workspace.workspaceFolders![0]!;
    const config = vscode.workspace.getConfiguration('tasks', folder.uri);
    await config.update('version', '2.0.0', vscode.ConfigurationTarget.WorkspaceFolder);
    await config.update('tasks', [{ type: 'jax-serve', action: 'preflight', source: ready, engine: 'sglang-jax', label: 'preflight for SGLang-JAX' }], vscode.ConfigurationTarget.WorkspaceFolder);
    try {
      const task = await until('the tasks.json task', async () => (await vscode.tasks.fetchTasks({ type: 'jax-serve' })).find((t) => t.definition.engine === 'sglang-jax' && t.definition.action === 'preflight'));
      const ended = new Promise<number | undefined>((resolve) => {
        const sub = vscode.tasks.onDidEndTaskProcess((e) => {
          if (e.execution.task.definition.engine === 'sglang-jax') {
            sub.dispose();
            resolve(e.exitCode);
          }
        });
      });
      await vscode.tasks.executeTask(task);
      assert.equal(await ended, 1, 'head_dim 64 is an error for SGLang-JAX');
      const found = await until('the matcher\'s head_dim diagnostic', () => {
        const ds = vscode.languages.getDiagnostics(vscode.Uri.file(join(ready, 'config.json'))).filter((x) => x.source === 'jax-serve' && /^head_dim 64 is not a multiple of 128/.test(x.message));
        return ds.length > 0 ? ds : undefined;
      });
      assert.equal(found[0]!.severity, vscode.DiagnosticSeverity.Error);
    } finally {
      await config.update('tasks', undefined, vscode.ConfigurationTarget.WorkspaceFolder);
      await config.update('version', undefined, vscode.ConfigurationTarget.WorkspaceFolder);
    }
  });

  it('"Convert Checkpoint for vLLM/SGLang…" shows the plan, converts through the CLI, and the export passes preflight', async function () {
    this.timeout(120_000);
    assert.ok(vscode.workspace.getConfiguration('jaxServe').get<string>('pythonPath'), 'jaxServe.pythonPath (machine scope) is still set');
    const source = join(ws(), 'jax', 'nnx.msgpack');
    const output = join(ws(), 'exports', 'converted');
    const r = (await vscode.commands.executeCommand('jaxServe.convert', { source, base: join(ws(), 'exports', 'ready'), preset: 'talk-nnx-llama', dtype: 'bf16', output, yes: true })) as { ok: boolean; message: string };
    assert.ok(r.ok, r.message);
    assert.equal((await api()).convert.last.convert?.plan?.config?.torch_dtype, 'bfloat16');
    // The plan is shown rendered; its Markdown opens beside it on request.
    const shown = (await vscode.commands.executeCommand('jaxServe.openPlanAsMarkdown')) as vscode.Uri | undefined;
    assert.match(shown?.path ?? '', /nnx\.msgpack/);
    const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === shown!.toString());
    assert.ok(doc, 'the plan opens as Markdown');
    assert.match(doc.getText(), /# Conversion plan[\s\S]*talk-nnx-llama[\s\S]*model\.layers\.1\.self_attn\.q_proj\.weight/);
    for (const f of ['model.safetensors', 'config.json', 'tokenizer.json', 'generation_config.json']) assert.ok(existsSync(join(output, f)), f);
    const report = (await vscode.commands.executeCommand('jaxServe.preflight', vscode.Uri.file(output), 'default')) as { findings: { severity: string }[] };
    assert.deepEqual(report.findings.filter((f) => f.severity === 'error'), []);
  });

  it('a plan with errors writes nothing and says why; import writes the JAX layout', async function () {
    this.timeout(120_000);
    const output = join(ws(), 'exports', 'never');
    const r = (await vscode.commands.executeCommand('jaxServe.convert', { source: join(ws(), 'jax', 'nnx.msgpack'), base: '', preset: 'talk-nnx-llama', dtype: 'keep', output, yes: true })) as { ok: boolean; message: string };
    assert.equal(r.ok, false);
    assert.match(r.message, /has 1 error\(s\), so nothing was written: q_proj has 256 rows/);
    assert.ok(!existsSync(output));
    const planned = vscode.languages.getDiagnostics(vscode.Uri.file(join(ws(), 'jax', 'nnx.msgpack')));
    assert.ok(planned.some((d) => d.source === 'jax-serve plan' && d.code === 'heads-unknown'), 'the plan problems are in the Problems panel');
    const imported = join(ws(), 'jax', 'imported.msgpack');
    const i = (await vscode.commands.executeCommand('jaxServe.import', { source: join(ws(), 'exports', 'ready'), preset: 'talk-nnx-llama', output: imported })) as { ok: boolean; message: string };
    assert.ok(i.ok, i.message);
    const files = new NodeFileOpener();
    const shapes = async (f: string) => (await openCheckpoint(files, f)).tensors.map((t) => `${t.name} ${t.dtype}${JSON.stringify(t.shape)}`).sort();
    assert.deepEqual(await shapes(imported), await shapes(join(ws(), 'jax', 'nnx.msgpack')), 'HF -> the talk layout has the canonical arrays');
  });

  it('Convert picks up a jax-serve.rules.json beside the source and says so in the plan', async function () {
    this.timeout(120_000);
    const folder = join(ws(), 'jax', 'with-rules');
    mkdirSync(folder, { recursive: true });
    copyFileSync(join(ws(), 'jax', 'nnx.msgpack'), join(folder, 'nnx.msgpack'));
    // A rule that differs from the preset's (no transpose), so its use shows in the plan.
    writeFileSync(join(folder, 'jax-serve.rules.json'), JSON.stringify({ rules: [{ from: 'layers.{i}.attention.q_proj.kernel', to: 'model.layers.{i}.self_attn.q_proj.weight', rank: 2 }] }));
    const r = (await vscode.commands.executeCommand('jaxServe.convert', { source: join(folder, 'nnx.msgpack'), base: join(ws(), 'exports', 'ready'), preset: 'talk-nnx-llama', dtype: 'keep', output: join(ws(), 'exports', 'ruled'), yes: true })) as { ok: boolean; plan: { tensors: { to: string; transforms: unknown[] }[] } };
    assert.ok(r.ok);
    assert.deepEqual(r.plan.tensors.find((t) => t.to === 'model.layers.0.self_attn.q_proj.weight')?.transforms, []);
    const shown = (await vscode.commands.executeCommand('jaxServe.openPlanAsMarkdown')) as vscode.Uri | undefined;
    assert.match(shown?.path ?? '', /with-rules-nnx\.msgpack/);
    const text = await until('the plan document with the rules', () => vscode.workspace.textDocuments.find((d) => d.uri.toString() === shown!.toString())?.getText());
    assert.match(text, /User rules.*with-rules\/jax-serve\.rules\.json/);
  });

  it('"Verify Export…" compares the export with the JAX forward of a generated entry point', async function () {
    this.timeout(180_000);
    const entry = join(ws(), 'jax', 'entry.py');
    const cli = join(vscode.extensions.getExtension(EXTENSION_ID)!.extensionPath, 'dist', 'cli.js');
    execFileSync(process.execPath, [cli, 'verify', '--template', 'talk-nnx-llama', '-o', entry], { env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' } });
    const report = (await vscode.commands.executeCommand('jaxServe.verify', { exportDir: join(ws(), 'exports', 'ready'), checkpoint: join(ws(), 'jax', 'nnx.msgpack'), entry, prompts: ['jax flax vllm'] })) as { prompts: { kl: number; top1: number }[] };
    assert.equal(report.prompts.length, 1);
    assert.ok(report.prompts[0]!.kl < 1e-9 && report.prompts[0]!.top1 === 1, JSON.stringify(report.prompts[0]));
    const doc = vscode.workspace.textDocuments.find((d) => d.uri.scheme === 'jax-serve-plan' && /verify/.test(d.uri.path));
    assert.match(doc?.getText() ?? '', /\| "jax flax vllm" \| \d+ \|.*\| ok \|/);
  });

  it('"Health Scan Checkpoint" runs the statistics on the worker thread and lists the faulty tensors in Problems', async function () {
    this.timeout(60_000);
    const file = join(ws(), 'health', 'health.safetensors');
    const report = (await vscode.commands.executeCommand('jaxServe.healthScan', vscode.Uri.file(file))) as { scanned: number; findings: { tensor: string; code: string }[] };
    assert.equal(report.scanned, 8);
    assert.deepEqual(report.findings.map((f) => `${f.tensor}:${f.code}`).sort(), ['constant:constant', 'extreme:extreme', 'extreme_f16:extreme', 'inf:inf', 'nan:nan', 'zeros:all-zero']);
    const ds = vscode.languages.getDiagnostics(vscode.Uri.file(file)).filter((d) => d.source === 'jax-serve health');
    assert.equal(ds.filter((d) => d.severity === vscode.DiagnosticSeverity.Error).length, 2, 'NaN and Inf are errors');
  });

  it('"Compare Checkpoints" on two Explorer files pairs a JAX checkpoint with its export through the plan, and an export with an edited copy by name', async function () {
    if (!process.env.JAX_SERVE_PYTHON) this.skip();
    const jax = vscode.Uri.file(join(ws(), 'jax', 'nnx.msgpack'));
    const ready = vscode.Uri.file(join(ws(), 'exports', 'ready', 'model.safetensors'));
    const edited = vscode.Uri.file(join(ws(), 'exports', 'edited'));
    // As the Explorer calls it with two files selected: the clicked one, then the selection.
    await vscode.commands.executeCommand('jaxServe.compareCheckpoints', jax, [jax, ready]);
    const plan = await until('the plan comparison', async () => (await api()).diffs.list().find((d) => d.left === jax.fsPath && d.counts));
    assert.deepEqual(plan.pairing, { kind: 'plan', preset: 'talk-nnx-llama', jax: 'left' });
    assert.deepEqual(plan.counts, { same: 21, added: 0, removed: 0, reshaped: 0, retyped: 0 });
    // A folder compares as the checkpoint in it.
    await vscode.commands.executeCommand('jaxServe.compareCheckpoints', ready, [ready, edited]);
    const names = await until('the name comparison', async () => (await api()).diffs.list().find((d) => d.right === edited.fsPath && d.counts));
    assert.deepEqual(names.pairing, { kind: 'names' });
    assert.deepEqual(names.counts, { same: 20, added: 0, removed: 1, reshaped: 0, retyped: 0 });
    await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    assert.equal((await api()).diffs.list().length, 0, 'closed panels are forgotten');
  });

  it('"Generate at Cursor" streams a server\'s completion into the editor after the cursor, as one undo step; "Continue Selection" after the selection; an error keeps what arrived', async () => {
    const replay = await startReplay();
    try {
      const t = loadTranscripts();
      replay.use(t.get('vllm-completions-token-ids')!, { pieces: 5 });
      await vscode.commands.executeCommand('jaxServe.attach', replay.url, 'tiny');
      const doc = await vscode.workspace.openTextDocument({ content: 'Once\nupon' });
      const editor = await vscode.window.showTextDocument(doc);
      editor.selection = new vscode.Selection(0, 4, 0, 4);
      const last = await generation('jaxServe.generateAtCursor');
      assert.equal(doc.getText(), 'Once the cat sat\nupon');
      assert.deepEqual((replay.requests.at(-1)!.body as { prompt: string; model: string }).prompt, 'Once');
      assert.ok(last.status === 'done' && last.completionTokens === 3 && last.ttftMs! >= 0);
      await vscode.commands.executeCommand('undo');
      assert.equal(doc.getText(), 'Once\nupon', 'the whole run undoes in one step');
      editor.selection = new vscode.Selection(1, 0, 1, 4);
      await vscode.commands.executeCommand('jaxServe.continueSelection');
      assert.equal(doc.getText(), 'Once\nupon the cat sat');
      assert.equal((replay.requests.at(-1)!.body as { prompt: string }).prompt, 'upon');
      // The server fails mid-stream: the text that came stays, the error is kept.
      replay.use(t.get('sglang-openai-midstream-error')!);
      editor.selection = new vscode.Selection(0, 4, 0, 4);
      const failed = await generation('jaxServe.generateAtCursor');
      assert.equal(doc.getText(), 'Onceabc\nupon the cat sat');
      assert.ok(failed.status === 'error' && /Input length exceeds/.test(failed.error!), JSON.stringify(failed));
    } finally {
      await closeAllEditorsReverted();
      await replay.close();
    }
  });

  it('opens a sharded index of 100,000 tensors as one checkpoint', async () => {
    const e = await openAndWait(join(ws(), 'big', 'model.safetensors.index.json'));
    assert.equal(e.tensorCount, 100_000);
  });

  it('opens a sharded index with a shard that is not safetensors to that shard\'s error', async () => {
    const e = await openAndWait(join(ws(), 'sharded-broken', 'model.safetensors.index.json'));
    assert.equal(e.tensorCount, undefined);
    assert.match(e.error!, /Failed to parse .*model-00002-of-00003\.safetensors: /);
  });

  it('opens a malformed file to an error that names the file and the problem', async () => {
    const file = join(ws(), 'broken.safetensors');
    const e = await openAndWait(file);
    assert.equal(e.tensorCount, undefined);
    assert.match(e.error!, /Failed to parse .*broken\.safetensors: /);
  });

  it('"Open as Checkpoint" opens the editor for a given file', async () => {
    const file = join(ws(), 'python', 'numpy.safetensors');
    await vscode.commands.executeCommand('jaxServe.openCheckpoint', vscode.Uri.file(file));
    const e = await until('editor', () => editorFor(file));
    assert.equal(e.tensorCount, 6);
  });

  it('reloads when the file changes and closes when it is deleted', async () => {
    const file = join(ws(), 'changing.safetensors');
    copyFileSync(join(ws(), 'python', 'numpy.safetensors'), file);
    await openAndWait(file);
    copyFileSync(join(ws(), 'python', 'torch_all.safetensors'), file);
    const changed = await until('reload', async () => {
      const e = await editorFor(file);
      return (e?.tensorCount ?? 0) > 6 ? e : undefined;
    });
    assert.ok(changed.tensorCount! > 6);
    rmSync(file);
    await until('editor closed', async () => ((await editorFor(file)) ? undefined : true));
  });

  it('answers a page request for a file that turns invalid with the error panel on reload', async () => {
    const file = join(ws(), 'soon-broken.safetensors');
    copyFileSync(join(ws(), 'python', 'numpy.safetensors'), file);
    await openAndWait(file);
    writeFileSync(file, 'garbage');
    const e = await until('error after change', async () => {
      const x = await editorFor(file);
      return x?.error ? x : undefined;
    });
    assert.match(e.error!, /soon-broken\.safetensors/);
    rmSync(file);
  });
});
