/**
 * One entry point for "open this path as a checkpoint": picks the reader from the name, or for a
 * folder from the HF file names inside it.
 */
import * as path from 'node:path';
import type { Checkpoint } from '../checkpoint';
import { JaxServeError } from '../errors';
import type { FileOpener } from '../io/byteSource';
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
import { openFlaxMsgpackFile, openFlaxMsgpackIndex, type MsgpackOptions } from './msgpack/reader';
import { openSafetensorsFile, openSafetensorsIndex, type SafetensorsOptions } from './safetensors/reader';

export type OpenOptions = SafetensorsOptions & MsgpackOptions;

/** Names a folder may hold a checkpoint under, most specific first (HF conventions). */
const FOLDER_CANDIDATES = [SAFETENSORS_INDEX_NAME, SAFETENSORS_SINGLE_NAME, FLAX_INDEX_NAME, FLAX_SINGLE_NAME];

export async function openCheckpoint(opener: FileOpener, location: string, opts: OpenOptions = {}): Promise<Checkpoint> {
  const kind = await opener.kind(location);
  if (kind === undefined) throw new JaxServeError('E_NOT_FOUND', `${location}: no such file or folder.`);
  if (kind === 'directory') {
    for (const name of FOLDER_CANDIDATES) {
      const candidate = path.join(location, name);
      if ((await opener.kind(candidate)) === 'file') return openCheckpoint(opener, candidate, opts);
    }
    throw new JaxServeError('E_UNSUPPORTED', `${location}: no checkpoint in this folder (looked for ${FOLDER_CANDIDATES.join(', ')}).`);
  }
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

export function findTensor(ck: Checkpoint, name: string) {
  const t = ck.tensors.find((x) => x.name === name);
  if (!t) throw new JaxServeError('E_NOT_FOUND', `${ck.location}: no tensor named ${JSON.stringify(name)}.`);
  return t;
}
