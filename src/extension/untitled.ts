/**
 * New documents the extension writes (offline scripts, chat replies, continuations): untitled, but
 * named (`offline_vllm_tiny.py` in the workspace) so that Save proposes a sensible file, and under a
 * name no open document or file has. `openTextDocument({ content })` is not used: its Untitled-N
 * names are reused, and one just reverted and closed can come back into the extension host with its
 * old text.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';

export async function openNamedUntitled(stem: string, extension: string, text: string, near?: string): Promise<vscode.TextEditor> {
  const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? (near ? path.dirname(near) : process.cwd());
  const safe = stem.replace(/[^\w.-]+/g, '_');
  const taken = new Set(vscode.workspace.textDocuments.map((d) => d.uri.toString()));
  const at = (suffix: string) => vscode.Uri.file(path.join(root, `${safe}${suffix}${extension}`)).with({ scheme: 'untitled' });
  let uri = at('');
  for (let i = 2; taken.has(uri.toString()) || existsSync(uri.fsPath); i++) uri = at(`_${i}`);
  const doc = await vscode.workspace.openTextDocument(uri);
  if (text) {
    const edit = new vscode.WorkspaceEdit();
    edit.insert(uri, new vscode.Position(0, 0), text);
    await vscode.workspace.applyEdit(edit);
  }
  return vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.Beside });
}
