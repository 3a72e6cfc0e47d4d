/**
 * The recorded device runs of SGLang-JAX: every test/fixtures/sglang-jax-NAME/ folder that holds the two
 * logs and an expect.json (one per device run: engine commit, jax version, date in its name). Their
 * logs are the engine's output as jax-serve's stderr held it; a failed start's log ends with what
 * jax-serve itself printed, from the line starting with source.json's `ownLinesFrom`.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ENGINES, ServerLog } from '../../src/core/index';
import { repoRoot } from '../repoRoot';

const ROOT = repoRoot();
export const FIXTURES = join(ROOT, 'test/fixtures');
export const REPLAY_LOG = join(FIXTURES, 'standin/replay-log.mjs');
const CLI = join(ROOT, 'dist/cli.js');

export interface RunExpect {
  readonly log: string;
  readonly phases: string[];
  readonly progress?: [number, number];
  readonly details?: Record<string, string>;
  readonly ready: boolean;
  readonly servedModelName?: string;
  readonly traceback?: { place: string; exception: string };
  readonly causes?: string[];
  readonly killedItself?: boolean;
}

export interface RecordedRun {
  readonly name: string;
  readonly dir: string;
  readonly startup: RunExpect;
  readonly failure: RunExpect;
  /** The engine's own lines of a log (jax-serve's own output cut off). */
  engineText(log: string): string;
}

export function recordedRuns(): RecordedRun[] {
  return readdirSync(FIXTURES)
    .filter((d) => d.startsWith('sglang-jax-') && ['sglang-jax-startup-ready.log', 'sglang-jax-headdim16-fail.log', 'expect.json'].every((f) => existsSync(join(FIXTURES, d, f))))
    .map((name) => {
      const dir = join(FIXTURES, name);
      const expect = JSON.parse(readFileSync(join(dir, 'expect.json'), 'utf8')) as { startup: RunExpect; failure: RunExpect };
      const own = existsSync(join(dir, 'source.json')) ? (JSON.parse(readFileSync(join(dir, 'source.json'), 'utf8')) as { ownLinesFrom?: string }).ownLinesFrom : undefined;
      return {
        name,
        dir,
        ...expect,
        engineText: (log: string) => {
          const text = readFileSync(join(dir, log), 'utf8');
          if (!own) return text;
          const at = text.split('\n').findIndex((l) => l.startsWith(own));
          return at < 0 ? text : text.split('\n').slice(0, at).join('\n') + '\n';
        },
      };
    });
}

export interface CliRun {
  code: number | null;
  signal: string | null;
  out: string;
  err: string;
}

/** Runs `jax-serve serve` on a replayed run; once it prints "ready at URL", `whenReady` runs, then SIGINT (after 60 s regardless). */
export function serveReplayed(args: string[], env: Record<string, string>, whenReady?: (url: string) => Promise<void>): Promise<CliRun> {
  return new Promise((done) => {
    const base = { ...process.env };
    delete base.JAX_PLATFORMS; // --device cuda would be refused under another one
    const cli = spawn(process.execPath, [CLI, 'serve', ...args], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let sent = false;
    cli.stdout.on('data', (d) => {
      out += d;
      const url = /ready at (\S+)/.exec(out)?.[1];
      if (whenReady && !sent && url) {
        sent = true;
        void whenReady(url).finally(() => cli.kill('SIGINT'));
      }
    });
    cli.stderr.on('data', (d) => (err += d));
    // A replay that never gets ready or never ends is stopped as a user would (Ctrl-C), then killed,
    // so it cannot outlive the test: a replay takes seconds.
    const stop = setTimeout(() => {
      cli.kill('SIGINT');
      setTimeout(() => cli.kill('SIGKILL'), 10_000).unref();
    }, 60_000);
    cli.on('exit', (code, signal) => {
      clearTimeout(stop);
      done({ code, signal, out, err });
    });
  });
}

/** SGLang-JAX's log read as jax-serve reads it: in uneven pieces, as a pipe delivers them, on a clock of 7 ms a read. */
export function readServerLog(text: string): ServerLog {
  let clock = 0;
  const log = new ServerLog(ENGINES['sglang-jax'], () => (clock += 7));
  for (let i = 0; i < text.length; i += 113) log.push(text.slice(i, i + 113));
  log.end();
  return log;
}
