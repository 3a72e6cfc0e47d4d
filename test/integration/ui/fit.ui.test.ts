/**
 * The Serve panel's Fit section in the real VS Code (code-server, chromium): it sizes the form's
 * launch as the form changes (accelerator, TP, max length), red/amber/green with the reason, its
 * "Use TP" and "Use max length" set the form, an accelerator of the user's own (the setting) is
 * offered, Start warns before a launch it says will not fit, and it follows the theme.
 */
import * as assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Frame } from 'playwright-core';
import { repoRoot, startCodeServer, type CodeServer } from '../harness/codeServer';
import { closeAll, openWorkbench, recordFailure, type Workbench } from '../harness/workbench';
import { colourAgainstTheme } from './themeColours';

const root = repoRoot();
const shots = join(root, 'test-results', 'screenshots');

/** Llama-3.1-8B's config.json (the fields that size it): 8.03 B parameters, 8 KV heads of 128, bf16. */
const LLAMA_8B = { architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 128256, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, max_position_embeddings: 131072, tie_word_embeddings: false, torch_dtype: 'bfloat16' };

describe('the Fit section of the Serve panel in the real VS Code (chromium)', function () {
  this.timeout(300_000);
  let server: CodeServer;
  let wb: Workbench;
  let ws: string;
  let panel: Frame;

  before(async () => {
    ws = mkdtempSync(join(tmpdir(), 'jax-serve-ui-fit-'));
    mkdirSync(join(ws, 'llama8b'));
    writeFileSync(join(ws, 'llama8b', 'config.json'), JSON.stringify(LLAMA_8B));
    server = await startCodeServer({ settings: { 'jaxServe.fit.accelerators': [{ name: 'rtx4090', memory: '24564 MiB', source: 'nvidia-smi on our box' }] } });
    wb = await openWorkbench(server, { folder: ws, extensionDevelopmentPath: root });
    await wb.runCommand('JAX Serve: Open Serve Panel');
    panel = await wb.webviewFrame('body[data-ready="true"] #start', 60_000);
  });
  after(() => closeAll(wb, server, ws));
  afterEach(async function () {
    await recordFailure(this.currentTest, wb, server, root);
  });

  /** The section once it shows `level` with a headline matching `text` (the form's last change sized). */
  async function verdict(level: string, text: RegExp): Promise<string> {
    try {
      await panel.waitForFunction(
        ([l, source, flags]) => {
          const f = document.getElementById('fit');
          return f?.dataset.level === l && new RegExp(source, flags).test(f.querySelector('.fit-headline')?.textContent ?? '');
        },
        [level, text.source, text.flags] as const,
        { timeout: 30_000 },
      );
    } catch {
      throw new Error(`the Fit section shows ${await panel.getAttribute('#fit', 'data-level')}: ${await panel.textContent('#fit .fit-headline')} (waited for ${level}: ${text})`);
    }
    return (await panel.textContent('#fit .fit-headline')) ?? '';
  }

  it('says what the form needs, then sizes the launch as the form changes: red with TP and max length to use, amber, green', async () => {
    await panel.selectOption('#engine', 'vllm');
    await panel.fill('#model', join(ws, 'llama8b'));
    await verdict('none', /Choose an accelerator/);
    const options = await panel.locator('#accelerator option').allTextContents();
    assert.ok(options.some((o) => /^rtx4090, 24\.0 GiB$/.test(o)), `the setting's accelerator is offered: ${options.join(' | ')}`);
    assert.ok(options.some((o) => /^l4 — NVIDIA L4, 22\.5 GiB/.test(o)), options.join(' | '));

    // One L4 at its full 131072 tokens: 15 GiB of weights leave too little KV cache for one sequence.
    await panel.selectOption('#accelerator', 'l4');
    await verdict('red', /Does not fit: the KV cache holds 30,534 tokens a device, less than one 131072-token sequence/);
    assert.equal(await panel.textContent('#fit-use-tp'), 'Use TP = 2');
    assert.match((await panel.textContent('#fit .fit-lines')) ?? '', /Weights: 15\.0 GiB \(8,030,261,248 parameters, bf16\)/);

    // TP 2 (two L4s): it fits, but with room for few sequences of that length; then the suggested length.
    await panel.click('#fit-use-tp');
    assert.equal(await panel.inputValue('#tp'), '2');
    await verdict('amber', /Fits, with room for only 1\.\d sequences of 131,072 tokens at once/);
    const len = Number(/Use max length = (\d+)/.exec((await panel.textContent('#fit-use-len')) ?? '')?.[1]);
    assert.ok(len > 8192 && len < 131072, String(len));
    await panel.click('#fit-use-len');
    assert.equal(await panel.inputValue('#max-model-len'), String(len));
    await verdict('green', /Fits: 7\.\d GiB of weights a device, KV cache for [4-9]\.\d sequences/);

    // The user's own accelerator is sized with its own memory.
    await panel.selectOption('#accelerator', 'rtx4090');
    await panel.fill('#tp', '1');
    await panel.fill('#max-model-len', '8192');
    await verdict('green', /Fits: 15\.0 GiB of weights a device, KV cache for 5\.\d sequences of 8,192 tokens at once/);
  });

  it('Start warns before a launch the section says will not fit, and starts nothing when declined', async () => {
    await panel.selectOption('#accelerator', 'l4');
    await panel.fill('#tp', '1');
    await panel.fill('#max-model-len', '');
    await verdict('red', /Does not fit/);
    await panel.click('#start');
    const dialog = wb.page.locator('.monaco-dialog-box');
    await dialog.waitFor({ timeout: 60_000 });
    assert.match((await dialog.textContent()) ?? '', /The Fit section says this launch will not fit l4\. Start it anyway\?/);
    await wb.screenshot(join(shots, 'fit-start-warning.png'));
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached', timeout: 30_000 });
    assert.match((await panel.textContent('#server-line')) ?? '', /No server started/);
  });

  for (const [theme, file, kind] of [
    ['Light Modern', 'light', 'vscode-light'],
    ['Dark Modern', 'dark', 'vscode-dark'],
  ] as const) {
    it(`follows the ${theme} theme: each level takes the theme's colour (screenshots fit-${file}-*)`, async () => {
      await wb.setTheme(theme);
      await panel.waitForFunction((k) => document.body.classList.contains(k), kind, { timeout: 30_000 });
      const cases = [
        ['red', '', '--vscode-errorForeground'],
        ['green', '8192', '--vscode-testing-iconPassed'],
      ] as const;
      for (const [level, len, variable] of cases) {
        await panel.selectOption('#accelerator', level === 'red' ? 'l4' : 'h100');
        await panel.fill('#tp', '1');
        await panel.fill('#max-model-len', len);
        await verdict(level, /./);
        const { actual, theme: expected } = await colourAgainstTheme(panel, [{ selector: '#fit', property: 'borderLeftColor', variable }]);
        assert.deepEqual(actual, expected, `${theme}, ${level}`);
        await panel.locator('#fit').scrollIntoViewIfNeeded();
        await wb.screenshot(join(shots, `fit-${file}-${level}.png`));
      }
    });
  }
});
