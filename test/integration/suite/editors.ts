import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';

/**
 * Closes every editor, reverting each first. "Close All Editors" would ask to save an untitled
 * document with text (tests leave some), a dialog the test workbench refuses: the editors would
 * stay open and disturb the next test.
 */
export async function closeAllEditorsReverted(): Promise<void> {
  const open = () => vscode.window.tabGroups.all.reduce((n, g) => n + g.tabs.length, 0);
  for (let i = 0; i < 50 && open() > 0; i++) await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');
  assert.equal(open(), 0, 'every editor closed');
}
