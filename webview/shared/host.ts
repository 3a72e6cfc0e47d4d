/**
 * The page's side of the host channel: wraps acquireVsCodeApi once, drops messages from any other
 * origin, and exposes one typed Rpc plus the persisted state (discarded when its version changes).
 */
import { Rpc } from '../../src/shared/rpc';

interface VsCodeApi {
  postMessage(msg: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const api = acquireVsCodeApi();

export function connect<TOut extends { type: string }, TIn extends { type: string }>(
  handle: (msg: TIn) => Promise<TOut | undefined> | TOut | undefined,
  validate: (v: unknown) => v is TIn,
): Rpc<TOut, TIn> {
  const rpc = new Rpc<TOut, TIn>((e) => api.postMessage(e), handle, validate);
  window.addEventListener('message', (ev: MessageEvent) => {
    // Messages from the host arrive from the webview's own origin; anything else is not ours.
    if (ev.origin !== window.origin) return;
    void rpc.receive(ev.data);
  });
  return rpc;
}

export function loadState<T extends { stateVersion: number }>(version: number): Partial<T> {
  const s = api.getState() as Partial<T> | undefined;
  return s && s.stateVersion === version ? s : {};
}

export function saveState<T extends { stateVersion: number }>(state: T): void {
  api.setState(state);
}
