/**
 * Runs the bundled CLI as a child process for the long commands (convert, import, verify): the
 * work stays off the extension host's thread, a cancel is a SIGTERM the CLI turns into a clean
 * abort (nothing half-written stays), and what it prints goes to the log channel. The extension
 * host's own runtime runs it; in desktop VS Code that is Electron, told to act as Node.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import * as vscode from 'vscode';

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliRun {
  readonly args: readonly string[];
  readonly token?: vscode.CancellationToken;
  /** Each `{"done","total"}` line of --progress-json. */
  readonly onProgress?: (done: number, total: number) => void;
}

export class Cli {
  constructor(
    private readonly extensionPath: string,
    readonly log: vscode.LogOutputChannel,
  ) {}

  get script(): string {
    return path.join(this.extensionPath, 'dist', 'cli.js');
  }

  run({ args, token, onProgress }: CliRun): Promise<CliResult> {
    if (!vscode.workspace.isTrusted) return Promise.reject(new Error(vscode.l10n.t('jax-serve runs no process in Restricted Mode; trust the workspace first.')));
    this.log.info(`$ jax-serve ${args.map((a) => (/[\s"']/.test(a) ? JSON.stringify(a) : a)).join(' ')}`);
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [this.script, ...args], { env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      let pending = '';
      child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
      child.stderr.setEncoding('utf8').on('data', (s: string) => {
        pending += s;
        const lines = pending.split('\n');
        pending = lines.pop()!;
        for (const line of lines) {
          const p = /^\{"done":(\d+),"total":(\d+)\}$/.exec(line);
          if (p) onProgress?.(Number(p[1]), Number(p[2]));
          else if (line.trim()) {
            stderr += line + '\n';
            this.log.info(line);
          }
        }
      });
      const cancel = token?.onCancellationRequested(() => {
        this.log.info('cancelled: stopping jax-serve');
        child.kill('SIGTERM');
      });
      child.on('error', (e) => {
        cancel?.dispose();
        reject(e);
      });
      child.on('close', (code) => {
        cancel?.dispose();
        if (pending.trim()) {
          stderr += pending;
          this.log.info(pending);
        }
        if (code !== 0) this.log.warn(`jax-serve exited with ${code}`);
        resolve({ code, stdout, stderr });
      });
    });
  }
}

/** The CLI's own error line ("jax-serve: …"), for a message; the whole output is in the log. */
export function cliError(r: CliResult): string {
  const line = r.stderr.split('\n').reverse().find((l) => l.startsWith('jax-serve: '));
  return (line ?? r.stderr.trim().split('\n').pop() ?? vscode.l10n.t('jax-serve exited with {0}', String(r.code))).replace(/^jax-serve: /, '').replace(/ \(jax-serve --help\)$/, '');
}
