/**
 * Generation in the editor against the session's server: "Generate at Cursor" (the text before the
 * cursor as the prompt), "Continue Selection" (the selection as the prompt) and "Send Selection as
 * Chat Message" (through /v1/chat/completions, so the chat template applies, into a new Markdown
 * document). The text streams in after the cursor or selection, or into a new document (the
 * jaxServe.generate.output setting), in edits that undo as one step; the progress notification
 * cancels, and what arrived stays. Each command returns the run's record and the document it wrote
 * to; a run the session would refuse (one going on) is refused before a new document opens.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { RunView } from '../shared/serveProtocol';
import type { RunSink, ServeSession } from './serveSession';
import { openNamedUntitled } from './untitled';

/** Characters before the cursor sent as the prompt of Generate at Cursor. */
const MAX_PROMPT_CHARS = 16_000;

type Kind = 'cursor' | 'selection' | 'chat';

/** A run from the editor: its record and the document its text went into. */
export type EditorRun = RunView & { readonly document: string };

export function registerEditorGeneration(context: vscode.ExtensionContext, session: ServeSession): void {
  context.subscriptions.push(
    vscode.commands.registerCommand('jaxServe.generateAtCursor', () => run(session, 'cursor')),
    vscode.commands.registerCommand('jaxServe.continueSelection', () => run(session, 'selection')),
    vscode.commands.registerCommand('jaxServe.sendSelectionAsChat', () => run(session, 'chat')),
  );
}

async function run(session: ServeSession, kind: Kind): Promise<EditorRun | undefined> {
  const source = vscode.window.activeTextEditor;
  if (!source) {
    void vscode.window.showErrorMessage(vscode.l10n.t('Generate: open a text editor first.'));
    return undefined;
  }
  const endpoint = session.endpoint ?? (await vscode.commands.executeCommand('jaxServe.attach'));
  if (!endpoint) return undefined;
  const doc = source.document;
  const sel = source.selection;
  const prompt = kind === 'cursor' ? doc.getText(new vscode.Range(doc.positionAt(Math.max(0, doc.offsetAt(sel.active) - MAX_PROMPT_CHARS)), sel.active)) : doc.getText(sel);
  if (prompt.trim() === '') {
    void vscode.window.showErrorMessage(kind === 'cursor' ? vscode.l10n.t('Generate at Cursor: there is no text before the cursor to continue.') : vscode.l10n.t('Select the text to send first.'));
    return undefined;
  }
  const refused = session.refusal();
  if (refused) {
    void vscode.window.showErrorMessage(vscode.l10n.t('Generate: {0}', refused));
    return undefined;
  }
  // Where the text goes: after the cursor or selection, or a new document (always, for a chat reply).
  let editor = source;
  let end = doc.offsetAt(kind === 'cursor' ? sel.active : sel.end);
  if (kind === 'chat' || vscode.workspace.getConfiguration('jaxServe.generate').get<string>('output', 'editor') === 'newDocument') {
    const model = session.endpoint?.model ?? vscode.l10n.t('Assistant');
    const content = kind === 'chat' ? `**${vscode.l10n.t('You:')}**\n\n${prompt}\n\n**${model}:**\n\n` : prompt;
    // Named for what it holds; a continuation keeps the source's extension, and so its language.
    const base = path.basename(doc.uri.path, path.extname(doc.uri.path)) || 'text';
    editor = kind === 'chat' ? await openNamedUntitled('chat', '.md', content) : await openNamedUntitled(`${base}_continued`, path.extname(doc.uri.path) || '.txt', content);
    end = content.length;
  }
  return streamInto(session, editor, end, kind === 'chat' ? 'chat' : 'completions', prompt);
}

/** The editor as a run's sink: text inserted at `offset` as it grows, the first edit opening the one undo step. */
function editorSink(editor: vscode.TextEditor, offset: number, progress: vscode.Progress<{ message?: string }>): RunSink {
  let end = offset;
  let first = true;
  return {
    remember: false,
    async write(text, chunks) {
      const ok = await editor.edit((b) => b.insert(editor.document.positionAt(end), text), { undoStopBefore: first, undoStopAfter: false });
      if (!ok) throw new Error(vscode.l10n.t('the editor refused the edit (was it closed?)'));
      first = false;
      end += text.length;
      progress.report({ message: vscode.l10n.t('{0} chunks', chunks) });
    },
  };
}

async function streamInto(session: ServeSession, editor: vscode.TextEditor, offset: number, mode: 'completions' | 'chat', prompt: string): Promise<EditorRun> {
  const endpoint = session.endpoint;
  try {
    const run = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: vscode.l10n.t('Generating with {0}', endpoint?.model ?? endpoint?.url ?? ''), cancellable: true }, (progress, token) => {
      const handle = session.runGeneration({ mode, prompt }, editorSink(editor, offset, progress));
      token.onCancellationRequested(() => session.cancelRun(handle.run.id));
      return handle.done;
    });
    if (run.status === 'done') vscode.window.setStatusBarMessage(vscode.l10n.t('JAX Serve: {0} tokens, TTFT {1} ms, {2} tokens/s', run.completionTokens ?? 0, run.ttftMs?.toFixed(0) ?? '—', run.tokensPerSecond?.toFixed(1) ?? '—'), 10_000);
    if (run.status === 'error') void vscode.window.showErrorMessage(vscode.l10n.t('Generate: {0}', run.error ?? ''));
    return { ...run, document: editor.document.uri.toString() };
  } finally {
    await editor.edit(() => undefined, { undoStopBefore: false, undoStopAfter: true }).then(undefined, () => undefined);
  }
}
