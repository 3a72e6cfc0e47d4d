/**
 * A model server we start: its own process group (so every worker it forks is stopped with it),
 * output read into phases (serverLog), ready when the engine's ready line has come and its health
 * endpoint answers as the engine means it, an early exit explained from its last lines, and a stop
 * that escalates SIGINT → SIGTERM → SIGKILL on the group and returns only when the group is gone.
 * A watchdog process (serverWatchdog.ts) stops the group if our process dies without stopping it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { JaxServeError } from '../errors';
import { checkDevice, type EngineSpec, type LaunchCommand, type LaunchOptions } from '../serve/engines';
import { describeExit, ServerLog, type StartupState } from '../serve/serverLog';
import type { ServerStatus } from '../serve/serveTypes';

export type { ServerStatus } from '../serve/serveTypes';

export interface ServerState {
  readonly status: ServerStatus;
  readonly startup: StartupState;
  readonly url: string;
  readonly pid: number | undefined;
  /** Why it failed or how it ended. */
  readonly message?: string;
}

export interface ServerProcessOptions {
  readonly spec: EngineSpec;
  readonly launch: LaunchOptions;
  readonly cwd?: string;
  /** Added to the environment (the engine's own variables come first, these win). */
  readonly env?: Readonly<Record<string, string>>;
  /** The watchdog script (dist/serverWatchdog.js); none, no watchdog. */
  readonly watchdog?: string;
  readonly onLine?: (line: string) => void;
  readonly onState?: (s: ServerState) => void;
  readonly healthIntervalMs?: number;
}

/** Resolves true when nothing listens on host:port (we can bind it). */
export function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

