/**
 * What every view of checkpoint values shares: one long-lived Python sidecar per interpreter (for
 * Orbax), and one value worker thread (statistics, slices, comparisons), so the extension host's
 * own thread never reads tensor values.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { listSafetensorsIndex, openCheckpoint, type Checkpoint, type IndexListing } from '../core/index';
import { NodeFileOpener, SidecarPool, sidecarScript, ValueWorker } from '../core/node/index';
import { choosePython, pythonHint } from './python';

export class CheckpointServices implements vscode.Disposable {
  readonly sidecars: SidecarPool;
  readonly values: ValueWorker;
  readonly files = new NodeFileOpener();

  constructor(extensionUri: vscode.Uri) {
    this.sidecars = new SidecarPool(sidecarScript(extensionUri.fsPath));
    this.values = new ValueWorker(path.join(extensionUri.fsPath, 'dist', 'valueWorker.js'), this.files);
  }

  /** What a sharded safetensors index lists before its shards are read; undefined for any other checkpoint. */
  list(uri: vscode.Uri): Promise<IndexListing | undefined> {
    return listSafetensorsIndex(this.files, uri.fsPath);
  }

  /**
   * Opens a checkpoint; Orbax folders need a sidecar, which is never spawned in an untrusted
   * workspace. `listed`: this file's listing, whose parsed index is not read again.
   */
  async open(uri: vscode.Uri, listed?: IndexListing): Promise<Checkpoint> {
    return openCheckpoint(this.files, uri.fsPath, { ...(await this.orbaxOptions(uri)), ...(listed ? { parsedIndex: listed.index } : {}) });
  }

  private async orbaxOptions(uri: vscode.Uri) {
    if (!vscode.workspace.isTrusted) return { orbaxHint: vscode.l10n.t('Trust this workspace to read them: that runs Python.') };
    const { python } = await choosePython(uri);
    const hint = pythonHint();
    return { orbax: this.sidecars.get(python, hint), orbaxHint: hint };
  }

  dispose(): void {
    this.sidecars.dispose();
    void this.values.dispose();
  }
}
