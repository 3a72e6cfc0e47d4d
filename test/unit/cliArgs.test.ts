import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { commandHelp, parseArgs, type CommandSpec } from '../../src/cli/args';
import { COMMANDS, topLevelHelp } from '../../src/cli/commands';

const spec: CommandSpec = {
  name: 'demo',
  synopsis: 'SRC',
  summary: 'Does a demo thing.',
  options: [
    { name: '--out', alias: '-o', value: 'OUT', required: true, description: 'Where to write.' },
    { name: '--set', value: 'KEY=VALUE', repeatable: true, description: 'Set a key.' },
    { name: '--bins', value: 'N', default: '20', description: 'Bins.' },
    { name: '--python', value: 'P', default: 'python3', description: 'A Python.' },
    { name: '--dry-run', description: 'Write nothing.' },
    { name: '--json', description: 'JSON out.' },
  ],
};

const usageError = (re: RegExp) => (e: Error & { code?: string }) => e.code === 'E_USAGE' && re.test(e.message);

describe('cli/args: parseArgs and commandHelp, from one spec', () => {
  it('reads positionals, flags, values (the alias under the long name) and repeats', () => {
    const a = parseArgs(['src', '-o', 'x', '--set', 'a=1', '--dry-run', '--set', 'b=2', '--json', '--python', 'py3', '--bins', '7'], spec);
    assert.deepEqual(a.positional, ['src']);
    assert.deepEqual(a.values.get('--out'), ['x']);
    assert.equal(a.values.has('-o'), false);
    assert.deepEqual(a.values.get('--set'), ['a=1', 'b=2']);
    assert.deepEqual([...a.flags].sort(), ['--dry-run', '--json']);
    assert.deepEqual([a.json, a.python, a.bins, a.help], [true, 'py3', 7, false]);
  });

  it('takes a value that looks like a flag as the value (only the spec decides what takes one)', () => {
    const a = parseArgs(['--set', '--dry-run'], spec);
    assert.deepEqual(a.values.get('--set'), ['--dry-run']);
    assert.equal(a.flags.size, 0);
    // A lone "-" is a positional (stdin by convention), not an option.
    assert.deepEqual(parseArgs(['-'], spec).positional, ['-']);
  });

  it('refuses an unknown option naming the known ones, a missing value, and bad --bins', () => {
    assert.throws(() => parseArgs(['--yaml'], spec), usageError(/unknown option --yaml \(known: -o, --out, --set, --bins, --python, --dry-run, --json, -h, --help\)/));
    assert.throws(() => parseArgs(['src', '--out'], spec), usageError(/^--out needs a value\.$/));
    assert.throws(() => parseArgs(['-o'], spec), usageError(/^-o needs a value\.$/));
    assert.throws(() => parseArgs(['--bins', '0'], spec), usageError(/--bins takes a whole number from 1 to 10000/));
    assert.throws(() => parseArgs(['--bins', '2.5'], spec), usageError(/--bins/));
  });

  it('lets -h/--help win over an unknown option or a missing value anywhere on the line', () => {
    assert.equal(parseArgs(['--yaml', '--help'], spec).help, true);
    assert.equal(parseArgs(['-h', '--out'], spec).help, true);
    assert.equal(parseArgs([], spec).help, false);
    // As the value of an option, "--help" is that value, not a request for help.
    const a = parseArgs(['--set', '--help'], spec);
    assert.deepEqual([a.help, a.values.get('--set')], [false, ['--help']]);
  });

  it('renders a usage line naming the command, the summary, and every option with its default', () => {
    const h = commandHelp(spec);
    const [usage] = h.split('\n');
    assert.equal(usage, 'Usage: jax-serve demo SRC -o OUT [--set KEY=VALUE]... [--bins N] [--python P] [--dry-run] [--json]');
    assert.match(h, /\nDoes a demo thing\.\n/);
    assert.match(h, /^ {2}-o, --out OUT +Where to write\. \(required\)$/m);
    assert.match(h, /^ {2}--set KEY=VALUE +Set a key\. \(may repeat\)$/m);
    assert.match(h, /^ {2}--bins N +Bins\. \(default: 20\)$/m);
    assert.match(h, /^ {2}--python P +A Python\. \(default: python3\)$/m);
    assert.match(h, /^ {2}-h, --help +Show this help\.$/m);
    for (const line of h.split('\n')) assert.ok(line.length <= 100, line);
  });
});

describe('every command: its spec, its --help, and the top-level help', () => {
  const cli = resolve(__dirname, '../../../dist/cli.js');
  const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  const optionNames = (s: CommandSpec) => s.options.map((o) => o.name);

  it('has unique command names, and no command declares an option twice', () => {
    const names = COMMANDS.map((c) => c.spec.name);
    assert.equal(new Set(names).size, names.length);
    for (const { spec: s } of COMMANDS) {
      const all = s.options.flatMap((o) => (o.alias ? [o.name, o.alias] : [o.name]));
      assert.equal(new Set(all).size, all.length, s.name);
    }
  });

  for (const { spec: s } of COMMANDS) {
    it(`jax-serve ${s.name} --help (and -h, with other arguments or none) prints its own help, exit 0`, () => {
      for (const argv of [[s.name, '--help'], [s.name, 'some/path', '-h'], [s.name, '--no-such-option', '--help']]) {
        const r = run(...argv);
        assert.equal(r.status, 0, `${argv.join(' ')}: ${r.stderr}`);
        assert.equal(r.stderr, '');
        assert.ok(r.stdout.startsWith(`Usage: jax-serve ${s.name} `), r.stdout);
        // Each option's entry: its line and the wrapped lines under it, joined.
        const entries = r.stdout.slice(r.stdout.indexOf('\nOptions:\n')).split(/\n(?= {2}-)/).map((e) => e.replace(/\s+/g, ' ').trim());
        for (const o of s.options) {
          const entry = entries.find((e) => e.startsWith(`${o.alias ? `${o.alias}, ` : ''}${o.name}${o.value !== undefined ? ` ${o.value} ` : ' '}`));
          assert.ok(entry, `${s.name} --help lists ${o.name}`);
          if (o.default !== undefined) assert.ok(entry.includes(`default: ${o.default}`), `${s.name} ${o.name} shows its default: ${entry}`);
        }
        // That command's help alone: no other command's usage.
        for (const other of COMMANDS) if (other.spec.name !== s.name) assert.doesNotMatch(r.stdout, new RegExp(`jax-serve ${other.spec.name} `));
      }
    });
  }

  it('jax-serve --help lists every command, and every option it mentions exists in some spec', () => {
    const r = run('--help');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, topLevelHelp());
    for (const { spec: s } of COMMANDS) assert.match(r.stdout, new RegExp(`^ {2}${s.name} `, 'm'));
    const known = new Set([...COMMANDS.flatMap((c) => [...optionNames(c.spec), ...c.spec.options.flatMap((o) => (o.alias ? [o.alias] : []))]), '-h', '--help', '--version']);
    const mentioned = new Set(r.stdout.match(/(?<![\w-])--?[a-z][a-z-]*/g) ?? []);
    assert.ok(mentioned.size > 30, [...mentioned].join(' '));
    for (const m of mentioned) assert.ok(known.has(m), `the top-level help mentions ${m}, which no command takes`);
  });

  it('jax-serve --version prints the package version', () => {
    const r = run('--version');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), JSON.parse(readFileSync(resolve(__dirname, '../../../package.json'), 'utf8')).version);
  });
});
