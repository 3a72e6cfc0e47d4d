/**
 * The Serve panel's Check Against Source inside the extension host, against the GPU run of
 * SGLang-JAX replayed (test/unit/gpuRunReplay.ts answers as the recorded engine did): attached
 * without a model name, the check of the export the run served is green through every API with the
 * listed model sent; the broken-RoPE replies are red at the tokens the device run reported
 * (check-broken.json). The interpreter is the jaxServe.pythonPath setting (runExtensionTests sets
 * it to JAX_SERVE_PYTHON).
 */
import * as assert from 'node:assert/strict';
import { basename, join, resolve } from 'node:path';
import * as vscode from 'vscode';
import { CHECK_PROMPTS, type GenerateApi } from '../../../src/core/index';
import type { CheckView } from '../../../src/shared/serveProtocol';
import { gpuRuns, rebuiltExports, replay, runJson, type GpuRunExports } from '../../unit/gpuRunReplay';
import { until } from '../waits';
import { closeAllEditorsReverted, extensionApi } from './editors';

const ROOT = resolve(__dirname, '../../..');


const api = extensionApi;

type Checked = { type: 'checked'; check?: CheckView; error?: string };
/** What the check sent: the replay also sees the open panel's gauges polling /metrics. */
const generations = (seen: Record<string, unknown>[]) => seen.filter((b) => b.url !== '/metrics');
const check = (source: string, api?: GenerateApi) => vscode.commands.executeCommand<Checked>('jaxServe.checkAgainstSource', vscode.Uri.file(source), api);

for (const run of gpuRuns()) {
  describe(`Check Against Source in the Serve panel, the GPU run replayed (${basename(run)})`, function () {
    this.timeout(600_000);
    let exports: GpuRunExports;
    before(function () {
      const python = process.env.JAX_SERVE_PYTHON;
      if (!python) return this.skip();
      exports = rebuiltExports(python, run);
    });
    afterEach(closeAllEditorsReverted);

    it('the export the run served: green through /generate, completions and chat, every prompt\'s tokens equal, the model sent the one /v1/models lists', async () => {
      const listed = runJson(run, 'v1-models.json').data[0].id as string;
      const s = await replay(run, 'replies-good.json');
      try {
        await vscode.commands.executeCommand('jaxServe.attach', s.url);
        assert.equal((await api()).serve.endpoint?.model, undefined, 'attached without a name');
        // The button's default (SGLang's /generate, as the server answers /get_model_info), then the OpenAI APIs.
        for (const [want, path] of [[undefined, '/generate'], ['completions', '/v1/completions'], ['chat', '/v1/chat/completions']] as const) {
          const from = s.seen.length;
          const r = await check(exports.export128, want);
          assert.ok(r.check, `${path}: ${r.error}`);
          assert.equal(r.check.ok, true, r.check.headline);
          assert.deepEqual(r.check.prompts.map((p) => p.prompt), CHECK_PROMPTS, 'the built-in prompts, in order');
          for (const p of r.check.prompts) {
            assert.equal(p.tokensEqual, true, `${path}: ${p.summary}`);
            assert.equal(p.firstDivergence, null);
            assert.equal(p.span, undefined);
          }
          assert.equal(r.check.api, want ?? '/generate');
          const sent = generations(s.seen.slice(from));
          assert.deepEqual(sent.map((b) => b.url), CHECK_PROMPTS.map(() => path), 'one greedy request a prompt');
          assert.ok(sent.every((b) => b.stream !== true), 'not streamed');
          if (want) {
            assert.equal(r.check.model, listed, 'the model sent is the one /v1/models lists');
            assert.ok(sent.every((b) => b.model === listed), JSON.stringify(sent.map((b) => b.model)));
            assert.match(r.check.headline, new RegExp(`as ${listed.replace(/[/.]/g, '\\$&')}\\)\\.$`));
          } else {
            assert.equal(r.check.model, undefined, '/generate takes no model');
          }
          // The session keeps the report the panel showed (for a page opened later).
          const kept = (await api()).serve.lastCheck;
          assert.deepEqual({ ok: kept?.ok, model: kept?.model, divergences: kept?.prompts.map((p) => p.firstDivergence) }, { ok: r.check.ok, model: r.check.model, divergences: r.check.prompts.map((p) => p.firstDivergence) });
        }
      } finally {
        s.server.close();
      }
    });

    it('the broken-RoPE export\'s replies, checked against the good export: red, each prompt\'s first divergence where the device run saw it, its span carried', async () => {
      const there = runJson(run, 'check-broken.json') as { api: string; prompts: { prompt: string; firstDivergence: number | null; divergenceSpan?: [number, number] }[] };
      assert.equal(there.api, 'sglang-generate', 'the device checked through /generate, as the button does');
      const s = await replay(run, 'replies-broken.json');
      try {
        await vscode.commands.executeCommand('jaxServe.attach', s.url);
        const r = await check(exports.export128);
        assert.ok(r.check, r.error);
        assert.equal(r.check.ok, false);
        assert.match(r.check.headline, new RegExp(`^${CHECK_PROMPTS.length} of ${CHECK_PROMPTS.length} prompts diverge from export128 `));
        const device = new Map(there.prompts.map((p) => [p.prompt, p]));
        for (const p of r.check.prompts) {
          const d = device.get(p.prompt);
          assert.ok(d, `${JSON.stringify(p.prompt)} is not in check-broken.json`);
          assert.equal(p.firstDivergence, d.firstDivergence, p.summary);
          assert.equal(p.tokensEqual, false);
          assert.match(p.summary, new RegExp(`diverges at token ${d.firstDivergence}:`));
        }
        const first = r.check.prompts.find((p) => !p.ok)!;
        assert.deepEqual(first.span, device.get(first.prompt)!.divergenceSpan, 'the first failing prompt carries the span the device run reported');
        assert.ok(first.span![1] > first.span![0]);
      } finally {
        s.server.close();
      }
    });

    it('a folder without config.json is said in one line before the server is asked', async () => {
      const s = await replay(run, 'replies-good.json');
      try {
        await vscode.commands.executeCommand('jaxServe.attach', s.url);
        const before = (await api()).serve.lastCheck;
        const folder = vscode.workspace.workspaceFolders![0]!.uri.fsPath;
        const r = await check(folder);
        assert.equal(r.check, undefined);
        assert.equal(r.error, `${folder}: no config.json; the source is the export folder the server serves.`);
        assert.deepEqual(generations(s.seen), [], 'nothing was generated');
        assert.equal((await api()).serve.lastCheck, before, 'the last verdict stays');
      } finally {
        s.server.close();
      }
    });
  });
}

