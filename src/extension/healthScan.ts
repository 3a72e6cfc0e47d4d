/**
 * "Health Scan Checkpoint": statistics over every tensor on the worker thread, with progress and
 * cancel; core's healthScan judges them (NaN/±Inf, all-zero, constant, extreme), and the findings go
 * to the Problems panel on the file.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { describeError, healthScan, isJaxServeError, stripControls, type Checkpoint, type HealthReport } from '../core/index';
import { CheckpointDocument } from './checkpointDocument';
import type { CheckpointServices } from './checkpointServices';

export class HealthScanCommand {
  private readonly diagnostics = vscode.languages.createDiagnosticCollection('jax-serve-health');

  /**
   * `openDocument`: the document of an open editor of that file (the active one's when no file is
   * given), so a scan of an open checkpoint does not parse it again.
   */
  static register(context: vscode.ExtensionContext, services: CheckpointServices, openDocument: (uri: vscode.Uri | undefined) => CheckpointDocument | undefined): void {
    const command = new HealthScanCommand(services, openDocument);
    context.subscriptions.push(
      command.diagnostics,
      vscode.commands.registerCommand('jaxServe.healthScan', (uri?: vscode.Uri) => command.run(uri)),
    );
  }

  private constructor(
    private readonly services: CheckpointServices,
    private readonly openDocument: (uri: vscode.Uri | undefined) => CheckpointDocument | undefined,
  ) {}

  async run(uri?: vscode.Uri): Promise<HealthReport | undefined> {
    const open = this.openDocument(uri);
    const target = uri ?? open?.uri ?? (await vscode.window.showOpenDialog({ title: vscode.l10n.t('Health Scan: the checkpoint'), canSelectFolders: true, canSelectMany: false }))?.[0];
    if (!target) return undefined;
    const doc = open ?? CheckpointDocument.create(target, this.services);
    const file = path.basename(target.fsPath);
    try {
      // Values are read only from the validated checkpoint: an editor still reading its shard headers is waited for.
      const state = await doc.loaded();
      if (state.kind !== 'checkpoint') {
        void vscode.window.showErrorMessage(vscode.l10n.t('Health scan: {0}', state.message));
        return undefined;
      }
      const report = await this.scan(state.ck, file);
      const severity = { error: vscode.DiagnosticSeverity.Error, warning: vscode.DiagnosticSeverity.Warning };
      this.diagnostics.set(
        target,
        report.findings.map((f) => Object.assign(new vscode.Diagnostic(new vscode.Range(0, 0, 0, 0), stripControls(f.message), severity[f.severity]), { source: 'jax-serve health', code: f.code })),
      );
      const bad = report.findings.length;
      void (bad === 0
        ? vscode.window.showInformationMessage(vscode.l10n.t('{0}: {1} tensors scanned, nothing to report.', file, report.scanned))
        : vscode.window.showWarningMessage(
            bad === 1 ? vscode.l10n.t('{0}: 1 finding in {1} tensors; see the Problems panel.', file, report.scanned) : vscode.l10n.t('{0}: {1} findings in {2} tensors; see the Problems panel.', file, bad, report.scanned),
          ));
      return report;
    } catch (e) {
      if (!(isJaxServeError(e) && e.code === 'E_CANCELLED')) void vscode.window.showErrorMessage(vscode.l10n.t('Health scan: {0}', describeError(e)));
      return undefined;
    } finally {
      if (!open) doc.dispose();
    }
  }

  /** The statistics of every tensor, first pass only (the findings need no histogram), under a cancellable progress. */
  private scan(ck: Checkpoint, file: string): Thenable<HealthReport> {
    return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: vscode.l10n.t('Health scan of {0}', file), cancellable: true }, (progress, token) => {
      const ac = new AbortController();
      token.onCancellationRequested(() => ac.abort());
      let last = 0;
      return healthScan(ck, (t) => this.services.values.stats(ck, t, 1, { signal: ac.signal, firstPass: true }).then((r) => r.stats), {
        signal: ac.signal,
        onProgress: (done, total) => {
          progress.report({ increment: ((done - last) / total) * 100, message: vscode.l10n.t('{0} of {1} tensors', done, total) });
          last = done;
        },
      });
    });
  }
}
