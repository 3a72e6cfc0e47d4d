/**
 * `jax-serve`: the command line over core. It parses arguments and renders; everything it knows
 * about checkpoints comes from core. Errors print one line on stderr and set exit code 2.
 */
import * as path from 'node:path';
import {
  describeError,
  escapeControls,
  findTensor,
  isJaxServeError,
  JaxServeError,
  NodeFileOpener,
  openCheckpoint,
  PythonSidecar,
  sidecarScript,
  valueOpener,
  summarize,
  tensorHistogram,
  type Checkpoint,
} from '../core/index';
import { convertCommand, CONVERT_OPTIONS, CONVERT_USAGE, importCommand, IMPORT_OPTIONS, IMPORT_USAGE } from './convert';
import { preflightCommand, PREFLIGHT_OPTIONS, PREFLIGHT_USAGE } from './preflight';
import { verifyCommand, VERIFY_OPTIONS, VERIFY_USAGE } from './verify';
import { healthCommand, HEALTH_OPTIONS, HEALTH_USAGE } from './health';
import { diffCommand, DIFF_OPTIONS, DIFF_USAGE } from './diff';
import { generateCommand, GENERATE_OPTIONS, GENERATE_USAGE } from './generate';
import { serveCommand, SERVE_OPTIONS, SERVE_USAGE } from './serve';
import { scriptCommand, SCRIPT_OPTIONS, SCRIPT_USAGE } from './script';
import { formatBytes, formatCount, renderHistogram, renderTable } from './render';
import { print, printErr } from './output';

declare const JAX_SERVE_VERSION: string;

const usage = () => `Usage: jax-serve <command> [options]

Commands:
  inspect PATH [--json]           List a checkpoint's tensors (headers only; nothing is loaded).
  stats PATH TENSOR [--json] [--bins N]
                                  Exact statistics of one tensor (min, max, mean, std, NaN/Inf/zero
                                  counts) and a histogram of N bins (default 20) over [min, max].
${HEALTH_USAGE}${DIFF_USAGE}${CONVERT_USAGE}${IMPORT_USAGE}${PREFLIGHT_USAGE}${VERIFY_USAGE}${SERVE_USAGE}${GENERATE_USAGE}${SCRIPT_USAGE}
PATH is a *.safetensors, Flax *.msgpack, numpy *.npz or *.npy file, a
*.safetensors.index.json or flax_model.msgpack.index.json, a folder holding one,
or an Orbax checkpoint folder (an item, a step, or a CheckpointManager root).
Options:
  --json       Print one JSON object instead of text.
  --python P   Python that reads Orbax folders (needs tensorstore; default python3), and
               that runs transformers for verify.
  -h, --help   Show this help.
  --version    Print the version.
`;

export interface Args {
  positional: string[];
  json: boolean;
  bins: number;
  python: string;
  /** Flags given (--dry-run, --overwrite, …). */
  flags: Set<string>;
  /** Value options, each with every value given (--set may repeat). */
  values: Map<string, string[]>;
}

/** Options that take a value; the rest of `known` are flags. */
const VALUE_OPTIONS = new Set(['--max-seconds', '--engine', '--tp', '--python', '--bins', '-o', '--out', '--preset', '--rules', '--dtype', '--shard-size', '--tokenizer-from', '--config-from', '--set', '--flatten', '--source', '--entry', '--prompt', '--prompts', '--jax-python', '--max-kl', '--template', '--pairing', '--rtol', '--atol', '--url', '--model', '--max-tokens', '--temperature', '--top-p', '--stop', '--seed', '--idle-timeout', '--engine', '--host', '--port', '--max-model-len', '--memory-fraction', '--served-name', '--device', '--command', '--arg']);

export function parseArgs(argv: string[], known: string[]): Args {
  const out: Args = { positional: [], json: false, bins: 20, python: 'python3', flags: new Set(), values: new Map() };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!(a.startsWith('-') && a !== '-')) {
      out.positional.push(a);
      continue;
    }
    if (!known.includes(a)) throw new JaxServeError('E_USAGE', `unknown option ${a} (known: ${known.join(', ')}).`);
    if (!VALUE_OPTIONS.has(a)) {
      out.flags.add(a);
      if (a === '--json') out.json = true;
      continue;
    }
    const v = argv[++i];
    if (v === undefined) throw new JaxServeError('E_USAGE', `${a} needs a value.`);
    out.values.set(a, [...(out.values.get(a) ?? []), v]);
    if (a === '--python') out.python = v;
    if (a === '--bins') {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new JaxServeError('E_USAGE', '--bins takes a whole number from 1 to 10000.');
      out.bins = n;
    }
  }
  return out;
}

