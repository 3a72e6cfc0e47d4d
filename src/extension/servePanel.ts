/**
 * The Serve panel: a launch form (engine, model folder, host, port and engine options; saved
 * profiles), the server's load phases with their times, gauges from /metrics, and generations
 * against the attached server (completion or chat, sampling parameters, streamed, stoppable, with
 * TTFT, tokens/s, token counts and a history of runs). One panel; the host keeps every state, the
 * page shows it.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { describeError, describePromptCheck, ENGINES, fetchGauges, generate, isJaxServeError, metricsAbsentNote, offlineScript, splitWords, type EngineId, type GenerateApi, type LaunchProfile } from '../core/index';
import { checkServed } from '../core/node/index';
import { Rpc } from '../shared/rpc';
import { isServeWebviewToHost, type CheckView, type EngineView, type GaugesView, type ProfileView, type RunMode, type RunView, type SamplingView, type ServeHostToWebview, type ServeWebviewToHost } from '../shared/serveProtocol';
import { Disposable } from './dispose';
import type { GenerateCommands } from './generateCommands';
import type { ServerManager } from './serverManager';
import { choosePython } from './python';
import { openNamedUntitled } from './untitled';
import { webviewHtml, webviewOptions } from './webviewHtml';

export const SERVE_VIEW_TYPE = 'jaxServe.serve';
const HISTORY_KEY = 'jaxServe.runHistory';
const SAMPLING_KEY = 'jaxServe.sampling';
const MAX_HISTORY = 30;
/** Characters of a run's text kept in the history (the panel shows the whole text while it is open). */
const MAX_HISTORY_TEXT = 20_000;
/** Streamed text goes to the page at most this often. */
const FLUSH_MS = 50;
const GAUGES_MS = 2000;

const CHECK_APIS: readonly GenerateApi[] = ['sglang-generate', 'completions', 'chat'];

const ENGINE_VIEWS: EngineView[] = Object.values(ENGINES).map((e) => ({ id: e.id, title: e.title, memoryFlag: e.memoryFlag, devices: e.devices }));

