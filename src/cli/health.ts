/** `jax-serve health PATH`: statistics over every tensor; NaN/±Inf, all-zero, constant and extreme tensors. */
import { HandleCache, healthScan, JaxServeError, tensorStats, valueOpener, type Checkpoint, type NodeFileOpener } from '../core/index';
import type { Args } from './main';
import { print, printErr } from './output';

export const HEALTH_OPTIONS = ['--json', '--python', '--max-seconds', '--progress-json'];

/** The default time budget: a scan that would take longer stops with what it found, and says so. */
const DEFAULT_MAX_SECONDS = 3600;

export const HEALTH_USAGE = `  health PATH [--json] [--max-seconds S] [--progress-json]
                                  Exact statistics of every tensor; lists NaN/±Inf (errors, exit 1),
                                  all-zero, constant and extreme tensors, one "FILE: severity:
                                  message" line each. Stops after S seconds (default ${DEFAULT_MAX_SECONDS}) with
                                  what it found (exit 2); Ctrl-C stops it at once.
`;

export async function healthCommand(args: Args, open: (a: Args) => Promise<Checkpoint>, opener: NodeFileOpener, signal?: AbortSignal): Promise<void> {
  const maxSeconds = Number(args.values.get('--max-seconds')?.[0] ?? DEFAULT_MAX_SECONDS);
  if (!(maxSeconds > 0)) throw new JaxServeError('E_USAGE', '--max-seconds takes a number of seconds above 0.');
  const ck = await open(args);
  // A scan reads every tensor of the same few shards: keep them open between tensors.
  const values = valueOpener(ck, opener);
  const files = values === opener ? new HandleCache(opener) : undefined;
  let shown = 0;
  const report = await healthScan(ck, (t) => tensorStats(files ?? values, t, { signal }), {
    signal,
    budgetMs: maxSeconds * 1000,
    onProgress: (done, total) => {
      if (Date.now() - shown < 200 && done < total) return;
      shown = Date.now();
      if (args.flags.has('--progress-json')) printErr(JSON.stringify({ done, total }) + '\n');
      else if (!args.json && process.stderr.isTTY) process.stderr.write(`\r${done} of ${total} tensors${done === total ? '\n' : ''}`);
    },
  }).finally(() => files?.close());
  if (args.json) print(JSON.stringify({ location: ck.location, ...report }) + '\n');
  else {
    for (const f of report.findings) print(`${ck.location}: ${f.severity}: ${f.message}\n`);
    print(`${ck.location}: ${report.scanned} of ${report.total} tensors scanned, ${report.findings.length === 0 ? 'nothing to report' : `${report.findings.length} finding(s)`}\n`);
  }
  if (!report.complete) {
    throw new JaxServeError('E_LIMIT', `${ck.location}: the health scan stopped at its time budget of ${maxSeconds} s after ${report.scanned} of ${report.total} tensors; raise --max-seconds to scan the rest.`);
  }
  if (report.findings.some((f) => f.severity === 'error')) process.exitCode = 1;
}
