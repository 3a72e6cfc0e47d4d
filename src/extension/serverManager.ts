/**
 * The server the user started from the editor: one at a time, in its own process group with a
 * watchdog beside it, listed in a registry file (swept on the next activation, so a server never
 * outlives a crashed window), its output in the "JAX Serve: Server" channel, its state in the
 * status bar. Launch profiles are kept per workspace. Core does the work (ServerProcess, engine
 * specs, launch profiles); this holds the VS Code side. Nothing is spawned in an untrusted workspace.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { describeError, engineById, isJaxServeError, launchOptions, oneLine, stripControls, type EngineSpec, type LaunchOptions, type LaunchProfile, type ServerTextLog } from '../core/index';
import { freePort, ServerProcess, ServerRegistry, type ServerState } from '../core/node/index';
import type { ProfileView, ServerView } from '../shared/serveProtocol';
import { Disposable } from './dispose';
import type { GenerateCommands } from './generateCommands';
import { choosePython } from './python';

const PROFILES_KEY = 'jaxServe.serveProfiles';
const FORM_KEY = 'jaxServe.serveForm';

/** Where the full text of a server's output and errors is: messages name it in "(N more lines in …)". */
const CHANNEL_HINT = 'the "JAX Serve: Server" output';

const DEFAULT_PROFILE: ProfileView = { name: '', engine: 'vllm', model: '', host: '127.0.0.1' };

interface Running {
  readonly server: ServerProcess;
  readonly spec: EngineSpec;
  readonly launch: LaunchOptions;
  readonly startedAt: number;
  readyAfter?: number;
}

