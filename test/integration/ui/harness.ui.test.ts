/**
 * The harness itself: a failing test inside VS Code fails the run (so a green run means something),
 * Quick Open finds a file written during a test, and a server with workspace trust left on opens
 * the workspace in Restricted Mode, where the checkpoint viewer still works (the extension declares
 * limited untrusted support).
 */
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, startCodeServer } from '../harness/codeServer';
import { openWorkbench } from '../harness/workbench';
import { buildWorkspace } from '../fixtures';
import { runExtensionTests } from '../runExtensionTests';
import { until } from '../waits';
import { MemoryByteSource, readZipDirectory, writeSafetensors, type TensorSpec } from '../../../src/core/index';
import { openAtomicFileSink } from '../../../src/core/node/index';

/** Command lines of running sidecars (none may run in an untrusted workspace). */
function sidecarProcesses(): string {
  const r = spawnSync('pgrep', ['-af', 'jax_serve_sidecar'], { encoding: 'utf8' });
  return r.stdout.trim();
}

const root = repoRoot();

describe('the real-VS-Code harness', function () {
  this.timeout(240_000);

  it('reports a failing test inside the extension host as a failed run', async () => {
    const { code } = await runExtensionTests({ only: 'selftest.failing.test.js', quiet: true });
    assert.notEqual(code, 0);
  });

  it('packs a .vsix that installs into code-server and opens checkpoints there', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'jax-serve-vsix-'));
    const vsix = join(dir, 'jax-serve.vsix');
    const pack = spawnSync('bash', [join(root, 'scripts', 'package.sh'), vsix], { cwd: root, encoding: 'utf8' });
    assert.equal(pack.status, 0, pack.stdout + pack.stderr);
    const members = (await readZipDirectory(new MemoryByteSource(vsix, readFileSync(vsix)))).map((m) => m.name);
    for (const shipped of ['python/sidecar/jax_serve_sidecar.py', 'python/verify/jax_serve_verify.py', 'python/verify/jax_forward_template.py', 'schemas/rules.schema.json', 'dist/valueWorker.js', 'package.nls.json', 'media/walkthrough/serve.md']) {
      assert.ok(members.includes(`extension/${shipped}`), `${shipped} is not in the .vsix:\n${members.join('\n')}`);
    }
    assert.ok(!members.some((m) => m.includes('python/fixtures')), 'test fixtures stay out of the .vsix');
    const ws = join(dir, 'ws');
    await buildWorkspace(ws, { root });
    const server = await startCodeServer({ installVsix: vsix });
    const wb = await openWorkbench(server, { folder: ws });
    try {
      await wb.quickOpen('hostile.safetensors');
      const frame = await wb.webviewFrame('.vt-row:not(.placeholder)');
      assert.match((await frame.textContent('.status'))!, /^2 tensors/);
    } finally {
      await wb.close();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('opens a checkpoint in our editor right after start, and a file written after an earlier Quick Open', async () => {
    // In a folder of many files, Quick Open's own file list takes a while to load, and a search by
    // name is meanwhile answered from the previous Quick Open's list, which lacks a file written
    // since: searching "fresh.safetensors" by name showed "No matching results". And a checkpoint
    // opened before our contributions are registered opens in the text editor. quickOpen and
    // openWorkbench wait past both (see harness/workbench.ts); this keeps them doing so.
    const ws = mkdtempSync(join(tmpdir(), 'jax-serve-quickopen-'));
    await buildWorkspace(ws, { root });
    for (let d = 0; d < 20; d++) {
      mkdirSync(join(ws, 'many', String(d)), { recursive: true });
      for (let i = 0; i < 1000; i++) writeFileSync(join(ws, 'many', String(d), `f${i}.txt`), '');
    }
    const server = await startCodeServer();
    const wb = await openWorkbench(server, { folder: ws, extensionDevelopmentPath: root });
    const activeTab = wb.page.locator('.tabs-container .tab.active');
    // Each file has its own tensor count, so the page read is known to be that file's.
    const opened = async (name: string, tensors: number) => {
      let tab = '';
      await until(`the ${name} tab`, async () => ((tab = (await activeTab.getAttribute('aria-label').catch(() => null)) ?? '').startsWith(name) ? true : undefined), 30_000, () => `active tab ${JSON.stringify(tab)}`);
      await wb.webviewFrame(`.status:text-matches("^${tensors} tensors")`);
    };
    try {
      await wb.quickOpen('hostile.safetensors');
      await opened('hostile.safetensors', 2);
      for (const [name, tensors] of [['fresh.safetensors', 3], ['fresher.safetensors', 4]] as const) {
        const specs: TensorSpec[] = Array.from({ length: tensors }, (_, i) => ({ name: `t${i}`, dtype: 'F32', shape: [1] }));
        await writeSafetensors(await openAtomicFileSink(join(ws, name), { sources: [] }), specs, (t) => new Uint8Array(t.shape[0]! * 4));
        await wb.quickOpen(name);
        await opened(name, tensors);
      }
    } finally {
      await wb.close();
      await server.stop();
      rmSync(ws, { recursive: true, force: true });
    }
  });

  it('runs an untrusted workspace in Restricted Mode, where checkpoints still open, no Python is spawned and no server can start or be checked', async () => {
    const ws = mkdtempSync(join(tmpdir(), 'jax-serve-untrusted-'));
    await buildWorkspace(ws, { root });
    const python = process.env.JAX_SERVE_PYTHON;
    if (python) execFileSync(python, [join(root, 'python/fixtures/orbax_ckpt.py'), 'write', join(ws, 'orbax')], { stdio: ['ignore', 'ignore', 'inherit'] });
    const server = await startCodeServer({ trust: true, settings: python ? { 'jaxServe.pythonPath': python } : {} });
    const wb = await openWorkbench(server, { folder: ws, extensionDevelopmentPath: root });
    try {
      await wb.page.locator('.statusbar', { hasText: 'Restricted Mode' }).waitFor({ timeout: 60_000 });
      await wb.quickOpen('hostile.safetensors');
      const frame = await wb.webviewFrame('.vt-row:not(.placeholder)');
      assert.match((await frame.textContent('.status'))!, /^2 tensors/);
      await wb.screenshot(join(root, 'test-results', 'screenshots', 'restricted-mode.png'));
      if (python) {
        await wb.quickOpen('orbax/tree/_METADATA');
        const err = await wb.webviewFrame('.error-message');
        assert.match((await err.textContent('.error-message'))!, /Trust this workspace to read them: that runs Python/);
        assert.equal(sidecarProcesses(), '', 'a sidecar ran in Restricted Mode');
      }
      // The Serve panel opens, but starts nothing: its Start is disabled and says why; Check Against Source (it runs Python) too.
      await wb.runCommand('JAX Serve: Open Serve Panel');
      const serve = await wb.webviewFrame('body[data-ready="true"] #start');
      assert.equal(await serve.isDisabled('#start'), true);
      assert.equal(await serve.isDisabled('#check-source'), true);
      assert.match((await serve.textContent('#server-line'))!, /Restricted Mode: trust this workspace to start servers/);
    } finally {
      await wb.close();
      await server.stop();
      rmSync(ws, { recursive: true, force: true });
    }
  });
});
