/** `jax-serve health PATH`: statistics over every tensor; NaN/±Inf, all-zero, constant and extreme tensors. */
import { healthScan, tensorStats, valueOpener, type Checkpoint, type NodeFileOpener } from '../core/index';
import type { Args } from './main';
import { print } from './output';

export const HEALTH_OPTIONS = ['--json', '--python'];

export const HEALTH_USAGE = `  health PATH [--json]            Exact statistics of every tensor; lists NaN/±Inf (errors, exit 1),
                                  all-zero, constant and extreme tensors, one "FILE: severity:
                                  message" line each.
`;

export async function healthCommand(args: Args, open: (a: Args) => Promise<Checkpoint>, opener: NodeFileOpener): Promise<void> {
  const ck = await open(args);
  const values = valueOpener(ck, opener);
  const report = await healthScan(ck, (t) => tensorStats(values, t));
  if (args.json) print(JSON.stringify({ location: ck.location, ...report }) + '\n');
  else {
    for (const f of report.findings) print(`${ck.location}: ${f.severity}: ${f.message}\n`);
    print(`${ck.location}: ${report.scanned} tensors scanned, ${report.findings.length === 0 ? 'nothing to report' : `${report.findings.length} finding(s)`}\n`);
  }
  if (report.findings.some((f) => f.severity === 'error')) process.exitCode = 1;
}
