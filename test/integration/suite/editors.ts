import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import type { JaxServeApi } from '../../../src/extension/extension';
import type { EditorRun } from '../../../src/extension/editorGeneration';

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

export const EXTENSION_ID = 'jax-serve.jax-serve';

/** The extension's API (activating it if it is not yet). */
export async function extensionApi(): Promise<JaxServeApi> {
  const ext = vscode.extensions.getExtension<JaxServeApi>(EXTENSION_ID);
  assert.ok(ext, `${EXTENSION_ID} is not loaded`);
  return ext.activate();
}

/** Runs an editor generation command; its result is the run's record (what went into which document, or why not). */
export async function generation(command: 'jaxServe.generateAtCursor' | 'jaxServe.continueSelection' | 'jaxServe.sendSelectionAsChat'): Promise<EditorRun> {
  const run = await vscode.commands.executeCommand<EditorRun | undefined>(command);
  assert.ok(run, `${command} ran nothing`);
  return run;
}
