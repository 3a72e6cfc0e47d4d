/**
 * The "Serve a JAX model" walkthrough, gone through in the extension host. Its contribution is read
 * from the package as VS Code loaded it: every text a `%key%` of package.nls.json, each step's
 * completion command registered and linked from its description, its page in the package. It is
 * opened in the workbench (a new tab that reads one of its step pages, which neither the plain
 * Welcome page nor another walkthrough does), then each step's command (taken from the walkthrough, so a renamed command
 * fails here) runs in order on the canonical fixtures, and each step's outcome is checked: the
 * checkpoint editor open, the export written, preflight clean, the server ready, text streamed in at
 * the cursor.
 */
import * as assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, utimesSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as vscode from 'vscode';
import { loadTranscripts, startReplay, type Replay } from '../../unit/replayServer';
import { until } from '../waits';
import { closeAllEditorsReverted, EXTENSION_ID, extensionApi } from './editors';

const ROOT = resolve(__dirname, '../../..');
const WALKTHROUGH_ID = 'jaxServe.serveAJaxModel';
/** The steps a user goes through, in order, by the command each one completes on. */
const STEP_COMMANDS = ['jaxServe.openCheckpoint', 'jaxServe.convert', 'jaxServe.preflight', 'jaxServe.startServer', 'jaxServe.generateAtCursor'];

interface Step {
  id: string;
  title: string;
  description: string;
  completionEvents?: string[];
  media: { markdown?: string; image?: string; altText?: string };
}
interface Walkthrough {
  id: string;
  title: string;
  description: string;
  steps: Step[];
}

const ws = () => vscode.workspace.workspaceFolders![0]!.uri.fsPath;
const commandsOf = (step: Step) => (step.completionEvents ?? []).filter((e) => e.startsWith('onCommand:')).map((e) => e.slice('onCommand:'.length));
const linksOf = (step: Step) => [...step.description.matchAll(/\]\(command:([\w.]+)\)/g)].map((m) => m[1]!);

