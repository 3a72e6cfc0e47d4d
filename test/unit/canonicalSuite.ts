/**
 * The set-up every suite over the canonical models shares: the venv's python, the cached fixtures,
 * a temporary folder, an Orbax sidecar (started only when a test opens Orbax), and the two steps the
 * fidelity tests repeat — export a canonical JAX file, and check exports with transformers against a
 * layout's forward (python/fixtures/check_export.py). Call it inside a `describe`: it registers the
 * hooks there.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { executePlan, openCheckpoint, planConversion, type Plan, type PlanOptions } from '../../src/core/index';
import { NodeFileOpener, OutputFolder, PythonSidecar, sidecarScript } from '../../src/core/node/index';
import { canonicalFixtures, type Canonical } from '../fixtures/canonical';
import { tempDir, venvPython } from './helpers';

const ROOT = resolve(__dirname, '../../..');

export interface CanonicalSuite {
  readonly fx: Canonical;
  readonly python: string;
  /** The suite's temporary folder. */
  readonly dir: string;
  readonly files: NodeFileOpener;
  /** A canonical file or folder (relative to the fixtures), Orbax through the sidecar. */
  open(rel: string): ReturnType<typeof openCheckpoint>;
  /** The config.json of an HF folder of the fixtures, as --config-from reads it. */
  baseOpts(hf?: string): PlanOptions;
  /** Plans `rel` with `opts` and exports it into DIR/name, the tokenizer from the fixtures' `hf` folder. */
  exportTo(rel: string, name: string, opts: PlanOptions, exec?: { hf?: string; tileBudgetBytes?: number }): Promise<{ plan: Plan; out: string }>;
  /** check_export.py over [export folder, "[LAYOUT:]SOURCE"] pairs, one process for all. */
  check<T>(pairs: [string, string][]): T[];
}

export function canonicalSuite(): CanonicalSuite {
  const files = new NodeFileOpener();
  let fx: Canonical;
  let python: string;
  let dir: ReturnType<typeof tempDir>;
  let sidecar: PythonSidecar;
  before(function () {
    python = venvPython(this);
    this.timeout(300_000);
    fx = canonicalFixtures(python);
    dir = tempDir();
    sidecar = new PythonSidecar({ python, script: sidecarScript(ROOT) });
  });
  after(() => {
    sidecar?.dispose();
    dir?.remove();
  });
  const suite: CanonicalSuite = {
    get fx() {
      return fx;
    },
    get python() {
      return python;
    },
    get dir() {
      return dir.path;
    },
    files,
    open: (rel) => openCheckpoint(files, join(fx.dir, rel), { orbax: sidecar }),
    baseOpts: (hf = 'hf') => ({ baseConfig: JSON.parse(readFileSync(join(fx.dir, hf, 'config.json'), 'utf8')) }),
    async exportTo(rel, name, opts, exec = {}) {
      const ck = await suite.open(rel);
      const plan = planConversion(ck, opts);
      const out = join(dir.path, name);
      await executePlan(plan, ck, files, await OutputFolder.create(out, { sources: [] }), { tokenizerFrom: join(fx.dir, exec.hf ?? 'hf'), tileBudgetBytes: exec.tileBudgetBytes });
      return { plan, out };
    },
    check<T>(pairs: [string, string][]): T[] {
      const args = [join(ROOT, 'python/fixtures/check_export.py'), 'check', fx.dir, ...pairs.map(([out, src]) => `${out}=${src}`)];
      return JSON.parse(execFileSync(python, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 16 << 20 })) as T[];
    },
  };
  return suite;
}
