/**
 * `jax-serve convert`: plan a conversion (and show it with --dry-run), or execute it into an
 * export folder. Exit codes: 0 written (or a clean plan), 1 the plan has errors (nothing written),
 * 2 bad usage or unreadable input (main.ts).
 */
import { setMaxListeners } from 'node:events';
import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import { configSummary, executeImport, planView, executePlan, planImport, JaxServeError, planConversion, planHasErrors, parseJsonBytes, type Checkpoint, type FileOpener, type Plan, parseRuleFile } from '../core/index';
import { openAtomicFileSink, OutputFolder, type NodeFileOpener, type OutputSource, ValueWorker } from '../core/node/index';
import { JSON_OPTION, oneValue as one, PYTHON_OPTION, type Args, type CommandSpec, type OptionSpec } from './args';
import { print, printErr } from './output';
import { formatBytes, renderTable } from './render';

const OUT_OPTION: OptionSpec = { name: '--out', alias: '-o', value: 'OUT', required: true, description: 'The export folder to write (not needed with --dry-run).' };
const OVERWRITE_OPTION: OptionSpec = { name: '--overwrite', description: 'Replace OUT if it exists.' };

export const CONVERT_COMMAND: CommandSpec = {
  name: 'convert',
  synopsis: 'SRC',
  summary: 'Convert a JAX checkpoint to the Hugging Face layout vLLM and SGLang load (or, for a Linen CNN, a PyTorch state_dict). Exit 1 when the plan has errors (nothing is written).',
  options: [
    OUT_OPTION,
    { name: '--preset', value: 'NAME|auto', default: 'auto', description: 'The layout of SRC; auto recognises it.' },
    { name: '--rules', value: 'FILE', description: 'A JSON file of renaming rules applied over the preset.' },
    { name: '--dtype', value: 'keep|bf16|f16|f32', default: 'keep', description: 'The dtype of the written tensors.' },
    { name: '--shard-size', value: 'SIZE', description: 'Largest shard, in bytes or like 5GB, 500MB, 2GiB (default: the writer\'s).' },
    { name: '--tokenizer-from', value: 'DIR', description: 'Copy the tokenizer files from DIR.' },
    { name: '--config-from', value: 'DIR', description: "Start config.json from DIR's." },
    { name: '--set', value: 'KEY=VALUE', repeatable: true, description: 'Set a config.json key (VALUE read as JSON when it parses).' },
    { name: '--flatten', value: 'LAYER=HxWxC', repeatable: true, description: 'The feature map a Dense layer gets flattened (CNNs), e.g. Dense_0=7x7x512.' },
    { name: '--lora', value: 'adapter|merge', description: 'What to do with LoRA leaves: write a PEFT adapter beside OUT (with --adapter-out), or merge them into OUT. A checkpoint with LoRA leaves needs it.' },
    { name: '--adapter-out', value: 'ADIR', description: 'The PEFT adapter folder --lora adapter writes (adapter_config.json, adapter_model.safetensors).' },
    { name: '--lora-alpha', value: 'A', description: 'LoRA alpha: the delta is scaled by alpha / r (default r: flax applies no scale; qwix needs its alpha).' },
    { name: '--lora-from', value: 'ADAPTER', description: 'An adapter-only checkpoint (nnx.state(model, nnx.LoRAParam)) whose base is SRC.' },
    { name: '--dry-run', description: 'Print the plan and write nothing.' },
    JSON_OPTION,
    OVERWRITE_OPTION,
    { name: '--progress-json', description: 'Report progress as JSON lines on stderr.' },
    PYTHON_OPTION,
  ],
};

/** Refuses an adapter folder that is, holds or lies inside the base export (or the other way round). */
function apart(out: string, adapterOut: string): void {
  const inside = (a: string, b: string) => {
    const rel = path.relative(path.resolve(b), path.resolve(a));
    return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
  };
  if (inside(adapterOut, out)) throw new JaxServeError('E_UNSAFE_PATH', `--adapter-out ${adapterOut} ${path.resolve(adapterOut) === path.resolve(out) ? 'is' : 'lies inside'} the base export -o ${out}; choose two folders apart (nothing was written).`);
  if (inside(out, adapterOut)) throw new JaxServeError('E_UNSAFE_PATH', `-o ${out} lies inside --adapter-out ${adapterOut}, the adapter folder; choose two folders apart (nothing was written).`);
}

