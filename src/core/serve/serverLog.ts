/**
 * Reads a server's output as it starts: the phases its engine goes through (weights k/N, compile,
 * graph capture, KV cache, precompile, HTTP, warm-up, ready) with when each began, whether the ready
 * line came, and, when the process exits early, why: the known causes its last lines show, and the
 * exception that ended its last Python traceback. Output arrives in pieces; progress bars redraw
 * with CR, so CR ends a line here too.
 */
import { stripControls } from '../text';
import type { EngineSpec, FailureCause, Phase } from './engines';

export interface PhaseSpan {
  readonly phase: Phase;
  /** ms since the server was started. */
  readonly at: number;
  /** What the log said of it (a KV cache's size and tokens). */
  readonly detail?: string;
}

/** The exception that ended a Python traceback, and where the log says it came from. */
export interface TracebackCause {
  /** e.g. "ModelWorkerClient hit an exception", "Scheduler hit an exception", "EngineCore failed to start", or "a traceback". */
  readonly place: string;
  /** The exception line, e.g. "TypeError: dot_general requires …". */
  readonly exception: string;
}

export interface StartupState {
  readonly phase: Phase;
  /** The weights phase's k/N, when the engine prints one. */
  readonly progress?: { readonly done: number; readonly total: number };
  /** Each phase once, in the order first seen. */
  readonly phases: readonly PhaseSpan[];
  readonly readyLine: boolean;
}

/** Lines kept for explaining an exit. */
const TAIL_LINES = 200;

export class ServerLog {
  private pending = '';
  private readonly tail: string[] = [];
  private phase: Phase = 'starting';
  private progress: StartupState['progress'];
  private readonly phases: PhaseSpan[] = [{ phase: 'starting', at: 0 }];
  private ready = false;
  private readonly t0: number;

  constructor(
    private readonly spec: EngineSpec,
    private readonly now: () => number = Date.now,
  ) {
    this.t0 = now();
  }

  /** Feeds output (stdout and stderr alike); returns the complete lines it held. */
  push(text: string): string[] {
    const parts = (this.pending + text).split(/\r\n|\r|\n/);
    this.pending = parts.pop() ?? '';
    for (const line of parts) this.line(line);
    return parts.filter((l) => l.trim() !== '');
  }

  /** The output ended: a last line without its end counts too. */
  end(): void {
    if (this.pending) this.line(this.pending);
    this.pending = '';
  }

  private line(raw: string): void {
    // A logger that colours its lines (a tty, FORCE_COLOR) puts escape sequences where the patterns
    // expect a word: they match the text as a person reads it.
    const line = stripControls(raw);
    if (line.trim() === '') return;
    this.tail.push(line);
    if (this.tail.length > TAIL_LINES) this.tail.shift();
    for (const p of this.spec.phases) {
      const m = p.pattern.exec(line);
      if (m) {
        this.enter(p.phase, p.detail?.(m));
        break;
      }
    }
    const m = this.spec.weightsProgress?.exec(line);
    if (m) {
      this.enter('weights');
      this.progress = { done: Number(m[1]), total: Number(m[2]) };
    }
    if (this.spec.readyLine.test(line)) {
      this.ready = true;
      this.enter('ready');
    }
  }

  private enter(phase: Phase, detail?: string): void {
    if (this.phase === 'ready') return;
    const i = this.phases.findIndex((s) => s.phase === phase);
    if (i < 0) this.phases.push({ phase, at: this.now() - this.t0, ...(detail === undefined ? {} : { detail }) });
    // A later line of the same phase may tell what the first did not.
    else if (detail !== undefined && this.phases[i]!.detail === undefined) this.phases[i] = { ...this.phases[i]!, detail };
    this.phase = phase;
  }

  get state(): StartupState {
    return { phase: this.phase, progress: this.progress, phases: [...this.phases], readyLine: this.ready };
  }

  /** The last lines, newest last. */
  lastLines(n = 20): string[] {
    return this.tail.slice(-n);
  }

  /**
   * Why the process exited, as far as its output tells: each known cause whose pattern matches a
   * kept line (most specific first, as the spec lists them), with the line that shows it.
   */
  explain(): { cause: FailureCause; line: string; text: string }[] {
    const found: { cause: FailureCause; line: string; text: string }[] = [];
    for (const cause of this.spec.failures) {
      for (const line of this.tail) {
        const m = cause.pattern.exec(line);
        if (!m || (cause.applies && !cause.applies(m))) continue;
        found.push({ cause, line, text: cause.describe?.(m) ?? cause.cause });
        break;
      }
    }
    return found;
  }

  /** The exception of the last traceback in the kept lines that is a cause (see lastTraceback). */
  traceback(): TracebackCause | undefined {
    return lastTraceback(this.tail);
  }

  /** True when a kept line shows the engine ended its own process tree. */
  killedItself(): boolean {
    const p = this.spec.killsItself;
    return p !== undefined && this.tail.some((l) => p.test(l));
  }
}

/**
 * Log prefixes put before each line of a traceback by Python loggers: vLLM's "(EngineCore_DP0
 * pid=711) ERROR 11-27 06:01:02 [core.py:708] ", SGLang's "[2026-12-04 04:28:19] " or
 * "[2025-10-16 09:06:10 TP0] ".
 */
