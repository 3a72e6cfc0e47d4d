/**
 * The bad-input promise, asserted the same way for every family of hostile input (the
 * `hostile*.test.ts` suites): the CLI exits 2 with one line on stderr that names the file, with no
 * stack trace, traceback, raw exception name or control character; nothing outside the folder the
 * user named is read (a canary planted outside, reached by a symlink, never appears in any output);
 * the source's bytes are unchanged; and no incomplete output folder lacks `.partial` in its name.
 */
import * as assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const cli = resolve(__dirname, '../../../dist/cli.js');

/** The fuzz seed and run count every hostile suite uses (fixed in CI; `npm run fuzz` raises the count). */
export const fuzzSeed = Number(process.env.JAX_SERVE_FUZZ_SEED ?? 20261205);
export const fuzzRuns = (base: number) => Math.max(1, Math.round(base * Number(process.env.JAX_SERVE_FUZZ_SCALE ?? 1)));

export interface CliResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI with a time limit (a hang fails the test instead of stalling the suite). */
export function runCli(args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): CliResult {
  const r: SpawnSyncReturns<string> = spawnSync(process.execPath, [cli, ...args], {
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 20_000,
    killSignal: 'SIGKILL',
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT') {
    throw new Error(`jax-serve ${args.join(' ')} ran past ${opts.timeoutMs ?? 20_000} ms (a hang)`);
  }
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;
const STACK = /^\s+at .+:\d+:\d+\)?$|Traceback \(most recent call last\)|\b(RangeError|TypeError|ReferenceError|SyntaxError|AttributeError|RecursionError|UnicodeDecodeError|KeyError|ValueError|OSError|AssertionError):|\b(UND_ERR_[A-Z_]+|HPE_[A-Z_]+)\b/m;

/** No stack trace, traceback, raw exception name or control character anywhere in `text`. */
export function assertCleanText(text: string, what: string): void {
  const c = CONTROL.exec(text.replace(/\n/g, ''));
  assert.ok(!c, `${what} carries control character U+${c?.[0].charCodeAt(0).toString(16).padStart(4, '0')}: ${JSON.stringify(text.slice(0, 400))}`);
  const s = STACK.exec(text);
  assert.ok(!s, `${what} carries a stack trace or raw exception (${JSON.stringify(s?.[0])}): ${JSON.stringify(text.slice(0, 400))}`);
}

/**
 * A clean refusal: exit 2, exactly one line on stderr, naming `file` (its base name is enough when
 * the full path appears nowhere), nothing that looks like a crash.
 */
export function assertRefused(r: CliResult, file: string | RegExp, what = 'the command'): void {
  const line = r.stderr.trimEnd();
  assert.equal(r.status, 2, `${what} should exit 2, got ${r.status ?? r.signal}; stderr: ${JSON.stringify(r.stderr.slice(0, 600))}; stdout: ${JSON.stringify(r.stdout.slice(0, 200))}`);
  assert.equal(line.split('\n').length, 1, `${what} should print one line on stderr, got: ${JSON.stringify(r.stderr.slice(0, 600))}`);
  assertCleanText(r.stderr, `${what}'s error`);
  assertCleanText(r.stdout, `${what}'s output`);
  if (typeof file === 'string') {
    const base = file.split('/').pop()!;
    assert.ok(line.includes(file) || line.includes(base), `${what}'s error should name ${file}: ${JSON.stringify(line)}`);
  } else assert.match(line, file, `${what}'s error should name the file`);
}

/** sha256 of every regular file under `dir` (or of the file), by relative path; links are recorded as their target. */
export function fingerprint(p: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (abs: string, rel: string, depth: number) => {
    if (depth > 32) return;
    const st = lstatSync(abs, { throwIfNoEntry: false });
    if (!st) return;
    if (st.isSymbolicLink()) out.set(rel, `link`);
    else if (st.isDirectory()) for (const n of readdirSync(abs).sort()) walk(join(abs, n), rel ? `${rel}/${n}` : n, depth + 1);
    else if (st.isFile()) out.set(rel, createHash('sha256').update(readFileSync(abs)).digest('hex'));
    else out.set(rel, 'special');
  };
  walk(p, '', 0);
  return out;
}

export function assertUnchanged(before: Map<string, string>, p: string, what: string): void {
  assert.deepEqual([...fingerprint(p)], [...before], `${what} changed`);
}

/** A canary outside every folder a test names: its bytes must appear in no output of any command. */
export class Canary {
  readonly text: string;
  constructor(readonly file: string, seed: number) {
    this.text = `CANARY-${seed.toString(16)}-${Math.random().toString(36).slice(2)}-PRIVATE-KEY`;
    writeFileSync(file, this.text);
  }
  /** Fails when the canary's text appears in the command's output or in any file under `dirs`. */
  assertNotLeaked(r: CliResult | undefined, dirs: string[]): void {
    if (r) assert.ok(!(r.stdout + r.stderr).includes(this.text), 'the canary leaked into the output');
    for (const d of dirs) {
      const walk = (abs: string, depth: number) => {
        if (depth > 32) return;
        const st = lstatSync(abs, { throwIfNoEntry: false });
        if (!st || st.isSymbolicLink()) return;
        if (st.isDirectory()) for (const n of readdirSync(abs)) walk(join(abs, n), depth + 1);
        else if (st.isFile() && st.size < 256 * 1024 * 1024) assert.ok(!readFileSync(abs).includes(this.text), `the canary leaked into ${abs}`);
      };
      walk(d, 0);
    }
  }
}

/**
 * No folder under `parent` looks like a finished export unless it is one: every folder that lacks
 * `config.json` plus its weights must carry `.partial` in its name. `complete` lists the folders
 * that may be complete exports.
 */
export function assertNoIncompleteOutput(parent: string, isComplete: (dir: string) => boolean): void {
  for (const n of readdirSync(parent)) {
    const abs = join(parent, n);
    const st = lstatSync(abs);
    if (!st.isDirectory() || n.includes('.partial')) continue;
    assert.ok(isComplete(abs), `${abs} is an incomplete output without .partial in its name`);
  }
}
