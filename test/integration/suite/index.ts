/**
 * Entry of the tests that run inside the real VS Code extension host: the `run()` that
 * @vscode/test-cli also expects, so a desktop VS Code runs the same suite.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import Mocha from 'mocha';

export function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', color: false, timeout: 60_000, reporter: 'spec' });
  const only = process.env.JAX_SERVE_EXT_TESTS; // a comma list of files, e.g. the harness's deliberately failing one
  const files = only ? only.split(',') : readdirSync(__dirname).filter((f) => f.endsWith('.test.js') && !f.startsWith('selftest'));
  for (const f of files) mocha.addFile(join(__dirname, f));
  return new Promise((resolve, reject) => mocha.run((failures) => (failures ? reject(new Error(`${failures} tests failed`)) : resolve())));
}
