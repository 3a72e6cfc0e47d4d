/** Activation only composes features; each registers its own disposables. */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { checkpointFileInFolder } from '../core/index';
import { NodeFileOpener, ServerProcess, ServerRegistry } from '../core/node/index';
import { activeCheckpointUri, CHECKPOINT_VIEW_TYPE, CheckpointEditorProvider, type CheckpointEditorInfo } from './checkpointEditor';
import { DiffPanels, type DiffPanelInfo } from './diffPanel';
import { CheckpointServices } from './checkpointServices';
import { Cli } from './cli';
import { ConvertCommands } from './convertCommands';
import { registerAttach } from './attach';
import { registerEditorGeneration } from './editorGeneration';
import { PlanDocuments } from './planDocuments';
import { PlanPanels } from './planPanel';
import { PreflightCommand } from './preflightCommand';
import { PytreeExplorer } from './pytreeExplorer';
import { registerServePanel } from './servePanel';
import { ServeSession } from './serveSession';
import { registerServeProfiles } from './serveProfiles';
import { registerServeStatusBar } from './serveStatusBar';
import { registerTasks } from './tasks';

/**
 * What activate returns: state other extensions may read (the integration tests read it as they
 * would). Each command's own result (preflight, health scan, generation, check) is its return value,
 * not kept here.
 */
export interface JaxServeApi {
  /** The checkpoints open in the editor, and whether each opened: for an extension that acts on the checkpoint in view. */
  readonly checkpointEditors: { list(): CheckpointEditorInfo[] };
  /** The last export, import and verify of this window: for an extension that takes an export further (deploy, publish). */
  readonly convert: Pick<ConvertCommands, 'last'>;
  /** The open comparisons with their pairing and counts: for an extension that reports a conversion's differences. */
  readonly diffs: { list(): DiffPanelInfo[] };
  /** The serving state every serve surface shows (its server, endpoint, sampling, runs, gauges and profiles, and their events): for an extension that sends its own requests to the server in use. */
  readonly serve: ReadonlyServeSession;
}

/** The session as others may use it: read and listen; acting goes through the commands. */
export type ReadonlyServeSession = Pick<ServeSession, 'endpoint' | 'serverRoot' | 'server' | 'sampling' | 'history' | 'profiles' | 'gauges' | 'gaugesAbsent' | 'lastCheck' | 'onDidChangeServer' | 'onDidChangeEndpoint' | 'onDidChangeRun' | 'onDidChangeGauges' | 'onDidChangeProfiles' | 'onDidChangeSampling'>;

const LAST_EXPORT_KEY = 'jaxServe.lastExport';
let session: ServeSession | undefined;

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
  const serverOutput = vscode.window.createOutputChannel(vscode.l10n.t('JAX Serve: Server'));
  const registry = new ServerRegistry(path.join(context.globalStorageUri.fsPath, 'servers.json'));
  const fromSettings = () => {
    const g = vscode.workspace.getConfiguration('jaxServe.generate');
    return { temperature: g.get('temperature', 0.7), maxTokens: g.get('maxTokens', 128) };
  };
  const serve = (session = new ServeSession({
    store: context.workspaceState,
    secrets: context.secrets,
    startProcess: (o) => ServerProcess.start(o),
    registry,
    watchdog: path.join(context.extensionPath, 'dist', 'serverWatchdog.js'),
    output: serverOutput,
    outputName: vscode.l10n.t('the "{0}" output', serverOutput.name),
    texts: {
      modelHint: vscode.l10n.t('attach again (JAX Serve: Attach to Server…) and pick or type the model name'),
      apiKeyHint: vscode.l10n.t('attach again (JAX Serve: Attach to Server…) and enter its key'),
      noServer: vscode.l10n.t('No server: start one, or attach to a running one.'),
      busy: (id) => vscode.l10n.t('A generation is running (#{0}); stop it first.', id),
      serverSaid: (url) => vscode.l10n.t('{0} said:', url),
      unnamedProfile: vscode.l10n.t('Name the profile to save it.'),
      noAdapter: (name) => vscode.l10n.t('LoRA adapter "{0}" is not one the attached server was started with in this window: start it with the adapter, or generate with the base model.', name),
    },
    defaultSampling: () => ({ ...fromSettings(), topP: 1, stop: '' }),
    lastExport: () => convert.last.convert?.output ?? context.workspaceState.get<string>(LAST_EXPORT_KEY),
  }));
  context.subscriptions.push(
    serverOutput,
    serve,
    // The settings are the sampling's start; a change to one applies to every run from now, the panel's too.
    vscode.workspace.onDidChangeConfiguration((e) => {
      const now = fromSettings();
      const changed = {
        ...(e.affectsConfiguration('jaxServe.generate.temperature') ? { temperature: now.temperature } : {}),
        ...(e.affectsConfiguration('jaxServe.generate.maxTokens') ? { maxTokens: now.maxTokens } : {}),
      };
      if (Object.keys(changed).length > 0) void serve.setSampling({ ...serve.sampling, ...changed });
    }),
  );
  registerServeStatusBar(context, serve);
  registerAttach(context, serve);
  registerEditorGeneration(context, serve);
  registerServeProfiles(context, serve, serverOutput);
  registerServePanel(context, serve);
  registerTasks(context, serve);
  // Servers a crashed window left behind (their watchdog gone too) are stopped now.
  if (vscode.workspace.isTrusted) {
    void registry.sweep().then((stopped) => {
      for (const s of stopped) serverOutput.appendLine(vscode.l10n.t('Stopped {0} (process group {1}, {2}): it was left running by a window that is gone.', s.title, s.pgid, s.url));
    });
  }
  context.subscriptions.push(
    convert.onDidExport((folder) => void context.workspaceState.update(LAST_EXPORT_KEY, folder)),
    preflightCommand,
    log,
    docs,
    plans,
    convert,
    vscode.commands.registerCommand('jaxServe.showLog', () => log.show()),
    vscode.commands.registerCommand('jaxServe.openCheckpoint', async (uri?: vscode.Uri) => {
      const picked = uri ?? (await vscode.window.showOpenDialog({ canSelectMany: false, canSelectFolders: true, filters: { [vscode.l10n.t('Checkpoints')]: ['safetensors', 'msgpack', 'npz', 'npy', 'json'] }, title: vscode.l10n.t('Open as Checkpoint') }))?.[0];
      if (!picked) return;
      const target = await fileFor(picked);
      if (target) await vscode.commands.executeCommand('vscode.openWith', target, CHECKPOINT_VIEW_TYPE);
    }),
  );
  return { checkpointEditors: editors, convert, diffs, serve };
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
  return session?.stopServer(2000).catch(() => undefined);
}
