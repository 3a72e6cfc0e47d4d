/**
 * The serve session in the status bar: the server started here (its phase and elapsed time while it
 * starts, its port once ready; a click opens the Serve panel) and the server generation is attached
 * to (its model; a click attaches to another).
 */
import * as vscode from 'vscode';
import { oneLine } from '../core/index';
import type { Phase } from '../core/types';
import type { ServerView } from '../shared/serveProtocol';
import type { ServeSession } from './serveSession';

// A function, not a constant: l10n.t answers in the user's language only once the extension is activated.
const phaseLabel = (phase: Phase): string =>
  ({
    starting: vscode.l10n.t('starting'),
    weights: vscode.l10n.t('loading weights'),
    compile: vscode.l10n.t('compiling'),
    graphs: vscode.l10n.t('capturing graphs'),
    'kv-cache': vscode.l10n.t('allocating KV cache'),
    precompile: vscode.l10n.t('precompiling'),
    http: vscode.l10n.t('starting HTTP'),
    warmup: vscode.l10n.t('warming up'),
    ready: vscode.l10n.t('ready'),
  })[phase];

export function registerServeStatusBar(context: vscode.ExtensionContext, session: ServeSession): void {
  const process = vscode.window.createStatusBarItem('jaxServe.serverProcess', vscode.StatusBarAlignment.Left, 51);
  process.name = vscode.l10n.t('JAX Serve model server');
  process.command = 'jaxServe.openServePanel';
  const attached = vscode.window.createStatusBarItem('jaxServe.server', vscode.StatusBarAlignment.Left, 50);
  attached.name = vscode.l10n.t('JAX Serve server');
  attached.command = 'jaxServe.attach';
  /** Ticks the elapsed time while a server starts. */
  let tick: ReturnType<typeof setInterval> | undefined;

  const showProcess = (s: ServerView) => {
    const secs = ((Date.now() - s.startedAt) / 1000).toFixed(0);
    const phase = phaseLabel(s.phase);
    const [icon, text, tip] =
      s.status === 'starting'
        ? [
            '$(loading~spin)',
            s.progress && s.phase === 'weights' ? vscode.l10n.t('{0}: {1} {2}/{3} ({4} s)', s.shortName, phase, s.progress.done, s.progress.total, secs) : vscode.l10n.t('{0}: {1} ({2} s)', s.shortName, phase, secs),
            vscode.l10n.t('Starting; click for the Serve panel.'),
          ]
        : s.status === 'ready'
          ? ['$(vm-running)', `${s.shortName} :${s.port}`, vscode.l10n.t('Serving {0} at {1}; click for the Serve panel.', s.model, s.url)]
          : s.status === 'stopping'
            ? ['$(loading~spin)', vscode.l10n.t('{0}: stopping', s.shortName), vscode.l10n.t("Stopping the server's process group.")]
            : s.status === 'failed'
              ? ['$(error)', vscode.l10n.t('{0}: failed', s.shortName), oneLine(s.message ?? vscode.l10n.t('The server exited.'), { logHint: session.serverLog.where })]
              : ['$(vm-outline)', vscode.l10n.t('{0}: stopped', s.shortName), vscode.l10n.t('Stopped; click to start it again from the Serve panel.')];
    process.text = `${icon} ${text}`;
    process.tooltip = tip;
    process.backgroundColor = s.status === 'failed' ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
    process.show();
  };

  const showAttached = () => {
    const a = session.endpoint;
    if (!a) {
      attached.hide();
      return;
    }
    attached.text = `$(radio-tower) ${a.model ?? vscode.l10n.t('server')}`;
    attached.tooltip = vscode.l10n.t('JAX Serve: generating with {0} at {1}. Click to attach to another server.', a.model ?? vscode.l10n.t('(no model name)'), a.url);
    attached.show();
  };

  context.subscriptions.push(
    process,
    attached,
    session.onDidChangeServer((s) => {
      clearInterval(tick);
      tick = undefined;
      if (!s) return process.hide();
      showProcess(s);
      if (s.status === 'starting') tick = setInterval(() => session.server && showProcess(session.server), 1000);
    }),
    session.onDidChangeEndpoint(showAttached),
    { dispose: () => clearInterval(tick) },
  );
  showAttached();
}
