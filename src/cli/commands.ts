/**
 * The dispatch table: every command's spec beside the function that runs it, in the order
 * `jax-serve --help` lists them. Kept apart from main.ts, which runs at import, so tests can walk
 * every command's spec.
 */
import type { Checkpoint } from '../core/index';
import type { NodeFileOpener } from '../core/node/index';
import { commandOverview, JSON_OPTION, PYTHON_OPTION, type Args, type CommandSpec } from './args';
import { checkServedCommand, CHECK_SERVED_COMMAND } from './checkServed';
import { convertCommand, CONVERT_COMMAND, importCommand, IMPORT_COMMAND } from './convert';
import { diffCommand, DIFF_COMMAND } from './diff';
import { fitCommand, FIT_COMMAND } from './fit';
import { generateCommand, GENERATE_COMMAND } from './generate';
import { healthCommand, HEALTH_COMMAND } from './health';
import { inspectCommand, INSPECT_COMMAND, statsCommand, STATS_COMMAND } from './inspect';
import { preflightCommand, PREFLIGHT_COMMAND } from './preflight';
import { scriptCommand, SCRIPT_COMMAND } from './script';
import { serveCommand, SERVE_COMMAND } from './serve';
import { verifyCommand, VERIFY_COMMAND } from './verify';

/** What a command may need besides its arguments. */
export interface CommandContext {
  /** Opens positional `which` as a checkpoint (an Orbax folder through a sidecar started on demand). */
  readonly open: (args: Args, which?: number) => Promise<Checkpoint>;
  readonly opener: NodeFileOpener;
}

export interface Command {
  readonly spec: CommandSpec;
  readonly run: (args: Args, ctx: CommandContext) => Promise<void> | void;
}

/** An AbortSignal that Ctrl-C fires: the request stops, and what arrived stays printed. */
function interrupt(): AbortSignal {
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  return ac.signal;
}

export const COMMANDS: readonly Command[] = [
  { spec: INSPECT_COMMAND, run: (a, c) => inspectCommand(a, c.open) },
  { spec: STATS_COMMAND, run: (a, c) => statsCommand(a, c.open, c.opener) },
  { spec: HEALTH_COMMAND, run: (a, c) => healthCommand(a, c.open, c.opener) },
  { spec: DIFF_COMMAND, run: (a, c) => diffCommand(a, c.open, c.opener) },
  { spec: CONVERT_COMMAND, run: (a, c) => convertCommand(a, c.open, c.opener) },
  { spec: IMPORT_COMMAND, run: (a, c) => importCommand(a, c.open, c.opener) },
  { spec: PREFLIGHT_COMMAND, run: (a, c) => preflightCommand(a, c.opener) },
  { spec: VERIFY_COMMAND, run: (a, c) => verifyCommand(a, c.opener) },
  { spec: FIT_COMMAND, run: (a, c) => fitCommand(a, c.opener) },
  { spec: SERVE_COMMAND, run: (a) => serveCommand(a) },
  { spec: GENERATE_COMMAND, run: (a) => generateCommand(a, interrupt()) },
  { spec: CHECK_SERVED_COMMAND, run: (a, c) => checkServedCommand(a, c.opener, interrupt()) },
  { spec: SCRIPT_COMMAND, run: (a) => scriptCommand(a) },
];

export const commandNamed = (name: string): Command | undefined => COMMANDS.find((c) => c.spec.name === name);

/** The options `jax-serve --help` lists under "Options:": those most commands take, and its own. */
const GLOBAL_OPTIONS = `  --json       ${JSON_OPTION.description}
  --python P   Python that reads Orbax folders (needs tensorstore; default ${PYTHON_OPTION.default!}), and
               that runs transformers for verify.
  -h, --help   Show this help; after a command (jax-serve CMD --help), that command's.
  --version    Print the version.
`;

/** `jax-serve --help`. */
export function topLevelHelp(): string {
  return `Usage: jax-serve <command> [options]

Commands:
${COMMANDS.map((c) => commandOverview(c.spec)).join('')}
PATH is a *.safetensors, Flax *.msgpack, numpy *.npz or *.npy file, a
*.safetensors.index.json or flax_model.msgpack.index.json, a folder holding one,
or an Orbax checkpoint folder (an item, a step, or a CheckpointManager root).
Options:
${GLOBAL_OPTIONS}`;
}
