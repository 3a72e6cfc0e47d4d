/**
 * `jax-serve diff LEFT RIGHT`: added, removed, reshaped and retyped tensors, paired by name or
 * through the conversion plan (a JAX checkpoint against its export); `--values` compares every
 * paired tensor's elements. Exit 1 when anything differs.
 */
import { compareValues, DEFAULT_TOLERANCE, describeError, diffCheckpoints, entryName, isJaxServeError, JaxServeError, throwIfAborted, valueSides, type Checkpoint, type DiffEntry, type ValueDiff } from '../core/index';
import { type NodeFileOpener } from '../core/node/index';
import { JSON_OPTION, PYTHON_OPTION, type Args, type CommandSpec } from './args';
import { print } from './output';
import { scanControl, scanOpener, SCAN_OPTIONS } from './scan';
import { formatCount } from './render';

export const DIFF_COMMAND: CommandSpec = {
  name: 'diff',
  synopsis: 'LEFT RIGHT',
  summary: 'Tensors removed, added, reshaped or retyped from LEFT to RIGHT, paired by name or, for a JAX checkpoint and its HF export, through the conversion plan; --values compares the elements of every pair (numpy.allclose). Exit 1 when anything differs.',
  options: [
    { name: '--values', description: 'Compare the elements of every paired tensor, not only names, shapes and dtypes.' },
    { name: '--pairing', value: 'names|plan|auto', default: 'auto', description: 'Pair tensors by name, or through the conversion plan (a JAX checkpoint against its export); auto picks.' },
    { name: '--rtol', value: 'R', default: String(DEFAULT_TOLERANCE.rtol), description: 'Relative tolerance of --values.' },
    { name: '--atol', value: 'A', default: String(DEFAULT_TOLERANCE.atol), description: 'Absolute tolerance of --values.' },
    JSON_OPTION,
    ...SCAN_OPTIONS.map((o) => ({ ...o, description: `With --values: ${o.description}` })),
    PYTHON_OPTION,
  ],
};

const shape = (t: DiffEntry['left']) => (t ? `${t.dtype}[${t.shape.join(', ')}]` : '');

function number(args: Args, flag: string, fallback: number): number {
  const v = args.values.get(flag)?.at(-1);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new JaxServeError('E_USAGE', `${flag} takes a number ≥ 0.`);
  return n;
}

export async function diffCommand(args: Args, open: (a: Args, which?: number) => Promise<Checkpoint>, opener: NodeFileOpener): Promise<void> {
  if (args.positional.length !== 2) throw new JaxServeError('E_USAGE', 'diff takes two PATHs.');
  const pairing = args.values.get('--pairing')?.at(-1) ?? 'auto';
  if (!['names', 'plan', 'auto'].includes(pairing)) throw new JaxServeError('E_USAGE', '--pairing takes names, plan or auto.');
  const tol = { rtol: number(args, '--rtol', DEFAULT_TOLERANCE.rtol), atol: number(args, '--atol', DEFAULT_TOLERANCE.atol) };
  const left = await open(args, 0);
  const right = await open(args, 1);
  const d = diffCheckpoints(left, right, { pairing: pairing as 'names' | 'plan' | 'auto' });
  const values: { name: string; diff?: ValueDiff; error?: string }[] = [];
  let stopped: string | undefined;
  if (args.flags.has('--values')) {
    const scan = scanControl(args);
    const [l, r] = [scanOpener(left, opener), scanOpener(right, opener)];
    const paired = d.entries.filter((e) => e.status === 'same' || e.status === 'retyped');
    const end = Date.now() + scan.budgetMs;
    try {
      for (const [i, e] of paired.entries()) {
        throwIfAborted(scan.signal);
        if (Date.now() > end) {
          stopped = `${left.location}: the value comparison stopped at its time budget of ${scan.maxSeconds} s after ${i} of ${paired.length} tensors; raise --max-seconds to compare the rest.`;
          break;
        }
        const sides = valueSides(e, l.values, r.values);
        if (!sides) continue;
        try {
          values.push({ name: entryName(e), diff: await compareValues(sides[0], sides[1], { ...tol, signal: scan.signal }) });
        } catch (err) {
          if (isJaxServeError(err) && err.code === 'E_CANCELLED') throw err;
          values.push({ name: entryName(e), error: describeError(err) });
        }
        scan.onProgress(i + 1, paired.length, 'tensors');
      }
    } finally {
      scan.done();
      await Promise.all([l.close(), r.close()]);
    }
  }
  const differing = values.filter((v) => !v.diff?.allclose);
  if (args.json) {
    const entries = d.entries.map((e) => ({ status: e.status, name: entryName(e), left: e.left && { name: e.left.name, dtype: e.left.dtype, shape: e.left.shape }, right: e.right && { name: e.right.name, dtype: e.right.dtype, shape: e.right.shape } }));
    print(JSON.stringify({ left: left.location, right: right.location, pairing: d.pairing, counts: d.counts, entries, ...(args.flags.has('--values') ? { values } : {}) }) + '\n');
  } else {
    const how = d.pairing.kind === 'names' ? 'paired by name' : `paired through the ${d.pairing.preset} plan (the JAX side is ${d.pairing.jax === 'left' ? 'LEFT' : 'RIGHT'})`;
    const lines = [`${left.location}\n${right.location}`, `${how}: ${(['same', 'removed', 'added', 'reshaped', 'retyped'] as const).map((k) => `${formatCount(d.counts[k])} ${k}`).join(', ')}`];
    for (const e of d.entries) if (e.status !== 'same') lines.push(`${e.status.padEnd(9)} ${entryName(e)}  ${shape(e.left)}${e.left && e.right ? ' → ' : ''}${shape(e.right)}`);
    for (const v of differing) {
      if (v.error) lines.push(`values    ${v.name}: ${v.error}`);
      else lines.push(`values    ${v.name}: ${formatCount(v.diff!.mismatched)} of ${formatCount(v.diff!.elements)} elements differ, max |Δ| ${v.diff!.maxAbsDiff.toPrecision(3)}, first at flat index ${v.diff!.firstMismatch}`);
    }
    if (args.flags.has('--values') && differing.length === 0) lines.push(`values: all ${values.length} paired tensors allclose (rtol ${tol.rtol}, atol ${tol.atol})`);
    print(lines.join('\n') + '\n');
  }
  if (stopped) throw new JaxServeError('E_LIMIT', stopped);
  const same = d.counts.removed + d.counts.added + d.counts.reshaped + d.counts.retyped === 0 && differing.length === 0;
  if (!same) process.exitCode = 1;
}
