/**
 * Serving end to end in the real VS Code (code-server, chromium), with the real `transformers
 * serve`: the canonical tiny model is exported by our converter, started from the Serve panel, and
 * generated from at temperature 0 — at the cursor of an editor and in the panel (completion and
 * chat) — and the text must be what transformers' own greedy generate gives, token for token. Then
 * Stop leaves no process, and a SIGKILLed extension host leaves no server behind (the watchdog).
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Frame } from 'playwright-core';
import { canonicalFixtures } from '../../fixtures/canonical';
import { repoRoot, startCodeServer, type CodeServer } from '../harness/codeServer';
import { closeAll, openWorkbench, recordFailure, type Workbench } from '../harness/workbench';
import { colourAgainstTheme } from './themeColours';
import { processesWith, processesWithEnv, until } from '../waits';

const root = repoRoot();
const shots = join(root, 'test-results', 'screenshots');
const PROMPT = 'def fib(n):';
const MAX_TOKENS = 12;

interface Greedy {
  ids: number[];
  text: string;
}

describe('serving from the real VS Code with transformers serve (chromium)', function () {
  this.timeout(300_000);
  let server: CodeServer;
  let wb: Workbench;
  let ws: string;
  let exportDir: string;
  let greedy: Greedy;
  let greedyChat: Greedy;
  let panel: Frame;

  before(async function () {
    const python = process.env.JAX_SERVE_PYTHON;
    if (!python) this.skip();
    ws = mkdtempSync(join(tmpdir(), 'jax-serve-ui-serve-'));
    const canonical = canonicalFixtures(python);
    // The export is ours: the talk's NNX checkpoint through the converter, config and tokenizer from the base model.
    exportDir = join(ws, 'exports', 'tiny');
    execFileSync(process.execPath, [join(root, 'dist', 'cli.js'), 'convert', join(canonical.dir, 'jax', 'nnx.msgpack'), '-o', exportDir, '--preset', 'talk-nnx-llama', '--config-from', join(canonical.dir, 'hf'), '--tokenizer-from', join(canonical.dir, 'hf'), '--python', python], { stdio: ['ignore', 'ignore', 'inherit'] });
    writeFileSync(join(ws, 'prompt.txt'), PROMPT);
    const ref = (...args: string[]) => JSON.parse(execFileSync(python, [join(root, 'python/fixtures/greedy.py'), exportDir, String(MAX_TOKENS), ...args], { input: PROMPT, encoding: 'utf8', stdio: ['pipe', 'pipe', 'ignore'] })) as Greedy;
    greedy = ref();
    greedyChat = ref('--chat');
    server = await startCodeServer({ settings: { 'jaxServe.pythonPath': python, 'jaxServe.generate.temperature': 0, 'jaxServe.generate.maxTokens': MAX_TOKENS } });
    wb = await openWorkbench(server, { folder: ws, extensionDevelopmentPath: root });
  });
  after(() => closeAll(wb, server, ws, exportDir));
  afterEach(async function () {
    await recordFailure(this.currentTest, wb, server, root);
  });

  async function openPanel(): Promise<Frame> {
    await wb.runCommand('JAX Serve: Open Serve Panel');
    return wb.webviewFrame('body[data-ready="true"] #start', 60_000);
  }

  it('starts the export from the Serve panel: phases with their times, ready, status bar', async () => {
    panel = await openPanel();
    assert.equal(await panel.inputValue('#host'), '127.0.0.1', 'binds this machine only by default');
    // The device is an option of the engines that list devices (SGLang-JAX's), off for the others.
    await panel.selectOption('#engine', 'sglang-jax');
    assert.equal(await panel.isDisabled('#device'), false);
    assert.deepEqual(await panel.$$eval('#device option', (os) => os.map((o) => (o as HTMLOptionElement).value)), ['', 'tpu', 'gpu', 'cuda', 'cpu']);
    await panel.selectOption('#engine', 'transformers-serve');
    assert.equal(await panel.isDisabled('#device'), true, 'transformers serve takes no device');
    await panel.fill('#model', exportDir);
    await panel.fill('#extra-args', '--device cpu');
    await panel.click('#start');
    await panel.waitForSelector('#server-line[data-status="ready"]', { timeout: 180_000 });
    const phases = await panel.$$eval('#phases li', (lis) => lis.map((li) => [li.getAttribute('data-phase'), li.textContent ?? '']));
    assert.deepEqual(phases.map((p) => p[0]), ['starting', 'weights', 'http', 'ready']);
    assert.match(phases[1]![1] ?? '', /Loading weights 21\/21\s*at \d+\.\d s — \d+\.\d s/, 'the weights phase with its count, start and duration');
    assert.match((await panel.textContent('#server-line')) ?? '', /ready at http:\/\/127\.0\.0\.1:\d+ after \d+\.\d s/);
    await wb.page.locator('.statusbar-item').filter({ hasText: /transformers :\d+/ }).first().waitFor({ timeout: 10_000 });
    await wb.screenshot(join(shots, 'serve-panel-ready.png'));
  });

  it('Generate at Cursor at temperature 0 writes transformers\' greedy continuation into the editor, as one undo step', async () => {
    const page = wb.page;
    await wb.quickOpen('prompt.txt');
    const editor = page.locator('.editor-instance .view-lines').first();
    await editor.click();
    await page.keyboard.press('Control+End');
    // Its key binding, as a keyboard user runs it.
    await page.keyboard.press('Control+Alt+Enter');
    const message = await until('the run\'s status bar message', async () => {
      const t = await page.locator('.statusbar').innerText();
      return /JAX Serve: \d+ tokens/.exec(t)?.[0];
    }, 60_000);
    assert.equal(message, `JAX Serve: ${greedy.ids.length} tokens`, 'the server counted as many tokens as greedy generate made');
    await editor.click();
    await page.keyboard.press('Control+s');
    // The save truncates, then writes: a read in between sees an empty file, which is not the result.
    const saved = await until('the saved file', () => {
      const t = readFileSync(join(ws, 'prompt.txt'), 'utf8');
      return t.length > PROMPT.length ? t : undefined;
    }, 60_000);
    assert.equal(saved, PROMPT + greedy.text, 'streamed text = decode(greedy ids)');
    await page.keyboard.press('Control+z');
    await page.keyboard.press('Control+s');
    await until('the undone file', () => (readFileSync(join(ws, 'prompt.txt'), 'utf8') === PROMPT ? true : undefined), 10_000);
  });

  it('the panel streams a completion and a chat with TTFT, tokens/s and counts; the history keeps both', async () => {
    await openPanel();
    panel = await wb.webviewFrame('body[data-ready="true"] #generate');
    await panel.fill('#prompt', PROMPT);
    await panel.check('#mode-completions');
    await panel.fill('#temperature', '0');
    await panel.fill('#max-tokens', String(MAX_TOKENS));
    await panel.click('#generate');
    await panel.waitForSelector('#run-stats[data-status="done"]', { timeout: 60_000 });
    assert.equal(await panel.textContent('#output'), greedy.text);
    const stats = (await panel.textContent('#run-stats')) ?? '';
    assert.match(stats, new RegExp(`TTFT \\d+ ms · [\\d.]+ tokens/s · \\d+ prompt tokens · ${greedy.ids.length} completion tokens · finish: length`));
    await panel.check('#mode-chat');
    await panel.click('#generate');
    await panel.waitForSelector('#run-stats[data-status="done"]', { timeout: 60_000 });
    assert.equal((await panel.$$('#history li')).length, 2);
    assert.equal(await panel.textContent('#output'), greedyChat.text, 'chat goes through the chat template, as transformers applies it');
    await wb.screenshot(join(shots, 'serve-panel-generate.png'));
  });

  for (const [theme, file, kind] of [
    ['Light Modern', 'light', 'vscode-light'],
    ['Dark High Contrast', 'hc', 'vscode-high-contrast'],
  ] as const) {
    it(`the panel follows the ${theme} theme: its controls take the theme's colours (screenshot serve-panel-${file})`, async () => {
      await wb.setTheme(theme);
      await panel.waitForFunction((k) => document.body.classList.contains(k), kind, { timeout: 30_000 });
      const { actual, theme: expected } = await colourAgainstTheme(panel, [
        { selector: '#generate', property: 'color', variable: '--vscode-button-foreground' },
        { selector: '#prompt', property: 'backgroundColor', variable: '--vscode-input-background' },
      ]);
      assert.deepEqual(actual, expected);
      await wb.screenshot(join(shots, `serve-panel-${file}.png`));
    });
  }

  it('Stop stops the server\'s whole process group: no process of it is left', async () => {
    await panel.click('#stop');
    await panel.waitForSelector('#server-line[data-status="stopped"]', { timeout: 60_000 });
    assert.deepEqual(processesWith(exportDir), []);
  });

  it('a SIGKILLed extension host leaves no server behind (the watchdog stops the group)', async () => {
    await panel.click('#start');
    await panel.waitForSelector('#server-line[data-status="ready"]', { timeout: 180_000 });
    assert.ok(processesWith(exportDir).length > 0);
    // This server's extension host only: another code-server may run on the machine.
    const hosts = processesWithEnv(processesWith('--type=extensionHost'), 'JAX_SERVE_CODE_SERVER', server.userDataDir);
    assert.equal(hosts.length, 1, 'one extension host of this server');
    process.kill(hosts[0]!, 'SIGKILL');
    await until('the server to be gone', () => (processesWith(exportDir).length === 0 ? true : undefined), 30_000);
  });
});
