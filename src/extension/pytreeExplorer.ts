/**
 * The "Pytree" view in the JAX Serve container: the checkpoint of the active editor as a tree of
 * key-path groups with their parameter counts. Selecting a tensor selects its row in the editor;
 * the context menu copies names and shows statistics. The tree comes from core (`buildPytree`),
 * the same one the editor's tree-table pages.
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
      t.description = `${formatCount(n.parameters)} ${n.parameters === 1 ? 'param' : 'params'}`;
      t.contextValue = 'group';
      t.iconPath = new vscode.ThemeIcon('symbol-namespace');
      t.tooltip = tooltip(itemName(item), [
        ['tensors', formatCount(n.tensors)],
        ['parameters', formatCount(n.parameters)],
        ['bytes', formatBytes(n.bytes)],
        ['dtype', n.dtype ?? 'mixed'],
      ]);
      t.id = `${item.uri.toString()}#${n.id}`;
      return t;
    }
    const x = n;
    const t = new vscode.TreeItem(label, vscode.TreeItemCollapsibleState.None);
    t.description = `${x.dtype} [${x.shape.join(', ')}]`;
    t.contextValue = 'tensor';
    t.iconPath = new vscode.ThemeIcon('symbol-array');
    t.tooltip = tooltip(x.name, [
      ['shape', `[${x.shape.join(', ')}]`],
      ['dtype', x.dtype],
      ['parameters', formatCount(parameterCount(x))],
      ['bytes', formatBytes(x.bytes)],
    ]);
    t.command = { command: 'jaxServe.pytree.reveal', title: 'Show in Checkpoint Editor', arguments: [item] };
    return t;
  }

  getParent(): undefined {
    return undefined;
  }
}

/** Plain-text lines, not Markdown: names come from the file and are shown as they are. */
function tooltip(name: string, facts: [string, string][]): string {
  return [name, ...facts.map(([k, v]) => `${k}: ${v}`)].join('\n');
}