export class ServePanel extends Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private rpc: Rpc<ServeHostToWebview, ServeWebviewToHost> | undefined;
  private nextRun = 1;
  private readonly runs = new Map<number, AbortController>();
  private gaugeTimer: ReturnType<typeof setInterval> | undefined;
  /** The last gauges read (the test API reads them). */
  gauges: GaugesView | undefined;
  /** Why there are none, when the last read found none (the test API reads it). */
  gaugesAbsent: string | undefined;
  /** Runs of this session and before, newest first. */
  history: RunView[];
  /** A folder to put in the form once the page is ready. */
  private pendingModel: string | undefined;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly manager: ServerManager,
    private readonly generateCommands: GenerateCommands,
  ) {
    super();
    this.history = context.workspaceState.get<RunView[]>(HISTORY_KEY, []);
    this._register(vscode.commands.registerCommand('jaxServe.openServePanel', (folder?: vscode.Uri) => this.show(folder?.fsPath)));
    // With a profile (or its name), starts it; from the palette, offers the saved profiles, else the panel.
    this._register(vscode.commands.registerCommand('jaxServe.startServer', async (profile?: ProfileView | string) => {
      let p = typeof profile === 'string' ? manager.profiles.find((x) => x.name === profile) : profile;
      if (!p && manager.profiles.length > 0) {
        const panel = { label: '$(vm-running) Open the Serve panel…', profile: undefined };
        const pick = await vscode.window.showQuickPick([...manager.profiles.map((x) => ({ label: x.name, description: `${x.engine} · ${x.model}`, profile: x })), panel], { title: 'Start Server: a saved profile' });
        if (!pick) return undefined;
        p = pick.profile;
      }
      if (p) return manager.start(p);
      this.show();
      return undefined;
    }));
    // From the palette: the panel's last form and sampling; a folder (the explorer, tests) overrides the form's.
    this._register(vscode.commands.registerCommand('jaxServe.createOfflineScript', (arg?: vscode.Uri | EngineId, folder?: string) => {
      const form = manager.form;
      const model = arg instanceof vscode.Uri ? arg.fsPath : (folder ?? form.model);
      const engine = typeof arg === 'string' ? arg : (form.engine as EngineId);
      return this.offlineScript({ ...form, engine, model }, 'completions', 'Hello, my name is', this.sampling);
    }));
    // The panel's button without its page: a folder (the explorer, tests) is the source, an API other than the default may be named.
    this._register(vscode.commands.registerCommand('jaxServe.checkAgainstSource', async (folder?: vscode.Uri | string, api?: GenerateApi) => {
      if (api !== undefined && !CHECK_APIS.includes(api)) throw new Error(`jaxServe.checkAgainstSource: the API is one of ${CHECK_APIS.join(', ')}.`);
      this.show();
      const r = await this.checkAgainstSource(folder instanceof vscode.Uri ? folder.fsPath : folder, api);
      this.rpc?.send(r);
      return r;
    }));
    this._register(manager.onDidChange((server) => {
      this.rpc?.send({ type: 'server', server });
      this.pollGauges();
    }));
    this._register(generateCommands.onDidAttach((attached) => {
      this.rpc?.send({ type: 'attached', attached });
      this.gauges = undefined;
      this.pollGauges();
    }));
  }

  private get sampling(): SamplingView {
    const s = vscode.workspace.getConfiguration('jaxServe.generate');
    return this.context.workspaceState.get<SamplingView>(SAMPLING_KEY) ?? { temperature: s.get('temperature', 0.7), topP: 1, maxTokens: s.get('maxTokens', 128), stop: '' };
  }

  /** Opens (or reveals) the panel; a folder given becomes the form's model folder. */
  show(model?: string): void {
    if (model) this.pendingModel = model;
    if (this.panel) {
      this.panel.reveal();
      if (model) this.rpc?.send({ type: 'model', path: model });
      return;
    }
    const panel = (this.panel = vscode.window.createWebviewPanel(SERVE_VIEW_TYPE, 'JAX Serve', vscode.ViewColumn.Active, { ...webviewOptions(this.context.extensionUri), retainContextWhenHidden: true }));
    panel.iconPath = new vscode.ThemeIcon('vm-running');
    const rpc = (this.rpc = new Rpc<ServeHostToWebview, ServeWebviewToHost>((env) => void panel.webview.postMessage(env), (m) => this.handle(m), isServeWebviewToHost));
    const sub = panel.webview.onDidReceiveMessage((m) => rpc.receive(m));
    panel.onDidChangeViewState(() => this.pollGauges());
    panel.onDidDispose(() => {
      for (const ac of this.runs.values()) ac.abort();
      clearInterval(this.gaugeTimer);
      this.gaugeTimer = undefined;
      rpc.dispose();
      sub.dispose();
      this.panel = this.rpc = undefined;
    });
    panel.webview.html = webviewHtml(panel.webview, this.context.extensionUri, 'serve', 'JAX Serve');
  }

  private async handle(m: ServeWebviewToHost): Promise<ServeHostToWebview | undefined> {
    switch (m.type) {
      case 'ready': {
        this.pollGauges();
        const model = this.pendingModel;
        this.pendingModel = undefined;
        return {
          type: 'init',
          engines: ENGINE_VIEWS,
          profiles: this.manager.profiles,
          form: model ? { ...this.manager.form, model } : this.manager.form,
          formWins: model !== undefined,
          server: this.manager.view,
          attached: this.generateCommands.attached,
          sampling: this.sampling,
          history: this.history,
          trusted: vscode.workspace.isTrusted,
          check: this.lastCheck,
        };
      }
      case 'start':
        await this.manager.start(m.profile);
        return { type: 'ack' };
      case 'stop':
        await this.manager.stop();
        return { type: 'ack' };
      case 'saveProfile':
        return { type: 'profiles', profiles: await this.manager.saveProfile(m.profile) };
      case 'deleteProfile':
        return { type: 'profiles', profiles: await this.manager.deleteProfile(m.name) };
      case 'pickModel': {
        const picked = await vscode.window.showOpenDialog({ canSelectFiles: false, canSelectFolders: true, canSelectMany: false, title: 'Serve: the model folder (an export)', openLabel: 'Serve This Folder' });
        return { type: 'picked', path: picked?.[0]?.fsPath };
      }
      case 'showLog':
        await vscode.commands.executeCommand('jaxServe.showServerLog');
        return { type: 'ack' };
      case 'preflight': {
        // The running server's folder and engine, else the form's: preflight applies that engine's rules.
        const folder = this.manager.folder ?? this.manager.form.model;
        const engine = this.manager.folder ? this.manager.engine : this.manager.form.engine;
        if (folder) await vscode.commands.executeCommand('jaxServe.preflight', vscode.Uri.file(folder), engine);
        return { type: 'ack' };
      }
      case 'attach':
        await this.generateCommands.attach();
        return { type: 'ack' };
      case 'checkSource':
        return this.checkAgainstSource();
      case 'generate':
        await this.context.workspaceState.update(SAMPLING_KEY, m.sampling);
        return { type: 'run', run: this.startRun(m.mode, m.prompt, m.sampling) };
      case 'cancelRun':
        this.runs.get(m.id)?.abort();
        return { type: 'ack' };
      case 'offlineScript':
        await this.context.workspaceState.update(SAMPLING_KEY, m.sampling);
        await this.offlineScript(m.profile, m.mode, m.prompt, m.sampling);
        return { type: 'ack' };
      default: {
        const never: never = m;
        return never;
      }
    }
  }

  /** Starts a generation against the attached server; its text and end follow as messages. */
  private startRun(mode: RunMode, prompt: string, sampling: SamplingView): RunView {
    const server = this.generateCommands.attached;
    const id = this.nextRun++;
    const base: RunView = { id, mode, prompt, text: '', model: server?.model, status: 'running', at: Date.now() };
    if (!server) return { ...base, status: 'error', error: 'No server: start one above, or Attach to a running one.' };
    const ac = new AbortController();
    this.runs.set(id, ac);
    let pending = '';
    let text = '';
    const flush = () => {
      if (!pending) return;
      this.rpc?.send({ type: 'runText', id, text: pending });
      text += pending;
      pending = '';
    };
    const timer = setInterval(flush, FLUSH_MS);
    void (async () => {
      let run: RunView;
      try {
        const r = await generate(
          {
            ...(await this.generateCommands.requestFor(server)),
            api: mode,
            prompt,
            maxTokens: sampling.maxTokens,
            temperature: sampling.temperature,
            topP: sampling.topP,
            stop: sampling.stop.split('\n').filter((s) => s !== ''),
            seed: sampling.seed,
            signal: ac.signal,
          },
          (e) => {
            if (e.kind === 'text') pending += e.text;
          },
        );
        flush();
        // The model sent: the attached name, or the one the server listed.
        run = { ...base, model: r.model, text, status: 'done', ttftMs: r.ttftMs, tokensPerSecond: r.tokensPerSecond, promptTokens: r.usage?.promptTokens, completionTokens: r.tokens, finishReason: r.finishReason };
      } catch (e) {
        flush();
        const stopped = isJaxServeError(e) && e.code === 'E_CANCELLED';
        // What arrived stays in the run.
        run = { ...base, text, status: stopped ? 'stopped' : 'error', error: stopped ? undefined : describeError(e) };
      } finally {
        clearInterval(timer);
        this.runs.delete(id);
      }
      this.rpc?.send({ type: 'run', run });
      this.history = [{ ...run, text: run.text.slice(0, MAX_HISTORY_TEXT) }, ...this.history].slice(0, MAX_HISTORY);
      await this.context.workspaceState.update(HISTORY_KEY, this.history);
    })();
    return base;
  }

  // ---- Check Against Source (jax-serve check-served for the attached server) ---------------------

  /**
   * Runs the served-vs-source check against the attached server, with the folder given, else the
   * folder this window started that server on, else one asked for; in the interpreter verify uses;
   * with progress and cancel in a notification.
   */
  private async checkAgainstSource(given?: string, api?: GenerateApi): Promise<ServeHostToWebview & { type: 'checked' }> {
    const server = this.generateCommands.attached;
    if (!server) return { type: 'checked', error: 'No server: start one above, or Attach to a running one.' };
    // The managed server's folder only when it is the one attached: another URL serves another model.
    let source = given ?? (this.manager.specAt(server.url) ? this.manager.folder : undefined);
    if (!source) {
      const picked = await vscode.window.showOpenDialog({ canSelectFiles: false, canSelectFolders: true, canSelectMany: false, title: 'Check Against Source: the export folder this server serves', openLabel: 'Check Against This Folder' });
      source = picked?.[0]?.fsPath;
      if (!source) return { type: 'checked' };
    }
    const { python } = await choosePython(vscode.Uri.file(source));
    try {
      const apiKey = await this.generateCommands.apiKey(server.url);
      const report = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'Check Against Source', cancellable: true }, (progress, token) => {
        const ac = new AbortController();
        token.onCancellationRequested(() => ac.abort());
        return checkServed({ url: server.url, source: source!, api, model: server.model, python, apiKey, packageRoot: this.context.extensionPath, signal: ac.signal, log: this.manager.serverLog, onStep: (s) => progress.report({ message: s }) });
      });
      const asked = `${report.prompts.length} prompts, ${report.dtype}, ${report.api === 'sglang-generate' ? '/generate' : report.api}${report.model ? ` as ${report.model}` : ''}`;
      const check: CheckView = {
        ok: report.ok,
        headline: report.ok ? `The server generates what ${path.basename(report.source)} computes (${asked}).` : `${report.prompts.filter((p) => !p.ok).length} of ${report.prompts.length} prompts diverge from ${path.basename(report.source)} (${asked}).`,
        api: report.api === 'sglang-generate' ? '/generate' : report.api,
        ...(report.model ? { model: report.model } : {}),
        prompts: report.prompts.map((p) => ({ prompt: p.prompt, ok: p.ok, text: p.text, tokensEqual: p.tokensEqual, firstDivergence: p.firstDivergence, ...(p.divergenceSpan ? { span: p.divergenceSpan } : {}), summary: describePromptCheck(p, report.dtype) })),
      };
      this.lastCheck = check;
      return { type: 'checked', check };
    } catch (e) {
      if (isJaxServeError(e) && e.code === 'E_CANCELLED') return { type: 'checked' };
      return { type: 'checked', error: describeError(e) };
    }
  }

  /** The last check's verdict (the test API reads it). */
  lastCheck: CheckView | undefined;

  /** Reads /metrics of the attached server every few seconds while the panel is visible. */
  private pollGauges(): void {
    const want = this.panel?.visible && this.generateCommands.attached !== undefined;
    if (!want) {
      clearInterval(this.gaugeTimer);
      this.gaugeTimer = undefined;
      return;
    }
    if (this.gaugeTimer) return;
    const read = async () => {
      const url = this.generateCommands.attached?.url;
      if (!url) return;
      let g: GaugesView | undefined;
      try {
        g = await fetchGauges(url, await this.generateCommands.apiKey(url));
      } catch {
        g = undefined; // not up (yet), or gone
      }
      // Said for the engine this window started there; an attached server's engine is not known.
      const absent = g ? undefined : metricsAbsentNote(this.manager.specAt(url));
      if (JSON.stringify(g) !== JSON.stringify(this.gauges) || absent !== this.gaugesAbsent) {
        this.gauges = g;
        this.gaugesAbsent = absent;
        this.rpc?.send({ type: 'gauges', gauges: g, absent });
      }
    };
    void read();
    this.gaugeTimer = setInterval(() => void read(), GAUGES_MS);
  }

  private async offlineScript(profile: ProfileView, mode: RunMode, prompt: string, sampling: SamplingView): Promise<vscode.TextEditor | undefined> {
    let text: string;
    try {
      if (!profile.model.trim()) throw new Error('choose the model folder first.');
      text = offlineScript({
        engine: profile.engine as EngineId,
        // The profile's extra arguments, split as a launch splits them (SGLang-JAX's Engine takes them).
        launch: { ...(profile as LaunchProfile), extraArgs: profile.extraArgs?.trim() ? splitWords(profile.extraArgs) : undefined },
        sampling: { temperature: sampling.temperature, topP: sampling.topP, maxTokens: sampling.maxTokens, stop: sampling.stop.split('\n').filter((s) => s !== ''), seed: sampling.seed },
        prompts: [prompt || 'Hello, my name is'],
        chat: mode === 'chat',
      });
    } catch (e) {
      void vscode.window.showErrorMessage(`Offline script: ${describeError(e)}`);
      return undefined;
    }
    return openNamedUntitled(`offline_${profile.engine}_${path.basename(profile.model)}`, '.py', text, profile.model);
  }

  override dispose(): void {
    this.panel?.dispose();
    super.dispose();
  }
}
