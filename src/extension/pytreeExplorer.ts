/**
 * The "Pytree" view in the JAX Serve container: the checkpoint of the active editor as a tree of
 * key-path groups with their parameter counts. Selecting a tensor selects its row in the editor;
 * the context menu copies names and shows statistics. The tree comes from core (`buildPytree`),
 * the same one the editor's tree-table pages, with list indices in counting order (layers 0, 1, 2, … 10).
 */
import * as vscode from 'vscode';
import { isGroup, keysLabel, nodeKeys, parameterCount, type PytreeNode } from '../core/index';
import { formatBytes, formatCount } from '../shared/format';
import type { ActiveCheckpoint, CheckpointEditorProvider } from './checkpointEditor';

export const PYTREE_VIEW_ID = 'jaxServe.pytree';

/** A node of the tree of the checkpoint at `uri`. */
export interface PytreeItem {
  readonly uri: vscode.Uri;
  readonly node: PytreeNode;
}

/** The full dotted name of an item: the tensor's name, or the group's key path. */
export function itemName(item: PytreeItem): string {
  return isGroup(item.node) ? keysLabel(item.node.path) : item.node.name;
}

export class PytreeExplorer implements vscode.TreeDataProvider<PytreeItem> {
  private readonly _onDidChangeTreeData = new vscode.EventEmitter<PytreeItem | undefined>();
  readonly onDidChangeTreeData = this._onDidChangeTreeData.event;
  private shown: ActiveCheckpoint | undefined;

  static register(context: vscode.ExtensionContext, editors: CheckpointEditorProvider): PytreeExplorer {
    const explorer = new PytreeExplorer();
    const view = vscode.window.createTreeView(PYTREE_VIEW_ID, { treeDataProvider: explorer, showCollapseAll: true });
    const update = () => {
      // The tree follows the active checkpoint editor; while another kind of tab is active it keeps
      // the last checkpoint, as long as that one is still open (and reloaded if it changed).
      const next = editors.active() ?? (explorer.shown && editors.tree(explorer.shown.uri));
      if (next?.uri.toString() === explorer.shown?.uri.toString() && next?.root === explorer.shown?.root) return;
      explorer.shown = next;
      view.description = next ? vscode.workspace.asRelativePath(next.uri) : undefined;
      explorer._onDidChangeTreeData.fire(undefined);
    };
    context.subscriptions.push(
      view,
      explorer._onDidChangeTreeData,
      editors.onDidChangeActive(update),
      vscode.commands.registerCommand('jaxServe.pytree.reveal', (item: PytreeItem) => editors.reveal(item.uri, itemName(item), false)),
      vscode.commands.registerCommand('jaxServe.pytree.showStatistics', (item?: PytreeItem) => {
        const it = item ?? view.selection[0];
        if (it && !isGroup(it.node)) editors.reveal(it.uri, itemName(it), true);
      }),
      vscode.commands.registerCommand('jaxServe.pytree.copyName', async (item?: PytreeItem) => {
        const it = item ?? view.selection[0];
        if (it) await vscode.env.clipboard.writeText(itemName(it));
      }),
    );
    update();
    return explorer;
  }

  getChildren(item?: PytreeItem): PytreeItem[] {
    if (item) return isGroup(item.node) ? item.node.children.map((node) => ({ uri: item.uri, node })) : [];
    const shown = this.shown;
    return shown ? shown.root.children.map((node) => ({ uri: shown.uri, node })) : [];
  }

  getTreeItem(item: PytreeItem): vscode.TreeItem {
    const n = item.node;
    const label = keysLabel(nodeKeys(n));
    if (isGroup(n)) {
      const t = new vscode.TreeItem(label, vscode.TreeItemCollapsibleState.Collapsed);
      t.description = n.parameters === 1 ? vscode.l10n.t('{0} param', formatCount(n.parameters)) : vscode.l10n.t('{0} params', formatCount(n.parameters));
      t.contextValue = 'group';
      t.iconPath = new vscode.ThemeIcon('symbol-namespace');
      // Plain-text lines, not Markdown: names come from the file and are shown as they are.
      t.tooltip = [
        itemName(item),
        vscode.l10n.t('tensors: {0}', formatCount(n.tensors)),
        vscode.l10n.t('parameters: {0}', formatCount(n.parameters)),
        vscode.l10n.t('bytes: {0}', formatBytes(n.bytes)),
        n.dtype === undefined ? vscode.l10n.t('dtype: mixed') : vscode.l10n.t('dtype: {0}', n.dtype),
      ].join('\n');
      t.id = `${item.uri.toString()}#${n.id}`;
      return t;
    }
    const x = n;
    const t = new vscode.TreeItem(label, vscode.TreeItemCollapsibleState.None);
    t.description = `${x.dtype} [${x.shape.join(', ')}]`;
    t.contextValue = 'tensor';
    t.iconPath = new vscode.ThemeIcon('symbol-array');
    t.tooltip = [
      x.name,
      vscode.l10n.t('shape: {0}', `[${x.shape.join(', ')}]`),
      vscode.l10n.t('dtype: {0}', x.dtype),
      vscode.l10n.t('parameters: {0}', formatCount(parameterCount(x))),
      vscode.l10n.t('bytes: {0}', formatBytes(x.bytes)),
    ].join('\n');
    t.command = { command: 'jaxServe.pytree.reveal', title: vscode.l10n.t('Show in Checkpoint Editor'), arguments: [item] };
    return t;
  }

  getParent(): undefined {
    return undefined;
  }
}