/** --lora, --adapter-out and --lora-alpha, checked together. */
export function loraOptions(args: Args): { mode?: 'adapter' | 'merge'; adapterOut?: string; alpha?: number } {
  const mode = one(args, '--lora');
  const adapterOut = one(args, '--adapter-out');
  const alphaText = one(args, '--lora-alpha');
  if (mode !== undefined && mode !== 'adapter' && mode !== 'merge') throw new JaxServeError('E_USAGE', `--lora ${JSON.stringify(mode)}: choose adapter or merge.`);
  if (mode === 'adapter' && !adapterOut && !args.flags.has('--dry-run')) throw new JaxServeError('E_USAGE', '--lora adapter needs --adapter-out ADIR, the folder for the PEFT adapter.');
  if (adapterOut && mode !== 'adapter') throw new JaxServeError('E_USAGE', '--adapter-out goes with --lora adapter.');
  const alpha = alphaText === undefined ? undefined : Number(alphaText);
  if (alpha !== undefined && !(Number.isFinite(alpha) && alpha > 0)) throw new JaxServeError('E_USAGE', `--lora-alpha ${JSON.stringify(alphaText)}: give a positive number.`);
  return { mode, adapterOut, alpha };
}

const DTYPES: Record<string, 'keep' | 'BF16' | 'F16' | 'F32'> = { keep: 'keep', bf16: 'BF16', f16: 'F16', f32: 'F32' };


/** "5GB", "500MB", "2GiB", or a byte count. */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(i?)B?$/i.exec(s.trim());
  if (!m) throw new JaxServeError('E_USAGE', `--shard-size ${JSON.stringify(s)}: give bytes or a size like 5GB, 500MB, 2GiB.`);
  const unit = { '': 0, K: 1, M: 2, G: 3, T: 4 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  const n = Math.floor(Number(m[1]) * (m[3] ? 1024 : 1000) ** unit);
  if (n < 1) throw new JaxServeError('E_USAGE', '--shard-size must be at least one byte.');
  return n;
}

/** LAYER=HxWxC: the feature map a Dense layer gets flattened. */
export function parseFlatten(items: readonly string[]): Record<string, [number, number, number]> {
  const out: Record<string, [number, number, number]> = {};
  for (const item of items) {
    const m = /^(.+)=(\d+)x(\d+)x(\d+)$/.exec(item);
    if (!m) throw new JaxServeError('E_USAGE', `--flatten ${JSON.stringify(item)}: expected LAYER=HxWxC, e.g. Dense_0=7x7x512.`);
    out[m[1]!] = [Number(m[2]), Number(m[3]), Number(m[4])];
  }
  return out;
}

/** KEY=VALUE, VALUE read as JSON when it parses (numbers, null, lists), else as a string. */
export function parseSet(items: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new JaxServeError('E_USAGE', `--set ${JSON.stringify(item)}: expected KEY=VALUE.`);
    const raw = item.slice(eq + 1);
    let v: unknown = raw;
    try {
      v = JSON.parse(raw);
    } catch {
      // a plain string
    }
    out[item.slice(0, eq)] = v;
  }
  return out;
}

async function readJson(opener: FileOpener, file: string, what: string): Promise<unknown> {
  return parseJsonBytes(file, await opener.readSmall(file, 16 << 20), { what });
}

/**
 * Every path an output must stay clear of: what the user named, the checkpoint's own files (an
 * index's shards may lie elsewhere only through links its folder was allowed), and each folder
 * files are read or copied from.
 */
function sourcesOf(ck: Checkpoint, named: readonly (readonly [string | undefined, string])[]): OutputSource[] {
  const out: OutputSource[] = [{ path: ck.location, role: 'the source checkpoint' }];
  for (const f of ck.files) out.push({ path: f, role: 'the source file' });
  for (const [p, role] of named) if (p) out.push({ path: p, role });
  return out;
}

/** config.json of a --config-from folder, read only inside that folder. */
async function readConfigFrom(opener: NodeFileOpener, dir: string): Promise<Record<string, unknown>> {
  return jsonObject(await opener.within(dir), path.join(dir, 'config.json'), 'config.json');
}

async function jsonObject(opener: FileOpener, file: string, what: string): Promise<Record<string, unknown>> {
  const v = await readJson(opener, file, what);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new JaxServeError('E_FORMAT', `${file}: ${what} is not a JSON object.`);
  return v as Record<string, unknown>;
}

/** Source bytes from which an export uses converter threads (about 60 ms of main-thread work at 1 GB/s). */
export const CONVERTERS_FROM_BYTES = 64 << 20;

const sourceBytes = (ck: Checkpoint) => ck.tensors.reduce((n, t) => n + t.bytes, 0);

