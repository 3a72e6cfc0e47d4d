/**
 * Node adapters for core's I/O interfaces: files opened read-only with positioned reads, and an
 * atomic sink that writes beside its target and renames into place only when complete.
 */
import { promises as fs, constants as fsConstants, readSync, type Stats } from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { JaxServeError, limitError } from '../errors';
import type { ByteSink, ByteSource, FileOpener } from '../io/byteSource';
import { Confinement } from './confinement';
import { assertOutputOutsideSources, type OutputSource } from './outputSafety';

/** Turns the OS errors a user can meet into messages that name the file and say what to do. */
export function wrapFsError(file: string, e: unknown): never {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code === 'ENOENT') throw new JaxServeError('E_NOT_FOUND', `${file}: no such file.`, { cause: e });
  if (code === 'EACCES' || code === 'EPERM') throw new JaxServeError('E_IO', `${file}: permission denied.`, { cause: e });
  if (code === 'EISDIR') throw new JaxServeError('E_USAGE', `${file} is a folder, not a file.`, { cause: e });
  if (code === 'ENOSPC') throw new JaxServeError('E_IO', `${file}: the disk is full.`, { cause: e });
  if (typeof code === 'string') throw new JaxServeError('E_IO', `${file}: ${code} (${(e as Error).message}).`, { cause: e });
  throw e;
}

export interface OpenerOptions {
  /**
   * Reads up to this many bytes are made on the calling thread (readSync) instead of through the
   * I/O thread pool, whose round trip costs more than a small read from the page cache. Only for
   * worker threads: they may block, an extension host's main thread may not.
   */
  readonly syncReadBytes?: number;
}

class NodeFileSource implements ByteSource {
  private closed = false;
  constructor(
    readonly name: string,
    private readonly handle: fs.FileHandle,
    readonly size: number,
    syncReadBytes: number,
  ) {
    if (syncReadBytes > 0) {
      this.syncBytes = syncReadBytes;
      this.readSync = (offset, target) => {
        try {
          return readSync(this.handle.fd, target, 0, target.length, offset);
        } catch (e) {
          return wrapFsError(this.name, e);
        }
      };
    }
  }
  readonly readSync?: (offset: number, target: Uint8Array) => number;
  readonly syncBytes?: number;
  async read(offset: number, target: Uint8Array): Promise<number> {
    if (this.readSync && target.length <= this.syncBytes!) return this.readSync(offset, target);
    try {
      const { bytesRead } = await this.handle.read(target, 0, target.length, offset);
      return bytesRead;
    } catch (e) {
      return wrapFsError(this.name, e);
    }
  }
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}

/** What a non-regular file is, for the message that refuses it. */
function specialKind(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

/** Refuses anything but a regular file before a byte is read: a FIFO or device would block or never end. */
function refuseSpecial(file: string, st: Stats): void {
  if (st.isDirectory()) throw new JaxServeError('E_USAGE', `${file} is a folder, not a file.`);
  if (!st.isFile()) throw new JaxServeError('E_UNSAFE_PATH', `${file} is ${specialKind(st)}; jax-serve reads only regular files. Replace it with the file itself.`);
}

/**
 * Opens files read-only for positioned reads. Only regular files are opened (checked with stat
 * before the open and fstat after it, the open itself non-blocking so a FIFO cannot stall it). An
 * opener made `within` a location also refuses every path whose real path leaves that location.
 */
export class NodeFileOpener implements FileOpener {
  constructor(
    private readonly confinement?: Confinement,
    private readonly opts: OpenerOptions = {},
  ) {}

  /** An opener confined to the location the user named (a folder, or a file and its folder). */
  async within(location: string): Promise<NodeFileOpener> {
    return new NodeFileOpener(await Confinement.of(location), this.opts);
  }

  async open(file: string): Promise<ByteSource> {
    let st: Stats;
    try {
      st = await fs.stat(file);
    } catch (e) {
      return wrapFsError(file, e);
    }
    refuseSpecial(file, st);
    if (this.confinement) await this.confinement.check(file);
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(file, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
    } catch (e) {
      return wrapFsError(file, e);
    }
    try {
      const opened = await handle.stat();
      refuseSpecial(file, opened);
      // The file opened is the one checked: a swap between the check and the open is refused.
      if (opened.ino !== st.ino || opened.dev !== st.dev) throw new JaxServeError('E_IO', `${file} changed while it was being opened; try again.`);
      return new NodeFileSource(file, handle, opened.size, this.opts.syncReadBytes ?? 0);
    } catch (e) {
      await handle.close();
      if (e instanceof JaxServeError) throw e;
      return wrapFsError(file, e);
    }
  }

  async readSmall(file: string, maxBytes: number): Promise<Uint8Array> {
    const src = await this.open(file);
    try {
      if (src.size > maxBytes) throw limitError(file, 'the file size', src.size, maxBytes, 'maxIndexBytes');
      const buf = new Uint8Array(src.size);
      let done = 0;
      while (done < buf.length) {
        const n = await src.read(done, buf.subarray(done));
        if (n <= 0) break;
        done += n;
      }
      return buf.subarray(0, done);
    } finally {
      await src.close();
    }
  }

  /**
   * A folder, or a file of any other kind (so a FIFO where a file is expected is refused when it is
   * opened, not skipped in silence); a confined opener refuses a path that leads outside.
   */
  async kind(file: string): Promise<'file' | 'directory' | undefined> {
    let st: Stats;
    try {
      st = await fs.stat(file);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        // A link to nothing is not "absent": a tokenizer file or shard that points nowhere is said so.
        const target = await fs.readlink(file).catch(() => undefined);
        if (target !== undefined) throw new JaxServeError('E_NOT_FOUND', `${file} is a link to ${target}, which does not exist; replace it with the file.`);
        return undefined;
      }
      return wrapFsError(file, e);
    }
    if (this.confinement) await this.confinement.check(file);
    return st.isDirectory() ? 'directory' : 'file';
  }

  async list(dir: string): Promise<string[]> {
    if (this.confinement) await this.confinement.check(dir);
    try {
      return await fs.readdir(dir);
    } catch (e) {
      return wrapFsError(dir, e);
    }
  }
}

