/**
 * `jax-serve verify`: the export's logits in transformers against the JAX source's through the
 * user's entry point (python/verify/jax_serve_verify.py runs both halves, each in its own
 * interpreter), compared here per prompt. Nothing is written beside the export; the logits live in
 * a temporary folder that is removed afterwards.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { JaxServeError } from '../errors';
import { openCheckpoint } from '../formats/open';
import { readTensorValues } from '../tensor/read';
import { compareLogits, type LogitsComparison } from '../convert/compareLogits';
import { NodeFileOpener } from './fileOpener';

export function verifyScript(packageRoot: string): string {
  return path.join(packageRoot, 'python', 'verify', 'jax_serve_verify.py');
}

export function verifyTemplatePath(packageRoot: string): string {
  return path.join(packageRoot, 'python', 'verify', 'jax_forward_template.py');
}

/** The entry-point template with PRESET set (`jax-serve verify --template PRESET`). */
export async function verifyTemplate(packageRoot: string, preset: string): Promise<string> {
  const text = await readFile(verifyTemplatePath(packageRoot), 'utf8');
  if (!new RegExp(`^ {4}"${preset.replace(/[.]/g, '\\.')}": `, 'm').test(text)) {
    throw new JaxServeError('E_USAGE', `no verify template for preset ${JSON.stringify(preset)} (it has none for CNNs; the LLM presets all have one).`);
  }
  return text.replace(/^PRESET = ".*"$/m, `PRESET = ${JSON.stringify(preset)}`);
}

/** Prompts used when none are given: short, plain, and different in length. */
export const DEFAULT_PROMPTS = ['The quick brown fox jumps over the lazy dog.', 'Once upon a time', 'def add(a, b):\n    return'];

export interface VerifyOptions {
  readonly exportDir: string;
  /** The JAX checkpoint the export was converted from. */
  readonly checkpoint: string;
  /** A .py file defining load(checkpoint, config) and forward(state, input_ids). */
  readonly entry: string;
  readonly prompts?: readonly string[];
  /** Interpreter with torch + transformers (the export side). */
  readonly hfPython: string;
  /** Interpreter with JAX and the user's model code; hfPython when absent. */
  readonly jaxPython?: string;
  readonly packageRoot: string;
  readonly signal?: AbortSignal;
  readonly onStep?: (what: string) => void;
}

export interface PromptReport extends LogitsComparison {
  readonly prompt: string;
  readonly tokens: number;
}

export interface VerifyReport {
  readonly exportDir: string;
  readonly checkpoint: string;
  readonly prompts: readonly PromptReport[];
}

export function runVerifyPython(python: string, args: string[], signal: AbortSignal | undefined, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(python, args, { signal, maxBuffer: 16 << 20, env: { ...process.env, JAX_PLATFORMS: process.env.JAX_PLATFORMS ?? 'cpu' } }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      // `what` names the step, so the message fits verify and check-served alike.
      if (signal?.aborted) return reject(new JaxServeError('E_CANCELLED', `Cancelled during ${what}.`));
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return reject(new JaxServeError('E_NOT_FOUND', `${python}: no such interpreter (${what}).`));
      const ours = /jax-serve-verify: (.*)$/m.exec(stderr);
      const tail = stderr.trim().split('\n').slice(-3).join('\n');
      // The script's own line names the file and what to do: a format problem, not a misused command
      // (E_USAGE would send the user to --help).
      reject(ours ? new JaxServeError('E_FORMAT', ours[1]!) : new JaxServeError('E_USAGE', `${what} failed (${python}):\n${tail}`));
    });
  });
}

export async function readLogits(file: string): Promise<{ values: Float32Array; vocab: number }> {
  const files = new NodeFileOpener();
  const ck = await openCheckpoint(files, file);
  const t = ck.tensors[0]!;
  const values = new Float32Array(t.shape.reduce((a, b) => a * b, 1));
  let at = 0;
  for await (const chunk of readTensorValues(files, t)) {
    values.set(chunk, at);
    at += chunk.length;
  }
  return { values, vocab: t.shape[t.shape.length - 1]! };
}

export async function verifyExport(o: VerifyOptions): Promise<VerifyReport> {
  const prompts = o.prompts?.length ? o.prompts : DEFAULT_PROMPTS;
  const dir = await mkdtemp(path.join(tmpdir(), 'jax-serve-verify-'));
  try {
    const script = verifyScript(o.packageRoot);
    await writeFile(path.join(dir, 'prompts.json'), JSON.stringify(prompts));
    o.onStep?.(`export: ${prompts.length} prompt(s) through transformers`);
    await runVerifyPython(o.hfPython, [script, 'hf', o.exportDir, path.join(dir, 'prompts.json'), dir], o.signal, 'the export side (transformers)');
    o.onStep?.(`JAX: the same token ids through ${path.basename(o.entry)}`);
    await runVerifyPython(o.jaxPython ?? o.hfPython, [script, 'jax', o.entry, o.checkpoint, path.join(o.exportDir, 'config.json'), dir], o.signal, 'the JAX side (your entry point)');
    const ids = JSON.parse(await readFile(path.join(dir, 'ids.json'), 'utf8')) as number[][];
    const reports: PromptReport[] = [];
    for (let k = 0; k < prompts.length; k++) {
      const hf = await readLogits(path.join(dir, `hf-${k}.npy`));
      const jax = await readLogits(path.join(dir, `jax-${k}.npy`));
      if (hf.vocab !== jax.vocab) throw new JaxServeError('E_FORMAT', `prompt ${k}: the export has a vocabulary of ${hf.vocab}, the JAX forward ${jax.vocab}.`);
      reports.push({ prompt: prompts[k]!, tokens: ids[k]!.length, ...compareLogits(jax.values, hf.values, hf.vocab) });
    }
    return { exportDir: o.exportDir, checkpoint: o.checkpoint, prompts: reports };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
