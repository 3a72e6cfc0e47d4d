/**
 * The conversion plan, rendered: a webview with the plan's facts, its problems and a paged table
 * of every tensor, the rows with problems marked. The Markdown of the same rows stays one click
 * away ("Open Plan as Markdown" in the panel and its title bar, "Copy Markdown" in the panel).
 * Presentation only: the rows and the Markdown come from core's planView.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { nameMatcher, planMarkdown, planView, type Plan, type PlanRow, type PlanView } from '../core/index';
import { isPlanWebviewToHost, MAX_PLAN_ROWS, type PlanHostToWebview, type PlanListRows, type PlanWebviewToHost } from '../shared/planProtocol';
import { Rpc } from '../shared/rpc';
import type { PlanDocuments } from './planDocuments';
import { webviewHtml, webviewOptions } from './webviewHtml';

export const PLAN_VIEW_TYPE = 'jaxServe.plan';

interface Shown {
  readonly panel: vscode.WebviewPanel;
  readonly rpc: Rpc<PlanHostToWebview, PlanWebviewToHost>;
  view: PlanView;
  /** The Markdown document of this plan (PlanDocuments serves it). */
  markdown: vscode.Uri;
  /** The rows of the last listRows' filter, cached while the page scrolls. */
  listed?: { key: string; rows: readonly PlanRow[] };
}

export class PlanPanels implements vscode.Disposable {
  /** By source checkpoint: Convert run again on one source updates its panel. */
  private readonly open = new Map<string, Shown>();
  private last: Shown | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly docs: PlanDocuments,
  ) {
    this.disposables.push(vscode.commands.registerCommand('jaxServe.openPlanAsMarkdown', () => this.openMarkdown(this.active())));
  }

  /** Shows `plan` of `source` rendered, beside nothing: the panel takes the active group, keeping focus where it was. */
  show(source: string, plan: Plan, rules?: string): void {
    const view = planView(plan, rules);
    // Named after the folder too: two checkpoints of one name get two plans.
    const markdown = this.docs.show(`plan-${path.basename(path.dirname(source))}-${path.basename(source)}`, planMarkdown(view));
    const existing = this.open.get(source);
    if (existing) {
      Object.assign(existing, { view, markdown, listed: undefined });
      existing.rpc.send({ type: 'reload' });
      existing.panel.reveal(undefined, true);
      this.last = existing;
      return;
    }
    const title = vscode.l10n.t('Plan: {0}', `${path.basename(path.dirname(source))}/${path.basename(source)}`);
    const panel = vscode.window.createWebviewPanel(PLAN_VIEW_TYPE, title, { viewColumn: vscode.ViewColumn.Active, preserveFocus: true }, { ...webviewOptions(this.extensionUri), retainContextWhenHidden: false });
    const rpc = new Rpc<PlanHostToWebview, PlanWebviewToHost>((env) => void panel.webview.postMessage(env), (msg) => this.answer(shown, msg), isPlanWebviewToHost);
    const shown: Shown = { panel, rpc, view, markdown };
    this.open.set(source, shown);
    this.last = shown;
    const subs = [
      panel.webview.onDidReceiveMessage((m) => rpc.receive(m)),
      panel.onDidChangeViewState((e) => {
        if (e.webviewPanel.active) this.last = shown;
      }),
    ];
    panel.onDidDispose(() => {
      rpc.dispose();
      for (const s of subs) s.dispose();
      if (this.open.get(source) === shown) this.open.delete(source);
      if (this.last === shown) this.last = undefined;
    });
    panel.webview.html = webviewHtml(panel.webview, this.extensionUri, 'plan', title);
  }

  private active(): Shown | undefined {
    return [...this.open.values()].find((s) => s.panel.active) ?? this.last;
  }

  private async answer(s: Shown, msg: PlanWebviewToHost): Promise<PlanHostToWebview> {
    switch (msg.type) {
      case 'ready': {
        const pageSize = vscode.workspace.getConfiguration('jaxServe').get<number>('viewer.pageSize', 200);
        const v = s.view;
        return { type: 'init', pageSize, facts: v.facts, problems: v.problems, counts: v.counts, config: v.config, total: v.rows.length };
      }
      case 'listRows': {
        const rows = this.rows(s, msg);
        return { type: 'rows', start: msg.start, total: rows.length, rows: rows.slice(msg.start, msg.start + Math.min(msg.count, MAX_PLAN_ROWS)) };
      }
      case 'openMarkdown':
        await this.openMarkdown(s);
        return { type: 'ack' };
      case 'copyMarkdown': {
        await vscode.env.clipboard.writeText(this.docs.text(s.markdown));
        void vscode.window.showInformationMessage(vscode.l10n.t('Copied the plan as Markdown.'));
        return { type: 'ack' };
      }
      default: {
        const never: never = msg;
        return never;
      }
    }
  }

  private rows(s: Shown, m: PlanListRows): readonly PlanRow[] {
    const key = JSON.stringify([m.filter, m.problemsOnly]);
    if (s.listed?.key !== key) {
      const match = nameMatcher(m.filter);
      const rows = s.view.rows.filter((r) => (!m.problemsOnly || r.problems.length > 0) && (!match || match(r.from) || match(r.to)));
      s.listed = { key, rows };
    }
    return s.listed.rows;
  }

  /** The plan's Markdown in a text editor beside the panel; its URI, or undefined when no plan is shown. */
  private async openMarkdown(s: Shown | undefined): Promise<vscode.Uri | undefined> {
    if (!s) {
      void vscode.window.showInformationMessage(vscode.l10n.t('No conversion plan is open. Run "Convert Checkpoint for vLLM/SGLang…" to make one.'));
      return undefined;
    }
    await vscode.window.showTextDocument(s.markdown, { viewColumn: vscode.ViewColumn.Beside, preview: true });
    return s.markdown;
  }

  dispose(): void {
    for (const s of this.open.values()) s.panel.dispose();
    for (const d of this.disposables) d.dispose();
  }
}
