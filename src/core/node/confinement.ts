/**
 * Confinement: a reader may open only what lies inside the folder the user named. The path the user
 * named is theirs, symlink or not; inside it, a symlink that stays within the folder is fine and one
 * that leaves it is refused, naming both paths. One exception keeps the most common real layout
 * working: in a Hugging Face cache snapshot (`…/models--ORG--NAME/snapshots/REV/`), the files are
 * links into that repository's own `blobs/`, which therefore count as inside.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { JaxServeError } from '../errors';

/**
 * `…/models--ORG--NAME/snapshots/REV`, or a folder inside it (huggingface_hub's cache layout; many
 * repositories keep a checkpoint in a subfolder); group 1 is the repository folder.
 */
const HF_SNAPSHOT = /^(.*[\\/]models--[^\\/]+)[\\/]snapshots[\\/][^\\/]+(?:[\\/].*)?$/;

export class Confinement {
  private constructor(
    /** What the user named, for messages. */
    readonly named: string,
    /** Real folders whose whole subtree is inside. */
    readonly roots: readonly string[],
    /** Real files that are inside by themselves (the file the user named). */
    private readonly files: ReadonlySet<string>,
  ) {}

  /**
   * The confinement of a location the user named: a folder's real subtree, or for a file, the file
   * itself and the real subtree of the folder it was named in (where its shards and side files are).
   */
  static async of(location: string): Promise<Confinement> {
    const abs = path.resolve(location);
    const real = await realpathOrSelf(abs);
    const st = await fs.stat(abs).catch(() => undefined);
    if (st?.isDirectory()) return new Confinement(location, withHfBlobs(real), new Set());
    const dir = await realpathOrSelf(path.dirname(abs));
    return new Confinement(location, withHfBlobs(dir), new Set([real]));
  }

  /** True when the real path `real` lies inside. */
  contains(real: string): boolean {
    if (this.files.has(real)) return true;
    return this.roots.some((r) => real === r || real.startsWith(r.endsWith(path.sep) ? r : r + path.sep));
  }

  /** Resolves `file` and throws E_UNSAFE_PATH, naming both paths, when it leads outside; returns the real path. */
  async check(file: string): Promise<string> {
    const real = await realpathOrSelf(path.resolve(file));
    if (!this.contains(real)) throw outside(file, real, this.named);
    return real;
  }
}

export function outside(file: string, real: string, named: string): JaxServeError {
  return new JaxServeError(
    'E_UNSAFE_PATH',
    `${file} leads to ${real}, outside ${named}; jax-serve reads only inside the folder it was given. Copy the file into the folder, or name ${real} itself.`,
  );
}

/** The real path, or the path itself when nothing is there yet (the caller's open then says so). */
async function realpathOrSelf(p: string): Promise<string> {
  try {
    return await fs.realpath(p);
  } catch {
    return p;
  }
}

function withHfBlobs(root: string): string[] {
  const m = HF_SNAPSHOT.exec(root);
  return m ? [root, path.join(m[1]!, 'blobs')] : [root];
}