export class ServerManager extends Disposable {
  private running: Running | undefined;
  private readonly registry: ServerRegistry;
  private readonly out = this._register(vscode.window.createOutputChannel('JAX Serve: Server'));
  private readonly status = this._register(vscode.window.createStatusBarItem('jaxServe.serverProcess', vscode.StatusBarAlignment.Left, 51));
  private readonly changed = this._register(new vscode.EventEmitter<ServerView | undefined>());
  /** Fires with the server's view on every state change (undefined: none started). */
  readonly onDidChange = this.changed.event;
  /** Servers stopped by the sweep at activation (the test API reads it). */
  swept = 0;
  /** Ticks the status bar's elapsed time while a server starts. */
  private tick: ReturnType<typeof setInterval> | undefined;
  /** A server's whole error text (controls stripped) for this channel; notifications carry its first line. */
  readonly serverLog: ServerTextLog = { where: CHANNEL_HINT, append: (url, text) => this.out.appendLine(`\n${url} said:\n${text.trimEnd()}`) };

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly generate: GenerateCommands,
    private readonly lastExport: () => string | undefined,
  ) {
    super();
    // Generations against the attached server report into the same channel.
    generate.serverLog = this.serverLog;
    this.registry = new ServerRegistry(path.join(context.globalStorageUri.fsPath, 'servers.json'));
    this.status.name = 'JAX Serve model server';
    this.status.command = 'jaxServe.openServePanel';
    this._register(vscode.commands.registerCommand('jaxServe.stopServer', () => this.stop()));
    this._register(vscode.commands.registerCommand('jaxServe.showServerLog', () => this.out.show(true)));
    // For automation (tests, other extensions): saves a launch profile as the panel's Save Profile does.
    this._register(vscode.commands.registerCommand('jaxServe.saveServeProfile', (p: ProfileView) => this.saveProfile(p)));
  }

  /** Stops servers a previous window started and did not stop (it crashed, or was killed with its watchdog). */
  async sweep(): Promise<void> {
    const stopped = await this.registry.sweep();
    this.swept += stopped.length;
    for (const s of stopped) this.out.appendLine(`Stopped ${s.title} (process group ${s.pgid}, ${s.url}): it was left running by a window that is gone.`);
  }

  get profiles(): ProfileView[] {
    return this.context.workspaceState.get<ProfileView[]>(PROFILES_KEY, []);
  }

  async saveProfile(p: ProfileView): Promise<ProfileView[]> {
    if (!p.name.trim()) throw new Error('Name the profile to save it.');
    const list = [...this.profiles.filter((x) => x.name !== p.name), { ...p, name: p.name.trim() }].sort((a, b) => a.name.localeCompare(b.name));
    await this.context.workspaceState.update(PROFILES_KEY, list);
    return list;
  }

  async deleteProfile(name: string): Promise<ProfileView[]> {
    const list = this.profiles.filter((x) => x.name !== name);
    await this.context.workspaceState.update(PROFILES_KEY, list);
    return list;
  }

  /** The form as last started, else a new one on the last export. */
  get form(): ProfileView {
    const saved = this.context.workspaceState.get<ProfileView>(FORM_KEY) ?? DEFAULT_PROFILE;
    return saved.model ? saved : { ...saved, model: this.lastExport() ?? '' };
  }

  /** The engine of the server started here at `url` (undefined: none, or another server). */
  specAt(url: string): EngineSpec | undefined {
    return this.running?.server.url === url ? this.running.spec : undefined;
  }

  /** The folder the current server was started on (the one its failures concern). */
  get folder(): string | undefined {
    return this.running?.launch.model;
  }

  /** The engine of the current server (whose rules its preflight applies). */
  get engine(): string | undefined {
    return this.running?.spec.id;
  }

  get view(): ServerView | undefined {
    const r = this.running;
    if (!r) return undefined;
    return viewOf(r, r.server.state);
  }

  /** What the test API reads. */
  get state(): (ServerState & { model: string }) | undefined {
    return this.running && { ...this.running.server.state, model: this.running.spec.modelName(this.running.launch) };
  }

  get busy(): boolean {
    const s = this.running?.server.state.status;
    return s === 'starting' || s === 'ready' || s === 'stopping';
  }

  /**
   * Starts a server on a profile and resolves once it is spawned (readiness follows in the status
   * bar, the panel and a message; when ready, generation attaches to it). Undefined when nothing
   * was started: untrusted, declined, or an input error (shown).
   */
  async start(profile: ProfileView): Promise<ServerView | undefined> {
    if (!vscode.workspace.isTrusted) {
      void vscode.window.showErrorMessage('JAX Serve starts no server in Restricted Mode: trust this workspace first.', 'Manage Workspace Trust').then((p) => p && vscode.commands.executeCommand('workbench.trust.manage'));
      return undefined;
    }
    const spec = engineById(profile.engine);
    if (!spec) {
      void vscode.window.showErrorMessage(`Start Server: unknown engine "${profile.engine}".`);
      return undefined;
    }
    if (this.busy) {
      const ok = await vscode.window.showWarningMessage(`${this.running!.spec.title} is running at ${this.running!.server.url}. Stop it and start ${spec.title}?`, { modal: true }, 'Stop and Start');
      if (ok !== 'Stop and Start') return undefined;
      await this.stop();
    }
    await this.context.workspaceState.update(FORM_KEY, profile);
    // A relative folder is the workspace's; a launch command's folder may be one inside a container, so only a local one is checked.
    const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const model = profile.model.trim();
    if (model && !path.isAbsolute(model) && root) profile = { ...profile, model: path.join(root, model) };
    if (model && !profile.command?.trim() && !existsSync(profile.model)) {
      void vscode.window.showErrorMessage(`Start Server: the model folder ${profile.model} does not exist. Choose an export folder (Browse…).`);
      return undefined;
    }
    let launch: LaunchOptions;
    let env: Record<string, string>;
    try {
      // The interpreter of VS Code's Python (or jaxServe.pythonPath), unless the profile names one or a command.
      const python = profile.python?.trim() || profile.command?.trim() ? undefined : (await choosePython(profile.model ? vscode.Uri.file(profile.model) : undefined)).python;
      const port = profile.port ?? (await freePort(profile.host.trim() || undefined));
      ({ launch, env } = launchOptions(profile as LaunchProfile, port, python));
    } catch (e) {
      void vscode.window.showErrorMessage(`Start Server: ${describeError(e)}`);
      return undefined;
    }
    let server: ServerProcess;
    try {
      server = await ServerProcess.start({
        spec,
        launch,
        env,
        watchdog: path.join(this.context.extensionPath, 'dist', 'serverWatchdog.js'),
        onLine: (l) => this.out.appendLine(stripControls(l)),
        onState: (s) => this.onState(s),
      });
    } catch (e) {
      void vscode.window.showErrorMessage(`Start Server: ${describeError(e)}`);
      return undefined;
    }
    const running: Running = { server, spec, launch, startedAt: Date.now() };
    this.running = running;
    const { command, args } = server.command;
    this.out.appendLine(`\n$ ${[command, ...args].map((a) => (/[\s"'$]/.test(a) ? JSON.stringify(a) : a)).join(' ')}`);
    if (server.state.pid) this.registry.add(server.state.pid, spec.title, server.url);
    this.onState(server.state);
    server.ready().then(
      () => {
        running.readyAfter = Date.now() - running.startedAt;
        this.changed.fire(this.view);
        void this.generate.attach(server.url, spec.modelName(launch));
        void vscode.window.showInformationMessage(`${spec.title} is ready at ${server.url} after ${(running.readyAfter / 1000).toFixed(1)} s.`, 'Open Serve Panel').then((p) => p && vscode.commands.executeCommand('jaxServe.openServePanel'));
      },
      (e) => {
        if (isJaxServeError(e) && e.code === 'E_CANCELLED') return;
        const actions = server.log.explain().some((c) => c.cause.preflight) ? ['Preflight Export', 'Show Log'] : ['Show Log'];
        void vscode.window.showErrorMessage(`Start Server: ${oneLine(describeError(e), { logHint: CHANNEL_HINT })}`, ...actions).then((p) => {
          if (p === 'Show Log') this.out.show(true);
          if (p === 'Preflight Export') void vscode.commands.executeCommand('jaxServe.preflight', vscode.Uri.file(launch.model), spec.id);
        });
      },
    );
    return this.view;
  }

  private onState(s: ServerState): void {
    const r = this.running;
    if (!r) return;
    if ((s.status === 'stopped' || s.status === 'failed') && s.pid) this.registry.remove(s.pid);
    if (s.status === 'failed' && s.message) this.out.appendLine(`\n${stripControls(s.message)}`);
    this.showStatus(r, s);
    clearInterval(this.tick);
    this.tick = s.status === 'starting' ? setInterval(() => this.showStatus(r, r.server.state), 1000) : undefined;
    this.changed.fire(viewOf(r, s));
  }

  private showStatus(r: Running, s: ServerState): void {
    const name = r.spec.shortName;
    const secs = `${((Date.now() - r.startedAt) / 1000).toFixed(0)} s`;
    const progress = s.startup.progress && s.startup.phase === 'weights' ? ` ${s.startup.progress.done}/${s.startup.progress.total}` : '';
    const [icon, text, tip] =
      s.status === 'starting'
        ? ['$(loading~spin)', `${name}: ${s.startup.phase}${progress} (${secs})`, 'Starting; click for the Serve panel.']
        : s.status === 'ready'
          ? ['$(vm-running)', `${name} :${r.launch.port}`, `Serving ${r.spec.modelName(r.launch)} at ${s.url}; click for the Serve panel.`]
          : s.status === 'stopping'
            ? ['$(loading~spin)', `${name}: stopping`, 'Stopping the server\'s process group.']
            : s.status === 'failed'
              ? ['$(error)', `${name}: failed`, oneLine(s.message ?? 'The server exited.', { logHint: CHANNEL_HINT })]
              : ['$(vm-outline)', `${name}: stopped`, 'Stopped; click to start it again from the Serve panel.'];
    this.status.text = `${icon} ${text}`;
    this.status.tooltip = tip;
    this.status.backgroundColor = s.status === 'failed' ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
    this.status.show();
  }

  /** Stops the server's whole group (SIGINT, SIGTERM, SIGKILL) and resolves when it is gone. */
  async stop(): Promise<void> {
    const r = this.running;
    if (!r || !this.busy) return;
    await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: `Stopping ${r.spec.title}` }, () => r.server.stop());
  }

  /** For deactivate: stop without UI. */
  async stopQuietly(): Promise<void> {
    clearInterval(this.tick);
    await this.running?.server.stop(2000).catch(() => undefined);
  }

  override dispose(): void {
    clearInterval(this.tick);
    super.dispose();
  }
}

function viewOf(r: Running, s: ServerState): ServerView {
  return {
    status: s.status,
    engine: r.spec.title,
    url: s.url,
    model: r.spec.modelName(r.launch),
    phases: s.startup.phases,
    progress: s.startup.progress,
    startedAt: r.startedAt,
    readyAfter: r.readyAfter,
    message: s.message,
    preflight: s.status === 'failed' && r.server.log.explain().some((c) => c.cause.preflight),
  };
}
