/**
 * The checkpoint editor's document: the parsed header (core does all parsing) and the rows of the
 * last view asked for, shared by every editor of the file and by a health scan of it. A file that
 * fails to parse still makes a document, holding the error. It loads again when the file changes.
 *
 * Loading does not hold up the editor: the document exists at once and its tabs draw while it
 * loads. A sharded safetensors index is listed first (names and shards, from the index alone), so
 * its rows show while the shard headers are read and validated; values are read only from the
 * validated checkpoint (`loaded()`), and a shard that fails validation makes the document's error.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import {
  describeError,
  buildNameTree,
  buildPytree,
  filterTensors,
  initialExpansion,
  isGroup,
  keysLabel,
  nameMatcher,
  nameTreeRows,
  naturalCompare,
  nodeKeys,
  parameterCount,
  pytreeRows,
  readSideFiles,
  sortTensors,
  summarize,
  type Checkpoint,
  type IndexListing,
  type ListedTensor,
  PytreeGroup,
  type PytreeRow,
  type SideFiles,
  type TensorRef,
} from '../core/index';
import { MAX_ROWS_PER_REQUEST, MAX_SUMMARY_VALUES, PROTOCOL_VERSION, type CheckpointSummaryView, type InitMessage, type PageContent, type ReadyMessage, type RowsPage, type RowsView, type TensorRow } from '../shared/checkpointProtocol';
import type { CheckpointServices } from './checkpointServices';
import { Disposable } from './dispose';

/**
 * How long validation waits, after an index is listed, for a page to take its first rows: the
 * extension host has one thread, and reading 100,000 headers on it would hold up the page's `ready`.
 */
const FIRST_ROWS_WAIT_MS = 1000;

/** An index listed before its shards are validated, with the files beside it. */
interface Listed {
  readonly listing: IndexListing;
  readonly side: SideFiles;
}

/** How a load ended: the validated checkpoint, or why not (with the index's listing, when it listed). */
export type LoadedState = { readonly kind: 'checkpoint'; readonly ck: Checkpoint; readonly side: SideFiles } | { readonly kind: 'error'; readonly message: string; readonly listed?: Listed };

type DocumentState = { readonly kind: 'loading' } | ({ readonly kind: 'listed' } & Listed) | LoadedState;

/** The rows of one view, and how to page and search them. */
interface ViewRows {
  readonly key: string;
  readonly total: number;
  /** Tensors matching the filter (groups are rows, not tensors). */
  readonly tensors: number;
  page(start: number, count: number): TensorRow[];
  locate(name: string): number;
}

export class CheckpointDocument extends Disposable implements vscode.CustomDocument {
  private _state: DocumentState = { kind: 'loading' };
  /** Rows of the last view asked for (filter, order, open groups); paging the same view reuses them. */
  private _view: ViewRows | undefined;
  private _pytree: PytreeGroup | undefined;
  private _nameTree: PytreeGroup<ListedTensor> | undefined;
  private _generation = 0;
  /** The latest load: settles when rows can be served (`shown`), and when it has ended (`done`). */
  private _load: { shown: Promise<void>; done: Promise<LoadedState> } | undefined;
  /** Pages show this document: validation lets the first of them take its rows first. */
  private _forPages = false;
  /** Called when a page has taken its first rows of the latest load. */
  private _served: (() => void) | undefined;
  private readonly _onDidChange = this._register(new vscode.EventEmitter<void>());
  /** The file was loaded again: views start over. */
  readonly onDidChange = this._onDidChange.event;
  private readonly _onDidLoad = this._register(new vscode.EventEmitter<void>());
  /** A load has ended: the checkpoint is validated (its tree can be shown), or the error is known. */
  readonly onDidLoad = this._onDidLoad.event;
  private readonly _onDidDelete = this._register(new vscode.EventEmitter<void>());
  readonly onDidDelete = this._onDidDelete.event;

  private constructor(
    readonly uri: vscode.Uri,
    private readonly services: CheckpointServices,
  ) {
    super();
  }

