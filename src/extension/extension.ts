/** Activation only composes features; each registers its own disposables. */
import * as vscode from 'vscode';
import { checkpointFileInFolder, type HealthReport } from '../core/index';
import { NodeFileOpener } from '../core/node/index';
import { activeCheckpointUri, CHECKPOINT_VIEW_TYPE, CheckpointEditorProvider, type CheckpointEditorInfo } from './checkpointEditor';
import { DiffPanels, type DiffPanelInfo } from './diffPanel';
import { CheckpointServices } from './checkpointServices';
import { Cli } from './cli';
import { ConvertCommands } from './convertCommands';
import { GenerateCommands } from './generateCommands';
import { PlanDocuments } from './planDocuments';
import { PlanPanels } from './planPanel';
import { PreflightCommand } from './preflightCommand';
import { PytreeExplorer } from './pytreeExplorer';
import { ServePanel } from './servePanel';
import { ServerManager } from './serverManager';
import { registerTasks } from './tasks';

/** What activate returns: a small surface the integration tests read. */
export interface JaxServeApi {
  readonly checkpointEditors: { list(): CheckpointEditorInfo[]; readonly healthReports: ReadonlyMap<string, HealthReport> };
  readonly preflight: Pick<PreflightCommand, 'reports'>;
  readonly convert: Pick<ConvertCommands, 'last'>;
  readonly diffs: { list(): DiffPanelInfo[] };
  readonly generate: Pick<GenerateCommands, 'last' | 'attached'>;
  readonly server: Pick<ServerManager, 'state' | 'view' | 'swept' | 'profiles'>;
  readonly servePanel: Pick<ServePanel, 'gauges' | 'gaugesAbsent' | 'history' | 'lastCheck'>;
}

const LAST_EXPORT_KEY = 'jaxServe.lastExport';
let manager: ServerManager | undefined;

export function activate(context: vscode.ExtensionContext): JaxServeApi {
  const services = new CheckpointServices(context.extensionUri);
  context.subscriptions.push(services);
  const editors = CheckpointEditorProvider.register(context, services);
  PytreeExplorer.register(context, editors);
  const diffs = DiffPanels.register(context, services, activeCheckpointUri);
  const preflightCommand = new PreflightCommand(context.workspaceState);
  const log = vscode.window.createOutputChannel('JAX Serve', { log: true });
  const docs = new PlanDocuments();
  const plans = new PlanPanels(context.extensionUri, docs);
  const convert = new ConvertCommands(new Cli(context.extensionPath, log), docs, plans);
  const generateCommands = new GenerateCommands(context);
  manager = new ServerManager(context, generateCommands, () => convert.last.convert?.output ?? context.workspaceState.get<string>(LAST_EXPORT_KEY));
  const servePanel = new ServePanel(context, manager, generateCommands);
  // Servers a crashed window left behind (its watchdog gone too) are stopped now.
  if (vscode.workspace.isTrusted) void manager.sweep();
  context.subscriptions.push(
    manager,
    servePanel,
    convert.onDidExport((folder) => void context.workspaceState.update(LAST_EXPORT_KEY, folder)),
    preflightCommand,
    log,
    docs,
    plans,
    convert,
    generateCommands,
    vscode.commands.registerCommand('jaxServe.showLog', () => log.show()),
    registerTasks(context, () => manager?.profiles ?? []),
    vscode.commands.registerCommand('jaxServe.openCheckpoint', async (uri?: vscode.Uri) => {
      const picked = uri ?? (await vscode.window.showOpenDialog({ canSelectMany: false, canSelectFolders: true, filters: { [vscode.l10n.t('Checkpoints')]: ['safetensors', 'msgpack', 'npz', 'npy', 'json'] }, title: vscode.l10n.t('Open as Checkpoint') }))?.[0];
      if (!picked) return;
      const target = await fileFor(picked);
      if (target) await vscode.commands.executeCommand('vscode.openWith', target, CHECKPOINT_VIEW_TYPE);
    }),
  );
  return { checkpointEditors: editors, preflight: preflightCommand, convert, diffs, generate: generateCommands, server: manager, servePanel };
}

/** An editor opens files: a folder (HF export, Orbax step or CheckpointManager root) stands as the file core picks. */
async function fileFor(uri: vscode.Uri): Promise<vscode.Uri | undefined> {
  const opener = new NodeFileOpener();
  if ((await opener.kind(uri.fsPath)) !== 'directory') return uri;
  const file = await checkpointFileInFolder(opener, uri.fsPath);
  if (file) return vscode.Uri.file(file);
  void vscode.window.showErrorMessage(vscode.l10n.t('{0}: no checkpoint in this folder (no model.safetensors, its index, flax_model.msgpack, or Orbax _METADATA / _CHECKPOINT_METADATA, here or in a numbered step folder).', uri.fsPath));
  return undefined;
}

/** The server started from this window stops with it (the watchdog covers a host that dies instead). */
export function deactivate(): Promise<void> | undefined {
  return manager?.stopQuietly();
}
