/**
 * Keeps recently used files open across many small reads. A scan over a million tiny tensors would
 * otherwise open, check and close the same shard a million times (most of its time went there).
 * Handles close when the cache is closed, when it holds too many, or after a short idle time, so
 * nothing stays locked or pinned once the work is done. A kept handle is used again only while the
 * path still names the same file (device, inode, size and mtime), so a replaced file is reopened.
 */
import { promises as fs } from 'node:fs';
import type { ByteSource, FileOpener } from '../io/byteSource';

interface Kept {
  readonly src: Promise<ByteSource>;
  readonly id: string;
}

const idOf = (st: { dev: number; ino: number; size: number; mtimeMs: number }) => `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;

/** Files kept open at once: the shards a scan moves between, well under any descriptor limit. */
export const OPEN_HANDLES = 32;

/** Idle time after which every kept handle is closed. */
export const IDLE_CLOSE_MS = 2000;

export class HandleCache implements FileOpener {
  private readonly open_ = new Map<string, Kept>();
  private idle: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly inner: FileOpener) {}

  async open(file: string): Promise<ByteSource> {
    this.touch();
    const st = await fs.stat(file).catch(() => undefined);
    let kept = this.open_.get(file);
    if (kept) this.open_.delete(file);
    if (kept && (!st || kept.id !== idOf(st))) {
      void kept.src.then((s) => s.close(), () => undefined);
      kept = undefined;
    }
    if (!kept) {
      kept = { src: this.inner.open(file), id: st ? idOf(st) : '' };
      kept.src.catch(() => this.open_.delete(file));
      if (this.open_.size >= OPEN_HANDLES) {
        const [oldest, old] = this.open_.entries().next().value as [string, Kept];
        this.open_.delete(oldest);
        void old.src.then((s) => s.close(), () => undefined);
      }
    }
    // Most recently used last, so the first entry is the one to close.
    this.open_.set(file, kept);
    const src = await kept.src;
    // The caller's close leaves the handle to the cache.
    return { name: src.name, size: src.size, read: (offset, target) => src.read(offset, target), readSync: src.readSync, syncBytes: src.syncBytes, close: async () => {} };
  }

  readSmall(file: string, maxBytes: number): Promise<Uint8Array> {
    return this.inner.readSmall(file, maxBytes);
  }

  kind(file: string): Promise<'file' | 'directory' | undefined> {
    return this.inner.kind(file);
  }

  /** Closes every kept handle (the cache stays usable). */
  async close(): Promise<void> {
    if (this.idle) clearTimeout(this.idle);
    this.idle = undefined;
    const all = [...this.open_.values()];
    this.open_.clear();
    await Promise.all(all.map((k) => k.src.then((s) => s.close(), () => undefined)));
  }

  private touch(): void {
    if (this.idle) clearTimeout(this.idle);
    this.idle = setTimeout(() => void this.close(), IDLE_CLOSE_MS);
    this.idle.unref?.();
  }
}
