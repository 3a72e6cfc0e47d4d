/**
 * The checkpoint editor as a person sees it: the real workbench in chromium, our webview's DOM read
 * through playwright, screenshots in light, dark and high-contrast themes (written to
 * test-results/screenshots and looked at).
 */
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { Frame } from 'playwright-core';
import { buildPytree, isGroup, openCheckpoint, tensorHistogram, tensorSlice, valueOpener } from '../../../src/core/index';
import { NodeFileOpener, PythonSidecar, sidecarScript } from '../../../src/core/node/index';
import { formatBytes, formatCount } from '../../../src/shared/format';
import { repoRoot, startCodeServer, type CodeServer } from '../harness/codeServer';
import { closeAll, openWorkbench, recordFailure, type Workbench } from '../harness/workbench';
import { colourAgainstTheme } from './themeColours';
import { BIG_TENSOR_COUNT, BROKEN_SHARD_TENSORS, buildWorkspace, HOSTILE_METADATA, HOSTILE_NAME } from '../fixtures';
import { until } from '../waits';

const root = repoRoot();
const shots = join(root, 'test-results', 'screenshots');

async function rowsText(frame: Frame): Promise<string[][]> {
  return frame.$$eval('.vt-row:not([hidden])', (rows) => rows.map((r) => Array.from(r.children, (c) => c.textContent ?? '')));
}

/**
 * Waits until the visible, loaded rows' names satisfy `ok`. Polled from Node: the page's CSP forbids
 * evaluating strings, as it should.
 */
async function waitRows(frame: Frame, ok: (names: string[]) => boolean, timeoutMs = 30_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let names: string[] = [];
  while (Date.now() < deadline) {
    names = await frame.$$eval('.vt-row:not([hidden])', (rows) =>
      rows.some((r) => r.classList.contains('placeholder')) ? [] : rows.map((r) => r.children[0]?.textContent ?? ''),
    );
    if (names.length > 0 && ok(names)) return names;
    await frame.waitForTimeout(50);
  }
  throw new Error(`rows never matched; last seen: ${names.slice(0, 5).join(' | ')}`);
}

/** Visible loaded rows as (index, name), read in one go so both come from the same paint. */
async function pollRows(frame: Frame, ok: (rows: { index: number; name: string }[]) => boolean, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let rows: { index: number; name: string }[] = [];
  while (Date.now() < deadline) {
    rows = await frame.$$eval('.vt-row:not([hidden])', (els) =>
      els.some((r) => r.classList.contains('placeholder')) ? [] : els.map((r) => ({ index: Number(r.getAttribute('aria-rowindex')) - 1, name: r.children[0]?.textContent ?? '' })),
    );
    if (rows.length > 0 && ok(rows)) return rows;
    await frame.waitForTimeout(50);
  }
  throw new Error(`rows never matched; last seen: ${JSON.stringify(rows.slice(0, 3))}`);
}

