/**
 * The guided Convert command as a person runs it in the real workbench (chromium): palette, the
 * file dialogs (code-server's simple dialog, typed paths), the pickers, the plan rendered in its
 * panel and the confirmation; the export then exists and passes preflight. A plan with a problem
 * shows that row marked (in words and the theme's error colours) and opens as Markdown in one
 * click. Screenshots of both plans are taken.
 */
import * as assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { preflight } from '../../../src/core/index';
import { NodeFileOpener } from '../../../src/core/node/index';
import { repoRoot, startCodeServer, type CodeServer } from '../harness/codeServer';
import { closeAll, openWorkbench, recordFailure, type Workbench } from '../harness/workbench';
import { buildWorkspace } from '../fixtures';
import { canonicalFixtures, loraFixtures } from '../../fixtures/canonical';
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
    // A fine-tune as flax writes it: nnx.LoRALinear leaves beside the kernels.
    const python = process.env.JAX_SERVE_PYTHON!;
    cpSync(join(loraFixtures(python, canonicalFixtures(python)).dir, 'lora_linear.msgpack'), join(ws, 'jax', 'lora_linear.msgpack'));
    server = await startCodeServer({ settings: { 'jaxServe.pythonPath': process.env.JAX_SERVE_PYTHON!, 'files.simpleDialog.enable': true } });
    wb = await openWorkbench(server, { folder: ws, extensionDevelopmentPath: root });
  });
  after(() => closeAll(wb, server, ws));
  afterEach(async function () {
    await recordFailure(this.currentTest, wb, server, root);
  });

  // Each step waits for its own title: the previous picker may still be closing.
  const step = (title: string) => wb.page.locator('.quick-input-widget .quick-input-title').filter({ hasText: title }).first().waitFor({ timeout: 60_000 });
  const planTab = () => wb.page.locator('.tabs-container .tab').filter({ hasText: 'Plan: jax/nnx.msgpack' }).first();

  it('a plan with a problem opens rendered: its row marked in words and the theme\'s error colours, the Markdown one click away', async () => {
    const page = wb.page;
    await wb.runCommand('JAX Serve: Convert Checkpoint');
    await step('Convert: the JAX checkpoint');
    await wb.acceptFileDialog('Convert: the JAX checkpoint', join(ws, 'jax', 'nnx.msgpack'));
    await step('Convert: base model');
    await wb.pickRow('No base model');
    await step('Convert: the layout of nnx.msgpack');
    await wb.pickRow('talk-nnx-llama');
    await step('Convert: element type');
    await wb.pickRow('keep');
    await planTab().waitFor({ timeout: 60_000 });
    const frame = await wb.webviewFrame('.problems-section', 60_000);
    await frame.locator('.vt-row.sev-error').first().waitFor({ timeout: 30_000 });
    assert.match((await frame.textContent('li.problem.sev-error'))!, /^error heads-unknown q_proj has 256 rows/);
    const marked = await frame.$$eval('.vt-row.sev-error', (rows) => rows.map((r) => Array.from(r.children, (c) => c.textContent ?? '')));
    assert.equal(marked.length, 1, JSON.stringify(marked));
    assert.equal(marked[0]![1], 'model.layers.0.self_attn.q_proj.weight');
    assert.match(marked[0]![5]!, /^error: q_proj has 256 rows/, 'the problem is said in words, not only in colour');
    // The marking is the theme's: the validation background and an error-coloured bar.
    const paint = await frame.$eval('.vt-row.sev-error', (row) => {
      const resolve = (v: string) => {
        const probe = document.createElement('div');
        probe.style.color = getComputedStyle(document.documentElement).getPropertyValue(v).trim();
        document.body.append(probe);
        const c = getComputedStyle(probe).color;
        probe.remove();
        return c;
      };
      return { background: getComputedStyle(row).backgroundColor, bar: getComputedStyle(row).boxShadow, errorBackground: resolve('--vscode-inputValidation-errorBackground'), errorForeground: resolve('--vscode-editorError-foreground') };
    });
    assert.equal(paint.background, paint.errorBackground);
    assert.ok(paint.bar.includes(paint.errorForeground) && paint.bar.includes('inset'), paint.bar);
    // The Markdown, one click away.
    await frame.click('#open-markdown');
    await page.locator('.tabs-container .tab').filter({ hasText: 'plan-jax-nnx.msgpack.md' }).first().waitFor({ timeout: 30_000 });
    await page.locator('.editor-instance .view-lines', { hasText: 'heads-unknown' }).first().waitFor({ timeout: 30_000 });
    await wb.screenshot(join(shots, 'convert-plan-problems.png'));
    await wb.runCommand('View: Close Editor');
  });

  it('"Convert Checkpoint for vLLM/SGLang…": pick source and base model, preset, dtype, output; the plan shows, the export passes preflight', async () => {
    const page = wb.page;
    const output = join(ws, 'exports', 'guided');
    await wb.runCommand('JAX Serve: Convert Checkpoint');
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
    // The plan is shown (the same panel, now this plan) before the confirmation.
    await planTab().waitFor({ timeout: 60_000 });
    const frame = await wb.webviewFrame('.no-problems', 60_000);
    await frame.waitForFunction(() => /^21 of 21 rows/.test(document.querySelector('.status')?.textContent ?? ''), undefined, { timeout: 30_000 });
    assert.equal(await frame.locator('.vt-row[class*="sev-"]').count(), 0, 'no row is marked');
    const dialog = page.locator('.monaco-dialog-box');
    await dialog.waitFor({ timeout: 60_000 });
    assert.match((await dialog.textContent()) ?? '', /Convert 21 tensors .* with talk-nnx-llama into .*guided\?/);
    await wb.screenshot(join(shots, 'convert-plan.png'));
    await dialog.getByRole('button', { name: 'Convert' }).click();
    await until('the export folder', () => (existsSync(join(output, 'config.json')) ? true : undefined), 60_000);
    const report = await preflight(new NodeFileOpener(), output);
    assert.deepEqual(report.findings.filter((f) => f.severity === 'error'), []);
    assert.equal(report.architecture, 'LlamaForCausalLM');
    assert.match((await frame.textContent('.plan-head'))!, /Conversion plan[\s\S]*talk-nnx-llama/);
  });

  it('a fine-tune with LoRA leaves: the command asks what to do with them, and writes the base export and a PEFT adapter beside it', async () => {
    const page = wb.page;
    const output = join(ws, 'exports', 'tuned');
    const adapter = join(ws, 'exports', 'tuned-adapter');
    await wb.runCommand('JAX Serve: Convert Checkpoint');
    await step('Convert: the JAX checkpoint');
    await wb.acceptFileDialog('Convert: the JAX checkpoint', join(ws, 'jax', 'lora_linear.msgpack'));
    await step('Convert: base model');
    await wb.pickRow('Choose the base model folder');
    await step('The base model folder');
    await wb.acceptFileDialog('The base model folder', join(ws, 'exports', 'ready'));
    await step('Convert: the layout of lora_linear.msgpack');
    await wb.pickRow('talk-nnx-llama');
    await step('Convert: element type');
    await wb.pickRow('keep');
    await step('Convert: 8 modules carry LoRA adapters (rank 4)');
    await wb.pickRow('Write a PEFT adapter beside the base');
    await step('Convert: the export folder to create');
    await wb.acceptFileDialog('Convert: the export folder to create', output);
    await step('Convert: the PEFT adapter folder to create');
    await wb.acceptFileDialog('Convert: the PEFT adapter folder to create', adapter);
    const dialog = page.locator('.monaco-dialog-box');
    await dialog.waitFor({ timeout: 60_000 });
    await dialog.getByRole('button', { name: 'Convert' }).click();
    await until('the adapter folder', () => (existsSync(join(adapter, 'adapter_config.json')) ? true : undefined), 60_000);
    const config = JSON.parse(readFileSync(join(adapter, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual([config.peft_type, config.r, config.lora_alpha, config.base_model_name_or_path], ['LORA', 4, 4, output]);
    assert.ok(existsSync(join(adapter, 'adapter_model.safetensors')));
    const report = await preflight(new NodeFileOpener(), output);
    assert.deepEqual(report.findings.filter((f) => f.severity === 'error'), []);
  });
});
