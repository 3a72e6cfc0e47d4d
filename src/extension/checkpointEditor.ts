/**
 * The read-only checkpoint editor: the document is the parsed header (core does all parsing), the
 * webview pages rows from it. A file that fails to parse still opens, to an error panel.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import {
  describeError,
  ancestorIds,
  buildPytree,
  filterTensors,
  findTensor,
  initialExpansion,
  isGroup,
  keysLabel,
  nodeKeys,
  healthScan,
  isJaxServeError,
  parameterCount,
  pytreeRows,
  readSideFiles,
  sortTensors,
  summarize,
  type Checkpoint,
  type HealthReport,
  type PytreeGroup,
  type PytreeRow,
  type SideFiles,
  type TensorRef,
  stripControls,
} from '../core/index';
import {
  isWebviewToHost,
  MAX_ROWS_PER_REQUEST,
  MAX_SUMMARY_VALUES,
  PROTOCOL_VERSION,
  type CheckpointSummaryView,
  type HostToWebview,
  type InitMessage,
  type RowsView,
  type TensorRow,
  type TensorSliceMessage,
  type WebviewToHost,
} from '../shared/checkpointProtocol';
import { Rpc } from '../shared/rpc';
import { Disposable } from './dispose';
import type { CheckpointServices } from './checkpointServices';
import { webviewHtml, webviewOptions } from './webviewHtml';

export const CHECKPOINT_VIEW_TYPE = 'jaxServe.checkpoint';

class CheckpointDocument extends Disposable implements vscode.CustomDocument {
  private _state: { kind: 'checkpoint'; ck: Checkpoint; side: SideFiles } | { kind: 'error'; message: string } = { kind: 'error', message: 'Not loaded.' };
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

/** The file of the checkpoint editor in the active tab, if one is. */
export function activeCheckpointUri(): vscode.Uri | undefined {
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  return input instanceof vscode.TabInputCustom && input.viewType === CHECKPOINT_VIEW_TYPE ? input.uri : undefined;
}

