/**
 * Starting and stopping the server of a launch profile (the Serve panel's form, a saved profile, a
 * profile's name): the VS Code side of the session's managed server. Nothing is spawned in an
 * untrusted workspace; a running server is stopped only when the user says so; readiness and
 * failures are told in messages, a failure the export's preflight explains with a link to it.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { describeError, engineById, isJaxServeError, oneLine, stripControls } from '../core/index';
import { freePort } from '../core/node/index';
import type { ProfileView, ServerView } from '../shared/serveProtocol';
import { sizeLaunch } from './launchFit';
import { choosePython } from './python';
import type { ServeSession } from './serveSession';
import { refuseUntrusted } from './trust';

export function registerServeProfiles(context: vscode.ExtensionContext, session: ServeSession, output: vscode.OutputChannel): void {
  context.subscriptions.push(
    // With a profile (or its name), starts it; from the palette, offers the saved profiles, else the panel.
    vscode.commands.registerCommand('jaxServe.startServer', async (profile?: ProfileView | string) => {
      const profiles = session.profiles;
      let p = typeof profile === 'string' ? profiles.find((x) => x.name === profile) : profile;
      if (!p && profiles.length > 0) {
        const panel = { label: vscode.l10n.t('$(vm-running) Open the Serve panel…'), profile: undefined };
        const pick = await vscode.window.showQuickPick([...profiles.map((x) => ({ label: x.name, description: `${x.engine} · ${x.model}`, profile: x })), panel], { title: vscode.l10n.t('Start Server: a saved profile') });
        if (!pick) return undefined;
        p = pick.profile;
      }
      if (p) return start(session, p, output);
      await vscode.commands.executeCommand('jaxServe.openServePanel');
      return undefined;
    }),
    vscode.commands.registerCommand('jaxServe.stopServer', () => stop(session)),
    vscode.commands.registerCommand('jaxServe.showServerLog', () => output.show(true)),
    // For automation (tests, other extensions): saves a launch profile as the panel's Save Profile does.
    vscode.commands.registerCommand('jaxServe.saveServeProfile', (p: ProfileView) => session.saveProfile(p)),
  );
}

async function stop(session: ServeSession): Promise<void> {
  const s = session.server;
  if (!s || !session.busy) return;
  await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: vscode.l10n.t('Stopping {0}', s.engine) }, () => session.stopServer());
}

/**
 * Starts a server on a profile and resolves once it is spawned (readiness follows in the status
 * bar, the panel and a message; when ready, generation attaches to it). Undefined when nothing
 * was started: untrusted, declined, or an input error (shown).
 */
async function start(session: ServeSession, profile: ProfileView, output: vscode.OutputChannel): Promise<ServerView | undefined> {
  if (refuseUntrusted(vscode.l10n.t('JAX Serve starts no server in Restricted Mode: trust this workspace first.'))) return undefined;
  // An unknown engine is refused before a running server is stopped for it.
  const spec = engineById(profile.engine);
  if (!spec) {
    void vscode.window.showErrorMessage(vscode.l10n.t('Start Server: unknown engine "{0}".', stripControls(profile.engine)));
    return undefined;
  }
  const running = session.server;
  if (running && session.busy) {
    const stopAndStart = vscode.l10n.t('Stop and Start');
    const ok = await vscode.window.showWarningMessage(vscode.l10n.t('{0} is running at {1}. Stop it and start {2}?', running.engine, running.url, spec.title), { modal: true }, stopAndStart);
    if (ok !== stopAndStart) return undefined;
    await stop(session);
  }
  // A relative folder is the workspace's; a launch command's folder may be one inside a container, so only a local one is checked.
  const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const model = profile.model.trim();
  if (model && !path.isAbsolute(model) && root) profile = { ...profile, model: path.join(root, model) };
  // Adapter folders likewise (core reads them before the spawn, and refuses one it cannot serve).
  if (root && profile.adapters?.some((a) => a.path.trim() && !path.isAbsolute(a.path.trim()))) {
    profile = { ...profile, adapters: profile.adapters.map((a) => (a.path.trim() && !path.isAbsolute(a.path.trim()) ? { ...a, path: path.join(root, a.path.trim()) } : a)) };
  }
  if (model && !profile.command?.trim() && !existsSync(profile.model)) {
    void vscode.window.showErrorMessage(vscode.l10n.t('Start Server: the model folder {0} does not exist. Choose an export folder (Browse…).', profile.model));
    return undefined;
  }
  // A launch sized for an accelerator that the plan says will not fit is started only when the user says so.
  if (profile.accelerator) {
    const fit = await sizeLaunch(profile);
    const anyway = vscode.l10n.t('Start Anyway');
    if (fit.level === 'red' && (await vscode.window.showWarningMessage(vscode.l10n.t('The Fit section says this launch will not fit {0}. Start it anyway?', profile.accelerator), { modal: true, detail: [fit.headline, ...fit.lines].join('\n') }, anyway)) !== anyway) return undefined;
  }
  let started;
  try {
    // The interpreter of VS Code's Python (or jaxServe.pythonPath), unless the profile names one or a command.
    const python = profile.python?.trim() || profile.command?.trim() ? undefined : (await choosePython(profile.model ? vscode.Uri.file(profile.model) : undefined)).python;
    const port = profile.port ?? (await freePort(profile.host.trim() || undefined));
    started = await session.startServer(profile, port, python);
  } catch (e) {
    void vscode.window.showErrorMessage(vscode.l10n.t('Start Server: {0}', describeError(e)));
    return undefined;
  }
  started.ready.then(
    () => {
      const s = session.server;
      if (!s) return;
      const open = vscode.l10n.t('Open Serve Panel');
      void vscode.window.showInformationMessage(vscode.l10n.t('{0} is ready at {1} after {2} s.', s.engine, s.url, ((s.readyAfter ?? 0) / 1000).toFixed(1)), open).then((p) => p && vscode.commands.executeCommand('jaxServe.openServePanel'));
    },
    (e) => {
      if (isJaxServeError(e) && e.code === 'E_CANCELLED') return;
      const showLog = vscode.l10n.t('Show Log');
      const preflight = vscode.l10n.t('Preflight Export');
      const launched = session.managedLaunch;
      const actions = session.server?.preflight ? [preflight, showLog] : [showLog];
      void vscode.window.showErrorMessage(vscode.l10n.t('Start Server: {0}', oneLine(describeError(e), { logHint: session.serverLog.where })), ...actions).then((p) => {
        if (p === showLog) output.show(true);
        if (p === preflight && launched) void vscode.commands.executeCommand('jaxServe.preflight', vscode.Uri.file(launched.folder), launched.engine);
      });
    },
  );
  return started.view;
}
