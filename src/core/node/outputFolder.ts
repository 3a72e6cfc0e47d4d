/**
 * An export folder written atomically: everything goes into `.<name>.<random>.partial` beside the
 * target and is renamed onto it when complete, so a killed run leaves only an obviously partial
 * folder and never one that looks like a finished export. An existing target is replaced only
 * when asked, and only after the new folder is complete.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { JaxServeError } from '../errors';
import type { ByteSink, ByteSource } from '../io/byteSource';
import { READ_CHUNK_BYTES } from '../limits';
import { assertOutputOutsideSources, type OutputSource } from './outputSafety';
import { openAtomicFileSink, wrapFsError } from './fileOpener';

export class OutputFolder {
  private constructor(
    readonly target: string,
    readonly tmp: string,
    private readonly overwrite: boolean,
  ) {}

  /**
   * Refuses a target that is, contains or lies inside any of `sources` (the checkpoint, its
   * shards, every folder a file is copied from), `overwrite` or not.
   */
  static async create(target: string, opts: { overwrite?: boolean; sources: readonly OutputSource[] }): Promise<OutputFolder> {
    await assertOutputOutsideSources(target, opts.sources);
    const exists = await fs.stat(target).then(() => true, () => false);
    if (exists && !opts.overwrite) throw new JaxServeError('E_USAGE', `${target} already exists; choose another output folder or allow overwriting (--overwrite).`);
    const parent = path.dirname(path.resolve(target));
    await fs.mkdir(parent, { recursive: true }).catch((e) => wrapFsError(parent, e));
    const tmp = path.join(parent, `.${path.basename(target)}.${randomBytes(4).toString('hex')}.partial`);
    await fs.mkdir(tmp).catch((e) => wrapFsError(tmp, e));
    return new OutputFolder(path.resolve(target), tmp, !!opts.overwrite);
  }

  sink(name: string): Promise<ByteSink> {
    // Inside our own temporary folder: no source can be there.
    return openAtomicFileSink(path.join(this.tmp, name), { overwrite: true, sources: [] });
  }

  async writeFile(name: string, text: string): Promise<void> {
    await fs.writeFile(path.join(this.tmp, name), text).catch((e) => wrapFsError(path.join(this.tmp, name), e));
  }

  /** Copies what `from` reads (a file opened and checked by a confined opener) into the folder as `name`. */
  async copyFrom(from: ByteSource, name: string): Promise<void> {
    const sink = await this.sink(name);
    try {
      const buf = new Uint8Array(Math.min(READ_CHUNK_BYTES, Math.max(1, from.size)));
      for (let at = 0; at < from.size; ) {
        const n = await from.read(at, buf.subarray(0, Math.min(buf.length, from.size - at)));
        if (n <= 0) throw new JaxServeError('E_IO', `${from.name} ended at byte ${at} of ${from.size} while it was copied; it changed during the export.`);
        await sink.write(buf.slice(0, n));
        at += n;
      }
      await sink.commit();
    } catch (e) {
      await sink.abort();
      throw e;
    }
  }

  /** Moves the finished folder onto the target (replacing the old one only now). */
  async commit(): Promise<void> {
    const old = `${this.tmp}.old`;
    const hadOld = this.overwrite && (await fs.stat(this.target).then(() => true, () => false));
    try {
      if (hadOld) await fs.rename(this.target, old);
      await fs.rename(this.tmp, this.target);
    } catch (e) {
      if (hadOld) await fs.rename(old, this.target).catch(() => undefined);
      return wrapFsError(this.target, e);
    }
    if (hadOld) await fs.rm(old, { recursive: true, force: true });
  }

  async abort(): Promise<void> {
    await fs.rm(this.tmp, { recursive: true, force: true });
  }
}
