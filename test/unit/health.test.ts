/**
 * Health scan: a file numpy wrote with NaN, ±Inf, all-zero, constant and extreme tensors; the scan
 * finds exactly those (and nothing in the healthy ones), through the CLI with its exit code.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { healthOf } from '../../src/core/index';
import { tempDir, venvPython, writeFixtures } from './helpers';

const CLI = resolve(__dirname, '../../../dist/cli.js');

describe('health scan', function () {
  let dir: ReturnType<typeof tempDir>;
  let expected: Record<string, string[]>;

  before(function () {
    const python = venvPython(this);
    this.timeout(60_000);
    dir = tempDir();
    expected = writeFixtures<{ expected: Record<string, string[]> }>(python, 'health.py', dir.path).expected;
  });
  after(() => dir?.remove());

  it('finds NaN, ±Inf, all-zero, constant and extreme tensors, and nothing else (CLI, exit 1 on NaN/Inf)', () => {
    const file = join(dir.path, 'health.safetensors');
    const r = spawnSync(process.execPath, [CLI, 'health', file, '--json'], { encoding: 'utf8' });
    assert.equal(r.status, 1, r.stderr);
    const report = JSON.parse(r.stdout) as { scanned: number; findings: { tensor: string; code: string; severity: string; message: string }[] };
    assert.equal(report.scanned, 8);
    const got: Record<string, string[]> = {};
    for (const f of report.findings) (got[f.tensor] ??= []).push(f.code);
    assert.deepEqual(got, expected);
    assert.match(report.findings.find((f) => f.tensor === 'nan')!.message, /2 NaN of 128 elements/);
    const text = spawnSync(process.execPath, [CLI, 'health', file], { encoding: 'utf8' });
    assert.match(text.stdout, /health\.safetensors: error: inf: 1 \+Inf and 1 −Inf of 128 elements\./);
    assert.match(text.stdout, /8 tensors scanned, 6 finding\(s\)/);
  });

  it('says nothing of a healthy tensor, and nothing extreme of integers', () => {
    const base = { count: 4, finite: 4, nan: 0, posInf: 0, negInf: 0, zeros: 0, min: -1, max: 2, mean: 0.5, std: 1 };
    assert.deepEqual(healthOf({ name: 'w', dtype: 'BF16' }, base), []);
    assert.deepEqual(healthOf({ name: 'step', dtype: 'I64' }, { ...base, min: 0, max: 1e9 }), []);
  });
});
