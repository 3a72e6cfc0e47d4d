/**
 * Check Against Source as a person runs it in the real VS Code (code-server, chromium), against the
 * GPU run of SGLang-JAX replayed (test/unit/gpuRunReplay.ts): Attach… in the panel (URL, no key, the
 * model the server lists), the button, the export folder typed into the dialog; the verdict is
 * green for the export the run served, red for the broken-RoPE replies with the first divergence
 * marked where the device run reported it (check-broken.json).
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Frame } from 'playwright-core';
import { CHECK_PROMPTS } from '../../../src/core/index';
import { gpuRuns, rebuiltExports, replay, runJson, type GpuRunExports } from '../../unit/gpuRunReplay';
import { repoRoot, startCodeServer, type CodeServer } from '../harness/codeServer';
import { closeAll, openWorkbench, recordFailure, type Workbench } from '../harness/workbench';

const root = repoRoot();
const shots = join(root, 'test-results', 'screenshots');
const DIALOG = 'Check Against Source: the export folder this server serves';

for (const run of gpuRuns().slice(-1)) {
  describe('Check Against Source in the real VS Code, the GPU run replayed (chromium)', function () {
    this.timeout(300_000);
    let server: CodeServer;
    let wb: Workbench;
    let ws: string;
    let exports: GpuRunExports;
    let panel: Frame;

    before(async function () {
      const python = process.env.JAX_SERVE_PYTHON;
      if (!python) return this.skip();
      exports = rebuiltExports(python, run);
      ws = mkdtempSync(join(tmpdir(), 'jax-serve-ui-check-'));
      server = await startCodeServer({ settings: { 'jaxServe.pythonPath': python, 'files.simpleDialog.enable': true } });
      wb = await openWorkbench(server, { folder: ws, extensionDevelopmentPath: root });
      await wb.runCommand('JAX Serve: Open Serve Panel');
      panel = await wb.webviewFrame('body[data-ready="true"] #check-source', 60_000);
    });
    after(() => closeAll(wb, server, ws));
    afterEach(async function () {
      await recordFailure(this.currentTest, wb, server, root);
    });

    /** Answers the quick input titled `title` with `text` once it is the one shown. */
    async function answer(title: string, text: string): Promise<void> {
      await wb.page.locator('.quick-input-widget .quick-input-title', { hasText: title }).waitFor({ state: 'visible', timeout: 30_000 });
      await wb.fillQuickInput(text);
      await wb.page.keyboard.press('Enter');
    }

    /** Attach… in the panel, as a person answers it: the URL, no API key, the model the server lists. */
    async function attach(url: string, model: string): Promise<void> {
      await panel.click('#attach');
      await answer('Attach to Server: URL', url);
      await answer('Attach to Server: API key', '');
      await wb.page.locator('.quick-input-widget .quick-input-title', { hasText: 'Attach to Server: model' }).waitFor({ state: 'visible', timeout: 30_000 });
      await wb.pickRow(model);
    }

    /** The button, then the export folder typed into the dialog; resolves once a verdict is shown. */
    async function checkAgainst(folder: string, verdict: '.check-ok' | '.check-bad'): Promise<void> {
      await panel.click('#check-source');
      await wb.acceptFileDialog(DIALOG, folder);
      await panel.waitForSelector(`#check ${verdict}`, { timeout: 180_000 });
    }

    it('the export the run served: green, every built-in prompt ticked, nothing marked', async () => {
      const s = await replay(run, 'replies-good.json');
      try {
        await attach(s.url, runJson(run, 'v1-models.json').data[0].id);
        await checkAgainst(exports.export128, '.check-ok');
        assert.equal(await panel.getAttribute('#check .check-ok', 'data-ok'), 'true');
        assert.match((await panel.textContent('#check .check-ok')) ?? '', /^The server generates what export128 computes \(3 prompts, float32, \/generate\)\.$/);
        assert.deepEqual(await panel.$$eval('#check .check-prompts > li', (lis) => lis.map((li) => li.getAttribute('data-ok'))), CHECK_PROMPTS.map(() => 'true'));
        assert.equal((await panel.$$('#check mark')).length, 0);
        await panel.locator('#check').scrollIntoViewIfNeeded();
        await wb.screenshot(join(shots, 'serve-panel-check-ok.png'));
      } finally {
        s.server.close();
      }
    });

    it('the broken-RoPE replies: red, the first divergence of each prompt marked where the device run reported it', async () => {
      const there = new Map((runJson(run, 'check-broken.json').prompts as { prompt: string; text: string; divergenceSpan: [number, number] }[]).map((p) => [p.prompt, p]));
      const s = await replay(run, 'replies-broken.json');
      try {
        await attach(s.url, runJson(run, 'v1-models-broken.json').data[0].id);
        await checkAgainst(exports.export128, '.check-bad');
        assert.equal(await panel.getAttribute('#check .check-bad', 'data-ok'), 'false');
        const items = await panel.$$eval('#check .check-prompts > li', (lis) => lis.map((li) => ({ ok: li.getAttribute('data-ok'), marks: Array.from(li.querySelectorAll('pre.output mark.divergence'), (m) => m.textContent), text: li.querySelector('pre.output')?.textContent })));
        assert.equal(items.length, CHECK_PROMPTS.length);
        for (const [k, item] of items.entries()) {
          const d = there.get(CHECK_PROMPTS[k]!)!;
          assert.equal(item.ok, 'false');
          assert.equal(item.text, d.text, 'the server\'s text, as text');
          assert.deepEqual(item.marks, [d.text.slice(...d.divergenceSpan)], `${JSON.stringify(d.prompt)}: the mark spans the device run's divergence`);
        }
        await panel.locator('#check').scrollIntoViewIfNeeded();
        await wb.screenshot(join(shots, 'serve-panel-check-bad.png'));
      } finally {
        s.server.close();
      }
    });
  });
}