  /** A document that loads when first asked (`begin`, `shown`, `loaded`). */
  static create(uri: vscode.Uri, services: CheckpointServices): CheckpointDocument {
    const doc = new CheckpointDocument(uri, services);
    const watcher = doc._register(vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(path.dirname(uri.fsPath)), path.basename(uri.fsPath))));
    doc._register(watcher.onDidChange(() => void doc.reload()));
    doc._register(watcher.onDidCreate(() => void doc.reload()));
    doc._register(watcher.onDidDelete(() => doc._onDidDelete.fire()));
    return doc;
  }

  /**
   * Starts loading, unless it has. `forPages`: editors show it, so validating an index's shards
   * waits until a page has taken its first rows (`served`), or FIRST_ROWS_WAIT_MS.
   */
  begin(forPages = false): void {
    this._forPages ||= forPages;
    if (!this._load) this.start();
  }

  /** A page has taken its first rows: validation may have the thread. */
  served(): void {
    this._served?.();
  }

  private start(): void {
    const generation = ++this._generation;
    this.set({ kind: 'loading' });
    let shown!: () => void;
    const shownP = new Promise<void>((resolve) => (shown = resolve));
    const firstRows = this._forPages ? new Promise<void>((resolve) => (this._served = resolve)) : undefined;
    const done = this.load(generation, shown, firstRows);
    void done.finally(shown);
    this._load = { shown: shownP, done };
  }

  private async load(generation: number, shown: () => void, firstRows: Promise<void> | undefined): Promise<LoadedState> {
    const current = () => generation === this._generation;
    let listed: Listed | undefined;
    let final: LoadedState;
    try {
      // The listing is for pages' first rows (a scan needs only the validated checkpoint). An index
      // that does not list (unreadable, malformed) is left to the full open, which says why.
      const listing = this._forPages ? await this.services.list(this.uri).catch(() => undefined) : undefined;
      if (listing) {
        listed = { listing, side: await readSideFiles(this.services.files, listing) };
        if (current()) {
          this.set({ kind: 'listed', ...listed });
          // The page's first rows need the top of the tree: make those groups now, while the page is still loading.
          if (this._forPages) initialExpansion(this.nameTree()!);
          shown();
        }
        if (firstRows) {
          let timer: ReturnType<typeof setTimeout> | undefined;
          await Promise.race([firstRows, new Promise<void>((resolve) => (timer = setTimeout(resolve, FIRST_ROWS_WAIT_MS)))]);
          clearTimeout(timer);
          // A turn of the event loop: the reply carrying those rows leaves before the headers take the thread.
          await new Promise((resolve) => setTimeout(resolve, 0));
        }
      }
      const ck = await this.services.open(this.uri, listed?.listing);
      final = { kind: 'checkpoint', ck, side: listed?.side ?? (await readSideFiles(this.services.files, ck)) };
    } catch (e) {
      final = { kind: 'error', message: describeError(e), ...(listed ? { listed } : {}) };
    }
    if (current()) {
      this.set(final);
      this._onDidLoad.fire();
    }
    return final;
  }

  private set(state: DocumentState): void {
    this._state = state;
    this._view = undefined;
    this._pytree = undefined;
    this._nameTree = undefined;
  }

  /** Loads again and tells the views once they can show rows; used when the file changes or the workspace becomes trusted. */
  async reload(): Promise<void> {
    this.start();
    const generation = this._generation;
    await this._load!.shown;
    if (generation === this._generation) this._onDidChange.fire();
  }

  get state(): DocumentState {
    return this._state;
  }

  /** Settles when rows can be served: the index listed, or the load ended. */
  shown(): Promise<void> {
    this.begin();
    return this._load!.shown;
  }

  /** How the latest load ended; values are read only from a checkpoint this gives. */
  loaded(): Promise<LoadedState> {
    this.begin();
    return this._load!.done;
  }

  /** The index listing shown while loading, or kept beside the error when a shard failed. */
  private get listed(): Listed | undefined {
    const s = this._state;
    return s.kind === 'listed' ? s : s.kind === 'error' ? s.listed : undefined;
  }

  /** What the page shows of the file now. */
  content(): PageContent {
    const s = this._state;
    if (s.kind === 'checkpoint') return { kind: 'checkpoint', summary: { ...summaryView(s.ck), side: s.side }, validating: false };
    if (s.kind === 'listed') return { kind: 'checkpoint', summary: listedSummary(s), validating: true };
    if (s.kind === 'error') return { kind: 'error', message: s.message, ...(s.listed ? { listed: listedSummary(s.listed) } : {}) };
    return { kind: 'error', message: vscode.l10n.t('Not loaded.') };
  }

  /** The reply to `ready`: the summary and the first page of the page's view (`view`: the setting a new tab starts from). */
  init(pageSize: number, view: 'tree' | 'list', ready: ReadyMessage): InitMessage {
    const content = this.content();
    const base = { type: 'init', protocolVersion: PROTOCOL_VERSION, pageSize, view, content } as const;
    const validated = this.pytree();
    const names = validated ? undefined : this.nameTree();
    const expansion = validated ? initialExpansion(validated) : names && initialExpansion(names);
    if (!expansion) return base;
    const tree = ready.tree ?? view === 'tree';
    const first = this.rows(0, pageSize, { filter: ready.filter, sort: ready.sort, tree: tree ? (ready.expansion ?? expansion) : undefined });
    return { ...base, expansion, first };
  }

  /** The pytree of the validated tensors, built on first use (the flat view never needs it). */
  pytree(): PytreeGroup | undefined {
    if (this._state.kind !== 'checkpoint') return undefined;
    return (this._pytree ??= buildPytree(this._state.ck.tensors));
  }

  /** The same tree from the index's names, while there are no validated tensors. */
  private nameTree(): PytreeGroup<ListedTensor> | undefined {
    const listed = this.listed;
    return listed && (this._nameTree ??= buildNameTree(listed.listing.tensors));
  }

  /** The rows of a view, and how many tensors match its filter (groups are rows, not tensors). */
  private viewRows(view: RowsView): ViewRows | undefined {
    const { filter, sort, tree } = view;
    const key = JSON.stringify([filter, sort, tree]);
    if (this._view?.key === key) return this._view;
    const s = this._state;
    const listed = this.listed;
    if (s.kind === 'checkpoint') {
      const matching = filterTensors(s.ck, filter);
      const rows = tree ? pytreeRows(this.pytree()!, tree, filter, sort) : sort ? sortTensors(matching, sort.key, sort.descending) : matching;
      this._view = viewOf(key, rows, matching.length, tensorRow);
    } else if (listed) {
      // Names only: a sort by size or type waits for the headers (file order until then).
      const match = nameMatcher(filter);
      const all = listed.listing.tensors;
      const matching = match ? all.filter((t) => match(t.name)) : all;
      const sign = sort?.descending ? -1 : 1;
      const rows = tree ? nameTreeRows(this.nameTree()!, tree, filter, sort) : sort?.key === 'name' ? [...matching].sort((a, b) => sign * naturalCompare(a.name, b.name)) : matching;
      this._view = viewOf(key, rows, matching.length, listedRow);
    } else return undefined;
    return this._view;
  }

  rows(start: number, count: number, view: RowsView): RowsPage {
    const v = this.viewRows(view);
    return { total: v?.total ?? 0, tensors: v?.tensors ?? 0, rows: v?.page(start, Math.min(count, MAX_ROWS_PER_REQUEST)) ?? [] };
  }

  /** The row of tensor `name` in a view, or -1. */
  locate(name: string, view: RowsView): number {
    return this.viewRows(view)?.locate(name) ?? -1;
  }
}

