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
import type { ByteSink } from '../io/byteSource';
import { openAtomicFileSink, wrapFsError } from './fileOpener';

export class OutputFolder {
  private constructor(
    readonly target: string,
    readonly tmp: string,
    private readonly overwrite: boolean,
  ) {}

  static async create(target: string, opts: { overwrite?: boolean } = {}): Promise<OutputFolder> {
    const exists = await fs.stat(target).then(() => true, () => false);
    if (exists && !opts.overwrite) throw new JaxServeError('E_USAGE', `${target} already exists; choose another output folder or allow overwriting (--overwrite).`);
    const parent = path.dirname(path.resolve(target));
    await fs.mkdir(parent, { recursive: true }).catch((e) => wrapFsError(parent, e));
    const tmp = path.join(parent, `.${path.basename(target)}.${randomBytes(4).toString('hex')}.partial`);
    await fs.mkdir(tmp).catch((e) => wrapFsError(tmp, e));
    return new OutputFolder(path.resolve(target), tmp, !!opts.overwrite);
  }

  sink(name: string): Promise<ByteSink> {
    return openAtomicFileSink(path.join(this.tmp, name), { overwrite: true });
  }

  async writeFile(name: string, text: string): Promise<void> {
    await fs.writeFile(path.join(this.tmp, name), text).catch((e) => wrapFsError(path.join(this.tmp, name), e));
  }

  async copyIn(from: string, name = path.basename(from)): Promise<void> {
    await fs.copyFile(from, path.join(this.tmp, name)).catch((e) => wrapFsError(from, e));
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
