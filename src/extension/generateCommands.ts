/**
 * Generation in the editor against a server we attached to: "Attach to Server…" (URL, an API key
 * kept in SecretStorage, a model from /v1/models or typed), then "Generate at Cursor" (the text
 * before the cursor as the prompt), "Continue Selection" (the selection as the prompt) and "Send
 * Selection as Chat Message" (through /v1/chat/completions, so the chat template applies, into a
 * new Markdown document). Continuations stream in after the cursor or selection, or into a new
 * document (the jaxServe.generate.output setting), in batched edits that undo as one step; the
 * progress notification cancels, and what arrived stays. The client is core's (serve/generate).
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { describeError, generate, isJaxServeError, listModels, ServedModels, type GenerateApi, type GenerateRequest, type GenerateResult, type ServerTextLog } from '../core/index';
import { openNamedUntitled } from './untitled';

export interface AttachedServer {
  readonly url: string;
  readonly model: string | undefined;
}

const STATE_KEY = 'jaxServe.attached';
/** Characters before the cursor sent as the prompt of Generate at Cursor. */
const MAX_PROMPT_CHARS = 16_000;
/** Edits are applied at most this often while text streams in. */
const FLUSH_MS = 50;

export class GenerateCommands implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];
  private readonly status = vscode.window.createStatusBarItem('jaxServe.server', vscode.StatusBarAlignment.Left, 50);
  private readonly attachedChanged = new vscode.EventEmitter<AttachedServer | undefined>();
  readonly onDidAttach = this.attachedChanged.event;
  /** Where a server's whole error text goes (the server channel, set by ServerManager); messages show one line. */
  serverLog: ServerTextLog | undefined;
  /** Model names the attached servers list at /v1/models, read once until the next attach. */
  private readonly servedModels = new ServedModels();
  /** The last in-editor run (the test API reads it). */
  last: (GenerateResult & { inserted: string; document: string }) | { error: string; inserted: string; document: string } | undefined;

  constructor(private readonly context: vscode.ExtensionContext) {
    this.status.name = 'JAX Serve server';
    this.status.command = 'jaxServe.attach';
    this.disposables.push(
      this.status,
      this.attachedChanged,
      vscode.commands.registerCommand('jaxServe.attach', (url?: string, model?: string) => this.attach(url, model)),
      vscode.commands.registerCommand('jaxServe.generateAtCursor', () => this.run('cursor')),
      vscode.commands.registerCommand('jaxServe.continueSelection', () => this.run('selection')),
      vscode.commands.registerCommand('jaxServe.sendSelectionAsChat', () => this.run('chat')),
    );
    this.showStatus();
  }

  get attached(): AttachedServer | undefined {
    return this.context.workspaceState.get<AttachedServer>(STATE_KEY);
  }

  apiKey(url: string): Thenable<string | undefined> {
    return this.context.secrets.get(`jaxServe.apiKey:${url}`);
  }

  /**
   * What a generation against `server` sends besides its own prompt and sampling: the server, its
   * key, its model (none given: core sends the first one it lists, see modelToSend) and where its
   * errors go. The editor commands and the Serve panel both start from this.
   */
  async requestFor(server: AttachedServer): Promise<Pick<GenerateRequest, 'baseUrl' | 'model' | 'servedModels' | 'modelHint' | 'apiKeyHint' | 'apiKey' | 'log'>> {
    return {
      baseUrl: server.url,
      model: server.model,
      servedModels: this.servedModels,
      modelHint: 'attach again (JAX Serve: Attach to Server…) and pick or type the model name',
      apiKeyHint: 'attach again (JAX Serve: Attach to Server…) and enter its key',
      apiKey: await this.apiKey(server.url),
      log: this.serverLog,
    };
  }

  private showStatus(): void {
    const a = this.attached;
    if (!a) {
      this.status.hide();
      return;
    }
    this.status.text = `$(radio-tower) ${a.model ?? 'server'}`;
    this.status.tooltip = `JAX Serve: generating with ${a.model ?? '(no model name)'} at ${a.url}. Click to attach to another server.`;
    this.status.show();
  }

  /** Attaches to a running OpenAI-compatible server; with arguments (tests, other commands) it asks nothing. */
  async attach(url?: string, model?: string): Promise<AttachedServer | undefined> {
    const target = url ?? (await vscode.window.showInputBox({ title: 'Attach to Server: URL', value: this.attached?.url ?? 'http://127.0.0.1:8000', prompt: 'A running vLLM, SGLang or transformers serve (OpenAI-compatible API).', ignoreFocusOut: true }));
    if (!target) return undefined;
    let chosen = model;
    if (url === undefined) {
      const key = await vscode.window.showInputBox({ title: 'Attach to Server: API key (optional)', password: true, prompt: 'Kept in VS Code SecretStorage; leave empty for none.', ignoreFocusOut: true });
      if (key === undefined) return undefined;
      if (key) await this.context.secrets.store(`jaxServe.apiKey:${target}`, key);
      else await this.context.secrets.delete(`jaxServe.apiKey:${target}`);
      let models: string[] = [];
      try {
        models = await listModels(target, key || undefined, undefined, undefined, this.serverLog);
      } catch (e) {
        void vscode.window.showWarningMessage(`Attach: could not list the models (${describeError(e)}); type the model name.`);
      }
      // transformers serve lists hub models, not the served folder: a typed name must always be possible.
      const typed = '$(edit) Type a model name…';
      const pick = await vscode.window.showQuickPick([...models, typed], { title: 'Attach to Server: model', placeHolder: models.length ? 'The server lists these' : 'The server listed no model' });
      if (pick === undefined) return undefined;
      chosen = pick === typed ? await vscode.window.showInputBox({ title: 'Attach to Server: model name (a served name, or the folder path for transformers serve)' }) : pick;
      if (chosen === undefined) return undefined;
    }
    const attached: AttachedServer = { url: target, model: chosen || undefined };
    // A server attached again may serve another model (a restart at the same port): list it again.
    this.servedModels.forget();
    await this.context.workspaceState.update(STATE_KEY, attached);
    this.showStatus();
    this.attachedChanged.fire(attached);
    return attached;
  }

  private async run(kind: 'cursor' | 'selection' | 'chat'): Promise<void> {
    const source = vscode.window.activeTextEditor;
    if (!source) {
      void vscode.window.showErrorMessage('Generate: open a text editor first.');
      return;
    }
    const server = this.attached ?? (await this.attach());
    if (!server) return;
    const doc = source.document;
    const sel = source.selection;
    const prompt = kind === 'cursor' ? doc.getText(new vscode.Range(doc.positionAt(Math.max(0, doc.offsetAt(sel.active) - MAX_PROMPT_CHARS)), sel.active)) : doc.getText(sel);
    if (prompt.trim() === '') {
      void vscode.window.showErrorMessage(kind === 'cursor' ? 'Generate at Cursor: there is no text before the cursor to continue.' : 'Select the text to send first.');
      return;
    }
    const settings = vscode.workspace.getConfiguration('jaxServe.generate');
    // Where the text goes: after the cursor or selection, or a new document (always, for a chat reply).
    let editor = source;
    let end = doc.offsetAt(kind === 'cursor' ? sel.active : sel.end);
    if (kind === 'chat' || settings.get<string>('output', 'editor') === 'newDocument') {
      const content = kind === 'chat' ? `**You:**\n\n${prompt}\n\n**${server.model ?? 'Assistant'}:**\n\n` : prompt;
      // Named for what it holds; a continuation keeps the source's extension, and so its language.
      const base = path.basename(doc.uri.path, path.extname(doc.uri.path)) || 'text';
      editor = kind === 'chat' ? await openNamedUntitled('chat', '.md', content) : await openNamedUntitled(`${base}_continued`, path.extname(doc.uri.path) || '.txt', content);
      end = content.length;
    }
    await this.streamInto(editor, end, {
      api: kind === 'chat' ? 'chat' : 'completions',
      server,
      prompt,
      maxTokens: settings.get<number>('maxTokens', 128),
      temperature: settings.get<number>('temperature', 0.7),
    });
  }

  /** Streams a generation into `editor` at `offset`, in batched edits that undo as one step. */
  private async streamInto(editor: vscode.TextEditor, offset: number, r: { api: GenerateApi; server: AttachedServer; prompt: string; maxTokens: number; temperature: number }): Promise<void> {
    const doc = editor.document;
    const request = await this.requestFor(r.server);
    // Inserted at `offset`, tracked as text grows.
    let end = offset;
    let pending = '';
    let inserted = '';
    let first = true;
    let flushing: Promise<void> = Promise.resolve();
    const flush = () =>
      (flushing = flushing.then(async () => {
        if (!pending) return;
        const text = pending;
        pending = '';
        const at = doc.positionAt(end);
        // One undo step for the whole run: only the first edit opens one.
        const ok = await editor.edit((b) => b.insert(at, text), { undoStopBefore: first, undoStopAfter: false });
        if (!ok) throw new Error('the editor refused the edit (was it closed?)');
        first = false;
        end += text.length;
        inserted += text;
      }));
    const timer = setInterval(() => void flush(), FLUSH_MS);
    const document = doc.uri.toString();
    try {
      const result = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Generating with ${r.server.model ?? r.server.url}`, cancellable: true }, (progress, token) => {
        const ac = new AbortController();
        token.onCancellationRequested(() => ac.abort());
        let chunks = 0;
        let reported = 0;
        return generate({ ...request, api: r.api, prompt: r.prompt, maxTokens: r.maxTokens, temperature: r.temperature, signal: ac.signal }, (e) => {
          if (e.kind !== 'text') return;
          pending += e.text;
          chunks++;
          // The notification is redrawn by the workbench: told at most as often as text is flushed.
          const now = Date.now();
          if (now - reported >= FLUSH_MS) {
            reported = now;
            progress.report({ message: `${chunks} chunks` });
          }
        });
      });
      clearInterval(timer);
      await flush();
      this.last = { ...result, inserted, document };
      vscode.window.setStatusBarMessage(`JAX Serve: ${result.tokens} tokens, TTFT ${result.ttftMs?.toFixed(0) ?? '—'} ms, ${result.tokensPerSecond?.toFixed(1) ?? '—'} tokens/s`, 10_000);
    } catch (e) {
      clearInterval(timer);
      // What arrived stays in the editor.
      await flush().catch(() => undefined);
      this.last = { error: describeError(e), inserted, document };
      if (!(isJaxServeError(e) && e.code === 'E_CANCELLED')) void vscode.window.showErrorMessage(`Generate: ${describeError(e)}`);
    } finally {
      await editor.edit(() => undefined, { undoStopBefore: false, undoStopAfter: true }).then(undefined, () => undefined);
    }
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
