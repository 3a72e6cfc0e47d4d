/** `npm start`'s sample workspace: the test fixtures (Python-written checkpoints, a 100k-tensor index). */
import { repoRoot } from './harness/codeServer';
import { buildWorkspace } from './fixtures';

const dir = process.argv[2];
if (!dir) throw new Error('usage: sampleWorkspace.js DIR');
buildWorkspace(dir, { root: repoRoot(), python: process.env.JAX_SERVE_PYTHON }).catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
