/**
 * A typed event, VS Code's shape (`onDidX(listener)` returns a disposable) without importing
 * vscode, so the serve session runs in plain Node too.
 */
export type Event<T> = (listener: (e: T) => void) => { dispose(): void };

export class Emitter<T> {
  private readonly listeners = new Set<(e: T) => void>();

  readonly event: Event<T> = (listener) => {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  };

  fire(e: T): void {
    // A listener that throws must not keep the others from hearing the event.
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch (err) {
        console.error(err);
      }
    }
  }

  dispose(): void {
    this.listeners.clear();
  }
}