export async function convertCommand(args: Args, open: (a: Args) => Promise<Checkpoint>, opener: NodeFileOpener): Promise<void> {
  if (args.positional.length !== 1) throw new JaxServeError('E_USAGE', 'convert takes one SRC (and -o OUT).');
  const out = one(args, '--out');
  const dryRun = args.flags.has('--dry-run');
  if (!out && !dryRun) throw new JaxServeError('E_USAGE', 'convert needs -o OUT (or --dry-run to only plan).');
  const dtypeName = one(args, '--dtype') ?? 'keep';
  const dtype = DTYPES[dtypeName];
  if (!dtype) throw new JaxServeError('E_USAGE', `--dtype ${dtypeName}: choose keep, bf16, f16 or f32.`);
  const rulesFile = one(args, '--rules');
  const configFrom = one(args, '--config-from');
  const shardSize = one(args, '--shard-size');
  // Two converter threads read and transpose ahead of the writer, so a large export keeps both cores
  // busy. A thread takes 40–60 ms to start (more while the cores are shared), which planning hides;
  // below CONVERTERS_FROM_BYTES the main thread alone finishes sooner than a thread starts.
  let converters: ValueWorker[] = [];
  try {
    const ck = await open(args);
    if (!dryRun && sourceBytes(ck) >= CONVERTERS_FROM_BYTES) {
      converters = Array.from({ length: Math.min(2, availableParallelism()) }, () => new ValueWorker(path.join(__dirname, 'valueWorker.js'), opener));
      for (const w of converters) w.warm();
    }
    const lora = loraOptions(args);
    const loraFrom = one(args, '--lora-from');
    const adapterCk = loraFrom ? await open({ ...args, positional: [loraFrom] }) : undefined;
    const plan = planConversion(ck, {
      preset: one(args, '--preset') ?? 'auto',
      userRules: rulesFile ? parseRuleFile(await readJson(opener, rulesFile, 'the rule file'), rulesFile) : undefined,
      dtype,
      baseConfig: configFrom ? await readConfigFrom(opener, configFrom) : undefined,
      set: parseSet(args.values.get('--set') ?? []),
      flatten: parseFlatten(args.values.get('--flatten') ?? []),
      lora: lora.mode,
      loraAlpha: lora.alpha,
      adapter: adapterCk,
    });
    if (dryRun || planHasErrors(plan)) {
      print(args.json ? JSON.stringify(plan) + '\n' : planText(plan) + '\n');
      if (planHasErrors(plan)) process.exitCode = 1;
      return;
    }
    const sources = sourcesOf(ck, [
      [args.positional[0], 'the source'],
      [configFrom, '--config-from'],
      [one(args, '--tokenizer-from'), '--tokenizer-from'],
      [rulesFile, '--rules'],
      [loraFrom, '--lora-from'],
      ...(adapterCk ? adapterCk.files.map((f) => [f, 'the adapter file'] as const) : []),
    ]);
    // Neither output may hold the other: the base is named in the adapter's config. Checked on the
    // paths as given, before either exists (the source checks skip what is not there yet).
    if (lora.adapterOut) apart(out!, lora.adapterOut);
    const target = await OutputFolder.create(out!, { overwrite: args.flags.has('--overwrite'), sources: [...sources, ...(lora.adapterOut ? [{ path: lora.adapterOut, role: '--adapter-out' }] : [])] });
    const adapterTarget = lora.adapterOut ? await OutputFolder.create(lora.adapterOut, { overwrite: args.flags.has('--overwrite'), sources: [...sources, { path: out!, role: 'the base export (-o)' }] }).catch(async (e: unknown) => {
      await target.abort();
      throw e;
    }) : undefined;
    const ac = new AbortController();
    // Every converter job listens for the abort; more than ten run over an export.
    setMaxListeners(0, ac.signal);
    const onSignal = () => ac.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      let lastShown = 0;
      const result = await executePlan(plan, ck, opener, target, {
        maxShardBytes: shardSize ? parseSize(shardSize) : undefined,
        tokenizerFrom: one(args, '--tokenizer-from'),
        generationConfigFrom: configFrom,
        signal: ac.signal,
        converters,
        lora: { adapterCheckpoint: adapterCk, adapterTarget, baseModel: path.resolve(out!) },
        onProgress: (done, total) => {
          if (Date.now() - lastShown < 200 && done < total) return;
          // --progress-json: one {"done","total"} line per step on stderr, for the VS Code command.
          if (args.flags.has('--progress-json')) printErr(JSON.stringify({ done, total }) + '\n');
          else if (args.json || !process.stderr.isTTY) return;
          else process.stderr.write(`\r${formatBytes(done)} of ${formatBytes(total)}`);
          lastShown = Date.now();
        },
      });
      if (args.json) print(JSON.stringify({ out: path.resolve(out!), ...(lora.adapterOut ? { adapterOut: path.resolve(lora.adapterOut) } : {}), files: result.files, bytes: result.bytes, notes: result.notes, plan }) + '\n');
      else {
        if (process.stderr.isTTY) process.stdout.write('\r');
        print(`wrote ${path.resolve(out!)}: ${result.files.join(', ')} (${formatBytes(result.bytes)} of tensors)\n`);
        if (plan.lora === 'adapter') print(`wrote ${path.resolve(lora.adapterOut!)}: adapter_model.safetensors, adapter_config.json (${plan.adapters.length} LoRA modules, r ${plan.adapters[0]!.rank})\n`);
        else if (plan.lora === 'merge') print(`merged ${plan.adapters.length} LoRA modules into the export\n`);
        for (const n of result.notes) print(`note: ${n}\n`);
      }
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  } finally {
    await Promise.all(converters.map((w) => w.dispose()));
  }
}

