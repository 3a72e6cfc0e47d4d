/**
 * The Serve panel: a launch form (engine, model folder, host, port and engine options; saved
 * profiles), the server's load phases with their times, gauges from /metrics, and generations
 * against the session's server (completion or chat, sampling parameters, streamed, stoppable, with
 * TTFT, tokens/s, token counts and a history of runs). One panel; the session keeps every state,
 * the page shows it. Also "Check Against Source" and "Create Offline Inference Script", which
 * start from the panel's form and server.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { apiLabel, describeError, describePromptCheck, ENGINES, isJaxServeError, offlineScript, splitWords, type CheckReport, type EngineId, type GenerateApi } from '../core/index';
import { Rpc } from '../shared/rpc';
import { isServeWebviewToHost, stopSequences, type CheckView, type EngineView, type ProfileView, type RunMode, type SamplingView, type ServeHostToWebview, type ServeWebviewToHost } from '../shared/serveProtocol';
import { Disposable } from './dispose';
import { choosePython } from './python';
import type { RunSink, ServeSession } from './serveSession';
import { accelerators, sizeLaunch } from './launchFit';
import { refuseUntrusted } from './trust';
import { openNamedUntitled } from './untitled';
import { webviewHtml, webviewOptions } from './webviewHtml';

export const SERVE_VIEW_TYPE = 'jaxServe.serve';

const CHECK_APIS: readonly GenerateApi[] = ['sglang-generate', 'completions', 'chat'];

const ENGINE_VIEWS: EngineView[] = Object.values(ENGINES).map((e) => ({ id: e.id, title: e.title, memoryFlag: e.memoryFlag, devices: e.devices, takesAdapters: e.lora !== undefined }));
const ENGINE_IDS: readonly string[] = ENGINE_VIEWS.map((e) => e.id);

export function registerServePanel(context: vscode.ExtensionContext, session: ServeSession): void {
  context.subscriptions.push(new ServePanel(context, session));
}

class ServePanel extends Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private rpc: Rpc<ServeHostToWebview, ServeWebviewToHost> | undefined;
  /** Runs this page started (an editor's runs are not its to show). */
  private readonly runs = new Set<number>();
  /** A folder to put in the form once the page is ready. */
  private pendingModel: string | undefined;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly session: ServeSession,
  ) {
    super();
    this._register(vscode.commands.registerCommand('jaxServe.openServePanel', (folder?: vscode.Uri) => this.show(folder?.fsPath)));
    // From the palette: the panel's last form and sampling; a folder (the explorer, tests) overrides the form's.
    this._register(
      vscode.commands.registerCommand('jaxServe.createOfflineScript', (arg?: vscode.Uri | EngineId, folder?: string) => {
        const form = session.form;
        const model = arg instanceof vscode.Uri ? arg.fsPath : (folder ?? form.model);
        const engine = typeof arg === 'string' ? arg : form.engine;
        return this.offlineScript({ ...form, engine, model }, 'completions', 'Hello, my name is', session.sampling);
      }),
    );
    // The panel's button without its page: a folder (the explorer, tests) is the source, an API other than the default may be named.
    this._register(
      vscode.commands.registerCommand('jaxServe.checkAgainstSource', async (folder?: vscode.Uri | string, api?: GenerateApi) => {
        if (api !== undefined && !CHECK_APIS.includes(api)) throw new Error(vscode.l10n.t('jaxServe.checkAgainstSource: the API is one of {0}.', CHECK_APIS.join(', ')));
        this.show();
        const r = await this.checkAgainstSource(folder instanceof vscode.Uri ? folder.fsPath : folder, api);
        this.rpc?.send(r);
        return r;
      }),
    );
    this._register(session.onDidChangeServer((server) => this.rpc?.send({ type: 'server', server })));
    this._register(session.onDidChangeEndpoint((attached) => this.rpc?.send({ type: 'attached', attached })));
    this._register(session.onDidChangeGauges((g) => this.rpc?.send({ type: 'gauges', ...g })));
    this._register(session.onDidChangeProfiles((profiles) => this.rpc?.send({ type: 'profiles', profiles })));
    this._register(session.onDidChangeSampling((sampling) => this.rpc?.send({ type: 'sampling', sampling })));
    this._register(
      session.onDidChangeRun((run) => {
        if (run.status === 'running' || !this.runs.delete(run.id)) return;
        this.rpc?.send({ type: 'run', run });
      }),
    );
  }

  /** Opens (or reveals) the panel; a folder given becomes the form's model folder. */
  show(model?: string): void {
    if (model) this.pendingModel = model;
    if (this.panel) {
      this.panel.reveal();
      if (model) this.rpc?.send({ type: 'model', path: model });
      return;
    }
    const panel = (this.panel = vscode.window.createWebviewPanel(SERVE_VIEW_TYPE, vscode.l10n.t('JAX Serve'), vscode.ViewColumn.Active, { ...webviewOptions(this.context.extensionUri), retainContextWhenHidden: true }));
    panel.iconPath = new vscode.ThemeIcon('vm-running');
    const rpc = (this.rpc = new Rpc<ServeHostToWebview, ServeWebviewToHost>((env) => void panel.webview.postMessage(env), (m) => this.handle(m), (v): v is ServeWebviewToHost => isServeWebviewToHost(v, ENGINE_IDS)));
    const sub = panel.webview.onDidReceiveMessage((m) => rpc.receive(m));
    // The gauges are read while the page shows them.
    let gauges: { dispose(): void } | undefined;
    const watch = () => {
      if (panel.visible) gauges ??= this.session.watchGauges();
      else {
        gauges?.dispose();
        gauges = undefined;
      }
    };
    watch();
    panel.onDidChangeViewState(watch);
    panel.onDidDispose(() => {
      for (const id of this.runs) this.session.cancelRun(id);
      gauges?.dispose();
      rpc.dispose();
      sub.dispose();
      this.panel = this.rpc = undefined;
    });
    panel.webview.html = webviewHtml(panel.webview, this.context.extensionUri, 'serve', vscode.l10n.t('JAX Serve'));
  }

  private async handle(m: ServeWebviewToHost): Promise<ServeHostToWebview | undefined> {
    const s = this.session;
    switch (m.type) {
      case 'ready': {
        const model = this.pendingModel;
        this.pendingModel = undefined;
        return {
          type: 'init',
          engines: ENGINE_VIEWS,
          accelerators: accelerators().list.map((a) => ({ name: a.name, title: a.title, memoryBytes: a.memoryBytes, source: a.source })),
          profiles: s.profiles,
          form: model ? { ...s.form, model } : s.form,
          formWins: model !== undefined,
          server: s.server,
          attached: s.endpoint,
          sampling: s.sampling,
          history: s.history,
          trusted: vscode.workspace.isTrusted,
          check: s.lastCheck && checkView(s.lastCheck),
          gauges: s.gauges,
          gaugesAbsent: s.gaugesAbsent,
        };
      }
      case 'start':
        await vscode.commands.executeCommand('jaxServe.startServer', m.profile);
        return { type: 'ack' };
      case 'fit':
        return { type: 'fit', fit: await sizeLaunch(m.profile) };
      case 'stop':
        await vscode.commands.executeCommand('jaxServe.stopServer');
        return { type: 'ack' };
      case 'saveProfile':
        return { type: 'profiles', profiles: await s.saveProfile(m.profile) };
      case 'deleteProfile':
        return { type: 'profiles', profiles: await s.deleteProfile(m.name) };
      case 'pickModel': {
        const picked = await vscode.window.showOpenDialog({ canSelectFiles: false, canSelectFolders: true, canSelectMany: false, title: vscode.l10n.t('Serve: the model folder (an export)'), openLabel: vscode.l10n.t('Serve This Folder') });
        return { type: 'picked', path: picked?.[0]?.fsPath };
      }
      case 'pickAdapter': {
        const picked = await vscode.window.showOpenDialog({ canSelectFiles: false, canSelectFolders: true, canSelectMany: false, title: vscode.l10n.t('Serve: a LoRA adapter folder (adapter_config.json, adapter_model.safetensors)'), openLabel: vscode.l10n.t('Add This Adapter') });
        return { type: 'picked', path: picked?.[0]?.fsPath };
      }
      case 'showLog':
        await vscode.commands.executeCommand('jaxServe.showServerLog');
        return { type: 'ack' };
      case 'preflight': {
        // The running server's folder and engine, else the form's: preflight applies that engine's rules.
        const { folder, engine } = s.managedLaunch ?? { folder: s.form.model, engine: s.form.engine };
        // The form's accelerator, when it names one, sizes the launch too.
        if (folder) await vscode.commands.executeCommand('jaxServe.preflight', vscode.Uri.file(folder), engine, s.form);
        return { type: 'ack' };
      }
      case 'attach':
        await vscode.commands.executeCommand('jaxServe.attach');
        return { type: 'ack' };
      case 'checkSource':
        return this.checkAgainstSource();
      case 'generate': {
        await s.setSampling(m.sampling);
        const sink: RunSink = { remember: true, write: (text) => void this.rpc?.send({ type: 'runText', id: handle.run.id, text }) };
        const handle = s.runGeneration({ mode: m.mode, prompt: m.prompt, adapter: m.adapter }, sink);
        if (handle.run.status === 'running') this.runs.add(handle.run.id);
        return { type: 'run', run: handle.run };
      }
      case 'cancelRun':
        s.cancelRun(m.id);
        return { type: 'ack' };
      case 'offlineScript':
        await s.setSampling(m.sampling);
        await this.offlineScript(m.profile, m.mode, m.prompt, m.sampling);
        return { type: 'ack' };
      default: {
        const never: never = m;
        return never;
      }
    }
  }

  /**
   * Runs the served-vs-source check against the session's server, with the folder given, else the
   * folder this window started that server on, else one asked for; in the interpreter verify uses;
   * with progress and cancel in a notification.
   */
  private async checkAgainstSource(given?: string, api?: GenerateApi): Promise<ServeHostToWebview & { type: 'checked' }> {
    const endpoint = this.session.endpoint;
    if (!endpoint) return { type: 'checked', error: vscode.l10n.t('No server: start one above, or Attach to a running one.') };
    const untrusted = vscode.l10n.t('Check Against Source runs no Python in Restricted Mode: trust this workspace first.');
    if (refuseUntrusted(untrusted)) return { type: 'checked', error: untrusted };
    // The managed server's folder only when it is the one attached: another URL serves another model.
    let source = given ?? this.session.managedAt(endpoint.url)?.folder;
    if (!source) {
      const picked = await vscode.window.showOpenDialog({ canSelectFiles: false, canSelectFolders: true, canSelectMany: false, title: vscode.l10n.t('Check Against Source: the export folder this server serves'), openLabel: vscode.l10n.t('Check Against This Folder') });
      source = picked?.[0]?.fsPath;
      if (!source) return { type: 'checked' };
    }
    const { python } = await choosePython(vscode.Uri.file(source));
    try {
      const report = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: vscode.l10n.t('Check Against Source'), cancellable: true }, (progress, token) => {
        const ac = new AbortController();
        token.onCancellationRequested(() => ac.abort());
        return this.session.checkAgainstSource({ source: source!, api, python, packageRoot: this.context.extensionPath, signal: ac.signal, onStep: (step) => progress.report({ message: step }) });
      });
      return { type: 'checked', check: checkView(report) };
    } catch (e) {
      if (isJaxServeError(e) && e.code === 'E_CANCELLED') return { type: 'checked' };
      return { type: 'checked', error: describeError(e) };
    }
  }

  private async offlineScript(profile: ProfileView, mode: RunMode, prompt: string, sampling: SamplingView): Promise<vscode.TextEditor | undefined> {
    let text: string;
    try {
      if (!profile.model.trim()) throw new Error(vscode.l10n.t('choose the model folder first.'));
      // The script loads the model alone: say so rather than write one that drops the form's adapters.
      if (profile.adapters?.length) throw new Error(vscode.l10n.t('the script generates with the model alone, not its LoRA adapters: remove them from the form to write it.'));
      text = offlineScript({
        engine: profile.engine,
        // The profile's extra arguments, split as a launch splits them (SGLang-JAX's Engine takes them).
        launch: { ...profile, extraArgs: profile.extraArgs?.trim() ? splitWords(profile.extraArgs) : undefined },
        sampling: { temperature: sampling.temperature, topP: sampling.topP, maxTokens: sampling.maxTokens, stop: stopSequences(sampling), seed: sampling.seed },
        prompts: [prompt || 'Hello, my name is'],
        chat: mode === 'chat',
      });
    } catch (e) {
      void vscode.window.showErrorMessage(vscode.l10n.t('Offline script: {0}', describeError(e)));
      return undefined;
    }
    return openNamedUntitled(`offline_${profile.engine}_${path.basename(profile.model)}`, '.py', text, profile.model);
  }

  override dispose(): void {
    this.panel?.dispose();
    super.dispose();
  }
}

/** A check's report as the panel shows it: a headline, and each prompt's verdict in one line. */
function checkView(report: CheckReport): CheckView {
  const api = apiLabel(report.api);
  const asked = report.model ? vscode.l10n.t('{0} prompts, {1}, {2} as {3}', report.prompts.length, report.dtype, api, report.model) : vscode.l10n.t('{0} prompts, {1}, {2}', report.prompts.length, report.dtype, api);
  const source = path.basename(report.source);
  return {
    ok: report.ok,
    headline: report.ok ? vscode.l10n.t('The server generates what {0} computes ({1}).', source, asked) : vscode.l10n.t('{0} of {1} prompts diverge from {2} ({3}).', report.prompts.filter((p) => !p.ok).length, report.prompts.length, source, asked),
    api,
    ...(report.model ? { model: report.model } : {}),
    prompts: report.prompts.map((p) => ({ prompt: p.prompt, ok: p.ok, text: p.text, tokensEqual: p.tokensEqual, firstDivergence: p.firstDivergence, ...(p.divergenceSpan ? { span: p.divergenceSpan } : {}), summary: describePromptCheck(p, report.dtype) })),
  };
}
