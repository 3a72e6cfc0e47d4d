/**
 * `fit` for a folder: its config.json, and its weights when it has them (parameters counted from the
 * tensors; with none, from the architecture). A config.json path may be given instead of a folder.
 */
import * as path from 'node:path';
import type { Checkpoint } from '../checkpoint';
import { openCheckpoint } from '../formats/open';
import { JaxServeError } from '../errors';
import { parseJsonBytes } from '../json';
import { openerWithin, type FileOpener } from '../io/byteSource';
import type { DType } from '../dtype';
import { fit, type FitInput, type FitReport } from './fit';
import { modelShape, type ServingDType, type ShapeTensor } from './modelShape';

const CONFIG_MAX_BYTES = 16 << 20;
const WEIGHTS = /\.safetensors(\.index\.json)?$/;
const SERVING: Partial<Record<DType, ServingDType>> = { BF16: 'bf16', F16: 'f16', F32: 'f32' };

export type FitOptions = Omit<FitInput, 'shape' | 'tensors' | 'tensorDType'>;

export async function fitFolder(files: FileOpener, location: string, opts: FitOptions): Promise<FitReport> {
  const kind = await files.kind(location);
  if (kind === undefined) throw new JaxServeError('E_NOT_FOUND', `${location}: no such folder or file.`);
  const dir = kind === 'directory' ? location : path.dirname(location);
  const configFile = kind === 'directory' ? path.join(location, 'config.json') : location;
  const opener = await openerWithin(files, dir);
  if ((await opener.kind(configFile)) !== 'file') throw new JaxServeError('E_NOT_FOUND', `${configFile}: not found; fit reads the model's config.json (an export folder, or a folder holding only config.json).`);
  // A read that fails (too large, not a regular file, outside the folder) says so itself.
  const bytes = await opener.readSmall(configFile, CONFIG_MAX_BYTES);
  let config: unknown;
  try {
    config = parseJsonBytes(configFile, bytes);
  } catch {
    throw new JaxServeError('E_FORMAT', `${configFile}: not JSON; fit reads the model's config.json.`);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new JaxServeError('E_FORMAT', `${configFile}: not a JSON object.`);
  const weights = kind === 'directory' && (await hasWeights(opener, dir));
  return fitCheckpoint(config as Record<string, unknown>, configFile, weights ? await openCheckpoint(opener, dir) : undefined, opts);
}

/** `fit` for a config and, when there is one, the checkpoint beside it (parameters from its tensors). */
export function fitCheckpoint(config: Record<string, unknown>, configFile: string, ck: Pick<Checkpoint, 'tensors'> | undefined, opts: FitOptions): FitReport {
  const shape = modelShape(config, configFile);
  if (!ck) return fit({ ...opts, shape });
  const tensors: ShapeTensor[] = ck.tensors.map((t) => ({ name: t.name, shape: t.shape }));
  return fit({ ...opts, shape, tensors, tensorDType: mostlyHeld(ck.tensors) });
}

async function hasWeights(opener: FileOpener, dir: string): Promise<boolean> {
  const names = opener.list ? await opener.list(dir) : [];
  return names.some((n) => WEIGHTS.test(n));
}

/** The float dtype holding the most elements. */
function mostlyHeld(tensors: readonly { dtype: DType; shape: readonly number[] }[]): ServingDType | undefined {
  const held = new Map<ServingDType, number>();
  for (const t of tensors) {
    const d = SERVING[t.dtype];
    if (d) held.set(d, (held.get(d) ?? 0) + t.shape.reduce((a, n) => a * n, 1));
  }
  return [...held].sort((a, b) => b[1] - a[1])[0]?.[0];
}
