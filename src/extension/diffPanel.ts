/**
 * "Compare Checkpoints…": a panel listing what differs between two checkpoints (core/diff pairs
 * them, by name or through the conversion plan), and on demand how far each pair's values are
 * apart, computed on the value worker with progress and cancel. Also the explorer's two-step
 * "Select for Compare" / "Compare with Selected".
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import {
  DEFAULT_TOLERANCE,
  describeError,
  describeTransform,
  diffCheckpoints,
  entryName,
  isJaxServeError,
  nameMatcher,
  type Checkpoint,
  type CheckpointDiff,
  type DiffEntry,
  type TensorRef,
} from '../core/index';
import {
  isDiffWebviewToHost,
  MAX_DIFF_ROWS,
  VALUES_DIFFER,
  type DiffHostToWebview,
  type DiffInit,
  type DiffListRows,
  type DiffRow,
  type DiffWebviewToHost,
  type SideView,
  type ValueView,
} from '../shared/diffProtocol';
import { Rpc } from '../shared/rpc';
import type { CheckpointServices } from './checkpointServices';
import { webviewHtml, webviewOptions } from './webviewHtml';

export const DIFF_VIEW_TYPE = 'jaxServe.diff';
const SELECTED_KEY = 'jaxServe.compareSelected';

type ValueResult = ValueView | { readonly error: string };

/** What tests can see of an open comparison. */
export interface DiffPanelInfo {
  readonly left: string;
  readonly right: string;
  readonly pairing: CheckpointDiff['pairing'] | undefined;
  readonly counts: CheckpointDiff['counts'] | undefined;
  readonly error: string | undefined;
  /** Pairs whose values were compared, and how many of them differ. */
  readonly compared: number;
  readonly differing: number;
}

const side = (t: TensorRef | undefined, converted?: SideView['converted']): SideView | undefined => t && { name: t.name, dtype: t.dtype, shape: t.shape, converted };
const comparable = (e: DiffEntry) => e.left !== undefined && e.right !== undefined && (e.status === 'same' || e.status === 'retyped');

class DiffSession {
  /** Value results by entry index. */
  readonly values = new Map<number, ValueResult>();
  private job: AbortController | undefined;
  private view: { key: string; rows: number[] } | undefined;

  constructor(
    readonly left: Checkpoint,
    readonly right: Checkpoint,
    readonly diff: CheckpointDiff,
  ) {}

  get differing(): number {
    let n = 0;
    for (const v of this.values.values()) if ('error' in v || !v.allclose) n++;
    return n;
  }

  row(i: number): DiffRow {
    const e = this.diff.entries[i]!;
    let via: string | undefined;
    if (e.via) {
      const steps = e.via.planned.transforms.map(describeTransform).join(', ') || vscode.l10n.t('as stored');
      via = e.via.side === 'left' ? vscode.l10n.t('left converted: {0}', steps) : vscode.l10n.t('right converted: {0}', steps);
    }
    const converted = (which: 'left' | 'right') => (e.via?.side === which ? { dtype: e.via.planned.target.dtype, shape: e.via.planned.target.shape } : undefined);
    return { status: e.status, name: entryName(e), left: side(e.left, converted('left')), right: side(e.right, converted('right')), via, value: this.values.get(i) };
  }

  rows(m: DiffListRows): { total: number; rows: DiffRow[] } {
    const key = JSON.stringify([m.filter, m.statuses, m.statuses.includes(VALUES_DIFFER) ? this.values.size : 0]);
    if (this.view?.key !== key) {
      const match = nameMatcher(m.filter);
      const want = new Set(m.statuses);
      const rows: number[] = [];
      this.diff.entries.forEach((e, i) => {
        if (match && !match(entryName(e))) return;
        if (want.size > 0) {
          const v = this.values.get(i);
          const differs = v !== undefined && ('error' in v || !v.allclose);
          if (!want.has(e.status) && !(want.has(VALUES_DIFFER) && differs)) return;
        }
        rows.push(i);
      });
      this.view = { key, rows };
    }
    const all = this.view.rows;
    return { total: all.length, rows: all.slice(m.start, m.start + Math.min(m.count, MAX_DIFF_ROWS)).map((i) => this.row(i)) };
  }

  /**
   * Compares every comparable pair in turn on the worker; `report` after each, and once more at the
   * end. A run started again supersedes this one, which then stops without a word.
   */
  async compareAll(services: CheckpointServices, report: (done: number, total: number, finished?: 'done' | 'cancelled') => void): Promise<void> {
    this.job?.abort();
    const job = (this.job = new AbortController());
    this.values.clear();
    const todo = this.diff.entries.map((e, i) => [e, i] as const).filter(([e]) => comparable(e));
    let done = 0;
    report(0, todo.length);
    for (const [e, i] of todo) {
      if (job.signal.aborted) break;
      try {
        const v = await services.values.compare(this.left, e.left!, this.right, e.right!, e.via, DEFAULT_TOLERANCE, { signal: job.signal });
        this.values.set(i, { elements: v.elements, maxAbsDiff: v.maxAbsDiff, maxRelDiff: v.maxRelDiff, mismatched: v.mismatched, allclose: v.allclose });
      } catch (err) {
        if (job.signal.aborted || (isJaxServeError(err) && err.code === 'E_CANCELLED')) break;
        this.values.set(i, { error: describeError(err) });
      }
      if (this.job !== job) return;
      report(++done, todo.length);
    }
    if (this.job !== job) return;
    this.job = undefined;
    report(done, todo.length, job.signal.aborted ? 'cancelled' : 'done');
  }

  cancel(): void {
    this.job?.abort();
  }
}

