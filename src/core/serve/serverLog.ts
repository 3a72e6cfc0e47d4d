/**
 * Reads a server's output as it starts: the phases its engine goes through (weights k/N, compile,
 * graph capture, KV cache, HTTP, ready) with when each began, whether the ready line came, and,
 * when the process exits early, which known causes its last lines show. Output arrives in pieces;
 * progress bars redraw with CR, so CR ends a line here too.
 */
import type { EngineSpec, FailureCause, Phase } from './engines';

export interface PhaseSpan {
  readonly phase: Phase;
  /** ms since the server was started. */
  readonly at: number;
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

  private line(line: string): void {
    if (line.trim() === '') return;
    this.tail.push(line);
    if (this.tail.length > TAIL_LINES) this.tail.shift();
    for (const p of this.spec.phases) {
      if (p.pattern.test(line)) {
        this.enter(p.phase);
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

  private enter(phase: Phase): void {
    if (this.phase === phase || this.phase === 'ready') return;
    this.phase = phase;
    if (!this.phases.some((s) => s.phase === phase)) this.phases.push({ phase, at: this.now() - this.t0 });
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
  explain(): { cause: FailureCause; line: string }[] {
    const found: { cause: FailureCause; line: string }[] = [];
    for (const cause of this.spec.failures) {
      const line = this.tail.find((l) => cause.pattern.test(l));
      if (line !== undefined) found.push({ cause, line });
    }
    return found;
  }
}

/** One message for an early exit: the code or signal, the causes found, else the last lines. */
export function describeExit(spec: EngineSpec, log: ServerLog, code: number | null, signal: string | null): string {
  const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
  const causes = log.explain();
  if (causes.length === 0) return `${spec.title} ${how} before it was ready. Its last lines:\n${log.lastLines(12).join('\n')}`;
  return `${spec.title} ${how} before it was ready: ${causes.map((c) => `${c.cause.cause} (${c.cause.hint})`).join('; ')}\n${causes.map((c) => `  ${c.line.trim()}`).join('\n')}`;
}
