/**
 * Read-only documents (`jax-serve-plan:` scheme) that hold a conversion plan or a verify report as
 * Markdown (the plan panel opens its copy on request; the verify report is shown as it is), and
 * the plan's problems in the Problems panel on the source. Presentation only: the plan and report
 * come from core through the CLI.
 */
import * as vscode from 'vscode';
import { markdownCell, markdownCode, stripControls, type Plan } from '../core/index';
import { type VerifyReport } from '../core/node/index';

export const PLAN_SCHEME = 'jax-serve-plan';

export class PlanDocuments implements vscode.Disposable, vscode.TextDocumentContentProvider {
  private readonly contents = new Map<string, string>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  private readonly diagnostics = vscode.languages.createDiagnosticCollection('jax-serve-plan');
  private readonly registration = vscode.workspace.registerTextDocumentContentProvider(PLAN_SCHEME, this);

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.text(uri);
  }

  /** The text of a document this provider shows (empty for one it does not). */
  text(uri: vscode.Uri): string {
    return this.contents.get(uri.path) ?? '';
  }

  /** The document for `name` with this text (updated in place when already open). */
  show(name: string, markdown: string): vscode.Uri {
    const uri = vscode.Uri.from({ scheme: PLAN_SCHEME, path: `/${name.replace(/[^\w.-]+/g, '_')}.md` });
    this.contents.set(uri.path, markdown);
    this.changed.fire(uri);
    return uri;
  }

  /** The plan's errors and warnings on the source checkpoint, in the Problems panel. */
  problems(source: string, plan: Plan): void {
    const severity = { error: vscode.DiagnosticSeverity.Error, warning: vscode.DiagnosticSeverity.Warning, info: vscode.DiagnosticSeverity.Information };
    const ds = plan.problems.map((p) => {
      const d = new vscode.Diagnostic(new vscode.Range(0, 0, 0, 0), stripControls(p.message), severity[p.severity]);
      d.source = 'jax-serve plan';
      d.code = p.code;
      return d;
    });
    this.diagnostics.set(vscode.Uri.file(source), ds);
  }

  dispose(): void {
    this.registration.dispose();
    this.diagnostics.dispose();
    this.changed.dispose();
  }
}

/** The verify report as Markdown, in the user's language (the numbers and names as they are). */
export function verifyMarkdown(r: VerifyReport, maxKl = 1e-3): string {
  const header = [vscode.l10n.t('prompt'), vscode.l10n.t('tokens'), vscode.l10n.t('max abs Δlogit'), vscode.l10n.t('KL'), vscode.l10n.t('top-1'), vscode.l10n.t('top-5'), ''].map(markdownCell);
  const lines = [vscode.l10n.t('# Verify'), '', vscode.l10n.t('- **Export**: {0}', markdownCode(r.exportDir)), vscode.l10n.t('- **JAX checkpoint**: {0}', markdownCode(r.checkpoint)), '', `| ${header.join(' | ')} |`, `|${'---|'.repeat(header.length)}`];
  const ok = markdownCell(vscode.l10n.t('ok'));
  const differs = `**${markdownCell(vscode.l10n.t('differs'))}**`;
  for (const p of r.prompts) {
    lines.push(`| ${markdownCell(JSON.stringify(p.prompt))} | ${p.tokens} | ${p.maxAbsDiff.toExponential(2)} | ${p.kl.toExponential(2)} | ${(p.top1 * 100).toFixed(1)}% | ${(p.top5 * 100).toFixed(1)}% | ${p.kl <= maxKl ? ok : differs} |`);
  }
  return lines.join('\n') + '\n';
}