const LOG_PREFIX = /^(?:\(\w+ pid=\d+\) )?(?:(?:DEBUG|INFO|WARNING|ERROR|CRITICAL) \d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \[[^\]]*\] ?)?(?:\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[^\]]*\] )?/;
const TRACEBACK = 'Traceback (most recent call last):';
/**
 * The bars Python 3.11+ draws before each line of an exception group's traceback ("  | ", "    | | "):
 * anyio's and asyncio's TaskGroups (uvicorn, starlette) wrap a server's failure in one.
 */
const GROUP_BARS = /^\s*(?:\| ?)+/;
/**
 * The line that ends a traceback's frames: `module.Class: message` or a bare `Class`. A class name
 * has a lower-case letter (so uvicorn's "INFO:     …" interleaved in a traceback is not one).
 */
const EXCEPTION_LINE = /^(?:[A-Za-z_]\w*\.)*[A-Z]\w*[a-z]\w*(?::(?:\s.*)?)?$/;
/** Chained tracebacks: the later one continues the earlier one's place. */
const CHAINED = /^(?:During handling of the above exception, another exception occurred|The above exception was the direct cause of the following exception):$/;
/** Exceptions that are a stop, not a cause: Ctrl-C (our SIGINT), a clean exit. */
const NOT_A_CAUSE = /^(?:KeyboardInterrupt|SystemExit|asyncio\.exceptions\.CancelledError|CancelledError)(?::|$)/;
/** A wrapper that points at the cause printed before it (vLLM's API server after its engine core died). */
const SEE_ABOVE = /See root cause above/i;
/** Lines a traceback may run to before it is given up as cut off. */
const MAX_TRACEBACK_LINES = 400;

/**
 * The exception that ended the last traceback in `lines` that is a cause: not a KeyboardInterrupt or
 * SystemExit (our own stop), and not a wrapper that says the root cause is above (then the one
 * before it). The exception line is the first unindented line after the frames, not the last line of
 * the output: JAX adds "--------------------" and "For simplicity, JAX has removed its internal
 * frames…" after it. The place is the text before "Traceback" on its line ("ModelWorkerClient hit an
 * exception: Traceback …"), else the line before a bare "Traceback" when it says what failed
 * ("EngineCore failed to start."), else "a traceback".
 */
export function lastTraceback(lines: readonly string[]): TracebackCause | undefined {
  const found: TracebackCause[] = [];
  let open: { place: string; lines: number } | undefined;
  let lastPlace: string | undefined;
  let prev = '';
  for (const raw of lines) {
    const line = stripControls(raw).replace(LOG_PREFIX, '').replace(GROUP_BARS, '');
    const t = line.indexOf(TRACEBACK);
    if (t >= 0) {
      const before = line.slice(0, t).trim().replace(/:$/, '').replace(/^\+\s*/, '').trim();
      const above = prev.trim().replace(/[:.]$/, '').trim();
      const place = before || (CHAINED.test(prev.trim()) && lastPlace) || (/fail|error|exception/i.test(above) && !EXCEPTION_LINE.test(prev.trim()) ? above : 'a traceback');
      open = { place, lines: 0 };
    } else if (open) {
      if (/^\s/.test(line) || line.trim() === '') {
        if (++open.lines > MAX_TRACEBACK_LINES) open = undefined;
      } else if (EXCEPTION_LINE.test(line.trim())) {
        found.push({ place: open.place, exception: line.trim() });
        lastPlace = open.place;
        open = undefined;
      } else if (++open.lines > MAX_TRACEBACK_LINES) open = undefined;
    }
    if (line.trim() !== '') prev = line;
  }
  const causes = found.filter((c) => !NOT_A_CAUSE.test(c.exception));
  return causes.filter((c) => !SEE_ABOVE.test(c.exception)).at(-1) ?? causes.at(-1);
}

/**
 * One message for an early exit (the process ended while jax-serve was not stopping it). Its first
 * line says how it ended and why: the exception of its last traceback with where it came from, and
 * the known causes with what to do; the lines that show them follow, else its last lines.
 */
export function describeExit(spec: EngineSpec, log: ServerLog, code: number | null, signal: string | null): string {
  const how = signal
    ? log.killedItself()
      ? `ended its own processes (${signal}) after one of them failed,`
      : `was ended by ${signal}, which jax-serve did not send,`
    : `exited by itself (code ${code})`;
  const causes = log.explain();
  const tb = log.traceback();
  // The exception first: the first line may be cut (MAX_MESSAGE_CHARS), and it is the evidence.
  const why = [...(tb ? [`${tb.place}: ${tb.exception}`] : []), ...causes.map((c) => `${c.text}. ${c.cause.hint}`)];
  if (why.length === 0) return `${spec.title} ${how} before it was ready. Its last lines:\n${log.lastLines(12).join('\n')}`;
  const shown = causes.map((c) => `  ${c.line.trim()}`).filter((l) => !tb || !l.includes(tb.exception));
  return [`${spec.title} ${how} before it was ready: ${why.join(' — ')}`, ...shown].join('\n');
}
