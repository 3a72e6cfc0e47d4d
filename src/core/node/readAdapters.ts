/**
 * The LoRA adapters of a launch, read from their folders before the engine is spawned: each
 * folder's adapter_config.json (bounded, parsed, checked for the engine: ../serve/adapters.ts) and
 * its weights file. An engine finds the same problems only after its imports and the base model's
 * load; here each is one line naming the file. The CLI and the extension start servers through this.
 */
import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import { JaxServeError } from '../errors';
import { parseJsonBytes } from '../json';
import { NodeFileOpener } from './fileOpener';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE } from '../convert/preflightAdapter';
import { MAX_ADAPTER_CONFIG_BYTES } from '../limits';
import { checkAdapterRefs, servedAdapter, type AdapterEngine, type AdapterRef, type ServedAdapter } from '../serve/adapters';
import { safeName } from '../text';

/** The weights file PEFT writes (safetensors) and the one older PEFT wrote; engines read either. */
const ADAPTER_WEIGHTS = [ADAPTER_WEIGHTS_FILE, 'adapter_model.bin'];
const ADAPTER_CONFIG = ADAPTER_CONFIG_FILE;

/** One adapter folder, read and checked for `engine`; a relative folder is `base`'s (the working directory by default). */
async function readAdapter(engine: AdapterEngine, ref: AdapterRef, base: string): Promise<ServedAdapter> {
  const dir = path.resolve(base, ref.path);
  const st = await stat(dir).catch(() => undefined);
  if (!st) throw new JaxServeError('E_NOT_FOUND', `${safeName(dir)}: no such folder (LoRA adapter "${ref.name}").`);
  if (!st.isDirectory()) throw new JaxServeError('E_USAGE', `${safeName(dir)}: not a folder; LoRA adapter "${ref.name}" is the folder holding ${ADAPTER_CONFIG} and ${ADAPTER_WEIGHTS[0]}.`);
  // Read as the engine would, but only inside the folder named: a link out of it, a FIFO or a device is refused.
  const files = await new NodeFileOpener().within(dir);
  const file = path.join(dir, ADAPTER_CONFIG);
  if ((await files.kind(file)) === undefined) throw new JaxServeError('E_NOT_FOUND', `${safeName(file)}: missing; LoRA adapter "${ref.name}" needs the PEFT folder jax-serve convert --lora adapter writes.`);
  const bytes = await files.readSmall(file, MAX_ADAPTER_CONFIG_BYTES).catch((e: unknown) => {
    if (e instanceof JaxServeError && e.code === 'E_LIMIT') throw new JaxServeError('E_LIMIT', `${safeName(file)}: over the ${MAX_ADAPTER_CONFIG_BYTES} bytes an adapter config is read up to (PEFT writes a few KB).`);
    throw e;
  });
  const config = parseJsonBytes(safeName(file), bytes, { what: 'the adapter config' });
  const served = servedAdapter(engine, { name: ref.name, path: dir }, config, file);
  let weights = false;
  for (const w of ADAPTER_WEIGHTS) weights ||= (await files.kind(path.join(dir, w))) === 'file';
  if (!weights) throw new JaxServeError('E_NOT_FOUND', `${safeName(path.join(dir, ADAPTER_WEIGHTS[0]!))}: missing; LoRA adapter "${ref.name}" has a config but no weights.`);
  return served;
}

/**
 * Reads every adapter of a launch for `engine`, in order, with absolute folders. Throws (E_USAGE,
 * E_NOT_FOUND, E_FORMAT, E_UNSUPPORTED, E_LIMIT) with one line that names the file at fault.
 */
export async function readAdapters(engine: AdapterEngine, refs: readonly AdapterRef[] | undefined, base = process.cwd()): Promise<ServedAdapter[]> {
  if (!refs?.length) return [];
  checkAdapterRefs(engine, refs);
  const out: ServedAdapter[] = [];
  for (const r of refs) out.push(await readAdapter(engine, r, base));
  return out;
}
