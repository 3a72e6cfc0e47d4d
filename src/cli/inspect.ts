/** `jax-serve inspect PATH` and `jax-serve stats PATH TENSOR`: a checkpoint's tensors, and one tensor's values. */
import { findTensor, JaxServeError, summarize, tensorHistogram, valueOpener, type Checkpoint } from '../core/index';
import { type NodeFileOpener } from '../core/node/index';
import { JSON_OPTION, PYTHON_OPTION, type Args, type CommandSpec } from './args';
import { print } from './output';
import { formatBytes, formatCount, renderHistogram, renderTable } from './render';

export const INSPECT_COMMAND: CommandSpec = {
  name: 'inspect',
  synopsis: 'PATH',
  summary: "List a checkpoint's tensors (headers only; nothing is loaded).",
  options: [JSON_OPTION, PYTHON_OPTION],
};

export const STATS_COMMAND: CommandSpec = {
  name: 'stats',
  synopsis: 'PATH TENSOR',
  summary: 'Exact statistics of one tensor (min, max, mean, std, NaN/Inf/zero counts) and a histogram of N bins over [min, max].',
  options: [JSON_OPTION, { name: '--bins', value: 'N', default: '20', description: 'Histogram bins, 1 to 10000.' }, PYTHON_OPTION],
};

/** Tensors printed per write: a million-tensor listing goes out in pieces, never as one string. */
const TENSORS_PER_WRITE = 4096;

/**
 * `inspect --json`: {format, location, files, tensors: [{name, path, dtype, shape, bytes}], metadata,
 * values?}, one line, written a piece at a time (the same text JSON.stringify gives for the whole).
 */
function printInspectJson(ck: Checkpoint): void {
  const head = JSON.stringify({ format: ck.format, location: ck.location, files: ck.files });
  print(`${head.slice(0, -1)},"tensors":[`);
  for (let i = 0; i < ck.tensors.length; i += TENSORS_PER_WRITE) {
    const part = JSON.stringify(ck.tensors.slice(i, i + TENSORS_PER_WRITE).map((t) => ({ name: t.name, path: t.path, dtype: t.dtype, shape: t.shape, bytes: t.bytes })));
    print(`${i ? ',' : ''}${part.slice(1, -1)}`);
  }
  const tail = JSON.stringify({ metadata: ck.metadata, ...(ck.values ? { values: ck.values.map((v) => ({ name: v.name, path: v.path, value: v.value })) } : {}) });
  print(`],${tail.slice(1)}\n`);
}

function inspectText(ck: Checkpoint): string {
  const s = summarize(ck);
  const lines = [
    `${ck.location}`,
    `format      ${ck.format}${ck.files.length > 1 ? ` (${ck.files.length} files)` : ''}`,
    `tensors     ${formatCount(s.tensorCount)}`,
    `parameters  ${formatCount(s.parameterCount)}  (${Object.entries(s.parametersByDtype).map(([d, n]) => `${d} ${formatCount(n ?? 0)}`).join(', ')})`,
    `bytes       ${formatBytes(s.bytes)}`,
  ];
  for (const [k, v] of Object.entries(ck.metadata)) lines.push(`metadata    ${k} = ${v}`);
  for (const v of ck.values ?? []) lines.push(`value       ${v.name} = ${v.value}`);
  lines.push('');
  lines.push(renderTable(['name', 'dtype', 'shape', 'bytes'], ck.tensors.map((t) => [t.name, t.dtype, `[${t.shape.join(', ')}]`, formatBytes(t.bytes)])));
  return lines.join('\n');
}

export async function inspectCommand(args: Args, open: (a: Args) => Promise<Checkpoint>): Promise<void> {
  if (args.positional.length !== 1) throw new JaxServeError('E_USAGE', 'inspect takes one PATH.');
  const ck = await open(args);
  if (args.json) printInspectJson(ck);
  else print(inspectText(ck) + '\n');
}

export async function statsCommand(args: Args, open: (a: Args) => Promise<Checkpoint>, opener: NodeFileOpener): Promise<void> {
  if (args.positional.length !== 2) throw new JaxServeError('E_USAGE', 'stats takes PATH and TENSOR.');
  const ck = await open(args);
  const t = findTensor(ck, args.positional[1]!);
  const { stats: st, histogram } = await tensorHistogram(valueOpener(ck, opener), t, args.bins);
  if (args.json) {
    print(JSON.stringify({ name: t.name, dtype: t.dtype, shape: t.shape, ...st, histogram }) + '\n');
  } else {
    const rows = Object.entries(st).map(([k, v]) => [k, v === null ? '—' : String(v)]);
    print(`${t.name}  ${t.dtype}[${t.shape.join(', ')}]\n` + renderTable(['stat', 'value'], rows) + '\n');
    if (histogram) print('\n' + renderHistogram(histogram) + '\n');
  }
}
