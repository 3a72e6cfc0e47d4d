/**
 * One entry point for "open this path as a checkpoint": picks the reader from the name, or for a
 * folder from the HF file names inside it.
 */
import * as path from 'node:path';
import type { Checkpoint } from '../checkpoint';
import { JaxServeError } from '../errors';
import { openerWithin, type FileOpener } from '../io/byteSource';
import {
  FLAX_INDEX_NAME,
  FLAX_SINGLE_NAME,
  MSGPACK_INDEX_SUFFIX,
  MSGPACK_SUFFIX,
  SAFETENSORS_INDEX_NAME,
  SAFETENSORS_INDEX_SUFFIX,
  SAFETENSORS_SINGLE_NAME,
  SAFETENSORS_SUFFIX,
} from '../limits';
import { openNpy, openNpz } from './npy/reader';
import { ORBAX_MARKERS, openOrbax, type OrbaxBackend } from './orbax/reader';
import { openFlaxMsgpackFile, openFlaxMsgpackIndex, type MsgpackOptions } from './msgpack/reader';
import { openSafetensorsFile, openSafetensorsIndex, type SafetensorsOptions } from './safetensors/reader';

export type OpenOptions = SafetensorsOptions &
  MsgpackOptions & {
    /** Reads Orbax folders (the Python sidecar); without it they are refused with a clear message. */
    orbax?: OrbaxBackend;
    /** Said after "needs Python" when `orbax` is missing: how this caller gets one. */
    orbaxHint?: string;
    signal?: AbortSignal;
  };

/** The folder of a MaxText run (base_output_directory/run_name) that holds its checkpoint steps. */
const MAXTEXT_CHECKPOINTS = 'checkpoints';

/** Names a folder may hold a checkpoint under, most specific first (HF conventions). */
const FOLDER_CANDIDATES = [SAFETENSORS_INDEX_NAME, SAFETENSORS_SINGLE_NAME, FLAX_INDEX_NAME, FLAX_SINGLE_NAME];

/**
 * Opens the checkpoint at `location`, reading nothing outside it: every shard, side file and
 * folder it leads to must lie inside the location the user named (see FileOpener.within).
 */
export async function openCheckpoint(opener: FileOpener, location: string, opts: OpenOptions = {}): Promise<Checkpoint> {
  return openAt(await openerWithin(opener, location), location, opts);
}

async function openAt(opener: FileOpener, location: string, opts: OpenOptions): Promise<Checkpoint> {
  const kind = await opener.kind(location);
  if (kind === undefined) throw new JaxServeError('E_NOT_FOUND', `${location}: no such file or folder.`);
  if (kind === 'directory') {
    for (const name of FOLDER_CANDIDATES) {
      const candidate = path.join(location, name);
      if ((await opener.kind(candidate)) === 'file') return openAt(opener, candidate, opts);
    }
    // A MaxText run folder keeps its CheckpointManager root in checkpoints/.
    const run = path.join(location, MAXTEXT_CHECKPOINTS);
    if ((await opener.kind(run)) === 'directory') {
      // An Orbax run: the sidecar steps into checkpoints/ itself, so what it reads stays inside the
      // run folder named (checkpoints/ may be a link; out of the run folder it is refused).
      const hf = await Promise.all(FOLDER_CANDIDATES.map(async (n) => (await opener.kind(path.join(run, n))) === 'file'));
      if (opts.orbax && !hf.includes(true)) return openOrbax(opts.orbax, location, opts.signal);
      return openAt(opener, run, opts);
    }
    // Anything else may be Orbax (an item, a step, or a CheckpointManager root): the sidecar knows.
    if (opts.orbax) return openOrbax(opts.orbax, location, opts.signal);
    throw new JaxServeError(
      'E_UNSUPPORTED',
      `${location}: no ${FOLDER_CANDIDATES.join(', ')} in this folder, and Orbax folders need Python with tensorstore.${opts.orbaxHint ? ` ${opts.orbaxHint}` : ''}`,
    );
  }
  if ((ORBAX_MARKERS as readonly string[]).includes(path.basename(location))) return openAt(opener, path.dirname(location), opts);
  if (location.endsWith(SAFETENSORS_INDEX_SUFFIX)) return openSafetensorsIndex(opener, location, opts);
  if (location.endsWith(SAFETENSORS_SUFFIX)) return openSafetensorsFile(opener, location, opts);
  if (location.endsWith(MSGPACK_INDEX_SUFFIX)) return openFlaxMsgpackIndex(opener, location, opts);
  if (location.endsWith(MSGPACK_SUFFIX)) return openFlaxMsgpackFile(opener, location, opts);
  if (location.endsWith('.npz')) return openNpz(opener, location);
  if (location.endsWith('.npy')) return openNpy(opener, location);
  throw new JaxServeError(
    'E_UNSUPPORTED',
    `${location}: not a checkpoint this version reads (expected *${SAFETENSORS_SUFFIX}, *${SAFETENSORS_INDEX_SUFFIX}, *${MSGPACK_SUFFIX}, *${MSGPACK_INDEX_SUFFIX}, *.npz or *.npy).`,
  );
}

/**
 * The file that stands for a checkpoint folder, for callers that can only open files (an editor):
 * an HF weights file or index, else an Orbax marker (`_CHECKPOINT_METADATA`, `_METADATA`), else the
 * same inside the latest numbered step folder (under checkpoints/ in a MaxText run folder).
 * Undefined when the folder holds none of them.
 */
export async function checkpointFileInFolder(opener: FileOpener, dir: string, depth = 2): Promise<string | undefined> {
  for (const name of [...FOLDER_CANDIDATES, ...ORBAX_MARKERS]) {
    const candidate = path.join(dir, name);
    if ((await opener.kind(candidate)) === 'file') return candidate;
  }
  if ((await opener.kind(path.join(dir, MAXTEXT_CHECKPOINTS))) === 'directory') return checkpointFileInFolder(opener, path.join(dir, MAXTEXT_CHECKPOINTS), depth);
  if (depth === 0 || !opener.list) return undefined;
  const steps = (await opener.list(dir)).filter((n) => /^\d+$/.test(n)).sort((a, b) => Number(a) - Number(b));
  for (const step of steps.reverse()) {
    const inner = path.join(dir, step);
    if ((await opener.kind(inner)) === 'directory') return checkpointFileInFolder(opener, inner, depth - 1);
  }
  return undefined;
}

export function findTensor(ck: Checkpoint, name: string) {
  const t = ck.tensors.find((x) => x.name === name);
  if (!t) throw new JaxServeError('E_NOT_FOUND', `${ck.location}: no tensor named ${JSON.stringify(name)}.`);
  return t;
}
