/**
 * Which Python runs the sidecar: the Python extension's active environment for the resource when
 * that extension is installed, else the `jaxServe.pythonPath` setting (machine scope, so a cloned
 * repository's settings cannot point it at a program), else `python3` on PATH.
 */
import { PythonExtension } from '@vscode/python-extension';
import * as vscode from 'vscode';

export interface ChosenPython {
  readonly python: string;
  readonly source: 'python extension' | 'jaxServe.pythonPath' | 'default';
}

/** What an error about the interpreter suggests (a function: l10n.t answers in the user's language once activated). */
export const pythonHint = (): string => vscode.l10n.t('Choose another with "Python: Select Interpreter" or the jaxServe.pythonPath setting.');

const PYTHON_EXTENSION_ID = 'ms-python.python';

export async function choosePython(resource: vscode.Uri | undefined): Promise<ChosenPython> {
  if (vscode.extensions.getExtension(PYTHON_EXTENSION_ID)) {
    try {
      const api = await PythonExtension.api();
      const env = await api.environments.resolveEnvironment(api.environments.getActiveEnvironmentPath(resource));
      const exe = env?.executable.uri?.fsPath;
      if (exe) return { python: exe, source: 'python extension' };
    } catch {
      // The extension failed to activate or has no environment yet: fall through to the setting.
    }
  }
  const configured = vscode.workspace.getConfiguration('jaxServe').get<string>('pythonPath', '').trim();
  if (configured) return { python: configured, source: 'jaxServe.pythonPath' };
  return { python: 'python3', source: 'default' };
}
