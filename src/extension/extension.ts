/** Activation only composes features; each registers its own disposables. */
import * as vscode from 'vscode';
import { CHECKPOINT_VIEW_TYPE, CheckpointEditorProvider, type CheckpointEditorInfo } from './checkpointEditor';

/** What activate returns: a small surface the integration tests read. */
export interface JaxServeApi {
  readonly checkpointEditors: { list(): CheckpointEditorInfo[] };
}

export function activate(context: vscode.ExtensionContext): JaxServeApi {
  const editors = CheckpointEditorProvider.register(context);
  context.subscriptions.push(
    vscode.commands.registerCommand('jaxServe.openCheckpoint', async (uri?: vscode.Uri) => {
      const target = uri ?? (await vscode.window.showOpenDialog({ canSelectMany: false, filters: { Checkpoints: ['safetensors', 'msgpack', 'npz', 'npy', 'json'] }, title: 'Open as Checkpoint' }))?.[0];
      if (target) await vscode.commands.executeCommand('vscode.openWith', target, CHECKPOINT_VIEW_TYPE);
    }),
  );
  return { checkpointEditors: editors };
}

export function deactivate(): void {}
