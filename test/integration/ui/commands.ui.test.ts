/**
 * The guided Convert command as a person runs it in the real workbench (chromium): palette, the
 * file dialogs (code-server's simple dialog, typed paths), the pickers, the plan in the editor and
 * the confirmation; the export then exists and passes preflight. A screenshot of the plan is taken.
 */
import * as assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { preflight } from '../../../src/core/index';
import { NodeFileOpener } from '../../../src/core/node/index';
import { repoRoot, startCodeServer, type CodeServer } from '../harness/codeServer';
import { openWorkbench, type Workbench } from '../harness/workbench';
import { buildWorkspace } from '../fixtures';
import { until } from '../waits';

const root = repoRoot();
const shots = join(root, 'test-results', 'screenshots');

describe('guided commands in the real VS Code (chromium)', function () {
  this.timeout(240_000);
  let server: CodeServer;
  let wb: Workbench;
  let ws: string;

  before(async function () {
    if (!process.env.JAX_SERVE_PYTHON) this.skip();
    ws = mkdtempSync(join(tmpdir(), 'jax-serve-ui-cmd-'));
    await buildWorkspace(ws, { root, python: process.env.JAX_SERVE_PYTHON });
    server = await startCodeServer({ settings: { 'jaxServe.pythonPath': process.env.JAX_SERVE_PYTHON!, 'files.simpleDialog.enable': true } });
    wb = await openWorkbench(server, { folder: ws, extensionDevelopmentPath: root });
  });
  after(async () => {
    await wb?.close();
    await server?.stop();
    if (ws) rmSync(ws, { recursive: true, force: true });
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && wb) {
      await wb.screenshot(join(root, 'test-results', `failed-${this.currentTest.title.replace(/\W+/g, '-')}.png`)).catch(() => undefined);
      process.stderr.write(server.logs().slice(-6000) + '\n');
    }
  });

  it('"Convert Checkpoint for vLLM/SGLang…": pick source and base model, preset, dtype, output; the plan shows, the export passes preflight', async () => {
    const page = wb.page;
    const output = join(ws, 'exports', 'guided');
    await wb.runCommand('JAX Serve: Convert Checkpoint');
    // Each step waits for its own title: the previous picker may still be closing.
    const titled = (title: string) => page.locator('.quick-input-widget .quick-input-title').filter({ hasText: title }).first();
    const step = (title: string) => titled(title).waitFor({ timeout: 60_000 });
    // The file dialogs are code-server's simple dialog (files.simpleDialog.enable): paths are typed.
    await step('Convert: the JAX checkpoint');
    await wb.acceptFileDialog('Convert: the JAX checkpoint', join(ws, 'jax', 'nnx.msgpack'));
    await step('Convert: base model');
    await wb.pickRow('Choose the base model folder');
    await step('The base model folder');
    await wb.acceptFileDialog('The base model folder', join(ws, 'exports', 'ready'));
    await step('Convert: the layout of nnx.msgpack');
    await wb.pickRow('talk-nnx-llama');
    await step('Convert: element type');
    await wb.pickRow('bf16');
    await step('Convert: the export folder to create');
    await wb.acceptFileDialog('Convert: the export folder to create', output);
    // The plan is in the editor before the confirmation.
    const tab = page.locator('.tabs-container .tab').filter({ hasText: /plan-jax-nnx\.msgpack/ });
    await tab.first().waitFor({ timeout: 60_000 });
    const dialog = page.locator('.monaco-dialog-box');
    await dialog.waitFor({ timeout: 60_000 });
    assert.match((await dialog.textContent()) ?? '', /Convert 21 tensors .* with talk-nnx-llama into .*guided\?/);
    await wb.screenshot(join(shots, 'convert-plan.png'));
    await dialog.getByRole('button', { name: 'Convert' }).click();
    await until('the export folder', () => (existsSync(join(output, 'config.json')) ? true : undefined), 60_000);
    const report = await preflight(new NodeFileOpener(), output);
    assert.deepEqual(report.findings.filter((f) => f.severity === 'error'), []);
    assert.equal(report.architecture, 'LlamaForCausalLM');
    const editorText = (await page.locator('.editor-instance .view-lines').first().textContent()) ?? '';
    assert.match(editorText, /Conversion\s+plan[\s\S]*talk-nnx-llama/, "the plan document is the editor's text");
  });
});
