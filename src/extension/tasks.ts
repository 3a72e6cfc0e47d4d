/**
 * The `jax-serve` task type: convert, import, preflight and verify as tasks in tasks.json, run through the
 * bundled CLI as a process (so they show in the terminal, can be cancelled, and feed the `$jax-serve`
 * problem matcher with preflight's "FILE: severity: message" lines). VS Code runs no task in an
 * untrusted workspace. Each workspace folder holding an export (a config.json) gets a preflight task.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { choosePython } from './python';

export const TASK_TYPE = 'jax-serve';

interface JaxServeTaskDefinition extends vscode.TaskDefinition {
  action: 'convert' | 'import' | 'preflight' | 'verify';
  source?: string;
  output?: string;
  preset?: string;
  entry?: string;
  args?: string[];
}

export function registerTasks(context: vscode.ExtensionContext): vscode.Disposable {
  const cli = path.join(context.extensionPath, 'dist', 'cli.js');
  return vscode.tasks.registerTaskProvider(TASK_TYPE, {
    async provideTasks() {
      const found = await vscode.workspace.findFiles('{config.json,*/config.json,*/*/config.json}', '**/node_modules/**', 50);
      return found.map((config) => {
        const folder = path.dirname(config.fsPath);
        const def: JaxServeTaskDefinition = { type: TASK_TYPE, action: 'preflight', source: folder };
        return taskFor(def, cli, vscode.workspace.getWorkspaceFolder(config) ?? vscode.TaskScope.Workspace);
      });
    },
    async resolveTask(task) {
      const def = task.definition as JaxServeTaskDefinition;
      const scope = task.scope ?? vscode.TaskScope.Workspace;
      // Orbax sources and verify need Python: the interpreter the user chose, unless the task names one.
      if (def.action !== 'preflight' && !def.args?.includes('--python')) {
        const python = await choosePython(typeof scope === 'object' ? scope.uri : undefined);
        return taskFor(def, cli, scope, ['--python', python.python]);
      }
      return taskFor(def, cli, scope);
    },
  });
}

function cliArgs(def: JaxServeTaskDefinition): string[] {
  const need = (v: string | undefined, what: string) => {
    if (!v) throw new Error(`a jax-serve ${def.action} task needs "${what}".`);
    return v;
  };
  const extra = def.args ?? [];
  switch (def.action) {
    case 'preflight':
      return ['preflight', need(def.source, 'source'), ...extra];
    case 'convert':
      return ['convert', need(def.source, 'source'), '-o', need(def.output, 'output'), ...(def.preset ? ['--preset', def.preset] : []), ...extra];
    case 'import':
      return ['import', need(def.source, 'source'), '-o', need(def.output, 'output'), '--preset', need(def.preset, 'preset'), ...extra];
    case 'verify':
      return ['verify', need(def.output, 'output'), '--source', need(def.source, 'source'), '--entry', need(def.entry, 'entry'), ...extra];
  }
}

function taskFor(def: JaxServeTaskDefinition, cli: string, scope: vscode.WorkspaceFolder | vscode.TaskScope, more: string[] = []): vscode.Task {
  const name = `${def.action} ${def.source ? vscode.workspace.asRelativePath(def.source) : ''}`.trim();
  // The extension host's own runtime runs the CLI; in desktop VS Code that is Electron, told to act as Node.
  const execution = new vscode.ProcessExecution(process.execPath, [cli, ...cliArgs(def), ...more], { env: { ELECTRON_RUN_AS_NODE: '1' } });
  const task = new vscode.Task(def, scope, name, 'jax-serve', execution, ['$jax-serve']);
  task.group = def.action === 'preflight' ? vscode.TaskGroup.Test : vscode.TaskGroup.Build;
  return task;
}