describe('the "Serve a JAX model" walkthrough', () => {
  const ext = () => vscode.extensions.getExtension(EXTENSION_ID)!;
  /** The walkthrough as written in package.json, and its English texts. */
  const raw = () => (JSON.parse(readFileSync(join(ext().extensionPath, 'package.json'), 'utf8')).contributes.walkthroughs as Walkthrough[]).find((w) => w.id === WALKTHROUGH_ID)!;
  const nls = () => JSON.parse(readFileSync(join(ext().extensionPath, 'package.nls.json'), 'utf8')) as Record<string, string>;
  /** A text as the user reads it: a `%key%` (were VS Code to hand one on unresolved) looked up in package.nls.json. */
  const english = (text: string) => {
    const key = /^%(.+)%$/.exec(text)?.[1];
    return key === undefined ? text : nls()[key]!;
  };
  const loaded = (): Walkthrough => {
    const w = (ext().packageJSON.contributes.walkthroughs as Walkthrough[]).find((x) => x.id === WALKTHROUGH_ID);
    assert.ok(w, `no walkthrough ${WALKTHROUGH_ID}`);
    return { ...w, title: english(w.title), description: english(w.description), steps: w.steps.map((s) => ({ ...s, title: english(s.title), description: english(s.description) })) };
  };

  let replay: Replay | undefined;
  after(async () => {
    await vscode.commands.executeCommand('jaxServe.stopServer');
    await replay?.close();
    await closeAllEditorsReverted();
  });

  it('is contributed with its texts in package.nls.json, a registered command and a page in the package for every step, in the order a user goes', async () => {
    const texts = nls();
    const w = raw();
    for (const text of [w.title, w.description, ...w.steps.flatMap((s) => [s.title, s.description])]) {
      const key = /^%(.+)%$/.exec(text)?.[1];
      assert.ok(key, `${JSON.stringify(text)} is not a %key%`);
      assert.ok(texts[key], `${key} is not in package.nls.json`);
    }
    const walk = loaded();
    await extensionApi(); // the commands are registered on activation
    assert.equal(walk.title, 'Serve a JAX model');
    assert.deepEqual(walk.steps.map((s) => commandsOf(s)[0]), STEP_COMMANDS);
    const registered = new Set(await vscode.commands.getCommands(true));
    for (const step of walk.steps) {
      for (const c of [...commandsOf(step), ...linksOf(step)]) assert.ok(registered.has(c), `${step.id}: ${c} is not a registered command`);
      assert.ok(linksOf(step).includes(commandsOf(step)[0]!), `${step.id}: the description has no button for ${commandsOf(step)[0]}`);
      const page = step.media.markdown ?? step.media.image;
      assert.ok(page, `${step.id} has no media`);
      assert.ok(existsSync(join(ext().extensionPath, page)), `${step.id}: ${page} is not in the package`);
      if (step.media.image) assert.ok(step.media.altText, `${step.id}: an image needs altText`);
    }
  });

  it('opens in the workbench on one of its steps: a new Welcome tab, and a step page of ours read from the package', async () => {
    await extensionApi();
    await closeAllEditorsReverted();
    const tabs = () => vscode.window.tabGroups.all.flatMap((g) => g.tabs);
    const before = new Set(tabs());
    // The Welcome tab's label and input are the same for every walkthrough (the workbench names the
    // tab before it knows the walkthrough's title, and gives extensions no input for it), and no
    // context key is readable here. What only this walkthrough does is show one of its own steps,
    // whose Markdown page the workbench then reads from the package: the read is seen in the page's
    // access time, set back here to the epoch (relatime records a read of a file
    // whose access time is older than its modification time).
    const pages = loaded().steps.map((s) => join(ext().extensionPath, s.media.markdown!));
    const unread = () => {
      for (const page of pages) utimesSync(page, new Date(0), statSync(page).mtime);
    };
    const read = (page: string) => statSync(page).atimeMs > 0;
    unread();
    readFileSync(pages[0]!);
    assert.ok(read(pages[0]!), 'this file system records reads (mounted noatime?): the check below could not see one');
    unread();
    await vscode.commands.executeCommand('workbench.action.openWalkthrough', `${EXTENSION_ID}#${WALKTHROUGH_ID}`, false);
    const tab = await until('a new Welcome tab, active', () => tabs().find((t) => !before.has(t) && t.isActive && t.label === 'Welcome' && t.input === undefined), 20_000, () => tabs().map((t) => t.label).join(', '));
    assert.equal(vscode.window.tabGroups.activeTabGroup.activeTab, tab);
    await until('a step page of this walkthrough read by the workbench', () => pages.find(read), 20_000, () => pages.filter(read).join(', ') || 'none read');
  });

  describe('its steps, run in order on the canonical checkpoint', () => {
    const step = (i: number) => commandsOf(loaded().steps[i]!)[0]!;
    const source = () => join(ws(), 'jax', 'nnx.msgpack');
    const output = () => join(ws(), 'exports', 'walkthrough');

    it('1. open a checkpoint: the JAX checkpoint opens in the checkpoint editor with its tensors', async () => {
      await vscode.commands.executeCommand(step(0), vscode.Uri.file(source()));
      const uri = vscode.Uri.file(source()).toString();
      const editor = await until('the checkpoint editor', async () => (await extensionApi()).checkpointEditors.list().find((e) => e.uri === uri && (e.tensorCount !== undefined || e.error)));
      assert.equal(editor.error, undefined);
      assert.equal(editor.tensorCount, 21);
      const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
      assert.ok(input instanceof vscode.TabInputCustom && input.viewType === 'jaxServe.checkpoint' && input.uri.toString() === uri, 'the active tab is the checkpoint editor');
    });

    it('2. convert it with a preset: the export folder holds the weights, config and tokenizer', async function () {
      this.timeout(120_000);
      const r = (await vscode.commands.executeCommand(step(1), { source: source(), base: join(ws(), 'exports', 'ready'), preset: 'talk-nnx-llama', dtype: 'bf16', output: output(), yes: true })) as { ok: boolean; message: string };
      assert.ok(r.ok, r.message);
      for (const f of ['model.safetensors', 'config.json', 'tokenizer.json', 'generation_config.json']) assert.ok(existsSync(join(output(), f)), f);
      assert.equal(JSON.parse(readFileSync(join(output(), 'config.json'), 'utf8')).torch_dtype, 'bfloat16');
    });

    it('3. run preflight: the export is ready for vLLM and SGLang, no error in the Problems panel', async function () {
      this.timeout(60_000);
      const report = (await vscode.commands.executeCommand(step(2), vscode.Uri.file(output()), 'default')) as { architecture?: string; findings: { severity: string; code: string }[] };
      assert.equal(report.architecture, 'LlamaForCausalLM');
      assert.deepEqual(report.findings.filter((f) => f.severity === 'error'), []);
      const errors = vscode.languages
        .getDiagnostics()
        .filter(([uri]) => uri.fsPath.startsWith(output()))
        .flatMap(([, ds]) => ds.filter((d) => d.severity === vscode.DiagnosticSeverity.Error));
      assert.deepEqual(errors, []);
    });

    it('4. start a server on the export: ready, and generation uses it; or attach to one already running', async function () {
      this.timeout(60_000);
      // The stand-in engine speaks vLLM's startup and serves /health; a launch command puts it where `vllm` would be.
      const standin = join(ROOT, 'test/fixtures/standin/engine.mjs');
      await vscode.commands.executeCommand(step(3), { name: '', engine: 'vllm', model: output(), host: '127.0.0.1', command: `${JSON.stringify(process.execPath)} ${JSON.stringify(standin)}` });
      const ready = await until('the server ready', async () => ((await extensionApi()).serve.server?.status === 'ready' ? (await extensionApi()).serve.server : undefined));
      assert.equal((await fetch(`${ready.url}/health`)).status, 200);
      assert.equal((await extensionApi()).serve.endpoint?.url, ready.url, 'generation attaches to the started server');
      await vscode.commands.executeCommand('jaxServe.stopServer');

      // The stand-in does not generate: the step's other way in, attach, takes the recorded vLLM server.
      const attach = commandsOf(loaded().steps[3]!)[1]!;
      replay = await startReplay();
      replay.use(loadTranscripts().get('vllm-completions-token-ids')!);
      await vscode.commands.executeCommand(attach, replay.url, 'tiny');
      assert.equal((await extensionApi()).serve.endpoint?.url, replay.url);
    });

    it('5. generate at the cursor: the continuation streams into an untitled editor after the prompt', async () => {
      assert.ok(replay, 'step 4 attached');
      const doc = await vscode.workspace.openTextDocument({ content: 'Once upon a time' });
      const editor = await vscode.window.showTextDocument(doc);
      editor.selection = new vscode.Selection(0, 16, 0, 16);
      const from = replay.requests.length;
      await vscode.commands.executeCommand(step(4));
      const expected = loadTranscripts().get('vllm-completions-token-ids')!.expect.text!;
      assert.equal(doc.getText(), `Once upon a time${expected}`);
      assert.equal(doc.uri.scheme, 'untitled');
      const sent = replay.requests.slice(from);
      assert.deepEqual(sent.map((r) => r.path), ['/v1/completions']);
      assert.equal((sent[0]!.body as { prompt?: unknown }).prompt, 'Once upon a time', 'the text before the cursor is the prompt');
    });
  });
});
