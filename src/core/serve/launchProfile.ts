/**
 * A launch profile: what the Serve panel's form holds and saves (engine, model folder, host, port,
 * engine options, extra arguments, environment, interpreter or launch command), checked into the
 * LaunchOptions an engine spec takes, and written as `jax-serve serve` arguments for the `serve`
 * task. Text fields (extra arguments, a launch command) are split as a POSIX shell splits words,
 * quotes and backslashes included, but nothing is expanded: no shell ever runs them.
 */
import { JaxServeError } from '../errors';
import { checkAdapterRefs } from './adapters';
import { checkDevice, engineById, type LaunchOptions } from './engines';
import type { AdapterRef, LaunchProfile } from './serveTypes';

export type { LaunchProfile } from './serveTypes';

/** The saved profiles with `p` saved among them (one per name, sorted by name). `unnamed`: the E_USAGE message for a blank name, in the caller's language. */
export function profilesWith(profiles: readonly LaunchProfile[], p: LaunchProfile, unnamed = 'Name the profile to save it.'): LaunchProfile[] {
  const name = p.name.trim();
  if (!name) throw new JaxServeError('E_USAGE', unnamed);
  return [...profiles.filter((x) => x.name !== name), { ...p, name }].sort((a, b) => a.name.localeCompare(b.name));
}

/** Splits a command line into words as sh does (quotes, backslash escapes), expanding nothing. */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote === "'") {
      if (c === "'") quote = undefined;
      else word += c;
    } else if (quote === '"') {
      if (c === '"') quote = undefined;
      // Inside double quotes a backslash escapes only these (as in sh).
      else if (c === '\\' && i + 1 < line.length && '"\\$`'.includes(line[i + 1]!)) word += line[++i];
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\') {
      if (i + 1 === line.length) throw new JaxServeError('E_USAGE', `A backslash ends the line, escaping nothing: ${line}`);
      word += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) throw new JaxServeError('E_USAGE', `Unclosed ${quote} quote in: ${line}`);
  if (inWord) words.push(word);
  return words;
}

/** `KEY=VALUE` lines into an environment; blank lines and `#` comments are skipped. */
export function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) throw new JaxServeError('E_USAGE', `Environment line ${i + 1} is not KEY=VALUE: ${line}`);
    env[m[1]!] = m[2]!;
  });
  return env;
}

const positiveInt = (v: number | undefined, what: string) => {
  if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new JaxServeError('E_USAGE', `${what} must be a whole number ≥ 1 (got ${v}).`);
  return v;
};

/**
 * The launch options of a profile on a port, checked: every problem named by its field, so the
 * form can say what to fix before anything is spawned. The adapters come back as named, checked
 * (an engine that takes them, names requests can carry): their folders are read when the server
 * starts (core/node readAdapters), and their ranks join the launch then.
 */
export function launchOptions(p: LaunchProfile, port: number, python?: string): { launch: LaunchOptions; env: Record<string, string>; adapters: AdapterRef[] } {
  const spec = engineById(p.engine);
  if (!spec) throw new JaxServeError('E_USAGE', `Unknown engine "${p.engine}".`);
  if (!p.model.trim()) throw new JaxServeError('E_USAGE', 'Choose the model folder (an export).');
  if (!p.host.trim()) throw new JaxServeError('E_USAGE', 'Host is empty: 127.0.0.1 serves this machine only.');
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new JaxServeError('E_USAGE', `Port must be 1–65535 (got ${port}).`);
  positiveInt(p.maxModelLen, 'Max model length');
  positiveInt(p.tensorParallel, 'Tensor-parallel size');
  if (p.memoryFraction !== undefined && !(p.memoryFraction > 0 && p.memoryFraction <= 1)) throw new JaxServeError('E_USAGE', `Memory fraction must be in (0, 1] (got ${p.memoryFraction}).`);
  const command = p.command?.trim() ? splitWords(p.command) : undefined;
  const env = p.env ? parseEnv(p.env) : {};
  const device = p.device?.trim() || undefined;
  // The profile's own environment lines are checked here; the process's when it starts (ServerProcess.start).
  checkDevice(spec, device, env);
  const adapters = (p.adapters ?? []).map((a) => ({ name: a.name.trim(), path: a.path.trim() }));
  checkAdapterRefs(spec, adapters);
  return {
    launch: {
      model: p.model.trim(),
      host: p.host.trim(),
      port,
      dtype: p.dtype?.trim() || undefined,
      maxModelLen: p.maxModelLen,
      tensorParallel: p.tensorParallel,
      memoryFraction: p.memoryFraction,
      servedName: p.servedName?.trim() || undefined,
      device,
      extraArgs: p.extraArgs?.trim() ? splitWords(p.extraArgs) : undefined,
      python: command ? undefined : p.python?.trim() || python,
      command,
    },
    env,
    adapters,
  };
}

/** `jax-serve serve …` arguments for a profile (the `serve` task runs the CLI with them). */
export function serveCliArgs(p: LaunchProfile, python?: string): string[] {
  const { launch, adapters } = launchOptions(p, p.port ?? 1, python);
  const o = (flag: string, v: string | number | undefined) => (v === undefined ? [] : [flag, String(v)]);
  return [
    'serve', launch.model,
    '--engine', p.engine,
    '--host', launch.host,
    ...o('--port', p.port),
    ...o('--python', launch.python),
    ...o('--dtype', launch.dtype),
    ...o('--max-model-len', launch.maxModelLen),
    ...o('--tp', launch.tensorParallel),
    ...o('--memory-fraction', launch.memoryFraction),
    ...o('--served-name', launch.servedName),
    ...o('--device', launch.device),
    ...(launch.command ? ['--command', p.command!.trim()] : []),
    ...adapters.flatMap((a) => ['--adapter', `${a.name}=${a.path}`]),
    ...(launch.extraArgs ?? []).flatMap((a) => ['--arg', a]),
  ];
}
