/**
 * "JAX Serve: Preflight Export Folder": core's preflight on a folder for the engine the user picks
 * (remembered per workspace), findings in the Problems panel (one diagnostic per finding, on the
 * file it concerns), a summary message with the count. Reading files only, so it runs in Restricted
 * Mode too. Callers that know the engine (the Serve panel, a failed start) pass it and skip the pick.
 */
import * as vscode from 'vscode';
import { DEFAULT_PREFLIGHT_ENGINES, launchFitOptions, preflight, PREFLIGHT_ENGINES, PREFLIGHT_RULES, preflightEngine, preflightEnginesTitle, stripControls, type Engine, type Finding, type PreflightReport } from '../core/index';
import { NodeFileOpener } from '../core/node/index';
import type { ProfileView } from '../shared/serveProtocol';
import { accelerators } from './launchFit';

const SEVERITY: Record<Finding['severity'], vscode.DiagnosticSeverity> = {
  error: vscode.DiagnosticSeverity.Error,
  warning: vscode.DiagnosticSeverity.Warning,
  info: vscode.DiagnosticSeverity.Information,
};

/** The engine choice: one engine, or `default` for vLLM and SGLang together (the CLI without --engine). */
export type PreflightChoice = Engine | 'default';
const ENGINE_KEY = 'jaxServe.preflightEngine';

// A function, not a constant: l10n.t answers in the user's language only once the extension is activated.
// What each engine's rules check is core's (PREFLIGHT_RULES): the extension holds no engine facts.
const choices = (): readonly { choice: PreflightChoice; detail: string }[] => [
  { choice: 'default', detail: vscode.l10n.t('Both rule sets: tensor names and shapes, dtypes, tokenizer, chat template.') },
  ...PREFLIGHT_ENGINES.map((choice) => ({ choice, detail: PREFLIGHT_RULES[choice] })),
];

const enginesOf = (c: PreflightChoice): readonly Engine[] => (c === 'default' ? DEFAULT_PREFLIGHT_ENGINES : [c]);

/** The sizing of the form's launch for preflight (each engine's own rules apply), or none when it names no accelerator. */
function launchSizing(launch: ProfileView | undefined, folder: string) {
  if (!launch?.accelerator) return undefined;
  const opts = launchFitOptions({ ...launch, engine: 'vllm', model: folder }, accelerators().list.find((a) => a.name === launch.accelerator));
  return typeof opts === 'string' ? undefined : opts;
}

export class PreflightCommand implements vscode.Disposable {
  private readonly diagnostics = vscode.languages.createDiagnosticCollection('jax-serve-preflight');
  private readonly command: vscode.Disposable;

  constructor(private readonly state: vscode.Memento) {
    this.command = vscode.commands.registerCommand('jaxServe.preflight', (uri?: vscode.Uri, engine?: string, launch?: ProfileView) => this.run(uri, engine, launch));
  }

  /**
   * `engine`: an engine id (a serve id such as vllm-tpu maps to its rules) or `default`; asked when left out.
   * `launch`: the Serve panel's form; when it names an accelerator, the launch is sized too (a `fit` finding).
   */
  async run(uri?: vscode.Uri, engine?: string, launch?: ProfileView): Promise<PreflightReport | undefined> {
    const folder = uri ?? (await vscode.window.showOpenDialog({ canSelectFiles: false, canSelectFolders: true, canSelectMany: false, title: vscode.l10n.t('Preflight Export Folder') }))?.[0];
    if (!folder) return undefined;
    const choice = engine === undefined ? await this.pickEngine() : engine === 'default' ? 'default' : preflightEngine(engine);
    if (!choice) {
      if (engine !== undefined) void vscode.window.showErrorMessage(vscode.l10n.t('Preflight: no rules for the engine "{0}".', stripControls(engine)));
      return undefined;
    }
    const engines = enginesOf(choice);
    // The form's TP and sizing, checked as the Fit section checks them (none when it names no accelerator).
    const sizing = launchSizing(launch, folder.fsPath);
    const report = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: vscode.l10n.t('Preflight {0} for {1}', vscode.workspace.asRelativePath(folder), preflightEnginesTitle(engines)) }, () =>
      preflight(new NodeFileOpener(), folder.fsPath, { engines, tensorParallel: sizing?.tp, fit: sizing }),
    );
    this.publish(report);
    const errors = report.findings.filter((f) => f.severity === 'error').length;
    const warnings = report.findings.filter((f) => f.severity === 'warning').length;
    const where = vscode.workspace.asRelativePath(folder);
    const what = report.architecture ? vscode.l10n.t('{0} ({1})', where, report.architecture) : where;
    const title = preflightEnginesTitle(report.engines);
    if (errors === 0) void vscode.window.showInformationMessage(warnings ? vscode.l10n.t('{0}: ready for {1}, {2} warning(s) in Problems.', what, title, warnings) : vscode.l10n.t('{0}: ready for {1}.', what, title));
    else void vscode.window.showErrorMessage(vscode.l10n.t('{0}: {1} error(s) would stop {2}; see the Problems panel.', what, errors, title), vscode.l10n.t('Show Problems')).then((pick) => pick && vscode.commands.executeCommand('workbench.actions.view.problems'));
    return report;
  }

  /** The engine quick pick, the workspace's last choice first; the choice is remembered. */
  private async pickEngine(): Promise<PreflightChoice | undefined> {
    const last = this.state.get<PreflightChoice>(ENGINE_KEY) ?? 'default';
    const ordered = [...choices()].sort((a, b) => Number(b.choice === last) - Number(a.choice === last));
    const picked = await vscode.window.showQuickPick(
      ordered.map((c) => ({ label: preflightEnginesTitle(enginesOf(c.choice)), description: c.choice === last ? vscode.l10n.t('last used') : undefined, detail: c.detail, choice: c.choice })),
      { title: vscode.l10n.t('Preflight: the engine that will serve the folder'), ignoreFocusOut: true },
    );
    if (picked) await this.state.update(ENGINE_KEY, picked.choice);
    return picked?.choice;
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
