/**
 * What every whole-checkpoint scan on the command line shares (health, diff --values): progress on
 * a terminal (or JSON lines with --progress-json), Ctrl-C, and a time budget (--max-seconds) after
 * which the scan stops with what it found and says so.
 */
import { JaxServeError, valueOpener, type Checkpoint, type FileOpener } from '../core/index';
import { HandleCache } from '../core/node/index';
import type { Args, OptionSpec } from './args';
import { printErr } from './output';

/** The default time budget of a scan, in seconds. */
export const DEFAULT_MAX_SECONDS = 3600;

export const SCAN_OPTIONS: readonly OptionSpec[] = [
  { name: '--max-seconds', value: 'S', default: String(DEFAULT_MAX_SECONDS), description: 'Stop after S seconds with what was found (exit 2).' },
  { name: '--progress-json', description: 'Report progress as JSON lines on stderr instead of a progress line.' },
];

export interface ScanControl {
  readonly signal: AbortSignal;
  readonly budgetMs: number;
  readonly maxSeconds: number;
  onProgress(done: number, total: number, what: string): void;
  /** Stops listening for Ctrl-C and ends a progress line. */
  done(): void;
}

/**
 * The opener a scan reads `ck`'s values through: its files kept open between tensors (a scan reads
 * the same few shards a million times), or the checkpoint's own opener (Orbax, through the sidecar).
 */
export function scanOpener(ck: Checkpoint, opener: FileOpener): { readonly values: FileOpener; close(): Promise<void> } {
  const own = valueOpener(ck, opener);
  if (own !== opener) return { values: own, close: async () => undefined };
  const cache = new HandleCache(opener);
  return { values: cache, close: () => cache.close() };
}

export function scanControl(args: Args): ScanControl {
  const maxSeconds = Number(args.values.get('--max-seconds')?.at(-1) ?? DEFAULT_MAX_SECONDS);
  if (!(maxSeconds > 0) || !Number.isFinite(maxSeconds)) throw new JaxServeError('E_USAGE', '--max-seconds takes a number of seconds above 0.');
  const ac = new AbortController();
  const onSigint = () => ac.abort();
  process.once('SIGINT', onSigint);
  let shown = 0;
  let line = false;
  return {
    signal: ac.signal,
    budgetMs: maxSeconds * 1000,
    maxSeconds,
    onProgress(done, total, what) {
      if (Date.now() - shown < 200 && done < total) return;
      shown = Date.now();
      if (args.flags.has('--progress-json')) printErr(JSON.stringify({ done, total }) + '\n');
      else if (!args.json && process.stderr.isTTY) {
        process.stderr.write(`\r${done} of ${total} ${what}`);
        line = true;
      }
    },
    done() {
      process.off('SIGINT', onSigint);
      if (line) process.stderr.write('\n');
    },
  };
}
