/**
 * The "Serve a JAX model" walkthrough in the real workbench (chromium): opened as a person opens it
 * (Welcome: Open Walkthrough…), its five steps listed in order with their buttons, a step's
 * markdown page rendered, and the first step ticked by opening a checkpoint in our editor (its
 * onContext completion event). Screenshots: the walkthrough, and a step expanded.
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, startCodeServer, type CodeServer } from '../harness/codeServer';
import { closeAll, openWorkbench, recordFailure, type Workbench } from '../harness/workbench';
import { buildWorkspace } from '../fixtures';

const root = repoRoot();
const shots = join(root, 'test-results', 'screenshots');
const STEPS = ['Open a checkpoint', 'Convert it with a preset', 'Run preflight', 'Start a server', 'Generate at the cursor'];

describe('the walkthrough in the real VS Code (chromium)', function () {
  this.timeout(240_000);
  let server: CodeServer;
  let wb: Workbench;
  let ws: string;

  before(async () => {
    ws = mkdtempSync(join(tmpdir(), 'jax-serve-ui-walk-'));
    await buildWorkspace(ws, { root });
    server = await startCodeServer();
    // Wide enough that the page shows a step's media beside the steps (an editor up to 950 px wide hides it).
    wb = await openWorkbench(server, { folder: ws, extensionDevelopmentPath: root, viewport: { width: 1600, height: 900 } });
  });
  after(() => closeAll(wb, server, ws));
  afterEach(async function () {
    await recordFailure(this.currentTest, wb, server, root);
  });

  const openWalkthrough = async () => {
    await wb.runCommand('Welcome: Open Walkthrough');
    await wb.fillQuickInput('Serve a JAX model');
    await wb.pickRow('Serve a JAX model');
    await wb.page.locator('.gettingStartedSlideDetails .category-title', { hasText: 'Serve a JAX model' }).waitFor({ timeout: 60_000 });
  };
  const stepCheck = (id: string) => wb.page.locator(`.gettingStartedSlideDetails [data-done-step-id$="#${id}"]`);

  it('lists the five steps in order, each with its button, and renders a step\'s page', async () => {
    const page = wb.page;
    await openWalkthrough();
    const titles = (await page.locator('.gettingStartedSlideDetails h3.step-title').allInnerTexts()).map((t) => t.trim());
    assert.deepEqual(titles, STEPS);
    // The first step is expanded: its button, and its page (a webview) with the CLI line.
    await page.locator('.gettingStartedSlideDetails .getting-started-step.expanded .monaco-button', { hasText: 'Open a Checkpoint' }).waitFor({ timeout: 30_000 });
    const open = await wb.webviewFrame('h1:text("Open a checkpoint")');
    assert.ok(await page.locator('.gettingStartedSlideDetails .getting-started-media').isVisible(), 'the step\'s page is shown beside the steps');
    assert.match((await open.textContent('body')) ?? '', /jax-serve inspect state\.msgpack/);
    await wb.screenshot(join(shots, 'walkthrough.png'));

    await page.locator('.gettingStartedSlideDetails h3.step-title', { hasText: 'Convert it with a preset' }).click();
    await page.locator('.gettingStartedSlideDetails .getting-started-step.expanded .monaco-button', { hasText: 'Convert a Checkpoint' }).waitFor({ timeout: 30_000 });
    const convert = await wb.webviewFrame('h1:text("Convert it with a preset")');
    assert.match((await convert.textContent('table')) ?? '', /talk-nnx-llama/);
    await wb.screenshot(join(shots, 'walkthrough-step.png'));
  });

  it('ticks "Open a checkpoint" once a checkpoint is open in our editor', async () => {
    assert.equal(await stepCheck('openCheckpoint').getAttribute('aria-checked'), 'false');
    await wb.quickOpen('hostile.safetensors');
    await wb.webviewFrame('.vt-row:not(.placeholder)');
    await openWalkthrough();
    await wb.page.locator(`.gettingStartedSlideDetails [data-done-step-id$="#openCheckpoint"][aria-checked="true"]`).waitFor({ timeout: 30_000 });
    assert.equal(await stepCheck('convert').getAttribute('aria-checked'), 'false', 'the next step is still to do');
  });
});
