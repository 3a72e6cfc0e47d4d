/**
 * One checkpoint editor tab: its webview, the messages to and from its page, and the one statistics
 * or slice job the page may have running. The document (the parsed file) is shared by every tab of
 * the file; the session owns only what is this tab's.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { describeError, findTensor, isJaxServeError, type Checkpoint, type TensorRef } from '../core/index';
import { isWebviewToHost, type HostToWebview, type ReadyMessage, type TensorSliceMessage, type TensorStatsMessage, type WebviewToHost } from '../shared/checkpointProtocol';
import { Rpc } from '../shared/rpc';
import type { CheckpointDocument } from './checkpointDocument';
import type { CheckpointServices } from './checkpointServices';
import { Disposable } from './dispose';
import { webviewHtml, webviewOptions } from './webviewHtml';

/** Progress messages per second at most: each one crosses to the page, and a queue of them would delay the reply. */
const PROGRESS_MS = 100;

type Work<T extends HostToWebview> = (ck: Checkpoint, t: TensorRef, signal: AbortSignal, later: (p: Promise<unknown>) => void) => Promise<T>;

export class CheckpointEditorSession extends Disposable {
  // One statistics or slice job per tab: a new one (or cancelJob) stops the one running. A job may
  // go on after its reply (a histogram's second pass) through `later`, and stays cancellable.
  private job: AbortController | undefined;
  private readonly rpc: Rpc<HostToWebview, WebviewToHost>;
  /** The page was told its rows come from the index while the shards are validated: it waits for `loaded`. */
  private validating = false;

  /** `changed`: the document loaded again (the page was told to reload). */
  constructor(
    readonly doc: CheckpointDocument,
    readonly panel: vscode.WebviewPanel,
    extensionUri: vscode.Uri,
    private readonly services: CheckpointServices,
    changed: () => void,
  ) {
    super();
    this.rpc = new Rpc<HostToWebview, WebviewToHost>(
      (env) => void panel.webview.postMessage(env),
      (msg) => this.handle(msg),
      isWebviewToHost,
    );
    this._register(panel.webview.onDidReceiveMessage((m) => this.rpc.receive(m)));
    this._register(
      doc.onDidChange(() => {
        this.validating = false;
        this.rpc.send({ type: 'reload' });
        changed();
      }),
    );
    // Rows shown from an index: the page learns how its shards' validation ended.
    this._register(
      doc.onDidLoad(() => {
        if (this.validating) this.rpc.send({ type: 'loaded', content: doc.content() });
        this.validating = false;
        changed();
      }),
    );
    this._register(doc.onDidDelete(() => panel.dispose()));
    panel.webview.options = webviewOptions(extensionUri);
    panel.webview.html = webviewHtml(panel.webview, extensionUri, 'checkpoint', path.basename(doc.uri.fsPath));
  }

  /** Selects tensor `name` in the page, opening the groups `ancestors` (statistics too with `stats`). */
  reveal(name: string, ancestors: readonly string[], stats: boolean): void {
    this.rpc.send({ type: 'reveal', name, ancestors, stats });
  }

  override dispose(): void {
    this.job?.abort();
    this.rpc.dispose();
    super.dispose();
  }

  private handle(msg: WebviewToHost): HostToWebview | Promise<HostToWebview> | undefined {
    const doc = this.doc;
    switch (msg.type) {
      case 'ready':
        return this.init(msg);
      case 'listRows':
        return { type: 'rows', start: msg.start, ...doc.rows(msg.start, msg.count, msg) };
      case 'locate':
        return { type: 'located', index: doc.locate(msg.name, msg) };
      case 'reopenAsText':
        void vscode.commands.executeCommand('vscode.openWith', doc.uri, 'default');
        return { type: 'ack' };
      case 'tensorStats':
        return this.run(msg.name, (ck, t, signal, later) => this.stats(msg, ck, t, signal, later));
      case 'tensorSlice':
        return this.run(msg.name, (ck, t, signal) => this.slice(msg, ck, t, signal));
      case 'cancelJob':
        this.job?.abort();
        return { type: 'ack' };
      default: {
        const never: never = msg;
        return never;
      }
    }
  }

  private async init(msg: ReadyMessage): Promise<HostToWebview> {
    this.doc.begin(true);
    await this.doc.shown();
    const setting = vscode.workspace.getConfiguration('jaxServe');
    const init = this.doc.init(setting.get<number>('viewer.pageSize', 200), setting.get<string>('viewer.view', 'tree') === 'list' ? 'list' : 'tree', msg);
    this.validating = init.content.kind === 'checkpoint' && init.content.validating;
    this.doc.served();
    return init;
  }

  /** Runs `work` as this tab's job, stopping the one before; a failure is the reply, never a throw. */
  private async run<T extends HostToWebview>(name: string, work: Work<T>): Promise<HostToWebview> {
    this.job?.abort();
    const mine = (this.job = new AbortController());
    let pending: Promise<unknown> | undefined;
    const failed = (e: unknown): HostToWebview => ({ type: 'jobError', name, message: describeError(e), cancelled: mine.signal.aborted || (isJaxServeError(e) && e.code === 'E_CANCELLED') });
    const done = () => {
      if (this.job === mine) this.job = undefined;
    };
    try {
      // Never from the index's listing: values are read once the shards are validated, or not at all.
      const state = await this.doc.loaded();
      if (state.kind !== 'checkpoint') throw new Error(state.message);
      return await work(state.ck, findTensor(state.ck, name), mine.signal, (p) => {
        pending = p.catch((e: unknown) => this.rpc.send(failed(e))).finally(done);
      });
    } catch (e) {
      return failed(e);
    } finally {
      if (!pending) done();
    }
  }

  /** The numbers as soon as one pass has them; a float tensor's histogram follows as its own message. */
  private async stats(msg: TensorStatsMessage, ck: Checkpoint, t: TensorRef, signal: AbortSignal, later: (p: Promise<unknown>) => void): Promise<HostToWebview> {
    const values = this.services.values;
    let last = 0;
    const onProgress = (fraction: number) => {
      const now = Date.now();
      if (now - last < PROGRESS_MS) return;
      last = now;
      this.rpc.send({ type: 'progress', name: msg.name, fraction });
    };
    const { stats, histogram } = await values.stats(ck, t, msg.bins, { signal, onProgress, firstPass: true });
    if (histogram !== undefined || stats.min === null) return { type: 'stats', name: msg.name, stats, histogram: histogram ?? null };
    later(values.stats(ck, t, msg.bins, { signal, onProgress, stats }).then((r) => this.rpc.send({ type: 'histogram', name: msg.name, histogram: r.histogram ?? null })));
    return { type: 'stats', name: msg.name, stats, histogram: null, histogramPending: true };
  }

  private async slice(msg: TensorSliceMessage, ck: Checkpoint, t: TensorRef, signal: AbortSignal): Promise<HostToWebview> {
    const { rowAxis, colAxis, index, rowStart, rowCount, colStart, colCount } = msg;
    const slice = await this.services.values.slice(ck, t, { rowAxis, colAxis, index, rowStart, rowCount, colStart, colCount }, { signal });
    // JSON has no NaN or ±Inf: they cross as null.
    return { type: 'slice', name: msg.name, rows: slice.rows, cols: slice.cols, values: Array.from(slice.values, (v) => (Number.isFinite(v) ? v : null)) };
  }
}
