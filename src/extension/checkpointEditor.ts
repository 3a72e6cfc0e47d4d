/**
 * The read-only checkpoint editor: the document is the parsed header (checkpointDocument.ts), each
 * tab a session (checkpointEditorSession.ts) whose page pages rows from it. A file that fails to
 * parse still opens, to an error panel. Also what the Pytree view and "Health Scan" ask of open
 * editors.
 */
import * as vscode from 'vscode';
import { ancestorIds, type PytreeGroup } from '../core/index';
import { CheckpointDocument } from './checkpointDocument';
import { CheckpointEditorSession } from './checkpointEditorSession';
import type { CheckpointServices } from './checkpointServices';
import { HealthScanCommand } from './healthScan';

export const CHECKPOINT_VIEW_TYPE = 'jaxServe.checkpoint';

/** The file of the checkpoint editor in the active tab, if one is. */
export function activeCheckpointUri(): vscode.Uri | undefined {
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  return input instanceof vscode.TabInputCustom && input.viewType === CHECKPOINT_VIEW_TYPE ? input.uri : undefined;
}

/** An open checkpoint editor as other extensions see it: which file, and what opened (its tensor count) or why not. */
export interface CheckpointEditorInfo {
  readonly uri: string;
  readonly tensorCount: number | undefined;
  readonly error: string | undefined;
}

/** What the pytree explorer sees of the checkpoint in the active editor. */
export interface ActiveCheckpoint {
  readonly uri: vscode.Uri;
  readonly root: PytreeGroup;
}

export class CheckpointEditorProvider implements vscode.CustomReadonlyEditorProvider<CheckpointDocument> {
  private readonly sessions = new Set<CheckpointEditorSession>();
  private readonly _onDidChangeActive = new vscode.EventEmitter<void>();
  /** The active checkpoint editor changed, or its file was loaded again. */
  readonly onDidChangeActive = this._onDidChangeActive.event;

  static register(context: vscode.ExtensionContext, services: CheckpointServices): CheckpointEditorProvider {
    const provider = new CheckpointEditorProvider(context, services);
    context.subscriptions.push(
      vscode.window.registerCustomEditorProvider(CHECKPOINT_VIEW_TYPE, provider, { supportsMultipleEditorsPerDocument: true }),
      provider._onDidChangeActive,
      vscode.window.tabGroups.onDidChangeTabs(() => provider._onDidChangeActive.fire()),
      // What failed for want of trust (Orbax needs Python) can load now.
      vscode.workspace.onDidGrantWorkspaceTrust(() => provider.reloadFailed()),
    );
    return provider;
  }

  private readonly extensionUri: vscode.Uri;

  private constructor(
    context: vscode.ExtensionContext,
    private readonly services: CheckpointServices,
  ) {
    this.extensionUri = context.extensionUri;
    // A scan of a file open in an editor reuses its parsed document.
    HealthScanCommand.register(context, services, (uri) => this.document(uri ?? activeCheckpointUri()));
  }

  /** The document of an editor open on `uri`, if one is. */
  private document(uri: vscode.Uri | undefined): CheckpointDocument | undefined {
    return uri && [...this.sessions].find((s) => s.doc.uri.toString() === uri.toString())?.doc;
  }

  private reloadFailed(): void {
    const docs = new Set([...this.sessions].map((s) => s.doc));
    for (const doc of docs) if (doc.state.kind === 'error') void doc.reload();
  }

  /** The checkpoint in the active tab, when it opened. */
  active(): ActiveCheckpoint | undefined {
    const uri = activeCheckpointUri();
    return uri && this.tree(uri);
  }

  /** The pytree of the checkpoint open in an editor at `uri`, if one is and it opened. */
  tree(uri: vscode.Uri): ActiveCheckpoint | undefined {
    const doc = this.document(uri);
    const root = doc?.pytree();
    return doc && root ? { uri: doc.uri, root } : undefined;
  }

  /** Brings the editor of `uri` forward and selects tensor `name` there (statistics too with `stats`). */
  reveal(uri: vscode.Uri, name: string, stats: boolean): boolean {
    const of = [...this.sessions].filter((s) => s.doc.uri.toString() === uri.toString());
    const session = of.find((s) => s.panel.active) ?? of[0];
    const root = session?.doc.pytree();
    const ancestors = root && ancestorIds(root, name);
    if (!session || !ancestors) return false;
    session.panel.reveal(undefined, true);
    session.reveal(name, ancestors, stats);
    return true;
  }

  list(): CheckpointEditorInfo[] {
    return [...this.sessions].map(({ doc }) => ({
      uri: doc.uri.toString(),
      tensorCount: doc.state.kind === 'checkpoint' ? doc.state.ck.tensors.length : undefined,
      error: doc.state.kind === 'error' ? doc.state.message : undefined,
    }));
  }

  /**
   * Returns at once, loading nothing yet: VS Code makes the tab's webview only after this, and
   * reading the file first (on the extension host's one thread) would hold that up.
   */
  openCustomDocument(uri: vscode.Uri): CheckpointDocument {
    return CheckpointDocument.create(uri, this.services);
  }

  resolveCustomEditor(doc: CheckpointDocument, panel: vscode.WebviewPanel): void {
    const session = new CheckpointEditorSession(doc, panel, this.extensionUri, this.services, () => this._onDidChangeActive.fire());
    // The file loads while the page does: after this turn, once the page's HTML has left for the workbench.
    setTimeout(() => doc.begin(true), 0);
    this.sessions.add(session);
    this._onDidChangeActive.fire();
    panel.onDidDispose(() => {
      session.dispose();
      this.sessions.delete(session);
      if (![...this.sessions].some((s) => s.doc === doc)) doc.dispose();
      this._onDidChangeActive.fire();
    });
  }
}
