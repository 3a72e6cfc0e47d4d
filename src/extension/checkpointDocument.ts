/**
 * The checkpoint editor's document: the parsed header (core does all parsing) and the rows of the
 * last view asked for, shared by every editor of the file and by a health scan of it. A file that
 * fails to parse still makes a document, holding the error. It loads again when the file changes.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import {
  describeError,
  buildPytree,
  filterTensors,
  initialExpansion,
  isGroup,
  keysLabel,
  nodeKeys,
  parameterCount,
  pytreeRows,
  readSideFiles,
  sortTensors,
  summarize,
  type Checkpoint,
  type PytreeGroup,
  type PytreeRow,
  type SideFiles,
  type TensorRef,
} from '../core/index';
import { MAX_ROWS_PER_REQUEST, MAX_SUMMARY_VALUES, PROTOCOL_VERSION, type CheckpointSummaryView, type InitMessage, type RowsView, type TensorRow } from '../shared/checkpointProtocol';
import type { CheckpointServices } from './checkpointServices';
import { Disposable } from './dispose';

export class CheckpointDocument extends Disposable implements vscode.CustomDocument {
  private _state: { kind: 'checkpoint'; ck: Checkpoint; side: SideFiles } | { kind: 'error'; message: string } = { kind: 'error', message: vscode.l10n.t('Not loaded.') };
  /** Rows of the last view asked for (filter, order, open groups); paging the same view reuses them. */
  private _view: { key: string; rows: readonly (TensorRef | PytreeRow)[]; tensors: number } | undefined;
  private _pytree: PytreeGroup | undefined;
  private readonly _onDidChange = this._register(new vscode.EventEmitter<void>());
  readonly onDidChange = this._onDidChange.event;
  private readonly _onDidDelete = this._register(new vscode.EventEmitter<void>());
  readonly onDidDelete = this._onDidDelete.event;

  private constructor(
    readonly uri: vscode.Uri,
    private readonly services: CheckpointServices,
  ) {
    super();
  }

  static async create(uri: vscode.Uri, services: CheckpointServices): Promise<CheckpointDocument> {
    const doc = new CheckpointDocument(uri, services);
    await doc.load();
    const watcher = doc._register(vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(path.dirname(uri.fsPath)), path.basename(uri.fsPath))));
    doc._register(watcher.onDidChange(() => void doc.reload()));
    doc._register(watcher.onDidCreate(() => void doc.reload()));
    doc._register(watcher.onDidDelete(() => doc._onDidDelete.fire()));
    return doc;
  }

  async load(): Promise<void> {
    try {
      const ck = await this.services.open(this.uri);
      this._state = { kind: 'checkpoint', ck, side: await readSideFiles(this.services.files, ck) };
    } catch (e) {
      this._state = { kind: 'error', message: describeError(e) };
    }
    this._view = undefined;
    this._pytree = undefined;
  }

  /** Loads again and tells the views; used when the file changes or the workspace becomes trusted. */
  async reload(): Promise<void> {
    await this.load();
    this._onDidChange.fire();
  }

  get state() {
    return this._state;
  }

  init(pageSize: number, view: 'tree' | 'list'): InitMessage {
    const s = this._state;
    if (s.kind === 'error') return { type: 'init', protocolVersion: PROTOCOL_VERSION, pageSize, view, content: s };
    const expansion = initialExpansion(this.pytree()!);
    return { type: 'init', protocolVersion: PROTOCOL_VERSION, pageSize, view, expansion, content: { kind: 'checkpoint', summary: { ...summaryView(s.ck), side: s.side } } };
  }

  /** The pytree of the tensors, built on first use (the flat view never needs it). */
  pytree(): PytreeGroup | undefined {
    if (this._state.kind !== 'checkpoint') return undefined;
    return (this._pytree ??= buildPytree(this._state.ck.tensors));
  }

  /** The rows of a view, and how many tensors match its filter (groups are rows, not tensors). */
  private viewRows(view: RowsView): { rows: readonly (TensorRef | PytreeRow)[]; tensors: number } {
    if (this._state.kind !== 'checkpoint') return { rows: [], tensors: 0 };
    const { filter, sort, tree } = view;
    const key = JSON.stringify([filter, sort, tree]);
    if (this._view?.key !== key) {
      const ck = this._state.ck;
      const matching = filterTensors(ck, filter);
      const rows = tree ? pytreeRows(ck, this.pytree()!, tree, filter, sort) : sort ? sortTensors(matching, sort.key, sort.descending) : matching;
      this._view = { key, rows, tensors: matching.length };
    }
    return this._view;
  }

  rows(start: number, count: number, view: RowsView): { total: number; tensors: number; rows: TensorRow[] } {
    const { rows: all, tensors } = this.viewRows(view);
    return { total: all.length, tensors, rows: all.slice(start, start + Math.min(count, MAX_ROWS_PER_REQUEST)).map(tensorRow) };
  }

  /** The row of tensor `name` in a view, or -1. */
  locate(name: string, view: RowsView): number {
    return this.viewRows(view).rows.findIndex((r) => ('node' in r ? !isGroup(r.node) && r.node.name === name : r.name === name));
  }
}

function tensorRow(r: TensorRef | PytreeRow): TensorRow {
  const flat = (t: TensorRef) => ({ name: t.name, dtype: t.dtype, shape: t.shape, parameters: parameterCount(t), bytes: t.bytes });
  if (!('node' in r)) return flat(r);
  const n = r.node;
  if (!isGroup(n)) return { ...flat(n), depth: r.depth, label: keysLabel(nodeKeys(n)) };
  return {
    name: keysLabel(n.path),
    dtype: n.dtype ?? 'mixed',
    shape: [],
    parameters: n.parameters,
    bytes: n.bytes,
    depth: r.depth,
    label: keysLabel(n.keys),
    group: { id: n.id, tensors: n.tensors, expanded: r.expanded },
  };
}

function summaryView(ck: Checkpoint): CheckpointSummaryView {
  const s = summarize(ck);
  return {
    location: ck.location,
    format: ck.format,
    files: ck.files.length,
    tensorCount: s.tensorCount,
    parameterCount: s.parameterCount,
    bytes: s.bytes,
    parametersByDtype: Object.entries(s.parametersByDtype).map(([k, v]) => [k, v ?? 0] as const),
    metadata: Object.entries(ck.metadata),
    values: (ck.values ?? []).slice(0, MAX_SUMMARY_VALUES).map((v) => [v.name, v.value] as const),
    valueCount: ck.values?.length ?? 0,
  };
}