export function planText(plan: Plan): string {
  const view = planView(plan);
  const lines = [`${plan.source}`, `preset      ${plan.preset.id}: ${plan.preset.title} → ${plan.architecture}`, ''];
  lines.push(renderTable(['source', 'target', 'transforms', 'shape', 'dtype'], view.rows.map((r) => [r.from || '—', r.to || '—', r.transforms || '—', r.shape || '—', r.dtype || '—'])));
  if (view.problems.length > 0) {
    lines.push('');
    for (const p of view.problems) lines.push(`${p.severity.padEnd(7)}  ${p.message}`);
  }
  if (plan.prefix) lines.splice(2, 0, `prefix      ${plan.prefix} (left out of the matching)`);
  if (plan.config) lines.push('', `config      ${configSummary(plan.config)}`);
  return lines.join('\n');
}

export const IMPORT_COMMAND: CommandSpec = {
  name: 'import',
  synopsis: 'SRC',
  summary: "An HF checkpoint into the preset's JAX layout: Flax msgpack or flax-format safetensors (the reverse of convert).",
  options: [
    { ...OUT_OPTION, value: 'OUT.msgpack|OUT.safetensors', description: 'The file to write; its extension picks the format.' },
    { name: '--preset', value: 'NAME', required: true, description: 'The JAX layout to write.' },
    {
      name: '--layers',
      value: 'scanned|unscanned',
      default: 'scanned',
      description: "MaxText presets: scanned writes each layer tensor as one array with the layer on axis 1 (MaxText's scan_layers default), unscanned one array per layer (decoder.layers_N). Other presets have one layout.",
    },
    OVERWRITE_OPTION,
    JSON_OPTION,
    PYTHON_OPTION,
  ],
};

export async function importCommand(args: Args, open: (a: Args) => Promise<Checkpoint>, opener: NodeFileOpener): Promise<void> {
  if (args.positional.length !== 1) throw new JaxServeError('E_USAGE', 'import takes one SRC (and -o OUT).');
  const out = one(args, '--out');
  const preset = one(args, '--preset');
  if (!out || !preset) throw new JaxServeError('E_USAGE', 'import needs -o OUT.msgpack|OUT.safetensors and --preset NAME.');
  const format = out.endsWith('.msgpack') ? 'msgpack' : out.endsWith('.safetensors') ? 'safetensors' : undefined;
  if (!format) throw new JaxServeError('E_USAGE', `-o ${out}: name the output *.msgpack (Flax) or *.safetensors (flax format).`);
  const layers = one(args, '--layers');
  if (layers !== undefined && layers !== 'scanned' && layers !== 'unscanned') throw new JaxServeError('E_USAGE', `--layers ${layers}: give scanned or unscanned.`);
  const ck = await open(args);
  // Einsum layouts split heads back out with the HF folder's head_dim; stacked arrays take its layer and expert counts.
  const src = args.positional[0]!;
  const configFile = path.join((await opener.kind(src)) === 'directory' ? src : path.dirname(src), 'config.json');
  const inside = await opener.within(src);
  const config = (await inside.kind(configFile)) === 'file' ? await jsonObject(inside, configFile, 'config.json') : undefined;
  const plan = planImport(ck, preset, config, { layers });
  for (const p of plan.problems) if (p.severity === 'warning') printErr(`warning: ${p.message}\n`);
  const sources = sourcesOf(ck, [[src, 'the source']]);
  await executeImport(plan, ck, opener, await openAtomicFileSink(out, { overwrite: args.flags.has('--overwrite'), sources }), format);
  if (args.json) print(JSON.stringify({ out: path.resolve(out), plan }) + '\n');
  else print(`wrote ${path.resolve(out)}: ${plan.leaves.length} arrays in the ${plan.preset.id} layout${plan.layers ? ` (${plan.layers} layers)` : ''}\n`);
}
