/**
 * The command line's grammar: each command declares its options once (a `CommandSpec`), and both
 * the parser and the help text read that one declaration, so an option cannot be accepted without
 * being documented, nor documented without being accepted. Pure: nothing here runs at import.
 */
import { JaxServeError } from '../core/index';

export interface OptionSpec {
  /** The long spelling, `--out`; the parsed values are kept under it. */
  readonly name: string;
  /** A short spelling, `-o`, read as `name`. */
  readonly alias?: string;
  /** The value's placeholder in help (`FILE`, `N`, `names|plan|auto`); absent for a flag. */
  readonly value?: string;
  /** Given more than once, every value counts (`--set`, `--stop`). */
  readonly repeatable?: boolean;
  /** Shown without brackets in the command's usage line: the command refuses to run without it. */
  readonly required?: boolean;
  /** The value used when the option is absent, as help shows it. */
  readonly default?: string;
  /** One line, or a short paragraph, for help. */
  readonly description: string;
}

export interface CommandSpec {
  readonly name: string;
  /** The positionals (and any alternative form), as the usage line shows them: `SRC`, `LEFT RIGHT`. */
  readonly synopsis: string;
  /** What the command does and its exit codes: one paragraph. */
  readonly summary: string;
  readonly options: readonly OptionSpec[];
}

export interface Args {
  positional: string[];
  json: boolean;
  bins: number;
  python: string;
  /** Flags given (--dry-run, --overwrite, …). */
  flags: Set<string>;
  /** Value options under their long name, each with every value given (--set may repeat). */
  values: Map<string, string[]>;
  /** -h or --help was given: the caller prints the command's help and runs nothing. */
  help: boolean;
}

/** Every command takes these; they are not repeated in each spec. */
export const HELP_OPTION: OptionSpec = { name: '--help', alias: '-h', description: 'Show this help.' };

/** Options several commands share, declared once. */
export const JSON_OPTION: OptionSpec = { name: '--json', description: 'Print one JSON object instead of text.' };
export const PYTHON_OPTION: OptionSpec = {
  name: '--python',
  value: 'P',
  default: 'python3',
  description: 'Python that reads Orbax folders (needs tensorstore).',
};

const isOption = (a: string) => a.startsWith('-') && a !== '-';

/**
 * Reads `argv` against `spec`'s options. An unknown option, or a value option at the end, is an
 * E_USAGE error naming it — unless -h/--help is among the options, when help wins: a user asking
 * for help with a half-typed command line should get the help, not a complaint about it.
 */
export function parseArgs(argv: readonly string[], spec: CommandSpec): Args {
  const options = [...spec.options, HELP_OPTION];
  const byName = new Map<string, OptionSpec>();
  for (const o of options) {
    byName.set(o.name, o);
    if (o.alias) byName.set(o.alias, o);
  }
  const out: Args = { positional: [], json: false, bins: 20, python: 'python3', flags: new Set(), values: new Map(), help: false };
  let problem: JaxServeError | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!isOption(a)) {
      out.positional.push(a);
      continue;
    }
    const o = byName.get(a);
    if (!o) {
      problem ??= new JaxServeError('E_USAGE', `unknown option ${a} (known: ${options.flatMap((x) => (x.alias ? [x.alias, x.name] : [x.name])).join(', ')}).`);
      continue;
    }
    if (o.value === undefined) {
      out.flags.add(o.name);
      if (o.name === '--json') out.json = true;
      if (o.name === '--help') out.help = true;
      continue;
    }
    const v = argv[++i];
    if (v === undefined) {
      problem ??= new JaxServeError('E_USAGE', `${a} needs a value.`);
      continue;
    }
    out.values.set(o.name, [...(out.values.get(o.name) ?? []), v]);
    if (o.name === '--python') out.python = v;
    if (o.name === '--bins') {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 10_000) problem ??= new JaxServeError('E_USAGE', '--bins takes a whole number from 1 to 10000.');
      else out.bins = n;
    }
  }
  if (problem && !out.help) throw problem;
  return out;
}

