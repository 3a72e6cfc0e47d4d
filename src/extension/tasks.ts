/**
 * The `jax-serve` task type: convert, import, preflight, verify and serve as tasks in tasks.json, run
 * through the bundled CLI as a process (so they show in the terminal, can be cancelled, and feed the
 * `$jax-serve` problem matcher with preflight's "FILE: severity: message" lines). VS Code runs no task
 * in an untrusted workspace. Each workspace folder holding an export (a config.json) gets a preflight
 * task, and each saved Serve profile a serve task: a background task, ready when the CLI prints
 * "ready at URL" (the `$jax-serve-serve` matcher), stopped with the task (the CLI stops the group).
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { describeError, parseEnv, serveCliArgs } from '../core/index';
import type { ProfileView } from '../shared/serveProtocol';
import { choosePython } from './python';
import type { ServeSession } from './serveSession';

export const TASK_TYPE = 'jax-serve';

interface JaxServeTaskDefinition extends vscode.TaskDefinition {
  action: 'convert' | 'import' | 'preflight' | 'verify' | 'serve';
  /** serve: a saved profile of the Serve panel (by name), or the fields below. */
  profile?: string;
  engine?: string;
  source?: string;
  output?: string;
  preset?: string;
  entry?: string;
  /** convert: what to do with LoRA leaves, the adapter folder, alpha, and an adapter-only file. */
  lora?: 'adapter' | 'merge';
  adapterOutput?: string;
  loraAlpha?: number;
  loraFrom?: string;
  args?: string[];
}

export function registerTasks(context: vscode.ExtensionContext, session: ServeSession): void {
  const profiles = () => session.profiles;
  const cli = path.join(context.extensionPath, 'dist', 'cli.js');
  const folderOf = (scope: vscode.WorkspaceFolder | vscode.TaskScope) => (typeof scope === 'object' ? scope.uri : undefined);
  context.subscriptions.push(vscode.tasks.registerTaskProvider(TASK_TYPE, {
    async provideTasks() {
      const found = await vscode.workspace.findFiles('{config.json,*/config.json,*/*/config.json}', '**/node_modules/**', 50);
      const tasks = found.map((config) => {
        const folder = path.dirname(config.fsPath);
        const def: JaxServeTaskDefinition = { type: TASK_TYPE, action: 'preflight', source: folder };
        return taskFor(def, cli, vscode.workspace.getWorkspaceFolder(config) ?? vscode.TaskScope.Workspace);
      });
      for (const p of profiles()) {
        const task = await serveTask({ type: TASK_TYPE, action: 'serve', profile: p.name }, cli, vscode.TaskScope.Workspace, profiles());
        if (task) tasks.push(task);
      }
      return tasks;
    },
    async resolveTask(task) {
      const def = task.definition as JaxServeTaskDefinition;
      const scope = task.scope ?? vscode.TaskScope.Workspace;
      if (def.action === 'serve') return serveTask(def, cli, scope, profiles(), folderOf(scope));
      // Orbax sources and verify need Python: the interpreter the user chose, unless the task names one.
      if (def.action !== 'preflight' && !def.args?.includes('--python')) {
        const python = await choosePython(typeof scope === 'object' ? scope.uri : undefined);
        return taskFor(def, cli, scope, ['--python', python.python]);
      }
      return taskFor(def, cli, scope);
    },
  }));
}

function cliArgs(def: JaxServeTaskDefinition): string[] {
  const need = (v: string | undefined, what: string) => {
    if (!v) throw new Error(vscode.l10n.t('a jax-serve {0} task needs "{1}".', def.action, what));
    return v;
  };
  const extra = def.args ?? [];
  switch (def.action) {
    case 'preflight':
      return ['preflight', need(def.source, 'source'), ...(def.engine ? ['--engine', def.engine] : []), ...extra];
    case 'convert':
      return [
        'convert',
        need(def.source, 'source'),
        '-o',
        need(def.output, 'output'),
        ...(def.preset ? ['--preset', def.preset] : []),
        ...(def.lora ? ['--lora', def.lora] : []),
        ...(def.adapterOutput ? ['--adapter-out', def.adapterOutput] : []),
        ...(def.loraAlpha !== undefined ? ['--lora-alpha', String(def.loraAlpha)] : []),
        ...(def.loraFrom ? ['--lora-from', def.loraFrom] : []),
        ...extra,
      ];
    case 'import':
      return ['import', need(def.source, 'source'), '-o', need(def.output, 'output'), '--preset', need(def.preset, 'preset'), ...extra];
    case 'verify':
      return ['verify', need(def.output, 'output'), '--source', need(def.source, 'source'), '--entry', need(def.entry, 'entry'), ...extra];
    case 'serve':
      return ['serve', need(def.source, 'source'), '--engine', need(def.engine, 'engine'), ...extra];
  }
}

/**
 * A serve task: a saved profile's arguments (its interpreter, or VS Code's Python, and its
 * environment), or `source` + `engine` + `args` as written. Undefined with an error shown when the
 * profile is missing or invalid.
 */
async function serveTask(def: JaxServeTaskDefinition, cli: string, scope: vscode.WorkspaceFolder | vscode.TaskScope, profiles: readonly ProfileView[], folder?: vscode.Uri): Promise<vscode.Task | undefined> {
  let args: string[];
  let env: Record<string, string> = {};
  try {
    if (def.profile !== undefined) {
      const p = profiles.find((x) => x.name === def.profile);
      if (!p) throw new Error(vscode.l10n.t('no saved Serve profile named "{0}" (save one in the Serve panel).', def.profile));
      const python = p.python?.trim() || p.command?.trim() ? undefined : (await choosePython(folder)).python;
      args = serveCliArgs(p, python);
      env = p.env ? parseEnv(p.env) : {};
    } else {
      args = cliArgs(def);
      if (!def.args?.includes('--python') && !def.args?.includes('--command')) args.push('--python', (await choosePython(folder)).python);
    }
  } catch (e) {
    void vscode.window.showErrorMessage(vscode.l10n.t('jax-serve serve task: {0}', describeError(e)));
    return undefined;
  }
  const name = vscode.l10n.t('serve {0}', def.profile ?? vscode.workspace.asRelativePath(def.source!));
  const execution = new vscode.ProcessExecution(process.execPath, [cli, ...args], { env: { ...env, ELECTRON_RUN_AS_NODE: '1' } });
  const task = new vscode.Task(def, scope, name, 'jax-serve', execution, ['$jax-serve-serve']);
  task.isBackground = true;
  return task;
}

function taskFor(def: JaxServeTaskDefinition, cli: string, scope: vscode.WorkspaceFolder | vscode.TaskScope, more: string[] = []): vscode.Task {
  const name = def.source ? vscode.l10n.t('{0} {1}', def.action, vscode.workspace.asRelativePath(def.source)) : def.action;
  // The extension host's own runtime runs the CLI; in desktop VS Code that is Electron, told to act as Node.
  const execution = new vscode.ProcessExecution(process.execPath, [cli, ...cliArgs(def), ...more], { env: { ELECTRON_RUN_AS_NODE: '1' } });
  const task = new vscode.Task(def, scope, name, 'jax-serve', execution, ['$jax-serve']);
  task.group = def.action === 'preflight' ? vscode.TaskGroup.Test : vscode.TaskGroup.Build;
  return task;
}
