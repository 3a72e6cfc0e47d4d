/**
 * The Python sidecar process (python/sidecar/jax_serve_sidecar.py): spawned once per interpreter
 * and kept alive, since importing tensorstore/orbax costs seconds. Requests are JSON lines on its
 * stdin; replies are JSON lines on its stdout, a read reply followed by its raw bytes. Requests may
 * overlap; replies are matched by id. A crashed sidecar fails what was pending and is started
 * again by the next request. Its messages (which carry names from the checkpoint) reach the user as
 * one line without control characters; a crash names what each pending request was reading.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as path from 'node:path';
import { isErrorCode, JaxServeError } from '../errors';
import { oneLine } from '../text';
import type { OrbaxBackend, OrbaxTree } from '../formats/orbax/reader';

export const SIDECAR_PROTOCOL = 1;
/** Python start plus `import tensorstore`; a cold disk can take a while, a hung interpreter must not hang us. */
const HELLO_TIMEOUT_MS = 60_000;
/** A reply line is metadata (a tree of a few 100k leaves at most); more means the stream is not ours. */
const MAX_LINE_BYTES = 256 * 1024 * 1024;
const STDERR_TAIL_LINES = 20;

export interface SidecarHello {
  readonly protocol: number;
  readonly python: string;
  readonly executable: string;
  readonly orbax: string | null;
  readonly tensorstore: string | null;
  readonly numpy: string | null;
}

export interface SidecarOptions {
  /** The interpreter to run. */
  readonly python: string;
  /** Path of jax_serve_sidecar.py. */
  readonly script: string;
  /** Said after "Python was not found" and similar: how the user picks another interpreter. */
  readonly interpreterHint?: string;
}

/** Where the sidecar script lies below a package root (the extension folder, or the CLI's). */
export function sidecarScript(packageRoot: string): string {
  return path.join(packageRoot, 'python', 'sidecar', 'jax_serve_sidecar.py');
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  /** What the request reads, for a crash message ("/ckpt", "array "w" of /ckpt/item"). */
  what?: string;
}

interface Reply {
  id: number | null;
  ok: boolean;
  result?: unknown;
  bytes?: number;
  error?: { code?: string; message?: string };
}

export class PythonSidecar implements OrbaxBackend {
  private proc: ChildProcessWithoutNullStreams | undefined;
  private hello_: Promise<SidecarHello> | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private line: Buffer = Buffer.alloc(0);
  private body: { id: number; buf: Buffer; filled: number } | undefined;
  private stderrTail: string[] = [];
  private disposed = false;

  constructor(readonly options: SidecarOptions) {}

  /** Starts the process if needed and checks it speaks our protocol; returns its versions. */
  hello(): Promise<SidecarHello> {
    if (!this.hello_) {
      const h = this.start();
      this.hello_ = h;
      h.catch(() => {
        if (this.hello_ === h) this.hello_ = undefined;
      });
    }
    return this.hello_;
  }

  async open(location: string, signal?: AbortSignal): Promise<OrbaxTree> {
    await this.hello();
    return (await this.request({ op: 'open', path: location }, signal, undefined, location)) as OrbaxTree;
  }

  async read(item: string, param: string, offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    await this.hello();
    return (await this.request({ op: 'read', path: item, param, offset, length }, signal, undefined, `array ${JSON.stringify(param)} of ${item}`)) as Uint8Array;
  }

  /** Which of jax/orbax the sidecar has imported: reading through tensorstore needs neither. */
  async modules(): Promise<string[]> {
    await this.hello();
    return (await this.request({ op: 'modules' })) as string[];
  }

  /** The process id, while one runs (tests kill it to check recovery). */
  get pid(): number | undefined {
    return this.proc?.pid;
  }

  dispose(): void {
    this.disposed = true;
    this.stop(new JaxServeError('E_CANCELLED', 'The Python sidecar was stopped.'));
  }

