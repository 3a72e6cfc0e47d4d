/**
 * Restricted Mode: nothing that runs the workspace's code (a server, Python) starts in an untrusted
 * workspace. One refusal for every such command: the message, and the way to trust the workspace.
 */
import * as vscode from 'vscode';

/** True (and `message` shown, with "Manage Workspace Trust") when the workspace is not trusted. */
export function refuseUntrusted(message: string): boolean {
  if (vscode.workspace.isTrusted) return false;
  const manage = vscode.l10n.t('Manage Workspace Trust');
  void vscode.window.showErrorMessage(message, manage).then((p) => p && vscode.commands.executeCommand('workbench.trust.manage'));
  return true;
}