/** `[--out OUT]`, `--url URL`, `[--stop S]...`: one option as a usage line shows it. */
function optionUsage(o: OptionSpec): string {
  const word = `${o.alias && o.value !== undefined ? o.alias : o.name}${o.value !== undefined ? ` ${o.value}` : ''}`;
  return `${o.required ? word : `[${word}]`}${o.repeatable ? '...' : ''}`;
}

/** The usage line's words after `jax-serve`: the command, its positionals, then its options. */
export function usageWords(spec: CommandSpec): string[] {
  return [spec.name, ...spec.synopsis.split(' ').filter((w) => w !== ''), ...spec.options.map(optionUsage)];
}

/** Fills lines of at most `width` characters with `words`, each line after the first indented by `indent`. */
export function wrapWords(words: readonly string[], width: number, indent: string, first = ''): string[] {
  const lines: string[] = [];
  let line = first;
  for (const w of words) {
    const fresh = line === first || line === indent;
    if (!fresh && line.length + 1 + w.length > width) {
      lines.push(line);
      line = indent + w;
    } else line += (fresh ? '' : ' ') + w;
  }
  lines.push(line);
  return lines;
}

const words = (text: string) => text.split(/\s+/).filter((w) => w !== '');
const WIDTH = 100;
const COLUMN = 34;

/** `-o, --out OUT`: an option's name column in help. */
function optionName(o: OptionSpec): string {
  return `${o.alias ? `${o.alias}, ` : ''}${o.name}${o.value !== undefined ? ` ${o.value}` : ''}`;
}

function optionText(o: OptionSpec): string {
  const notes = [o.required ? 'required' : '', o.repeatable ? 'may repeat' : '', o.default !== undefined ? `default: ${o.default}` : ''].filter((n) => n !== '');
  return `${o.description}${notes.length ? ` (${notes.join('; ')})` : ''}`;
}

/** `jax-serve CMD --help`: the usage line, the summary, and every option with its default. */
export function commandHelp(spec: CommandSpec): string {
  const lines = wrapWords(usageWords(spec), WIDTH, ' '.repeat(`Usage: jax-serve ${spec.name} `.length), 'Usage: jax-serve ');
  lines.push('', ...wrapWords(words(spec.summary), WIDTH, ''), '', 'Options:');
  for (const o of [...spec.options, HELP_OPTION]) {
    const name = `  ${optionName(o)}`;
    const pad = ' '.repeat(COLUMN);
    const text = wrapWords(words(optionText(o)), WIDTH, pad, name.length < COLUMN - 1 ? name.padEnd(COLUMN) : pad);
    if (name.length >= COLUMN - 1) lines.push(name);
    lines.push(...text);
  }
  return lines.join('\n') + '\n';
}

/** A command's entry in `jax-serve --help`: its usage, then its summary in the second column. */
export function commandOverview(spec: CommandSpec): string {
  const usage = wrapWords(usageWords(spec), WIDTH, ' '.repeat(4 + spec.name.length), '  ');
  const summary = wrapWords(words(spec.summary), WIDTH, ' '.repeat(COLUMN), ' '.repeat(COLUMN));
  return [...usage, ...summary].join('\n') + '\n';
}

/** The one value of `name`, or undefined; given twice it is an error, not a silent pick. */
export function oneValue(args: Args, name: string): string | undefined {
  const v = args.values.get(name);
  if (v && v.length > 1) throw new JaxServeError('E_USAGE', `${name} is given more than once.`);
  return v?.[0];
}

/** A whole-number option from 1 to `max` (its last value), or undefined when it is absent. */
export function wholeOption(args: Args, name: string, max = 2 ** 31): number | undefined {
  const v = args.values.get(name)?.at(-1);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < 1 || n > max) throw new JaxServeError('E_USAGE', `${name} ${JSON.stringify(v).slice(0, 40)}: give a whole number from 1 to ${max.toLocaleString('en-US')}.`);
  return n;
}