describe('checkpoint editor UI in the real VS Code (chromium)', function () {
  this.timeout(180_000);
  let server: CodeServer;
  let wb: Workbench;
  let ws: string;

  before(async () => {
    ws = mkdtempSync(join(tmpdir(), 'jax-serve-ui-'));
    await buildWorkspace(ws, { root, python: process.env.JAX_SERVE_PYTHON });
    // No Python extension in code-server: the setting picks the venv that reads Orbax. Tabs start
    // as a list (rows by full name); the tree view's test switches the setting to its default.
    const python = process.env.JAX_SERVE_PYTHON;
    server = await startCodeServer({ settings: { 'jaxServe.viewer.view': 'list', ...(python ? { 'jaxServe.pythonPath': python } : {}) } });
    wb = await openWorkbench(server, { folder: ws, extensionDevelopmentPath: root });
  });
  after(() => closeAll(wb, server, ws));
  afterEach(async function () {
    await recordFailure(this.currentTest, wb, server, root, 8000);
    await wb.runCommand('View: Close All Editors').catch(() => undefined);
  });

  it('shows the summary and the first rows of a file Python wrote', async () => {
    await wb.quickOpen('python/numpy.safetensors');
    const frame = await wb.webviewFrame('.vt-row');
    await waitRows(frame, (n) => n.includes('model.embed_tokens.weight'));
    const facts = await frame.$$eval('dl.facts dd', (d) => d.map((x) => x.textContent));
    assert.equal(facts[0], 'safetensors');
    assert.equal(facts[1], '6');
    const rows = await rowsText(frame);
    const embed = rows.find((r) => r[0] === 'model.embed_tokens.weight')!;
    assert.deepEqual(embed, ['model.embed_tokens.weight', 'F32', '[17, 8]', '136', '544 B']);
    assert.ok(rows.some((r) => r[0] === '层.名'), 'unicode name shown');
  });

  it('pages 100,000 rows: first paint, End, filter, keyboard, state restored on return', async () => {
    const t0 = Date.now();
    await wb.quickOpen('big/model.safetensors.index.json');
    const frame = await wb.webviewFrame('.vt-row');
    await waitRows(frame, (n) => n[0] === 'model.layers.0.block.0.weight');
    const firstPaint = Date.now() - t0;
    process.stdout.write(`      [measure] quick open to first 100k-table rows painted: ${firstPaint} ms\n`);
    assert.match((await frame.textContent('.status'))!, /^100,000 tensors/);
    // Painted from the index; once the shards are validated the rows get their sizes, in place.
    await frame.locator('.vt-row:not(.placeholder)', { hasText: 'BF16' }).first().waitFor({ timeout: 30_000 });
    assert.deepEqual((await rowsText(frame))[0], ['model.layers.0.block.0.weight', 'BF16', '[2, 3]', '6', '12 B']);
    assert.equal(await frame.locator('.summary .validating').count(), 0, 'the summary no longer says it is reading headers');
    assert.equal((await frame.$$eval('dl.facts dd', (d) => d.map((x) => x.textContent)))[2], '600,000');
    // The row count is the checkpoint's, not the number of DOM rows.
    const domRows = await frame.$$eval('.vt-row', (r) => r.length);
    assert.ok(domRows < 200, `only visible rows are in the DOM (${domRows})`);

    await frame.focus('.vt');
    await wb.page.keyboard.press('End');
    await waitRows(frame, (n) => n.includes(`model.layers.${BIG_TENSOR_COUNT / 10 - 1}.block.9.weight`));
    assert.match((await frame.getAttribute('.vt-row.selected', 'aria-rowindex'))!, /^100000$/);
    await wb.page.keyboard.press('Home');
    await wb.page.keyboard.press('ArrowDown');
    await wb.page.keyboard.press('ArrowDown');
    await waitRows(frame, () => true);
    assert.equal(await frame.textContent('.vt-row.selected .vt-cell'), 'model.layers.0.block.2.weight');

    // Jump around: every position paints its true rows (pages fetched on demand), in the order core
    // reads the checkpoint (shard by shard, file order within each).
    const order = (await openCheckpoint(new NodeFileOpener(), join(ws, 'big', 'model.safetensors.index.json'))).tensors.map((t) => t.name);
    for (const fraction of [0.5, 0.25, 0.9]) {
      const target = Math.floor(BIG_TENSOR_COUNT * fraction);
      await frame.$eval('.vt-viewport', (v, f) => (v.scrollTop = (v.scrollHeight - v.clientHeight) * f), fraction);
      // Every visible row shows the tensor of its own index, once the page for it has arrived.
      const rows = await pollRows(frame, (r) => Math.abs(r[0]!.index - target) < 100);
      for (const r of rows) assert.equal(r.name, order[r.index]);
    }

    await frame.fill('#filter input', 'block.3.');
    await frame.waitForFunction(() => /^10,000 tensors match/.test(document.querySelector('.status')?.textContent ?? ''), undefined, { timeout: 30_000 });
    await waitRows(frame, (n) => n.every((x) => x.includes('block.3.')));

    // Leave the tab (the webview is destroyed: no retainContextWhenHidden) and come back.
    await wb.quickOpen('python/numpy.safetensors');
    await wb.webviewFrame('text=model.embed_tokens.weight');
    await wb.quickOpen('big/model.safetensors.index.json');
    const again = await wb.webviewFrame('.status');
    await again.waitForFunction(() => /^10,000 tensors match/.test(document.querySelector('.status')?.textContent ?? ''), undefined, { timeout: 30_000 });
    assert.equal(await again.$eval('#filter', (f) => (f as HTMLInputElement).value), 'block.3.');
    await wb.screenshot(join(shots, 'big-filtered.png'));
  });

  it('shows a Flax msgpack state: arrays in the table, other leaves as values', async () => {
    await wb.quickOpen('flax/mixed.msgpack');
    const frame = await wb.webviewFrame('.vt-row');
    await waitRows(frame, (n) => n.includes('bf16'));
    const rows = await rowsText(frame);
    assert.deepEqual(rows.find((r) => r[0] === 'bf16'), ['bf16', 'BF16', '[3, 4]', '12', '24 B']);
    const values = await frame.$$eval('dl.values dt, dl.values dd', (d) => d.map((x) => x.textContent));
    assert.ok(values.includes('"tiny <b>model</b>"'), values.join(' | '));
    assert.equal(await frame.$$eval('dl.values b', (x) => x.length), 0);
    await wb.screenshot(join(shots, 'flax-mixed.png'));
  });

  it('shows a .npy numpy wrote, and an .npz of several arrays', async function () {
    if (!process.env.JAX_SERVE_PYTHON) this.skip();
    await wb.quickOpen('numpy/single.npy');
    let frame = await wb.webviewFrame('.vt-row');
    const single = await waitRows(frame, (n) => n.length === 1);
    const ck = await openCheckpoint(new NodeFileOpener(), join(ws, 'numpy', 'single.npy'));
    assert.deepEqual(single, [ck.tensors[0]!.name]);
    assert.equal((await frame.$$eval('dl.facts dd', (d) => d.map((x) => x.textContent)))[0], 'npy');
    await wb.quickOpen('numpy/stored.npz');
    frame = await wb.webviewFrame('.vt-row');
    const npz = await openCheckpoint(new NodeFileOpener(), join(ws, 'numpy', 'stored.npz'));
    await waitRows(frame, (n) => n.length === Math.min(npz.tensors.length, n.length) && n.includes(npz.tensors[0]!.name));
  });

  it('shows the model files beside an HF checkpoint: config.json facts, tokenizer, chat template, generation config', async function () {
    if (!process.env.JAX_SERVE_PYTHON) this.skip();
    await wb.quickOpen('exports/ready/model.safetensors');
    const frame = await wb.webviewFrame('dl.model');
    const facts = Object.fromEntries(await frame.$$eval('dl.model dt', (dts) => dts.map((dt) => [dt.textContent, dt.nextElementSibling?.textContent])));
    assert.equal(facts.Architecture, '["LlamaForCausalLM"]');
    assert.equal(facts.Layers, '2');
    assert.equal(facts.Tokenizer, 'tokenizer.json, tokenizer_config.json');
    assert.equal(facts['Chat template'], 'yes');
  });

  it('sorts by a clicked column (again: descending) and filters by /regex/', async function () {
    if (!process.env.JAX_SERVE_PYTHON) this.skip();
    await wb.quickOpen('jax/nnx.msgpack');
    const frame = await wb.webviewFrame('.vt-row');
    await waitRows(frame, (n) => n[0] === 'token_embed.embedding');
    const bytes = frame.locator('.vt-head .vt-cell', { hasText: 'Bytes' });
    await bytes.click();
    await waitRows(frame, (n) => n[0] === 'layers.0.input_layernorm.norm_weights');
    await bytes.click();
    const largest = await waitRows(frame, (n) => n[0] !== 'layers.0.input_layernorm.norm_weights' && /mlp/.test(n[0]!));
    assert.match(largest[0]!, /mlp\.(gate|up|down)_proj\.kernel/, 'the 512 KiB MLP kernels come first');
    assert.equal(await bytes.getAttribute('aria-sort'), 'descending');
    // Keys on the header's resize border are the border's: Enter/Space do not sort, ↓/End/PageDown do not select.
    const border = bytes.locator('.vt-resizer');
    await border.focus();
    for (const key of ['Enter', ' ', 'ArrowDown', 'End', 'PageDown']) await wb.page.keyboard.press(key);
    assert.equal(await bytes.getAttribute('aria-sort'), 'descending', 'Enter/Space on the border left the sort alone');
    assert.equal(await frame.locator('.vt-row.selected').count(), 0, 'keys on the border selected no row');
    const attr = async (a: string) => Number(await border.getAttribute(a));
    const [min, now, max] = [await attr('aria-valuemin'), await attr('aria-valuenow'), await attr('aria-valuemax')];
    assert.ok(min > 0 && min <= now && now <= max, `the border states its range: ${min} <= ${now} <= ${max}`);
    await border.blur();
    await frame.fill('#filter input', '/q_proj|k_proj/');
    const matched = await waitRows(frame, (n) => n.length === 4);
    assert.ok(matched.every((n) => /[qk]_proj/.test(n)), matched.join(', '));
    assert.equal(await frame.locator('.vt-row:visible').count(), 4, 'rows past the end of a short list are not shown');
    await frame.fill('#filter input', '');
  });

  it('shows a selected tensor in detail: exact statistics and histogram off the host thread, a 2-D slice with heat', async function () {
    if (!process.env.JAX_SERVE_PYTHON) this.skip();
    const file = join(ws, 'jax', 'nnx.msgpack');
    const name = 'layers.0.attention.q_proj.kernel';
    await wb.quickOpen('jax/nnx.msgpack');
    const frame = await wb.webviewFrame('.vt-row');
    await waitRows(frame, (n) => n.includes(name));
    await frame.locator('.vt-row', { hasText: name }).first().click();
    await frame.locator('.detail h2.detail-name', { hasText: name }).waitFor({ timeout: 30_000 });
    await frame.locator('.detail vscode-button.compute-stats').click();
    await frame.locator('.detail dl.stats').waitFor({ timeout: 60_000 });
    const facts = Object.fromEntries(await frame.$$eval('.detail dl.stats dt', (dts) => dts.map((dt) => [dt.textContent, dt.nextElementSibling?.textContent])));
    // The same numbers from core in this process.
    const files = new NodeFileOpener();
    const ck = await openCheckpoint(files, file);
    const t = ck.tensors.find((x) => x.name === name)!;
    const { stats, histogram } = await tensorHistogram(files, t, 40);
    assert.equal(facts.Elements, '65,536');
    assert.equal(facts.Min, stats.min!.toPrecision(6));
    assert.equal(facts.Max, stats.max!.toPrecision(6));
    assert.equal(facts.NaN, '0');
    // The numbers come after one pass; the histogram after a second (float32).
    await frame.locator('.detail .histogram').waitFor({ timeout: 60_000 });
    const bars = await frame.$$eval('.detail .histogram .bar', (b) => b.map((x) => (x as HTMLElement).title));
    assert.equal(bars.length, 40);
    assert.match(bars[0]!, new RegExp(`: ${histogram!.counts[0]!.toLocaleString('en-US')}$`));
    await frame.locator('.detail vscode-button.show-slice').click();
    await frame.locator('.detail table.slice-table').waitFor({ timeout: 30_000 });
    const cells = await frame.$$eval('.detail table.slice-table tr:nth-child(2) td', (tds) => tds.map((td) => td.textContent));
    assert.equal(cells.length, 32, 'a 32-column window');
    const slice = await tensorSlice(files, t, { rowAxis: 0, colAxis: 1, index: [0, 0], rowStart: 0, rowCount: 1, colStart: 0, colCount: 32 });
    assert.deepEqual(cells, Array.from(slice.values, (v) => v.toPrecision(6)));
    await wb.screenshot(join(shots, 'tensor-detail.png'));
  });

  it('computes statistics of a 1 GiB tensor off the host thread with progress, and Cancel stops it', async function () {
    if (!process.env.JAX_SERVE_PYTHON) this.skip();
    // numpy writes 1 GiB of zeros deflated into a 1 MB .npz: reading it back takes seconds.
    execFileSync(process.env.JAX_SERVE_PYTHON, ['-c', 'import numpy as np, sys; np.savez_compressed(sys.argv[1], big=np.zeros((16384, 16384), np.float32))', join(ws, 'numpy', 'zeros_1gib.npz')]);
    await wb.quickOpen('numpy/zeros_1gib.npz');
    const frame = await wb.webviewFrame('.vt-cell[title="big"]');
    await frame.locator('.vt-cell[title="big"]').click();
    await frame.locator('.detail vscode-button.compute-stats').click();
    // Progress rises while the editor stays responsive (the filter still answers), then Cancel.
    await frame.waitForFunction(() => Number((document.querySelector('.stats-progress') as HTMLElement & { value?: number } | null)?.value ?? 0) > 0, undefined, { timeout: 30_000 });
    await frame.fill('#filter input', 'big');
    await waitRows(frame, (n) => n.length === 1);
    await frame.locator('.detail vscode-button.cancel-stats').click();
    await frame.locator('.detail .stats-cancelled').waitFor({ timeout: 30_000 });
    await frame.locator('.detail vscode-button.compute-stats', { hasText: 'Compute again' }).click();
    await frame.locator('.detail dl.stats').waitFor({ timeout: 60_000 });
    const facts = Object.fromEntries(await frame.$$eval('.detail dl.stats dt', (dts) => dts.map((dt) => [dt.textContent, dt.nextElementSibling?.textContent])));
    assert.deepEqual([facts.Elements, facts.Zeros, facts.Max], ['268,435,456', '268,435,456', '0']);
  });

  it('shows an Orbax nnx.State through the sidecar: arrays without the value key, layout in the metadata', async function () {
    if (!process.env.JAX_SERVE_PYTHON) this.skip();
    await wb.quickOpen('orbax/nnx/_METADATA');
    const frame = await wb.webviewFrame('.vt-row');
    await waitRows(frame, (n) => n.includes('layers.0.kernel'));
    const facts = await frame.$$eval('dl.facts dd', (d) => d.map((x) => x.textContent));
    assert.equal(facts[0], 'orbax');
    const rows = await rowsText(frame);
    assert.deepEqual(rows.find((r) => r[0] === 'up.kernel')?.slice(1, 3), ['F32', '[8, 16]']);
    assert.ok(rows.every((r) => !r[0]!.endsWith('.value')));
    const md = Object.fromEntries(await frame.$$eval('dl.metadata dt', (dts) => dts.map((dt) => [dt.textContent, dt.nextElementSibling?.textContent])));
    assert.equal(md['orbax.sharding'], 'SingleDeviceSharding (cpu:0): 7 arrays');
    // Values come through the sidecar to the worker: the same numbers as core reading it here.
    await frame.locator('.vt-row', { hasText: /^up\.kernel/ }).first().click();
    await frame.locator('.detail vscode-button.compute-stats').click();
    await frame.locator('.detail .histogram').waitFor({ timeout: 60_000 });
    const facts2 = Object.fromEntries(await frame.$$eval('.detail dl.stats dt', (dts) => dts.map((dt) => [dt.textContent, dt.nextElementSibling?.textContent])));
    await frame.locator('.detail vscode-button.show-slice').click();
    await frame.locator('.detail table.slice-table').waitFor({ timeout: 30_000 });
    const cells = await frame.$$eval('.detail table.slice-table tr:nth-child(2) td', (tds) => tds.map((td) => td.textContent));
    const sidecar = new PythonSidecar({ python: process.env.JAX_SERVE_PYTHON, script: sidecarScript(root) });
    try {
      const ck = await openCheckpoint(new NodeFileOpener(), join(ws, 'orbax', 'nnx'), { orbax: sidecar });
      const t = ck.tensors.find((x) => x.name === 'up.kernel')!;
      const { stats } = await tensorHistogram(valueOpener(ck, new NodeFileOpener()), t, 40);
      assert.deepEqual([facts2.Elements, facts2.Min, facts2.Max], ['128', stats.min!.toPrecision(6), stats.max!.toPrecision(6)]);
      const slice = await tensorSlice(valueOpener(ck, new NodeFileOpener()), t, { rowAxis: 0, colAxis: 1, index: [0, 0], rowStart: 0, rowCount: 1, colStart: 0, colCount: 16 });
      assert.deepEqual(cells, Array.from(slice.values, (v) => (Number.isInteger(v) ? String(v) : v.toPrecision(6))));
    } finally {
      sidecar.dispose();
    }
    await wb.screenshot(join(shots, 'orbax-nnx.png'));
  });

  it('shows hostile names and metadata as text and runs none of it', async () => {
    await wb.quickOpen('hostile.safetensors');
    const frame = await wb.webviewFrame('.vt-row');
    await waitRows(frame, (n) => n.includes(HOSTILE_NAME));
    const md = await frame.$$eval('dl.metadata dt, dl.metadata dd', (d) => d.map((x) => x.textContent));
    assert.ok(md.includes(HOSTILE_METADATA));
    assert.equal(await frame.$$eval('img, [onerror]', (x) => x.length), 0);
    // Selected, its name heads the detail pane, as text.
    await frame.locator('.vt-row', { hasText: HOSTILE_NAME }).first().click();
    await frame.locator('.detail h2.detail-name').waitFor({ timeout: 30_000 });
    assert.equal(await frame.textContent('.detail h2.detail-name'), HOSTILE_NAME);
    assert.equal(await frame.$$eval('img, [onerror]', (x) => x.length), 0);
    assert.equal(await frame.evaluate(() => document.body.dataset.pwned), undefined);
    await wb.screenshot(join(shots, 'hostile.png'));
    // The Pytree view and a comparison (the file with itself) show the same keys as text.
    await wb.runCommand('JAX Serve: Select Checkpoint for Compare');
    await wb.runCommand('JAX Serve: Compare with Selected Checkpoint');
    const diff = await wb.webviewFrame('#compare-values');
    await waitRows(diff, (n) => n.length === 2);
    assert.ok((await rowsText(diff)).some((r) => r[1] === HOSTILE_NAME));
    assert.equal(await diff.$$eval('img, [onerror]', (x) => x.length), 0);
    await wb.runCommand('JAX Serve: Focus on Pytree View');
    await wb.page.locator('.monaco-list-row .label-name', { hasText: '<img src=x onerror=' }).first().waitFor({ timeout: 30_000 });
    assert.equal(await wb.page.$$eval('img[src="x"], [onerror]', (x) => x.length), 0);
    assert.equal(await wb.page.evaluate(() => document.body.dataset.pwned), undefined);
    await wb.runCommand('View: Show Explorer');
  });

  it('shows the pytree as a tree-table (the default view): group totals, open/close by mouse and keyboard, kept on return; 100k first paint', async () => {
    // Back to the default view (tree); the host reads the setting when a tab opens.
    server.setSettings({ 'jaxServe.viewer.view': 'tree' });
    let frame: Frame | undefined;
    for (const deadline = Date.now() + 30_000; ; ) {
      await wb.quickOpen('python/numpy.safetensors');
      frame = await wb.webviewFrame('#view-toggle');
      await frame.locator('.vt-row').first().waitFor({ timeout: 30_000 });
      if ((await frame.textContent('#view-toggle'))?.trim() === 'Show as list') break;
      if (Date.now() > deadline) throw new Error('the tree view setting never took effect');
      await wb.runCommand('View: Close All Editors');
    }
    // A small checkpoint opens fully: groups carry their subtree's totals (as core counts them).
    const ck = await openCheckpoint(new NodeFileOpener(), join(ws, 'python', 'numpy.safetensors'));
    const model = buildPytree(ck.tensors).children.find((c) => isGroup(c) && c.keys[0] === 'model')!;
    // Rows by full name (the cell's title); the cell shows the key under the parent.
    const rowOf = async (name: string) =>
      (await frame!.$$eval('.vt-row:not([hidden])', (rows) => rows.map((r) => [(r.children[0] as HTMLElement).title, ...Array.from(r.children, (c) => c.textContent ?? '')]))).find((r) => r[0] === name)?.slice(1);
    await waitRows(frame, (n) => n.includes('0.mlp.up_proj'));
    assert.ok(isGroup(model));
    assert.deepEqual(await rowOf('model'), ['model', 'mixed', `${model.tensors} tensors`, formatCount(model.parameters), formatBytes(model.bytes)]);
    assert.deepEqual(await rowOf('model.embed_tokens.weight'), ['weight', 'F32', '[17, 8]', '136', '544 B'], 'a leaf shows its own key');
    assert.equal(await frame.getAttribute('.vt-row[aria-expanded]:has(.vt-cell[title="model"])', 'aria-expanded'), 'true');
    // Click a group: it closes (its children leave); → opens it again from the keyboard, ← closes it.
    await frame.locator('.vt-row', { hasText: /^model/ }).first().click();
    await waitRows(frame, (n) => n.includes('model') && !n.includes('embed_tokens'));
    await frame.focus('.vt');
    await wb.page.keyboard.press('ArrowRight');
    await waitRows(frame, (n) => n.includes('embed_tokens'));
    await wb.page.keyboard.press('ArrowRight'); // on an open group: steps to its first child
    assert.equal(await frame.getAttribute('.vt-row.selected', 'aria-level'), '2');
    // ← closes an open group, else steps out to the parent; twice more closes `model`.
    if ((await frame.getAttribute('.vt-row.selected', 'aria-expanded')) === 'true') {
      await wb.page.keyboard.press('ArrowLeft');
      await frame.locator('.vt-row.selected[aria-expanded="false"]').waitFor({ timeout: 30_000 });
    }
    await wb.page.keyboard.press('ArrowLeft');
    assert.equal(await frame.textContent('.vt-row.selected .vt-cell'), 'model');
    await wb.page.keyboard.press('ArrowLeft');
    await waitRows(frame, (n) => n.includes('model') && !n.includes('embed_tokens'));
    await wb.screenshot(join(shots, 'tree-collapsed.png'));
    // Leave and come back: still closed.
    await wb.quickOpen('python/torch_all.safetensors');
    await wb.webviewFrame('.vt-cell[title="t"]');
    await wb.quickOpen('python/numpy.safetensors');
    frame = await wb.webviewFrame('.vt-cell[title="f64"]');
    await waitRows(frame, (n) => n.includes('model') && !n.includes('embed_tokens') && n.includes('名'));
    await wb.runCommand('View: Close All Editors');

    // 100,000 tensors in 10,000 layer groups: the one wrapper opens, the layers stay closed.
    const t0 = Date.now();
    await wb.quickOpen('big/model.safetensors.index.json');
    const big = await wb.webviewFrame('.vt-row');
    // Layer groups count up, though the shards store names in code-unit order (0, 1, 10, 100, 1000, …).
    const counted = Array.from({ length: 6 }, (_, i) => `${i}.block`);
    await waitRows(big, (n) => n[0] === 'model.layers' && counted.every((k, i) => n[i + 1] === k));
    process.stdout.write(`      [measure] quick open to first 100k tree rows painted: ${Date.now() - t0} ms\n`);
    assert.match((await big.textContent('.status'))!, /^100,000 tensors · 10,001 rows in the tree/);
    await big.focus('.vt');
    await wb.page.keyboard.press('Home');
    await wb.page.keyboard.press('ArrowDown');
    await wb.page.keyboard.press('Enter');
    await big.waitForFunction(() => /^100,000 tensors · 10,011 rows in the tree/.test(document.querySelector('.status')?.textContent ?? ''), undefined, { timeout: 30_000 });
    await big.click('#expand-all');
    await big.waitForFunction(() => /^100,000 tensors · 210,001 rows in the tree/.test(document.querySelector('.status')?.textContent ?? ''), undefined, { timeout: 30_000 });
    await big.fill('#filter input', '/^model\\.layers\\.9999\\./');
    await big.waitForFunction(() => /^10 tensors match · 22 rows in the tree/.test(document.querySelector('.status')?.textContent ?? ''), undefined, { timeout: 30_000 });
    await waitRows(big, (n) => n[1] === '9999.block');
    await wb.screenshot(join(shots, 'tree-big-filtered.png'));
    await big.fill('#filter input', '');
    // The Pytree view shows the same order.
    await wb.runCommand('JAX Serve: Focus on Pytree View');
    const pytree = wb.page.locator('.pane-body .monaco-list[aria-label*="Pytree"], .part.sidebar .monaco-list').first();
    const layersItem = pytree.locator('.monaco-list-row').filter({ has: wb.page.locator('.label-name', { hasText: /^model\.layers$/ }) }).first();
    await layersItem.waitFor({ timeout: 30_000 });
    if ((await layersItem.getAttribute('aria-expanded')) !== 'true') await layersItem.click();
    let shown: string[] = [];
    await until(
      'the Pytree view to list the layers in counting order',
      async () => {
        // Rows are placed by position, not DOM order: order them by their index.
        const rows = await pytree.locator('.monaco-list-row').evaluateAll((els) => els.map((e) => [Number(e.getAttribute('data-index')), e.querySelector('.label-name')?.textContent ?? ''] as const));
        shown = rows.sort((a, b) => a[0] - b[0]).map((r) => r[1]);
        return shown[0] === 'model.layers' && counted.every((k, i) => shown[i + 1] === k) ? true : undefined;
      },
      30_000,
      () => `Pytree rows ${JSON.stringify(shown.slice(0, 8))}`,
    );
    await big.click('#view-toggle');
    await waitRows(big, (n) => n[0] === 'model.layers.0.block.0.weight');
    // The list sorted by name counts up too (layer 2 after 1, not 10, 100, 1000).
    await big.fill('#filter input', 'block.0.');
    await big.waitForFunction(() => /^10,000 tensors match/.test(document.querySelector('.status')?.textContent ?? ''), undefined, { timeout: 30_000 });
    await big.locator('.vt-head .vt-cell', { hasText: 'Name' }).click();
    await waitRows(big, (n) => ['0', '1', '2', '3', '4'].every((l, i) => n[i] === `model.layers.${l}.block.0.weight`));
    await big.locator('.vt-head .vt-cell', { hasText: 'Name' }).click();
    await waitRows(big, (n) => ['9999', '9998', '9997'].every((l, i) => n[i] === `model.layers.${l}.block.0.weight`));
    await big.fill('#filter input', '');
  });

  it('shows the active checkpoint in the Pytree view: totals, hover, select reveals the row, Show Statistics, Copy Name', async () => {
    await wb.quickOpen('python/numpy.safetensors');
    const frame = await wb.webviewFrame('.vt-row');
    await waitRows(frame, (n) => n.length > 0);
    await wb.runCommand('JAX Serve: Focus on Pytree View');
    const tree = wb.page.locator('.pane-body .monaco-list[aria-label*="Pytree"], .part.sidebar .monaco-list').first();
    const item = (label: string) => tree.locator('.monaco-list-row').filter({ has: wb.page.locator('.label-name', { hasText: new RegExp(`^${label}$`) }) }).first();
    await item('model').waitFor({ timeout: 30_000 });
    const ck = await openCheckpoint(new NodeFileOpener(), join(ws, 'python', 'numpy.safetensors'));
    const model = buildPytree(ck.tensors).children.find((c) => isGroup(c) && c.keys[0] === 'model')!;
    assert.ok(isGroup(model));
    assert.equal((await item('model').locator('.label-description').textContent())?.trim(), `${formatCount(model.parameters)} params`);
    await item('model').click();
    await item('layers').click();
    await item('0.mlp.up_proj').click();
    const weight = item('weight');
    await weight.waitFor({ timeout: 30_000 });
    assert.equal((await weight.locator('.label-description').textContent())?.trim(), 'F16 [4, 8]');
    await weight.hover();
    const hover = wb.page.locator('.monaco-hover, .workbench-hover').filter({ hasText: 'model.layers.0.mlp.up_proj.weight' }).first();
    await hover.waitFor({ timeout: 30_000 });
    assert.match((await hover.textContent()) ?? '', /shape: \[4, 8\][\s\S]*dtype: F16[\s\S]*bytes: 64 B/);
    // Selecting a tensor selects its row in the editor (opening the groups that hold it).
    await weight.click();
    await frame.locator('.vt-row.selected .vt-cell[title="model.layers.0.mlp.up_proj.weight"]').waitFor({ timeout: 30_000 });
    await frame.locator('.detail h2.detail-name', { hasText: 'model.layers.0.mlp.up_proj.weight' }).waitFor({ timeout: 30_000 });
    // Context menu: Show Statistics computes them in the editor's detail pane.
    // A context menu ignores a click that comes right after it opened: hover, wait, then click.
    const menu = async (name: string) => {
      await weight.click({ button: 'right' });
      const entry = wb.page.getByRole('menuitem', { name });
      await entry.hover();
      await wb.page.waitForTimeout(300);
      await entry.click();
    };
    await menu('Show Statistics');
    await frame.locator('.detail dl.stats').waitFor({ timeout: 60_000 });
    const facts = Object.fromEntries(await frame.$$eval('.detail dl.stats dt', (dts) => dts.map((dt) => [dt.textContent, dt.nextElementSibling?.textContent])));
    assert.equal(facts.Elements, '32');
    await wb.screenshot(join(shots, 'pytree-explorer.png'));
    await menu('Copy Name');
    const copied = async () => wb.page.evaluate(() => navigator.clipboard.readText());
    for (const deadline = Date.now() + 10_000; (await copied()) !== 'model.layers.0.mlp.up_proj.weight'; ) {
      if (Date.now() > deadline) assert.equal(await copied(), 'model.layers.0.mlp.up_proj.weight');
      await wb.page.waitForTimeout(100);
    }
  });

  it('compares a JAX checkpoint with its broken export (explorer: Select for Compare, Compare with Selected): paired through the plan, values on the worker', async function () {
    if (!process.env.JAX_SERVE_PYTHON) this.skip();
    await wb.runCommand('View: Show Explorer');
    // Opening a file reveals it in the explorer, selected: its context menu is the one a user right-clicks.
    const explorerMenu = async (file: string, entry: string) => {
      await wb.quickOpen(file);
      const label = basename(file);
      const selected = wb.page.locator('.explorer-folders-view .monaco-list-row.selected');
      const row = selected.filter({ has: wb.page.locator('.label-name', { hasText: new RegExp(`^${label.replace(/\./g, '\\.')}$`) }) }).first();
      let shown: string[] = [];
      await until(
        `the explorer to select ${file}`,
        async () => ((await row.count()) > 0 ? true : ((shown = await selected.allInnerTexts()), undefined)),
        30_000,
        () => `selected rows ${JSON.stringify(shown)}`,
      );
      await row.click({ button: 'right' });
      const item = wb.page.getByRole('menuitem', { name: entry });
      await item.hover();
      await wb.page.waitForTimeout(300);
      await item.click();
    };
    await explorerMenu('jax/nnx.msgpack', 'Select Checkpoint for Compare');
    await explorerMenu('exports/edited/model.safetensors', 'Compare with Selected Checkpoint');
    const frame = await wb.webviewFrame('#compare-values');
    assert.match((await frame.textContent('.pairing'))!, /Paired through the talk-nnx-llama conversion plan: the left side is the JAX checkpoint/);
    const chips = await frame.$$eval('.chip', (b) => b.map((x) => x.textContent));
    assert.deepEqual(chips.slice(0, 5), ['removed 1', 'added 0', 'reshaped 0', 'retyped 0', 'same 20']);
    await waitRows(frame, (n) => n.includes('removed'));
    const removed = (await rowsText(frame)).find((r) => r[0] === 'removed')!;
    assert.deepEqual(removed.slice(0, 4), ['removed', 'model.norm.weight', 'F32 [256]', '—']);
    await frame.click('#compare-values');
    await frame.waitForFunction(() => /^Compared 20 of 20 pairs: 1 differ/.test(document.querySelector('.values-status')?.textContent ?? ''), undefined, { timeout: 60_000 });
    await frame.locator('.chip[data-status="values differ"]').click();
    const bad = await waitRows(frame, (n) => n.length === 1);
    assert.equal(bad[0], 'same');
    const row = (await rowsText(frame))[0]!;
    assert.equal(row[1], 'model.layers.1.self_attn.q_proj.weight');
    assert.match(row[4]!, /^1 of [\d,]+ differ, max \|Δ\| 0\.500$/);
    await frame.locator('.chip[data-status="values differ"]').click();
    await waitRows(frame, (n) => n.length > 5);
    // Every name in view shows whole at the default window size: the other columns give way first.
    const cut = async () =>
      frame.$$eval('.vt-row:not([hidden])', (rows) => rows.map((r) => r.children[1] as HTMLElement).filter((c) => c.scrollWidth > c.clientWidth).map((c) => c.textContent));
    assert.ok((await rowsText(frame)).some((r) => r[1] === 'model.layers.0.self_attn.q_proj.weight'));
    assert.deepEqual(await cut(), [], 'no name is cut');
    // A column resizes by dragging the border at its header's end, and by the arrow keys on it.
    const header = frame.locator('.vt-head .vt-cell', { hasText: /^Left$/ });
    const width = async () => (await header.boundingBox())!.width;
    const before = await width();
    const border = (await header.locator('.vt-resizer').boundingBox())!;
    await wb.page.mouse.move(border.x + border.width / 2, border.y + border.height / 2);
    await wb.page.mouse.down();
    await wb.page.mouse.move(border.x + border.width / 2 + 40, border.y + border.height / 2, { steps: 4 });
    await wb.page.mouse.up();
    const dragged = await width();
    assert.ok(Math.abs(dragged - (before + 40)) <= 2, `dragged 40px: ${before} -> ${dragged}`);
    await header.locator('.vt-resizer').focus();
    await wb.page.keyboard.press('ArrowLeft');
    assert.ok(Math.abs((await width()) - (dragged - 16)) <= 2, 'ArrowLeft narrows it by a step');
    // Double-click gives it back to the fit.
    await header.locator('.vt-resizer').dblclick();
    assert.ok(Math.abs((await width()) - before) <= 2, 'double-click fits it again');
    assert.deepEqual(await cut(), []);
    // The short Status column keeps its word while the wider columns give way.
    assert.deepEqual(await frame.$$eval('.vt-row:not([hidden]) .vt-cell:first-child', (cells) => cells.filter((c) => c.scrollWidth > c.clientWidth).map((c) => c.textContent)), []);
    await frame.$eval('.vt-resizer:focus', (h) => (h as HTMLElement).blur());
    await wb.screenshot(join(shots, 'diff.png'));
  });

  it('lists a sharded index\'s tensors from the index alone; a shard that fails validation is shown above them, and statistics are refused', async () => {
    await wb.quickOpen('sharded-broken/model.safetensors.index.json');
    // Cells are found by their full name (the title): the tab may show the tree or the list.
    const frame = await wb.webviewFrame('.vt-cell[title="model.layers.0.w"]');
    const banner = frame.locator('.invalid-banner[role="alert"]');
    await banner.waitFor({ timeout: 30_000 });
    assert.match((await banner.locator('.error-message').textContent())!, /Failed to parse .*model-00002-of-00003\.safetensors/);
    // Every tensor the index lists has its row, the valid shards' too; no sizes came, as none were validated.
    const cells = async (name: string) => frame.locator('.vt-row', { has: frame.locator(`.vt-cell[title="${name}"]`) }).locator('.vt-cell').allTextContents();
    for (let i = 0; i < BROKEN_SHARD_TENSORS; i++) assert.deepEqual((await cells(`model.layers.${i}.w`)).slice(1), ['—', '—', '—', '—'], `model.layers.${i}.w`);
    const facts = Object.fromEntries(await frame.$$eval('dl.facts dt', (dts) => dts.map((dt) => [dt.textContent, dt.nextElementSibling?.textContent])));
    assert.deepEqual([facts.Tensors, facts.Parameters, facts.Size], [String(BROKEN_SHARD_TENSORS), '—', '—']);
    // A tensor of a shard that is fine is refused too: values come only from a validated checkpoint.
    await frame.locator('.vt-cell[title="model.layers.0.w"]').click();
    await frame.locator('.detail vscode-button.compute-stats').click();
    const refused = frame.locator('.detail .stats-error');
    await refused.waitFor({ timeout: 30_000 });
    assert.match((await refused.textContent())!, /model-00002-of-00003\.safetensors/);
    assert.equal(await frame.locator('.detail dl.stats').count(), 0);
    assert.equal(await frame.locator('.detail .slice').count(), 0, 'no slice of a tensor whose shape was never validated');
    await wb.screenshot(join(shots, 'shard-invalid.png'));
  });

  it('opens a malformed file to an error panel whose button reopens it as text', async () => {
    await wb.quickOpen('broken.safetensors');
    const frame = await wb.webviewFrame('.error-panel');
    assert.match((await frame.textContent('.error-message'))!, /Failed to parse .*broken\.safetensors: .*not a safetensors file/);
    await wb.screenshot(join(shots, 'error.png'));
    await frame.click('#reopen');
    await wb.page.locator('.monaco-editor .view-lines', { hasText: 'this is not a safetensors file' }).waitFor({ timeout: 30_000 });
  });

  for (const [theme, file, kind] of [
    ['Light Modern', 'light', 'vscode-light'],
    ['Dark High Contrast', 'hc', 'vscode-high-contrast'],
    ['Light High Contrast', 'hc-light', 'vscode-high-contrast-light'],
    ['Dark Modern', 'dark', 'vscode-dark'],
  ] as const) {
    it(`follows the ${theme} theme (screenshot ${file})`, async () => {
      await wb.setTheme(theme);
      await wb.quickOpen('python/torch_all.safetensors');
      // Cells are found by their full name (the title): the tab may show the tree or the list.
      const frame = await wb.webviewFrame('.vt-cell[title="t.U64"]');
      // VS Code marks the webview body with the theme kind, and our colours come from its variables.
      await frame.waitForFunction((k) => document.body.classList.contains(k), kind, { timeout: 30_000 });
      const { actual, theme: expected } = await colourAgainstTheme(frame, [
        { selector: 'body', property: 'color', variable: '--vscode-foreground' },
        { selector: 'body', property: 'backgroundColor', variable: '--vscode-editor-background' },
      ]);
      assert.deepEqual(actual, expected);
      // The detail pane in this theme too: statistics (random bytes, so NaN/Inf often show), histogram, slice.
      await frame.fill('#filter input', 't.F32');
      await frame.locator('.vt-cell[title="t.F32"]').first().click();
      await frame.locator('.detail vscode-button.compute-stats').click();
      await frame.locator('.detail dl.stats').waitFor({ timeout: 30_000 });
      await frame.locator('.detail .histogram-pending').waitFor({ state: 'detached', timeout: 30_000 });
      await frame.locator('.detail vscode-button.show-slice').click();
      await frame.locator('.detail table.slice-table').waitFor({ timeout: 30_000 });
      // And the Pytree view beside it.
      await wb.runCommand('JAX Serve: Focus on Pytree View');
      const t = wb.page.locator('.monaco-list-row', { has: wb.page.locator('.label-name', { hasText: /^t$/ }) }).first();
      await t.waitFor({ timeout: 30_000 });
      if ((await t.getAttribute('aria-expanded')) !== 'true') await t.click();
      await wb.page.locator('.monaco-list-row .label-description', { hasText: 'F32 [3, 5]' }).first().waitFor({ timeout: 30_000 });
      await wb.page.locator('.quick-input-widget').first().waitFor({ state: 'hidden', timeout: 30_000 });
      await wb.screenshot(join(shots, `python-${file}.png`));
    });
  }
});
