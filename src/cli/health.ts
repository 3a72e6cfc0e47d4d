/** `jax-serve health PATH`: statistics over every tensor; NaN/±Inf, all-zero, constant and extreme tensors. */
import { healthScan, JaxServeError, tensorStats, type Checkpoint } from '../core/index';
import { type NodeFileOpener } from '../core/node/index';
import { JSON_OPTION, PYTHON_OPTION, type Args, type CommandSpec } from './args';
import { print } from './output';
import { scanControl, scanOpener, SCAN_OPTIONS } from './scan';

export const HEALTH_COMMAND: CommandSpec = {
  name: 'health',
  synopsis: 'PATH',
  summary: 'Exact statistics of every tensor; lists NaN/±Inf (errors, exit 1), all-zero, constant and extreme tensors, one "FILE: severity: message" line each. Stops at --max-seconds with what it found (exit 2); Ctrl-C stops it at once.',
  options: [JSON_OPTION, ...SCAN_OPTIONS, PYTHON_OPTION],
};

export async function healthCommand(args: Args, open: (a: Args) => Promise<Checkpoint>, opener: NodeFileOpener): Promise<void> {
  if (args.positional.length !== 1) throw new JaxServeError('E_USAGE', 'health takes one PATH.');
  const scan = scanControl(args);
  const { signal } = scan;
  const ck = await open(args);
  const files = scanOpener(ck, opener);
  const report = await healthScan(ck, (t) => tensorStats(files.values, t, { signal }), {
    signal,
    budgetMs: scan.budgetMs,
    onProgress: (done, total) => scan.onProgress(done, total, 'tensors'),
  }).finally(() => {
    scan.done();
    return files.close();
  });
  if (args.json) print(JSON.stringify({ location: ck.location, ...report }) + '\n');
  else {
    for (const f of report.findings) print(`${ck.location}: ${f.severity}: ${f.message}\n`);
    print(`${ck.location}: ${report.scanned} of ${report.total} tensors scanned, ${report.findings.length === 0 ? 'nothing to report' : `${report.findings.length} finding(s)`}\n`);
  }
  if (!report.complete) {
    throw new JaxServeError('E_LIMIT', `${ck.location}: the health scan stopped at its time budget of ${scan.maxSeconds} s after ${report.scanned} of ${report.total} tensors; raise --max-seconds to scan the rest.`);
  }
  if (report.findings.some((f) => f.severity === 'error')) process.exitCode = 1;
}