/** A row of a view: a tensor or a tree row, validated or listed from the index. */
type Row = TensorRef | PytreeRow | ListedTensor | PytreeRow<ListedTensor>;

function viewOf<R extends Row>(key: string, rows: readonly R[], tensors: number, row: (r: R) => TensorRow): ViewRows {
  return {
    key,
    total: rows.length,
    tensors,
    page: (start, count) => rows.slice(start, start + count).map(row),
    locate: (name) => rows.findIndex((r) => leafName(r) === name),
  };
}

/** The tensor a row shows; undefined for a group. */
function leafName(r: Row): string | undefined {
  return 'node' in r ? (r.node instanceof PytreeGroup ? undefined : r.node.name) : r.name;
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

/** A row listed from the index: its name (a group's tensor count), the facts still unknown. */
function listedRow(r: ListedTensor | PytreeRow<ListedTensor>): TensorRow {
  const unknown = { dtype: '', shape: [], parameters: 0, bytes: 0, pending: true } as const;
  if (!('node' in r)) return { name: r.name, ...unknown };
  const n = r.node;
  if (!isGroup(n)) return { name: n.name, ...unknown, depth: r.depth, label: keysLabel(nodeKeys(n)) };
  return { name: keysLabel(n.path), ...unknown, depth: r.depth, label: keysLabel(n.keys), group: { id: n.id, tensors: n.tensors, expanded: r.expanded } };
}

function listedSummary({ listing, side }: Listed): CheckpointSummaryView {
  return {
    location: listing.location,
    format: listing.format,
    files: listing.files.length,
    tensorCount: listing.tensors.length,
    parameterCount: null,
    bytes: null,
    parametersByDtype: [],
    metadata: Object.entries(listing.metadata),
    values: [],
    valueCount: 0,
    side,
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
