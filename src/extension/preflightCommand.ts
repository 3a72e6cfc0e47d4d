/**
 * "JAX Serve: Preflight Export Folder": core's preflight on a folder, findings in the Problems
 * panel (one diagnostic per finding, on the file it concerns), a summary message with the count.
 * Reading files only, so it runs in Restricted Mode too.
 */
import * as vscode from 'vscode';
import { NodeFileOpener, preflight, stripControls, type Finding, type PreflightReport } from '../core/index';

const SEVERITY: Record<Finding['severity'], vscode.DiagnosticSeverity> = {
  error: vscode.DiagnosticSeverity.Error,
  warning: vscode.DiagnosticSeverity.Warning,
  info: vscode.DiagnosticSeverity.Information,
};

export class PreflightCommand implements vscode.Disposable {
  private readonly diagnostics = vscode.languages.createDiagnosticCollection('jax-serve-preflight');
  private readonly command: vscode.Disposable;
  /** The last report per folder (the test API reads it). */
  readonly reports = new Map<string, PreflightReport>();

  constructor() {
    this.command = vscode.commands.registerCommand('jaxServe.preflight', (uri?: vscode.Uri) => this.run(uri));
  }

  async run(uri?: vscode.Uri): Promise<PreflightReport | undefined> {
    const folder = uri ?? (await vscode.window.showOpenDialog({ canSelectFiles: false, canSelectFolders: true, canSelectMany: false, title: 'Preflight Export Folder' }))?.[0];
    if (!folder) return undefined;
    const report = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Preflight ${vscode.workspace.asRelativePath(folder)}` }, () =>
      preflight(new NodeFileOpener(), folder.fsPath),
    );
    this.reports.set(folder.fsPath, report);
    this.publish(report);
    const errors = report.findings.filter((f) => f.severity === 'error').length;
    const warnings = report.findings.filter((f) => f.severity === 'warning').length;
    const what = `${vscode.workspace.asRelativePath(folder)}${report.architecture ? ` (${report.architecture})` : ''}`;
    if (errors === 0) void vscode.window.showInformationMessage(`${what}: ready for vLLM and SGLang${warnings ? `, ${warnings} warning(s) in Problems` : ''}.`);
    else void vscode.window.showErrorMessage(`${what}: ${errors} error(s) would stop vLLM or SGLang; see the Problems panel.`, 'Show Problems').then((pick) => pick && vscode.commands.executeCommand('workbench.actions.view.problems'));
    return report;
  }

  private publish(report: PreflightReport): void {
    // Replace this folder's earlier findings, keep other folders'.
    this.diagnostics.forEach((uri) => {
      if (uri.fsPath === report.folder || uri.fsPath.startsWith(report.folder + '/')) this.diagnostics.delete(uri);
    });
    const byFile = new Map<string, vscode.Diagnostic[]>();
    for (const f of report.findings) {
      const d = new vscode.Diagnostic(new vscode.Range(0, 0, 0, 0), stripControls(f.message), SEVERITY[f.severity]);
      d.source = 'jax-serve preflight';
      d.code = f.code;
      byFile.set(f.file, [...(byFile.get(f.file) ?? []), d]);
    }
    for (const [file, ds] of byFile) this.diagnostics.set(vscode.Uri.file(file), ds);
  }

  dispose(): void {
    this.command.dispose();
    this.diagnostics.dispose();
  }
}
