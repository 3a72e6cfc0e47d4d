/**
 * Runs the extension-host suite (test/integration/suite) inside a fresh code-server and exits with
 * its code. On failure it prints code-server's log and the extension host's logs.
 *   node out/test/integration/runExtensionTests.js [--only selftest.failing.test.js]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, startCodeServer } from './harness/codeServer';
import { openWorkbench } from './harness/workbench';
import { buildWorkspace } from './fixtures';

export interface ExtTestRun {
  code: number;
}

export async function runExtensionTests(opts: { only?: string; timeoutMs?: number; quiet?: boolean } = {}): Promise<ExtTestRun> {
  const root = repoRoot();
  const ws = mkdtempSync(join(tmpdir(), 'jax-serve-ws-'));
  await buildWorkspace(ws, { root, python: process.env.JAX_SERVE_PYTHON });
  // The venv reads the Orbax fixtures; code-server has no Python extension, so the setting is what picks it.
  const settings = process.env.JAX_SERVE_PYTHON ? { 'jaxServe.pythonPath': process.env.JAX_SERVE_PYTHON } : {};
  const server = await startCodeServer({ env: opts.only ? { JAX_SERVE_EXT_TESTS: opts.only } : {}, settings });
  let code = 1;
  try {
    const wb = await openWorkbench(server, { folder: ws, extensionDevelopmentPath: root, extensionTestsPath: join(root, 'out/test/integration/index.js'), quiet: opts.quiet });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<number>((r) => (timer = setTimeout(() => r(-1), opts.timeoutMs ?? 600_000)));
    code = await Promise.race([wb.testExit, timeout]);
    clearTimeout(timer);
    if (code === -1) process.stderr.write('[harness] the extension host did not finish in time\n');
    await wb.close();
    if (code !== 0 && !opts.quiet) process.stderr.write(`[harness] extension tests failed (code ${code}); logs follow\n${server.logs()}\n`);
  } finally {
    await server.stop();
    rmSync(ws, { recursive: true, force: true });
  }
  return { code };
}

if (require.main === module) {
  const i = process.argv.indexOf('--only');
  runExtensionTests({ only: i > 0 ? process.argv[i + 1] : undefined }).then(
    ({ code }) => (process.exitCode = code === 0 ? 0 : 1),
    (e) => {
      process.stderr.write(`[harness] ${e instanceof Error ? e.stack : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
