import type * as vscode from 'vscode';

/** Base for owners of disposables: register children, dispose once, in reverse order. */
export abstract class Disposable {
  private readonly _disposables: vscode.Disposable[] = [];
  private _isDisposed = false;

  protected get isDisposed(): boolean {
    return this._isDisposed;
  }

  /** Registers `d` for disposal with this owner; disposes it at once if the owner is already gone. */
  protected _register<T extends vscode.Disposable>(d: T): T {
    if (this._isDisposed) d.dispose();
    else this._disposables.push(d);
    return d;
  }

  dispose(): void {
    if (this._isDisposed) return;
    this._isDisposed = true;
    while (this._disposables.length) this._disposables.pop()!.dispose();
  }
}