function inspectJson(ck: Checkpoint): unknown {
  return {
    format: ck.format,
    location: ck.location,
    files: ck.files,
    tensors: ck.tensors.map((t) => ({ name: t.name, path: t.path, dtype: t.dtype, shape: t.shape, bytes: t.bytes })),
    metadata: ck.metadata,
    ...(ck.values ? { values: ck.values.map((v) => ({ name: v.name, path: v.path, value: v.value })) } : {}),
  };
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

async function run(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    print(usage());
    return;
  }
  if (command === '--version') {
    print(`${JAX_SERVE_VERSION}\n`);
    return;
  }
  const opener = new NodeFileOpener();
  // Started only when a folder turns out to be Orbax; stopped when the command ends.
  let sidecar: PythonSidecar | undefined;
  const open = (args: Args, which = 0) => {
    sidecar ??= new PythonSidecar({ python: args.python, script: sidecarScript(path.join(__dirname, '..')), interpreterHint: 'Pass another with --python.' });
    return openCheckpoint(opener, args.positional[which]!, { orbax: sidecar, orbaxHint: 'Pass one with --python.' });
  };
  try {
    await runCommand(command, rest, open, opener);
  } finally {
    sidecar?.dispose();
  }
}

async function runCommand(command: string, rest: string[], open: (a: Args, which?: number) => Promise<Checkpoint>, opener: NodeFileOpener): Promise<void> {
  switch (command) {
    case 'convert':
      return convertCommand(parseArgs(rest, CONVERT_OPTIONS), open, opener);
    case 'import':
      return importCommand(parseArgs(rest, IMPORT_OPTIONS), open, opener);
    case 'preflight':
      return preflightCommand(parseArgs(rest, PREFLIGHT_OPTIONS), opener);
    case 'verify':
      return verifyCommand(parseArgs(rest, VERIFY_OPTIONS), opener);
    case 'health': {
      const args = parseArgs(rest, HEALTH_OPTIONS);
      if (args.positional.length !== 1) throw new JaxServeError('E_USAGE', 'health takes one PATH.');
      return healthCommand(args, open, opener);
    }
    case 'serve':
      return serveCommand(parseArgs(rest, SERVE_OPTIONS));
    case 'script':
      return scriptCommand(parseArgs(rest, SCRIPT_OPTIONS));
    case 'generate': {
      // Ctrl-C stops the request; what arrived stays printed.
      const ac = new AbortController();
      process.once('SIGINT', () => ac.abort());
      return generateCommand(parseArgs(rest, GENERATE_OPTIONS), ac.signal);
    }
    case 'diff': {
      const args = parseArgs(rest, DIFF_OPTIONS);
      if (args.positional.length !== 2) throw new JaxServeError('E_USAGE', 'diff takes two PATHs.');
      return diffCommand(args, open, opener);
    }
    case 'inspect': {
      const args = parseArgs(rest, ['--json', '--python']);
      if (args.positional.length !== 1) throw new JaxServeError('E_USAGE', 'inspect takes one PATH.');
      const ck = await open(args);
      print(args.json ? JSON.stringify(inspectJson(ck)) + '\n' : inspectText(ck) + '\n');
      return;
    }
    case 'stats': {
      const args = parseArgs(rest, ['--json', '--bins', '--python']);
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
      return;
    }
    default:
      throw new JaxServeError('E_USAGE', `unknown command ${JSON.stringify(command)}; run jax-serve --help.`);
  }
}

// `jax-serve inspect … | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  // Any other failure to write (a full disk, a closed terminal) is said in one line, not a stack.
  process.stderr.write(`jax-serve: cannot write the output: ${e.code ?? e.name} (${e.message.split('\n')[0]}).\n`);
  process.exit(2);
});

// A command whose work waits on something that can never happen (a read a library leaves pending
// for good) would end with exit 0 and nothing said when the event loop empties: say so instead.
let settled = false;
process.on('beforeExit', () => {
  if (settled) return;
  settled = true;
  const cmd = escapeControls(process.argv.slice(2).join(' ')).slice(0, 300);
  process.stderr.write(`jax-serve: ${cmd}: the command stopped before it finished: it was waiting on a read that can never complete (a broken reply from a server?).\n`);
  process.exitCode = 2;
});

run(process.argv.slice(2)).then(() => (settled = true), (e: unknown) => {
  settled = true;
  const usage = isJaxServeError(e) && e.code === 'E_USAGE';
  // One line, always: a message that spans lines (a list of plan errors) is folded.
  const text = describeError(e).split(/\r\n|\r|\n/).map((l) => l.trim()).filter((l) => l !== '').join(' ');
  printErr(`jax-serve: ${text}${usage ? ' (jax-serve --help)' : ''}\n`);
  process.exitCode = isJaxServeError(e) && e.code === 'E_CANCELLED' ? 130 : 2;
});