/** A port the OS says is free now. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/**
 * True while any process of group `pgid` lives. A member that exited but is not yet reaped (a
 * zombie, as an orphaned worker is until init collects it) does not count: on Linux the states
 * come from /proc; elsewhere a signal 0 to the group is the test.
 */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (e) {
    // EPERM: it exists but is not ours to signal.
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return true;
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') return true;
  }
  return false;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class ServerProcess {
  readonly url: string;
  readonly log: ServerLog;
  readonly command: LaunchCommand;
  private child: ChildProcess | undefined;
  private watchdog: ChildProcess | undefined;
  private status: ServerStatus = 'starting';
  private message: string | undefined;
  private healthOk = false;
  private readonly readyPromise: Promise<void>;
  private settle!: { resolve: () => void; reject: (e: Error) => void };
  private readonly exited: Promise<void>;
  private poll: ReturnType<typeof setInterval> | undefined;

  private constructor(private readonly opts: ServerProcessOptions) {
    this.command = opts.spec.launch(opts.launch);
    const host = opts.launch.host === '0.0.0.0' || opts.launch.host === '::' ? '127.0.0.1' : opts.launch.host;
    this.url = `http://${host.includes(':') ? `[${host}]` : host}:${opts.launch.port}`;
    this.log = new ServerLog(opts.spec);
    this.readyPromise = new Promise<void>((resolve, reject) => (this.settle = { resolve, reject }));
    // Nobody may be waiting for readiness (a stop before it): that rejection is not unhandled.
    this.readyPromise.catch(() => undefined);
    let exited!: () => void;
    this.exited = new Promise<void>((r) => (exited = r));
    this.spawn(exited);
  }

  /**
   * Starts the server. Refuses a port something already listens on, and a device its platform
   * variable contradicts (the engine would fail later, after its imports or loading the model, with
   * a less clear message).
   */
  static async start(opts: ServerProcessOptions): Promise<ServerProcess> {
    // A device the engine would refuse after seconds of imports is refused now (the environment as the child gets it).
    checkDevice(opts.spec, opts.launch.device, { ...process.env, ...opts.spec.launch(opts.launch).env, ...opts.env });
    if (!(await portFree(opts.launch.host, opts.launch.port))) {
      throw new JaxServeError('E_USAGE', `Port ${opts.launch.port} on ${opts.launch.host} is in use: pick another (or leave the port empty for a free one), or stop what listens there.`);
    }
    return new ServerProcess(opts);
  }

  get state(): ServerState {
    return { status: this.status, startup: this.log.state, url: this.url, pid: this.child?.pid, message: this.message };
  }

  /** Resolves when ready; rejects with E_SERVER (the exit, explained) or E_CANCELLED (stopped first). */
  ready(): Promise<void> {
    return this.readyPromise;
  }

  private setStatus(status: ServerStatus, message?: string): void {
    this.status = status;
    if (message !== undefined) this.message = message;
    this.opts.onState?.(this.state);
  }

  private spawn(exited: () => void): void {
    const { command, args, env } = this.command;
    const child = spawn(command, [...args], {
      cwd: this.opts.cwd,
      env: { ...process.env, ...env, ...this.opts.env },
      // Its own process group: a stop reaches every process it forks (engine cores, TP workers).
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const onData = (d: Buffer) => {
      const before = this.log.state;
      for (const line of this.log.push(d.toString('utf8'))) this.opts.onLine?.(line);
      const after = this.log.state;
      if (after.phase !== before.phase || after.progress?.done !== before.progress?.done) this.opts.onState?.(this.state);
      this.checkReady();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    let ended = false;
    const end = (code: number | null, signal: NodeJS.Signals | null) => {
      if (ended) return;
      ended = true;
      this.log.end();
      clearInterval(this.poll);
      if (this.status === 'starting') {
        const msg = this.message ?? describeExit(this.opts.spec, this.log, code, signal);
        this.setStatus('failed', msg);
        this.settle.reject(new JaxServeError('E_SERVER', msg));
      } else if (this.status === 'ready') {
        const tb = this.log.traceback();
        this.setStatus('failed', `${this.opts.spec.title} exited (${signal ?? `code ${code}`}) while serving${tb ? `: ${tb.place}: ${tb.exception}` : ''}. Its last lines:\n${this.log.lastLines(8).join('\n')}`);
      } else this.setStatus('stopped', `Stopped by jax-serve${signal ? ` (${signal})` : ''}.`);
      exited();
    };
    child.on('error', (e) => {
      this.message = `${command}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found. Choose the interpreter or command where the engine is installed' : e.message}`;
      // A spawn that failed has no process, and may never say 'exit'.
      if (child.pid === undefined) end(null, null);
    });
    // 'exit' can come before the last output is read (a traceback's end, the lines of a stop): wait for
    // the pipes to close, but not for long, since a forked worker left alive can hold them open.
    child.on('exit', (code, signal) => {
      const late = setTimeout(() => end(code, signal), 1000);
      child.once('close', () => {
        clearTimeout(late);
        end(code, signal);
      });
    });
    if (child.pid && this.opts.watchdog) {
      // The watchdog holds our end of a pipe; if we die, the pipe closes and it stops the group.
      this.watchdog = spawn(process.execPath, [this.opts.watchdog, String(child.pid)], { stdio: ['pipe', 'ignore', 'ignore'], detached: true, env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' } });
      this.watchdog.unref();
    }
    const every = this.opts.healthIntervalMs ?? 500;
    this.poll = setInterval(() => void this.pollHealth(), every);
  }

  private async pollHealth(): Promise<void> {
    if (this.status !== 'starting') return;
    try {
      const r = await fetch(this.url + this.opts.spec.health.path, { signal: AbortSignal.timeout(2000) });
      await r.body?.cancel();
      this.healthOk = this.opts.spec.health.ok(r.status);
    } catch {
      // Refused or timed out: still loading.
      this.healthOk = false;
    }
    this.checkReady();
  }

  private checkReady(): void {
    if (this.status !== 'starting' || !this.log.state.readyLine) return;
    if (!this.healthOk) {
      void this.pollHealth();
      return;
    }
    clearInterval(this.poll);
    this.setStatus('ready');
    this.settle.resolve();
  }

  /**
   * Stops the whole group: SIGINT (engines shut down cleanly on it), then SIGTERM, then SIGKILL,
   * `graceMs` apart; resolves when no process of the group is left.
   */
  async stop(graceMs = 5000): Promise<void> {
    const pid = this.child?.pid;
    if (!pid || this.status === 'stopped' || this.status === 'failed') {
      this.watchdog?.kill();
      return;
    }
    if (this.status === 'starting') this.settle.reject(new JaxServeError('E_CANCELLED', 'Stopped before it was ready.'));
    this.setStatus('stopping');
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGKILL'] as const) {
      try {
        process.kill(-pid, signal);
      } catch {
        break; // the group is gone
      }
      const deadline = Date.now() + (signal === 'SIGKILL' ? 10_000 : graceMs);
      while (groupAlive(pid) && Date.now() < deadline) await sleep(50);
      if (!groupAlive(pid)) break;
    }
    await this.exited;
    this.watchdog?.kill();
    if (groupAlive(pid)) throw new JaxServeError('E_IO', `Process group ${pid} of ${this.opts.spec.title} is still alive after SIGKILL.`);
  }
}