function pairingText(d: CheckpointDiff): string {
  if (d.pairing.kind === 'names') return vscode.l10n.t('Paired by name.');
  const jax = d.pairing.jax === 'left' ? vscode.l10n.t('left') : vscode.l10n.t('right');
  return vscode.l10n.t("Paired through the {0} conversion plan: the {1} side is the JAX checkpoint, compared after the plan's transforms.", d.pairing.preset, jax);
}

export class DiffPanels {
  private readonly open = new Set<{ left: vscode.Uri; right: vscode.Uri; session: DiffSession | undefined; error: string | undefined }>();
  private selected: vscode.Uri | undefined;

  static register(context: vscode.ExtensionContext, services: CheckpointServices, active: () => vscode.Uri | undefined): DiffPanels {
    const panels = new DiffPanels(context.extensionUri, services);
    context.subscriptions.push(
      vscode.commands.registerCommand('jaxServe.compareCheckpoints', async (uri?: vscode.Uri, uris?: vscode.Uri[]) => {
        // Two files chosen together in the explorer compare with each other.
        if (uris && uris.length === 2) return panels.show(uris[0]!, uris[1]!);
        const left = uri ?? active() ?? (await pick(vscode.l10n.t('Compare: the first (left) checkpoint')));
        const right = left && (await pick(vscode.l10n.t('Compare {0} with…', path.basename(left.fsPath))));
        return left && right ? panels.show(left, right) : undefined;
      }),
      vscode.commands.registerCommand('jaxServe.selectForCompare', async (uri?: vscode.Uri) => {
        panels.selected = uri ?? active();
        await vscode.commands.executeCommand('setContext', SELECTED_KEY, panels.selected !== undefined);
      }),
      vscode.commands.registerCommand('jaxServe.compareWithSelected', async (uri?: vscode.Uri) => {
        const right = uri ?? active();
        if (!panels.selected || !right) return undefined;
        return panels.show(panels.selected, right);
      }),
    );
    return panels;
  }

  private constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly services: CheckpointServices,
  ) {}

  list(): DiffPanelInfo[] {
    return [...this.open].map(({ left, right, session, error }) => ({
      left: left.fsPath,
      right: right.fsPath,
      pairing: session?.diff.pairing,
      counts: session?.diff.counts,
      error,
      compared: session?.values.size ?? 0,
      differing: session?.differing ?? 0,
    }));
  }

  /** Opens a comparison panel of `left` and `right` (reading only their headers). */
  async show(left: vscode.Uri, right: vscode.Uri): Promise<void> {
    const panel = vscode.window.createWebviewPanel(DIFF_VIEW_TYPE, `${path.basename(left.fsPath)} ↔ ${path.basename(right.fsPath)}`, vscode.ViewColumn.Active, { ...webviewOptions(this.extensionUri), retainContextWhenHidden: false });
    const entry = { left, right, session: undefined as DiffSession | undefined, error: undefined as string | undefined };
    this.open.add(entry);
    const loading = (async () => {
      try {
        const [l, r] = await Promise.all([this.services.open(left), this.services.open(right)]);
        entry.session = new DiffSession(l, r, diffCheckpoints(l, r));
      } catch (e) {
        entry.error = describeError(e);
      }
    })();
    const pageSize = () => vscode.workspace.getConfiguration('jaxServe').get<number>('viewer.pageSize', 200);
    const rpc: Rpc<DiffHostToWebview, DiffWebviewToHost> = new Rpc<DiffHostToWebview, DiffWebviewToHost>(
      (env) => void panel.webview.postMessage(env),
      async (msg): Promise<DiffHostToWebview> => {
        await loading;
        const s = entry.session;
        switch (msg.type) {
          case 'ready':
            return this.init(entry.left, entry.right, s, entry.error, pageSize());
          case 'listRows':
            return { type: 'rows', start: msg.start, ...(s ? s.rows(msg) : { total: 0, rows: [] }) };
          case 'compareValues':
            // Runs on; progress messages follow, the last one says it finished.
            if (s) void s.compareAll(this.services, (done, total, finished) => rpc.send({ type: 'valuesProgress', done, total, differing: s.differing, finished }));
            return { type: 'ack' };
          case 'cancelValues':
            s?.cancel();
            return { type: 'ack' };
          default: {
            const never: never = msg;
            return never;
          }
        }
      },
      isDiffWebviewToHost,
    );
    const sub = panel.webview.onDidReceiveMessage((m) => rpc.receive(m));
    panel.onDidDispose(() => {
      entry.session?.cancel();
      rpc.dispose();
      sub.dispose();
      this.open.delete(entry);
    });
    panel.webview.html = webviewHtml(panel.webview, this.extensionUri, 'diff', panel.title);
  }

  private init(left: vscode.Uri, right: vscode.Uri, s: DiffSession | undefined, error: string | undefined, pageSize: number): DiffInit {
    if (!s) return { type: 'init', pageSize, content: { kind: 'error', message: error ?? vscode.l10n.t('The checkpoints did not open.') } };
    return {
      type: 'init',
      pageSize,
      content: {
        kind: 'diff',
        left: left.fsPath,
        right: right.fsPath,
        pairing: pairingText(s.diff),
        counts: s.diff.counts,
        comparable: s.diff.entries.filter(comparable).length,
        ...DEFAULT_TOLERANCE,
      },
    };
  }
}

async function pick(title: string): Promise<vscode.Uri | undefined> {
  const r = await vscode.window.showOpenDialog({ title, canSelectFiles: true, canSelectFolders: true, canSelectMany: false, openLabel: vscode.l10n.t('Compare') });
  return r?.[0];
}
