/**
 * "Attach to Server…": a running OpenAI-compatible server's URL, an API key (kept in SecretStorage by
 * the session), and a model from its /v1/models or typed. With arguments (tests, other commands,
 * the server started here once ready) it asks nothing.
 */
import * as vscode from 'vscode';
import { describeError } from '../core/index';
import type { Endpoint, ServeSession } from './serveSession';

export function registerAttach(context: vscode.ExtensionContext, session: ServeSession): void {
  context.subscriptions.push(vscode.commands.registerCommand('jaxServe.attach', (url?: string, model?: string) => (url === undefined ? askAndAttach(session) : session.attach(url, model))));
}

async function askAndAttach(session: ServeSession): Promise<Endpoint | undefined> {
  const url = await vscode.window.showInputBox({ title: vscode.l10n.t('Attach to Server: URL'), value: session.endpoint?.url ?? 'http://127.0.0.1:8000', prompt: vscode.l10n.t('A running vLLM, SGLang or transformers serve (OpenAI-compatible API).'), ignoreFocusOut: true });
  if (!url) return undefined;
  const key = await vscode.window.showInputBox({ title: vscode.l10n.t('Attach to Server: API key (optional)'), password: true, prompt: vscode.l10n.t('Kept in VS Code SecretStorage; leave empty for none.'), ignoreFocusOut: true });
  if (key === undefined) return undefined;
  let models: string[] = [];
  try {
    models = await session.listModels(url, key || undefined);
  } catch (e) {
    void vscode.window.showWarningMessage(vscode.l10n.t('Attach: could not list the models ({0}); type the model name.', describeError(e)));
  }
  // transformers serve lists hub models, not the served folder: a typed name must always be possible.
  // Every step ignores focus-out: when the key's input box closes, the workbench gives focus back to
  // the Serve panel's webview, and if that lands after this pick has opened, a pick that closes on
  // focus-out vanishes under the user's pointer mid-flow.
  const typed = vscode.l10n.t('$(edit) Type a model name…');
  const pick = await vscode.window.showQuickPick([...models, typed], { title: vscode.l10n.t('Attach to Server: model'), placeHolder: models.length ? vscode.l10n.t('The server lists these') : vscode.l10n.t('The server listed no model'), ignoreFocusOut: true });
  if (pick === undefined) return undefined;
  const model = pick === typed ? await vscode.window.showInputBox({ title: vscode.l10n.t('Attach to Server: model name (a served name, or the folder path for transformers serve)'), ignoreFocusOut: true }) : pick;
  if (model === undefined) return undefined;
  return session.attach(url, model, key);
}
