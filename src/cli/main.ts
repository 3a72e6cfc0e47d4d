/**
 * `jax-serve`: the command line over core. It parses arguments and renders; everything it knows
 * about checkpoints comes from core. Errors print one line on stderr and set exit code 2.
 */
import * as path from 'node:path';
import { describeError, escapeControls, isJaxServeError, JaxServeError, openCheckpoint, type Checkpoint } from '../core/index';
import { NodeFileOpener, PythonSidecar, sidecarScript } from '../core/node/index';
import { commandHelp, parseArgs, type Args } from './args';
import { commandNamed, topLevelHelp } from './commands';
import { print, printErr } from './output';

declare const JAX_SERVE_VERSION: string;

async function run(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    print(topLevelHelp());
    return;
  }
  if (name === '--version') {
    print(`${JAX_SERVE_VERSION}\n`);
    return;
  }
  const command = commandNamed(name);
  if (!command) throw new JaxServeError('E_USAGE', `unknown command ${JSON.stringify(name)}; run jax-serve --help.`);
  const args = parseArgs(rest, command.spec);
  if (args.help) {
    print(commandHelp(command.spec));
    return;
  }
  const opener = new NodeFileOpener();
  // Started only when a folder turns out to be Orbax; stopped when the command ends.
  let sidecar: PythonSidecar | undefined;
  const open = (a: Args, which = 0): Promise<Checkpoint> => {
    sidecar ??= new PythonSidecar({ python: a.python, script: sidecarScript(path.join(__dirname, '..')), interpreterHint: 'Pass another with --python.' });
    return openCheckpoint(opener, a.positional[which]!, { orbax: sidecar, orbaxHint: 'Pass one with --python.' });
  };
  try {
    await command.run(args, { open, opener });
  } finally {
    sidecar?.dispose();
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
