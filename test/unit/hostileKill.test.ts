/**
 * kill -9 at random points of convert and import (with and without --overwrite over an earlier
 * output): the source's bytes never change, the target is either absent, the earlier output, or a
 * complete new one, and anything else left beside it carries `.partial` in its name.
 */
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as fc from 'fast-check';
import { canonicalFixtures, type Canonical } from '../fixtures/canonical';
import { tempDir, venvPython } from './helpers';
import { assertUnchanged, cli, fingerprint, fuzzRuns, fuzzSeed, runCli } from './hostile';

/** Runs the CLI and SIGKILLs it after `afterMs` (if it is still running); resolves when it is gone. */
function killAfter(args: string[], afterMs: number): Promise<{ killed: boolean; code: number | null }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), afterMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ killed: signal === 'SIGKILL', code });
    });
  });
}

describe(`kill -9 during convert and import (seed ${fuzzSeed})`, function () {
  this.timeout(600_000);
  let fx: Canonical;
  let root: ReturnType<typeof tempDir>;
  const counts = { convert: { runs: 0, killed: 0 }, import: { runs: 0, killed: 0 } };
  before(function () {
    fx = canonicalFixtures(venvPython(this));
    root = tempDir('jax-serve-kill-');
  });
  after(() => {
    root?.remove();
    console.log(`      [measure] kill -9: convert ${counts.convert.killed} killed of ${counts.convert.runs} runs, import ${counts.import.killed} killed of ${counts.import.runs}`);
  });

  /** An export folder is complete when it opens and holds config.json and its tokenizer. */
  const completeExport = (dir: string) => existsSync(join(dir, 'config.json')) && existsSync(join(dir, 'tokenizer.json')) && runCli(['inspect', dir]).status === 0;

  for (const command of ['convert', 'import'] as const) {
    it(`${command}: source unchanged; target absent, old or complete; leftovers marked .partial`, async () => {
      const hf = join(fx.dir, 'hf');
      const src = join(root.path, `${command}-src`);
      mkdirSync(src);
      const srcFile = command === 'convert' ? join(src, 'flax_model.msgpack') : join(src, 'model.safetensors');
      cpSync(command === 'convert' ? join(fx.dir, 'jax/nnx.msgpack') : join(hf, 'model.safetensors'), srcFile);
      if (command === 'import') cpSync(join(hf, 'config.json'), join(src, 'config.json'));
      const before = fingerprint(src);
      const argsFor = (out: string, overwrite: boolean) =>
        command === 'convert'
          ? ['convert', srcFile, '-o', out, '--config-from', hf, '--tokenizer-from', hf, ...(overwrite ? ['--overwrite'] : [])]
          : ['import', src, '-o', out, '--preset', 'talk-nnx-llama', ...(overwrite ? ['--overwrite'] : [])];
      const target = (parent: string) => join(parent, command === 'convert' ? 'export' : 'out.msgpack');
      const complete = (p: string) => (command === 'convert' ? completeExport(p) : runCli(['inspect', p]).status === 0);
      // How long a whole run takes here, so kill points spread over all of it (and some runs finish).
      const probe = join(root.path, `${command}-probe`);
      mkdirSync(probe);
      const t0 = Date.now();
      const full = runCli(argsFor(target(probe), false));
      assert.equal(full.status, 0, full.stderr);
      const span = Date.now() - t0;
      let k = 0;
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 0, max: Math.max(1, Math.round(span * 1.5)) }), fc.boolean(), async (at, overwrite) => {
          const parent = join(root.path, `${command}-${k++}`);
          mkdirSync(parent);
          if (overwrite) cpSync(target(probe), target(parent), { recursive: true });
          const r = await killAfter(argsFor(target(parent), overwrite), at);
          counts[command].runs++;
          if (r.killed) counts[command].killed++;
          assertUnchanged(before, src, `the source after a kill at ${at} ms`);
          const t = target(parent);
          if (existsSync(t)) assert.ok(complete(t), `${t} exists but is not complete after a kill at ${at} ms`);
          else assert.ok(r.killed, `a run that was not killed (exit ${r.code}) left no output`);
          for (const name of readdirSync(parent)) {
            if (join(parent, name) === t) continue;
            assert.ok(name.includes('.partial'), `${name} was left beside the target without .partial (kill at ${at} ms)`);
          }
        }),
        { seed: fuzzSeed, numRuns: fuzzRuns(10) },
      );
      assert.ok(counts[command].killed > 0, 'no run was killed before it finished: the kill points missed the work');
    });
  }
});