function sliceRequest(m: TensorSliceMessage) {
  const { rowAxis, colAxis, index, rowStart, rowCount, colStart, colCount } = m;
  return { rowAxis, colAxis, index, rowStart, rowCount, colStart, colCount };
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

/** What tests can see of open editors: which file, what opened, which messages went to the page. */
export interface CheckpointEditorInfo {
  readonly uri: string;
  readonly tensorCount: number | undefined;
  readonly error: string | undefined;
  readonly sent: readonly string[];
}

interface EditorEntry {
  readonly doc: CheckpointDocument;
  readonly sent: string[];
  readonly panel: vscode.WebviewPanel;
  readonly rpc: Rpc<HostToWebview, WebviewToHost>;
}

/** What the pytree explorer sees of the checkpoint in the active editor. */
export interface ActiveCheckpoint {
  readonly uri: vscode.Uri;
  readonly root: PytreeGroup;
}

export class CheckpointEditorProvider implements vscode.CustomReadonlyEditorProvider<CheckpointDocument> {
  private readonly editors = new Set<EditorEntry>();
  private readonly _onDidChangeActive = new vscode.EventEmitter<void>();
  /** The active checkpoint editor changed, or its file was loaded again. */
  readonly onDidChangeActive = this._onDidChangeActive.event;
  /** Statistics and slices run on the services' worker thread, never on the extension host's. */
  private get values() {
    return this.services.values;
  }

  /** The last health scan of each file (the test API reads it). */
  readonly healthReports = new Map<string, HealthReport>();
  private readonly healthDiagnostics = vscode.languages.createDiagnosticCollection('jax-serve-health');

  static register(context: vscode.ExtensionContext, services: CheckpointServices): CheckpointEditorProvider {
    const provider = new CheckpointEditorProvider(context.extensionUri, services);
    context.subscriptions.push(
      provider.healthDiagnostics,
      vscode.commands.registerCommand('jaxServe.healthScan', (uri?: vscode.Uri) => provider.healthScan(uri)),
      vscode.window.registerCustomEditorProvider(CHECKPOINT_VIEW_TYPE, provider, { supportsMultipleEditorsPerDocument: true }),
      provider._onDidChangeActive,
      vscode.window.tabGroups.onDidChangeTabs(() => provider._onDidChangeActive.fire()),
      // What failed for want of trust (Orbax needs Python) can load now.
      vscode.workspace.onDidGrantWorkspaceTrust(() => provider.reloadFailed()),
    );
    return provider;
  }

  private constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly services: CheckpointServices,
  ) {}

  /**
   * "Health Scan Checkpoint": statistics over every tensor on the worker thread, with progress and
   * cancel; NaN/±Inf, all-zero, constant and extreme tensors go to the Problems panel on the file.
   */
  async healthScan(uri?: vscode.Uri): Promise<HealthReport | undefined> {
    const open = [...this.editors].map((e) => e.doc).find((d) => d.uri.toString() === (uri ?? activeCheckpointUri())?.toString());
    const target = uri ?? open?.uri ?? (await vscode.window.showOpenDialog({ title: 'Health Scan: the checkpoint', canSelectFolders: true, canSelectMany: false }))?.[0];
    if (!target) return undefined;
    const doc = open ?? (await CheckpointDocument.create(target, this.services));
    try {
      if (doc.state.kind !== 'checkpoint') {
        void vscode.window.showErrorMessage(`Health scan: ${doc.state.message}`);
        return undefined;
      }
      const ck = doc.state.ck;
      const report = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Health scan of ${path.basename(target.fsPath)}`, cancellable: true }, (progress, token) => {
        const ac = new AbortController();
        token.onCancellationRequested(() => ac.abort());
        let last = 0;
        return healthScan(ck, (t) => this.values.stats(ck, t, 1, { signal: ac.signal, firstPass: true }).then((r) => r.stats), {
          signal: ac.signal,
          onProgress: (done, total) => {
            progress.report({ increment: ((done - last) / total) * 100, message: `${done} of ${total} tensors` });
            last = done;
          },
        });
      });
      this.healthReports.set(target.fsPath, report);
      const severity = { error: vscode.DiagnosticSeverity.Error, warning: vscode.DiagnosticSeverity.Warning };
      this.healthDiagnostics.set(
        target,
        report.findings.map((f) => Object.assign(new vscode.Diagnostic(new vscode.Range(0, 0, 0, 0), stripControls(f.message), severity[f.severity]), { source: 'jax-serve health', code: f.code })),
      );
      const bad = report.findings.length;
      void (bad === 0 ? vscode.window.showInformationMessage(`${path.basename(target.fsPath)}: ${report.scanned} tensors scanned, nothing to report.`) : vscode.window.showWarningMessage(`${path.basename(target.fsPath)}: ${bad} finding(s) in ${report.scanned} tensors; see the Problems panel.`));
      return report;
    } catch (e) {
      if (!(isJaxServeError(e) && e.code === 'E_CANCELLED')) void vscode.window.showErrorMessage(`Health scan: ${describeError(e)}`);
      return undefined;
    } finally {
      if (!open) doc.dispose();
    }
  }

  private reloadFailed(): void {
    const docs = new Set([...this.editors].map((e) => e.doc));
    for (const doc of docs) if (doc.state.kind === 'error') void doc.reload();
  }

  /** The checkpoint in the active tab, when it opened. */
  active(): ActiveCheckpoint | undefined {
    const uri = activeCheckpointUri();
    return uri && this.tree(uri);
  }

  /** The pytree of the checkpoint open in an editor at `uri`, if one is and it opened. */
  tree(uri: vscode.Uri): ActiveCheckpoint | undefined {
    const doc = [...this.editors].find((e) => e.doc.uri.toString() === uri.toString())?.doc;
    const root = doc?.pytree();
    return doc && root ? { uri: doc.uri, root } : undefined;
  }

  /** Brings the editor of `uri` forward and selects tensor `name` there (statistics too with `stats`). */
  reveal(uri: vscode.Uri, name: string, stats: boolean): boolean {
    const entry = [...this.editors].find((e) => e.doc.uri.toString() === uri.toString() && e.panel.active) ?? [...this.editors].find((e) => e.doc.uri.toString() === uri.toString());
    const root = entry?.doc.pytree();
    const ancestors = root && ancestorIds(root, name);
    if (!entry || !ancestors) return false;
    entry.panel.reveal(undefined, true);
    entry.rpc.send({ type: 'reveal', name, ancestors, stats });
    return true;
  }

  list(): CheckpointEditorInfo[] {
    return [...this.editors].map(({ doc, sent }) => ({
      uri: doc.uri.toString(),
      tensorCount: doc.state.kind === 'checkpoint' ? doc.state.ck.tensors.length : undefined,
      error: doc.state.kind === 'error' ? doc.state.message : undefined,
      sent: [...sent],
    }));
  }

  async openCustomDocument(uri: vscode.Uri): Promise<CheckpointDocument> {
    return CheckpointDocument.create(uri, this.services);
  }

  async resolveCustomEditor(doc: CheckpointDocument, panel: vscode.WebviewPanel): Promise<void> {
    panel.webview.options = webviewOptions(this.extensionUri);
    const sent: string[] = [];
    // One statistics or slice job per panel: a new one (or cancelJob) stops the one running. A job
    // may go on after its reply (a histogram's second pass) through `later`, and stays cancellable.
    let job: AbortController | undefined;
    const run = async <T extends HostToWebview>(name: string, work: (ck: Checkpoint, t: TensorRef, signal: AbortSignal, later: (p: Promise<unknown>) => void) => Promise<T>): Promise<HostToWebview> => {
      job?.abort();
      const mine = (job = new AbortController());
      let pending: Promise<unknown> | undefined;
      const failed = (e: unknown): HostToWebview => ({ type: 'jobError', name, message: describeError(e), cancelled: mine.signal.aborted || (isJaxServeError(e) && e.code === 'E_CANCELLED') });
      const done = () => {
        if (job === mine) job = undefined;
      };
      try {
        if (doc.state.kind !== 'checkpoint') throw new Error(doc.state.message);
        return await work(doc.state.ck, findTensor(doc.state.ck, name), mine.signal, (p) => {
          pending = p.catch((e: unknown) => rpc.send(failed(e))).finally(done);
        });
      } catch (e) {
        return failed(e);
      } finally {
        if (!pending) done();
      }
    };
    const setting = () => vscode.workspace.getConfiguration('jaxServe');
    const pageSize = () => setting().get<number>('viewer.pageSize', 200);
    const view = () => (setting().get<string>('viewer.view', 'tree') === 'list' ? 'list' : 'tree');
    const rpc = new Rpc<HostToWebview, WebviewToHost>(
      (env) => {
        if (env.body) sent.push(env.body.type);
        if (sent.length > 100) sent.shift();
        void panel.webview.postMessage(env);
      },
      (msg): HostToWebview | Promise<HostToWebview> | undefined => {
        switch (msg.type) {
          case 'ready':
            return doc.init(pageSize(), view());
          case 'listRows':
            return { type: 'rows', start: msg.start, ...doc.rows(msg.start, msg.count, msg) };
          case 'locate':
            return { type: 'located', index: doc.locate(msg.name, msg) };
          case 'reopenAsText':
            void vscode.commands.executeCommand('vscode.openWith', doc.uri, 'default');
            return { type: 'ack' };
          case 'tensorStats':
            return run(msg.name, async (ck, t, signal, later) => {
              // Ten updates a second at most: each one crosses to the page, and a queue of them would delay the reply.
              let last = 0;
              const onProgress = (fraction: number) => {
                const now = Date.now();
                if (now - last < 100) return;
                last = now;
                rpc.send({ type: 'progress', name: msg.name, fraction });
              };
              // The numbers as soon as one pass has them; a float tensor's histogram follows.
              const { stats, histogram } = await this.values.stats(ck, t, msg.bins, { signal, onProgress, firstPass: true });
              if (histogram !== undefined || stats.min === null) return { type: 'stats', name: msg.name, stats, histogram: histogram ?? null };
              later(this.values.stats(ck, t, msg.bins, { signal, onProgress, stats }).then((r) => rpc.send({ type: 'histogram', name: msg.name, histogram: r.histogram ?? null })));
              return { type: 'stats', name: msg.name, stats, histogram: null, histogramPending: true };
            });
          case 'tensorSlice':
            return run(msg.name, async (ck, t, signal) => {
              const slice = await this.values.slice(ck, t, sliceRequest(msg), { signal });
              return { type: 'slice', name: msg.name, rows: slice.rows, cols: slice.cols, values: Array.from(slice.values, (v) => (Number.isFinite(v) ? v : null)) };
            });
          case 'cancelJob':
            job?.abort();
            return { type: 'ack' };
          default: {
            const never: never = msg;
            return never;
          }
        }
      },
      isWebviewToHost,
    );
    const entry: EditorEntry = { doc, sent, panel, rpc };
    this.editors.add(entry);
    this._onDidChangeActive.fire();
    const subs = [
      panel.webview.onDidReceiveMessage((m) => rpc.receive(m)),
      doc.onDidChange(() => {
        rpc.send({ type: 'reload' });
        this._onDidChangeActive.fire();
      }),
      doc.onDidDelete(() => panel.dispose()),
    ];
    panel.onDidDispose(() => {
      job?.abort();
      rpc.dispose();
      subs.forEach((s) => s.dispose());
      this.editors.delete(entry);
      if (![...this.editors].some((e) => e.doc === doc)) doc.dispose();
      this._onDidChangeActive.fire();
    });
    panel.webview.html = webviewHtml(panel.webview, this.extensionUri, 'checkpoint', path.basename(doc.uri.fsPath));
  }
}
