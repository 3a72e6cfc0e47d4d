/**
 * An output may never be, contain, or lie inside a source: writing an export over (or around) the
 * checkpoint it was made from would delete the source when the old folder is replaced. Paths are
 * compared by what they are, not how they are spelled: every existing folder on the output's real
 * path, and every one on each source's, is compared by device and inode, so symlinks, `..` and `/.`
 * spellings, bind mounts, hard links and case-insensitive file systems cannot alias past the check.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { JaxServeError } from '../errors';

/** What identifies a file or folder, whatever path reaches it. */
export interface NodeId {
  readonly dev: number | bigint;
  readonly ino: number | bigint;
}

/** The file system as this check sees it (tests give a table of layouts). */
export interface IdentityFs {
  /** The identity of what `p` names (links followed), or undefined when nothing is there. */
  identity(p: string): Promise<NodeId | undefined>;
  /** The real path of an existing `p`. */
  realpath(p: string): Promise<string>;
}

export const nodeIdentityFs: IdentityFs = {
  async identity(p) {
    const st = await fs.stat(p, { bigint: true }).catch(() => undefined);
    return st ? { dev: st.dev, ino: st.ino } : undefined;
  },
  realpath: (p) => fs.realpath(p),
};

const same = (a: NodeId, b: NodeId) => a.dev === b.dev && a.ino === b.ino;

/**
 * Where writing `p` really lands: the real path of its longest existing prefix joined with the rest
 * (spelled as `mkdir -p` and `rename` will create it).
 */
export async function effectivePath(p: string, fsys: IdentityFs = nodeIdentityFs): Promise<string> {
  const abs = path.resolve(p);
  const rest: string[] = [];
  let at = abs;
  for (;;) {
    if ((await fsys.identity(at)) !== undefined) return path.join(await fsys.realpath(at), ...rest.reverse());
    const up = path.dirname(at);
    if (up === at) return abs;
    rest.push(path.basename(at));
    at = up;
  }
}

/** The identities of `real` and every existing folder above it, nearest first. */
async function chain(real: string, fsys: IdentityFs): Promise<NodeId[]> {
  const out: NodeId[] = [];
  for (let at = real; ; at = path.dirname(at)) {
    const id = await fsys.identity(at);
    if (id) out.push(id);
    if (path.dirname(at) === at) return out;
  }
}

export interface OutputSource {
  /** The path as the user gave it (for the message). */
  readonly path: string;
  /** What it is, e.g. "the source checkpoint", "--tokenizer-from". */
  readonly role: string;
}

/**
 * Throws E_UNSAFE_PATH when `output` is, contains or lies inside any source. Sources that do not
 * exist are skipped (nothing there can be lost).
 */
export async function assertOutputOutsideSources(output: string, sources: readonly OutputSource[], fsys: IdentityFs = nodeIdentityFs): Promise<void> {
  const outReal = await effectivePath(output, fsys);
  const outChain = await chain(outReal, fsys);
  const outId = await fsys.identity(outReal);
  for (const s of sources) {
    const sId = await fsys.identity(path.resolve(s.path));
    if (!sId) continue;
    const where = `-o ${output}`;
    if (outId && same(outId, sId)) throw refuse(`${where} is ${s.role} ${s.path}`);
    if (outChain.some((id) => same(id, sId))) throw refuse(`${where} lies inside ${s.role} ${s.path}`);
    if (outId) {
      const sChain = await chain(await fsys.realpath(path.resolve(s.path)), fsys);
      if (sChain.some((id) => same(id, outId))) throw refuse(`${where} contains ${s.role} ${s.path}`);
    }
  }
}

function refuse(what: string): JaxServeError {
  return new JaxServeError('E_UNSAFE_PATH', `${what}; writing there could destroy the source. Choose an output folder outside every source (nothing was written).`);
}
