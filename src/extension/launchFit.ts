/**
 * The Serve panel's launch, sized against the accelerator it names: the built-in accelerators and
 * the user's own (jaxServe.fit.accelerators), and core's fit of the model folder. Errors become a
 * verdict the page shows, never a thrown message.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { ACCELERATORS, describeError, fitFolder, fitView, launchFitOptions, userAccelerator, type Accelerator, type AcceleratorEntry } from '../core/index';
import { NodeFileOpener } from '../core/node/index';
import type { FitView, ProfileView } from '../shared/serveProtocol';

const files = new NodeFileOpener();

/** The user's accelerators first (a name of theirs shadows a built-in one), each entry checked. */
export function accelerators(): { readonly list: readonly Accelerator[]; readonly problems: readonly string[] } {
  const entries = vscode.workspace.getConfiguration('jaxServe.fit').get<unknown[]>('accelerators') ?? [];
  const own: Accelerator[] = [];
  const problems: string[] = [];
  for (const e of Array.isArray(entries) ? entries.slice(0, 100) : []) {
    try {
      own.push(userAccelerator((e ?? {}) as AcceleratorEntry, 'jaxServe.fit.accelerators'));
    } catch (err) {
      problems.push(describeError(err));
    }
  }
  return { list: [...own, ...ACCELERATORS.filter((a) => !own.some((o) => o.name === a.name))], problems };
}

/** The Fit section's verdict for a form. */
export async function sizeLaunch(profile: ProfileView): Promise<FitView> {
  const { list, problems } = accelerators();
  const accelerator = list.find((a) => a.name === profile.accelerator);
  // A relative folder is the workspace's, as Start reads it.
  const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const model = profile.model.trim();
  const folder = model && !path.isAbsolute(model) && root ? path.join(root, model) : model;
  const opts = launchFitOptions({ ...profile, model: folder }, accelerator);
  if (typeof opts === 'string') return { level: 'none', headline: problems.length ? `${opts} ${problems.join(' ')}` : opts, lines: [] };
  try {
    return fitView(await fitFolder(files, folder, opts));
  } catch (e) {
    return { level: 'none', headline: vscode.l10n.t('Not sized: {0}', describeError(e)), lines: [] };
  }
}