/** How much an output file takes between background writebacks. */
const WRITEBACK_BYTES = 64 << 20;

/**
 * Writes to `<target>.<random>.partial` in the same folder and renames onto `target` on commit, so
 * a reader never sees half a file and a killed run leaves only an obviously partial name behind.
 * Refuses to replace an existing target unless `overwrite` is set.
 */
export async function openAtomicFileSink(target: string, opts: { overwrite?: boolean; sources: readonly OutputSource[] }): Promise<ByteSink> {
  await assertOutputOutsideSources(target, opts.sources);
  if (!opts.overwrite) {
    const exists = await fs.stat(target).then(() => true, () => false);
    if (exists) throw new JaxServeError('E_USAGE', `${target} already exists; choose another output or allow overwriting.`);
  }
  const tmp = path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(4).toString('hex')}.partial`);
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(tmp, 'wx');
  } catch (e) {
    return wrapFsError(tmp, e);
  }
  let open = true;
  // The sequential cursor: writes carry explicit positions so writeAt can fill regions out of order.
  let cursor = 0;
  const finish = async () => {
    if (open) {
      open = false;
      await handle.close();
    }
  };
  // Writeback as we go: Linux starts writing dirty pages only past a tenth of memory or after 30 s,
  // so a whole export (2.4 GB) sat in memory until commit's fsync wrote it while nothing else ran.
  // A datasync in the background every WRITEBACK_BYTES keeps the disk busy beside the conversion;
  // its error, if any, is the next write's or the commit's.
  let unsynced = 0;
  let syncing: Promise<unknown> | undefined;
  let syncFailed: unknown;
  const writeFully = async (chunk: Uint8Array, position: number) => {
    if (syncFailed !== undefined) wrapFsError(target, syncFailed);
    try {
      let done = 0;
      while (done < chunk.length) {
        const { bytesWritten } = await handle.write(chunk, done, chunk.length - done, position + done);
        done += bytesWritten;
      }
    } catch (e) {
      wrapFsError(target, e);
    }
    unsynced += chunk.length;
    if (unsynced >= WRITEBACK_BYTES && syncing === undefined) {
      unsynced = 0;
      const started: Promise<unknown> = handle.datasync().then(
        () => {
          if (syncing === started) syncing = undefined;
        },
        (e: unknown) => (syncFailed = e ?? new Error('datasync failed')),
      );
      syncing = started;
    }
  };
  return {
    async write(chunk) {
      await writeFully(chunk, cursor);
      cursor += chunk.length;
    },
    writeAt: (position, chunk) => writeFully(chunk, position),
    async skip(bytes) {
      cursor += bytes;
    },
    async commit() {
      try {
        const failed = await syncing;
        if (failed !== undefined) throw failed;
        await handle.sync();
        await finish();
        await fs.rename(tmp, target);
      } catch (e) {
        await finish().catch(() => undefined);
        await fs.rm(tmp, { force: true });
        wrapFsError(target, e);
      }
    },
    async abort() {
      await syncing;
      await finish().catch(() => undefined);
      await fs.rm(tmp, { force: true });
    },
  };
}
