// One build script for every bundle (style.md rule 4). `node esbuild.mjs` builds the extension, the
// CLI and the webview into dist/; `--tests` also builds the test suites into out/; `--watch` rebuilds.
import * as esbuild from 'esbuild';
import { readFileSync, readdirSync, rmSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const args = new Set(process.argv.slice(2));
const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const production = args.has('--production');
const common = {
  bundle: true,
  sourcemap: production ? false : 'linked',
  minify: production,
  logLevel: 'warning',
  define: { JAX_SERVE_VERSION: JSON.stringify(pkg.version) },
};
const node = { ...common, platform: 'node', target: 'node20', format: 'cjs' };
// Webview bundles are minified in every build: a page parses its script before its first paint.
const page = { ...common, minify: true, platform: 'browser', target: 'es2022', format: 'iife' };

const builds = [
  { ...node, entryPoints: ['src/extension/extension.ts'], outfile: 'dist/extension.js', external: ['vscode'] },
  { ...node, entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli.js', banner: { js: '#!/usr/bin/env node' } },
  // Statistics and slices run on this worker thread, off the extension host's main thread.
  { ...node, entryPoints: ['src/core/worker/valueWorkerMain.ts'], outfile: 'dist/valueWorker.js' },
  // Beside every server we start: stops its process group if the extension host or CLI dies.
  { ...node, entryPoints: ['src/core/node/serverWatchdog.ts'], outfile: 'dist/serverWatchdog.js' },
  { ...page, entryPoints: ['webview/checkpoint/main.ts'], outfile: 'dist/webview/checkpoint.js' },
  { ...page, entryPoints: ['webview/diff/main.ts'], outfile: 'dist/webview/diff.js' },
  { ...page, entryPoints: ['webview/serve/main.ts'], outfile: 'dist/webview/serve.js' },
  { ...page, entryPoints: ['webview/plan/main.ts'], outfile: 'dist/webview/plan.js' },
];
if (!production) {
  builds.push({ ...node, entryPoints: ['bench/main.ts'], outfile: 'out/bench.js', external: ['playwright-core'] });
  // The editor benchmark's part that runs in the extension host.
  builds.push({ ...node, entryPoints: ['bench/editorHost.ts'], outfile: 'out/benchEditorHost.js', external: ['vscode'] });
}

const testFiles = (dir) => readdirSync(dir).filter((f) => f.endsWith('.test.ts')).map((f) => join(dir, f));
if (args.has('--tests')) {
  rmSync('out/test', { recursive: true, force: true });
  builds.push(
    { ...node, entryPoints: testFiles('test/unit'), outdir: 'out/test/unit', external: ['mocha', 'fast-check', 'typescript'] },
    { ...node, entryPoints: ['test/integration/suite/index.ts', ...testFiles('test/integration/suite')], outdir: 'out/test/integration', external: ['vscode', 'mocha'] },
    { ...node, entryPoints: ['test/integration/runExtensionTests.ts', 'test/integration/sampleWorkspace.ts', ...testFiles('test/integration/ui')], outdir: 'out/test/integration', external: ['mocha', 'playwright-core'] },
  );
}

function copyAssets() {
  // Webview assets served from dist/webview only (localResourceRoots): our css.
  mkdirSync('dist/webview', { recursive: true });
  // Each page's stylesheet is the shared base (theme, table, toolbar) followed by its own rules.
  const base = readFileSync('webview/shared/base.css', 'utf8');
  for (const page of ['checkpoint', 'diff', 'serve', 'plan']) writeFileSync(`dist/webview/${page}.css`, base + '\n' + readFileSync(`webview/${page}/style.css`, 'utf8'));
}

if (args.has('--watch')) {
  copyAssets();
  for (const b of builds) await (await esbuild.context(b)).watch();
} else {
  await Promise.all(builds.map((b) => esbuild.build(b)));
  copyAssets();
}