describe('Check Against Source: which folder is the source', () => {
  it('the folder a started server serves, only while that server is the one attached; another attached URL asks for the folder', async function () {
    this.timeout(60_000);
    const folder = vscode.workspace.workspaceFolders![0]!.uri.fsPath;
    const standin = join(ROOT, 'test/fixtures/standin/engine.mjs');
    await vscode.commands.executeCommand('jaxServe.startServer', { name: '', engine: 'vllm', model: folder, host: '127.0.0.1', command: `${JSON.stringify(process.execPath)} ${JSON.stringify(standin)}` });
    const s = await replay(gpuRuns()[0]!, 'replies-good.json');
    try {
      const ready = await until('ready', async () => ((await api()).serve.server?.status === 'ready' ? (await api()).serve.server : undefined));
      assert.equal((await api()).serve.endpoint?.url, ready.url);
      // The workspace folder (the stand-in's model) has no config.json: the error names it, so it was the source.
      const own = await vscode.commands.executeCommand<Checked>('jaxServe.checkAgainstSource');
      assert.equal(own.error, `${folder}: no config.json; the source is the export folder the server serves.`);

      await vscode.commands.executeCommand('jaxServe.attach', s.url);
      const asked = vscode.commands.executeCommand<Checked>('jaxServe.checkAgainstSource');
      let done = false;
      void asked.then(() => (done = true));
      // The folder dialog is open (the started server's folder is not this URL's): dismissed, nothing is checked.
      await until('the folder dialog dismissed', async () => {
        await vscode.commands.executeCommand('workbench.action.closeQuickOpen');
        return done ? true : undefined;
      }, 20_000);
      assert.deepEqual(await asked, { type: 'checked' });
      assert.deepEqual(generations(s.seen), []);
    } finally {
      s.server.close();
      await vscode.commands.executeCommand('jaxServe.stopServer');
    }
  });
});
