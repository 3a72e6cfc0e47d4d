/**
 * `jax-serve serve DIR --engine NAME`: starts a server on an export and stays in front of it,
 * printing each startup phase with its time, "ready at URL" when it is, and the explained cause
 * if it exits early. Ctrl-C (or SIGTERM) stops the whole process group. A watchdog stops it too if
 * this process is killed.
 */
import * as path from 'node:path';
import { ENGINES, engineById, SGLANG_JAX_DEVICES, isJaxServeError, JaxServeError, oneLine, parseAdapterArg, splitWords, stripControls } from '../core/index';
import { freePort, readAdapters, ServerProcess, type ServerState } from '../core/node/index';
import type { Args, CommandSpec, OptionSpec } from './args';

/** The server options `serve` and `script` share: each engine's flag for the same setting. */
export const LAUNCH_OPTIONS: readonly OptionSpec[] = [
  { name: '--dtype', value: 'D', default: "the engine's", description: 'The dtype the engine computes in.' },
  { name: '--max-model-len', value: 'N', default: "the engine's", description: 'Longest sequence, prompt and generation together.' },
  { name: '--tp', value: 'N', default: '1', description: 'Tensor-parallel size.' },
  { name: '--memory-fraction', value: 'F', default: "the engine's", description: 'Share of accelerator memory the engine may take.' },
  { name: '--device', value: SGLANG_JAX_DEVICES.join('|'), default: 'JAX_PLATFORMS, else the engine\'s', description: "SGLang-JAX's platform (must equal JAX_PLATFORMS when that is set)." },
];

export const SERVE_COMMAND: CommandSpec = {
  name: 'serve',
  synopsis: 'DIR',
  summary: 'Start a server on an export: phases with their times, "ready at URL" when it answers, the cause when it exits early. Ctrl-C stops every process it started.',
  options: [
    { name: '--engine', value: Object.keys(ENGINES).join('|'), required: true, description: 'The server to start.' },
    { name: '--host', value: 'H', default: '127.0.0.1', description: 'Address to bind.' },
    { name: '--port', value: 'P', default: 'a free port', description: 'Port to listen on.' },
    { name: '--python', value: 'P', default: 'python3', description: 'Python that runs the engine.' },
    ...LAUNCH_OPTIONS,
    { name: '--served-name', value: 'NAME', default: 'the folder', description: 'The model name the server answers to.' },
    { name: '--command', value: '"docker run …"', description: 'Run the engine through this command line (a container) instead of --python.' },
    { name: '--arg', value: 'A', repeatable: true, description: 'An extra argument passed to the engine as is.' },
    {
      name: '--adapter',
      value: 'NAME=ADIR',
      repeatable: true,
      description: 'A LoRA adapter folder (what convert --lora adapter writes) served beside the model; requests select it by NAME (generate --adapter NAME). vLLM, SGLang and SGLang-JAX; the rank flags follow from each adapter_config.json.',
    },
  ],
};

/**
 * Prints each startup phase once, as `[12.3 s] phase …` with its k/N or detail. Weights wait until
 * their count is complete or the next phase begins, so the line carries the final k/N; the others
 * print when they begin.
 */
function phasePrinter(write: (line: string) => void): (s: ServerState) => void {
  let printed = 0;
  return (s) => {
    const phases = s.startup.phases;
    for (; printed < phases.length; printed++) {
      const p = phases[printed]!;
      const progress = p.phase === 'weights' ? s.startup.progress : undefined;
      const settled = printed < phases.length - 1 || s.status !== 'starting' || p.phase !== 'weights' || (progress !== undefined && progress.done >= progress.total);
      if (!settled) return;
      const extra = [progress ? `${progress.done}/${progress.total}` : '', p.detail ? safeOneLine(p.detail) : ''].filter((x) => x !== '').join(' ');
      write(`[${(p.at / 1000).toFixed(1)} s] ${p.phase}${extra ? ' ' + extra : ''}`);
    }
  };
}

const safeOneLine = (s: string) => oneLine(s, { maxChars: 200 });

function int(args: Args, flag: string): number | undefined {
  const v = args.values.get(flag)?.at(-1);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new JaxServeError('E_USAGE', `${flag} takes a whole number ≥ 1.`);
  return n;
}

export async function serveCommand(args: Args): Promise<void> {
  if (args.positional.length !== 1) throw new JaxServeError('E_USAGE', 'serve takes one DIR (the export folder).');
  const engineName = args.values.get('--engine')?.at(-1);
  const spec = engineName ? engineById(engineName) : undefined;
  if (!spec) throw new JaxServeError('E_USAGE', `serve needs --engine: one of ${Object.keys(ENGINES).join(', ')}.`);
  const host = args.values.get('--host')?.at(-1) ?? '127.0.0.1';
  const memory = args.values.get('--memory-fraction')?.at(-1);
  const command = args.values.get('--command')?.at(-1);
  const launch = {
    model: path.resolve(args.positional[0]!),
    host,
    port: int(args, '--port') ?? (await freePort(host)),
    python: args.values.get('--python')?.at(-1),
    dtype: args.values.get('--dtype')?.at(-1),
    maxModelLen: int(args, '--max-model-len'),
    tensorParallel: int(args, '--tp'),
    memoryFraction: memory === undefined ? undefined : Number(memory),
    servedName: args.values.get('--served-name')?.at(-1),
    device: args.values.get('--device')?.at(-1),
    // A launch prefix, split into words as a shell would (quotes work; nothing is expanded).
    command: command === undefined ? undefined : splitWords(command),
    extraArgs: args.values.get('--arg'),
    // Read and checked before anything starts: a bad folder is one line naming its file.
    adapters: await readAdapters(spec, args.values.get('--adapter')?.map(parseAdapterArg)),
  };
  let endedNow = () => undefined as void;
  const ended = new Promise<void>((r) => (endedNow = r));
  const t0 = Date.now();
  const printPhases = phasePrinter((l) => process.stdout.write(l + '\n'));
  const server = await ServerProcess.start({
    spec,
    launch,
    watchdog: path.join(__dirname, 'serverWatchdog.js'),
    // The engine's own output, as it comes, less what could recolour or retitle the terminal.
    onLine: (l) => process.stderr.write(stripControls(l) + '\n'),
    onState: (s) => {
      printPhases(s);
      if (s.status === 'failed' || s.status === 'stopped' || s.status === 'stopping') process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(1)} s] ${s.status}\n`);
      if (s.status === 'failed' || s.status === 'stopped') endedNow();
    },
  });
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= server.stop());
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
  // A closed terminal (a VS Code task ended) hangs up: stop as for Ctrl-C rather than die leaving the group.
  process.once('SIGHUP', () => void stop());
  // An early exit is explained over several lines (causes, or the last lines of output): those lines
  // were printed above as they came, so the error is the first line and a pointer to them.
  const exitError = (message: string) => new JaxServeError('E_SERVER', oneLine(message, { logHint: 'the output above' }));
  try {
    await server.ready();
  } catch (e) {
    if (stopping) return stopping;
    throw isJaxServeError(e) && e.code === 'E_SERVER' ? exitError(e.message) : e;
  }
  const adapters = launch.adapters.length ? `; LoRA adapters ${launch.adapters.map((a) => `"${a.name}"`).join(', ')}` : '';
  process.stdout.write(`ready at ${server.url} (model "${spec.modelName(launch)}"${adapters})\n`);
  // Stay until the server ends: stopped by Ctrl-C (stop() ends in 'stopped'), or by itself.
  await ended;
  if (stopping) await stopping;
  else if (server.state.status === 'failed') throw exitError(server.state.message ?? 'The server exited.');
}
