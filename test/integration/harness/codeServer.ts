/**
 * Starts a throw-away code-server (the real VS Code, see ../shared/vscode-host.md) on a free port,
 * waits for it over HTTP, and stops it with its whole process group. Its log and the extension
 * host's logs can be dumped when a test fails.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export { repoRoot } from '../../repoRoot';

export interface CodeServer {
  readonly url: string;
  readonly port: number;
  readonly userDataDir: string;
  /** Rewrites the user settings; the running workbench applies them (e.g. a colour theme) live. */
  setSettings(settings: Record<string, unknown>): void;
  /** code-server's own output plus every extension-host log, for failure reports. */
  logs(): string;
  stop(): Promise<void>;
}

export interface CodeServerOptions {
  /** Leave workspace trust on (the default server disables it, as a developer's would). */
  trust?: boolean;
  /** Extra environment for the server and so for the extension host. */
  env?: Record<string, string>;
  readyTimeoutMs?: number;
  /** A .vsix to install into the server's extensions folder before it starts, as a user would. */
  installVsix?: string;
  /** User settings written before start (settings.json in the server's user-data-dir). */
  settings?: Record<string, unknown>;
}

export function vscodeHostHome(): string {
  const home = process.env.JAX_SERVE_VSCODE_HOST;
  if (!home || !existsSync(join(home, 'cs', 'bin', 'code-server'))) {
    throw new Error('JAX_SERVE_VSCODE_HOST does not point at an install: run test/setup/vscode-host.sh (npm test does).');
  }
  return home;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

async function waitHttp(url: string, timeoutMs: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`code-server exited with ${child.exitCode} before it was ready:\n${log()}`);
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (r.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`code-server was not ready at ${url} within ${timeoutMs} ms:\n${log()}`);
}

export async function startCodeServer(opts: CodeServerOptions = {}): Promise<CodeServer> {
  const home = vscodeHostHome();
  const port = await freePort();
  const tmp = mkdtempSync(join(tmpdir(), 'jax-serve-cs-'));
  const config = join(tmp, 'config.yaml');
  writeFileSync(config, '');
  const userDataDir = join(tmp, 'data');
  const base = {
    'workbench.startupEditor': 'none',
    'security.workspace.trust.startupPrompt': 'never',
    'workbench.secondarySideBar.defaultVisibility': 'hidden', // the chat panel would take a third of the screenshots
    'chat.disableAIFeatures': true,
    ...opts.settings,
  };
  const setSettings = (settings: Record<string, unknown>) => {
    // The extension host runs on the server, which reads machine-scoped settings (jaxServe.pythonPath)
    // only from its Machine settings: from User settings it drops them once the configuration is
    // refreshed. So both files get the settings.
    for (const scope of ['User', 'Machine']) {
      mkdirSync(join(userDataDir, scope), { recursive: true });
      writeFileSync(join(userDataDir, scope, 'settings.json'), JSON.stringify({ ...base, ...settings }, null, 2));
    }
  };
  setSettings({});
  const args = [
    '--config', config,
    '--bind-addr', `127.0.0.1:${port}`,
    '--auth', 'none',
    '--user-data-dir', userDataDir,
    '--extensions-dir', join(tmp, 'ext'),
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-getting-started-override',
    '--vscode-option', 'enable-smoke-test-driver', // without it the built workbench ignores the test payload
  ];
  if (!opts.trust) args.push('--disable-workspace-trust');
  // JAX_SERVE_CODE_SERVER marks this server's processes (its extension host inherits it), so a test
  // can tell them from another server's on the same machine.
  const env = { ...process.env, PATH: `${join(home, 'node24', 'package', 'bin')}:${process.env.PATH}`, JAX_SERVE_CODE_SERVER: userDataDir, ...opts.env };
  if (opts.installVsix) {
    const r = spawnSync(join(home, 'cs', 'bin', 'code-server'), ['--extensions-dir', join(tmp, 'ext'), '--user-data-dir', userDataDir, '--install-extension', opts.installVsix], { env, encoding: 'utf8' });
    if (r.status !== 0 || !/successfully installed/i.test(r.stdout + r.stderr)) {
      rmSync(tmp, { recursive: true, force: true });
      throw new Error(`code-server could not install ${opts.installVsix}:\n${r.stdout}${r.stderr}`);
    }
  }
  let out = '';
  const child = spawn(join(home, 'cs', 'bin', 'code-server'), args, {
    detached: true, // own process group, so stop() takes the extension hosts with it
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (b: Buffer) => {
    out += b.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const logs = () => {
    const parts = [`--- code-server (port ${port}) ---\n${out}`];
    for (const f of findLogs(join(userDataDir, 'logs'))) parts.push(`--- ${f} ---\n${readFileSync(f, 'utf8').slice(-20_000)}`);
    return parts.join('\n');
  };
  const stop = async () => {
    if (child.exitCode === null) {
      const gone = new Promise((r) => child.once('exit', r));
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        // already gone
      }
      const t = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }, 5000);
      await gone;
      clearTimeout(t);
    }
    rmSync(tmp, { recursive: true, force: true });
  };
  try {
    await waitHttp(`http://127.0.0.1:${port}/healthz`, opts.readyTimeoutMs ?? 120_000, child, logs);
  } catch (e) {
    await stop();
    throw e;
  }
  return { url: `http://127.0.0.1:${port}`, port, userDataDir, setSettings, logs, stop };
}

function findLogs(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findLogs(p));
    else if (/exthost|remoteexthost|remoteagent/i.test(p) && p.endsWith('.log')) out.push(p);
  }
  return out;
}