  private async start(): Promise<SidecarHello> {
    if (this.disposed) throw new JaxServeError('E_CANCELLED', 'The Python sidecar was stopped.');
    const { python, script } = this.options;
    // -B: write no __pycache__ beside the script (it may lie in a read-only extension folder).
    const proc = spawn(python, ['-B', '-u', script], { stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true });
    this.proc = proc;
    this.line = Buffer.alloc(0);
    this.body = undefined;
    this.stderrTail = [];
    proc.stdout.on('data', (d: Buffer) => this.onData(proc, d));
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (s: string) => {
      this.stderrTail.push(...s.split('\n').filter((l) => l.trim() !== ''));
      this.stderrTail = this.stderrTail.slice(-STDERR_TAIL_LINES);
    });
    proc.stdin.on('error', () => undefined); // EPIPE after a crash is reported through 'exit'
    proc.on('error', (e: NodeJS.ErrnoException) => {
      const why = e.code === 'ENOENT' ? 'was not found' : e.code === 'EACCES' ? 'is not executable' : `could not start (${e.message})`;
      this.fail(proc, new JaxServeError('E_UNSUPPORTED', `Python ${JSON.stringify(python)} ${why}.${this.hint()}`));
    });
    // 'close', not 'exit': by then stderr is drained, so the crash message can quote its last line.
    proc.on('close', (code, sig) => this.onExit(proc, code, sig));
    const hello = (await this.request({ op: 'hello' }, undefined, HELLO_TIMEOUT_MS)) as SidecarHello;
    if (hello?.protocol !== SIDECAR_PROTOCOL) {
      this.stop(new JaxServeError('E_UNSUPPORTED', 'sidecar protocol mismatch'));
      throw new JaxServeError('E_UNSUPPORTED', `${script} speaks sidecar protocol ${String(hello?.protocol)}, this jax-serve needs ${SIDECAR_PROTOCOL}; reinstall jax-serve.`);
    }
    return hello;
  }

  /**
   * The process ended under pending requests: each fails naming what it was reading. A signal other
   * than ours (tensorstore aborts with SIGABRT when it cannot allocate a chunk, say) is a crash on
   * that input; the last line it printed says why, kept to one clean line.
   */
  private onExit(proc: ChildProcessWithoutNullStreams, code: number | null, sig: NodeJS.Signals | null): void {
    if (proc !== this.proc) return;
    const python = this.options.python;
    const last = this.stderrTail.at(-1);
    const said = last ? ` Its last output: "${oneLine(last, { maxChars: 200 })}".` : '';
    const how = sig ? `crashed: it exited (${sig})` : `exited (code ${code})`;
    const killed = sig === 'SIGKILL' || sig === 'SIGTERM';
    const advice = sig && !killed ? ' The checkpoint may be damaged or made to crash readers: check it with orbax, or report it to jax-serve if orbax reads it.' : '';
    this.failEach(proc, (p) => new JaxServeError('E_IO', `${p.what ? `${p.what}: the` : 'The'} Python sidecar (${python}) ${how}${p.what ? ' while reading it' : ''}.${advice}${said}`));
  }

  private hint(): string {
    return this.options.interpreterHint ? ` ${this.options.interpreterHint}` : '';
  }

  private request(msg: Record<string, unknown>, signal?: AbortSignal, timeoutMs?: number, what?: string): Promise<unknown> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return Promise.reject(new JaxServeError('E_IO', 'The Python sidecar is not running.'));
    if (signal?.aborted) return Promise.reject(new JaxServeError('E_CANCELLED', 'Cancelled.'));
    const id = this.nextId++;
    return new Promise<unknown>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      // A cancelled request's reply still arrives; it is matched to this entry and dropped.
      const onAbort = () => {
        done();
        this.pending.set(id, { resolve: () => undefined, reject: () => undefined });
        reject(new JaxServeError('E_CANCELLED', 'Cancelled.'));
      };
      this.pending.set(id, {
        resolve: (v) => (done(), resolve(v)),
        reject: (e) => (done(), reject(e)),
        what,
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      if (timeoutMs) {
        timer = setTimeout(() => {
          this.stop(new JaxServeError('E_IO', `${this.options.python} did not answer within ${timeoutMs / 1000} s; is it a working Python?${this.hint()}`));
        }, timeoutMs);
      }
      proc.stdin.write(`${JSON.stringify({ id, ...msg })}\n`);
    });
  }

  private onData(proc: ChildProcessWithoutNullStreams, data: Buffer): void {
    if (proc !== this.proc) return;
    let d = data;
    while (d.length > 0) {
      const body = this.body;
      if (body) {
        const take = Math.min(d.length, body.buf.length - body.filled);
        d.copy(body.buf, body.filled, 0, take);
        body.filled += take;
        d = d.subarray(take);
        if (body.filled === body.buf.length) {
          this.body = undefined;
          this.settle(body.id, (p) => p.resolve(new Uint8Array(body.buf.buffer, body.buf.byteOffset, body.buf.length)));
        }
        continue;
      }
      const nl = d.indexOf(10);
      if (nl < 0) {
        this.line = Buffer.concat([this.line, d]);
        if (this.line.length > MAX_LINE_BYTES) this.protocolError(proc, 'a reply line is too long');
        return;
      }
      const text = Buffer.concat([this.line, d.subarray(0, nl)]).toString('utf8');
      this.line = Buffer.alloc(0);
      d = d.subarray(nl + 1);
      this.onLine(proc, text);
      if (proc !== this.proc) return;
    }
  }

  private onLine(proc: ChildProcessWithoutNullStreams, text: string): void {
    let reply: Reply;
    try {
      reply = JSON.parse(text) as Reply;
    } catch {
      return this.protocolError(proc, `it printed ${JSON.stringify(text.slice(0, 200))}`);
    }
    if (typeof reply !== 'object' || reply === null || typeof reply.ok !== 'boolean') return this.protocolError(proc, 'a reply has no "ok"');
    if (typeof reply.id !== 'number') {
      // The sidecar could not read a request line at all: nothing to match it to, so it is ours that broke.
      return this.protocolError(proc, typeof reply.error?.message === 'string' ? oneLine(reply.error.message) : 'a reply has no id');
    }
    const id = reply.id;
    if (reply.ok && typeof reply.bytes === 'number') {
      if (!Number.isSafeInteger(reply.bytes) || reply.bytes < 0) return this.protocolError(proc, 'a read reply has a bad length');
      if (reply.bytes === 0) this.settle(id, (p) => p.resolve(new Uint8Array(0)));
      else this.body = { id, buf: Buffer.allocUnsafe(reply.bytes), filled: 0 };
      return;
    }
    if (reply.ok) return this.settle(id, (p) => p.resolve(reply.result));
    const code = reply.error?.code;
    // The message names files from the checkpoint: one line, no control characters, whatever it holds.
    const message = typeof reply.error?.message === 'string' ? oneLine(reply.error.message) : '';
    this.settle(id, (p) => p.reject(new JaxServeError(code && isErrorCode(code) ? code : 'E_IO', message || 'The Python sidecar failed.')));
  }

  private settle(id: number, f: (p: Pending) => void): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    f(p);
  }

  private protocolError(proc: ChildProcessWithoutNullStreams, why: string): void {
    this.fail(proc, new JaxServeError('E_IO', `The Python sidecar (${this.options.python}) broke the protocol: ${why}.`));
    proc.kill();
  }

  /** Rejects everything pending on `proc` and forgets it, so the next request starts a new one. */
  private fail(proc: ChildProcessWithoutNullStreams, e: Error): void {
    this.failEach(proc, () => e);
  }

  private failEach(proc: ChildProcessWithoutNullStreams, error: (p: Pending) => Error): void {
    if (proc !== this.proc) return;
    this.proc = undefined;
    this.hello_ = undefined;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(error(p));
  }

  private stop(e: Error): void {
    const proc = this.proc;
    if (!proc) return;
    this.fail(proc, e);
    proc.stdin.end();
    proc.kill();
  }
}

/** One sidecar per interpreter, started on first use; dispose stops them all. */
export class SidecarPool {
  private readonly sidecars = new Map<string, PythonSidecar>();
  constructor(private readonly script: string) {}

  get(python: string, interpreterHint?: string): PythonSidecar {
    let s = this.sidecars.get(python);
    if (!s) this.sidecars.set(python, (s = new PythonSidecar({ python, script: this.script, interpreterHint })));
    return s;
  }

  dispose(): void {
    for (const s of this.sidecars.values()) s.dispose();
    this.sidecars.clear();
  }
}
