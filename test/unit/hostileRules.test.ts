/**
 * Rule patterns from user rule files: the matcher gives exactly what a backtracking regex over the
 * same pattern gives (differential, random patterns and names), and no pattern, however it is
 * written, makes matching run long: the work is linear in the name times the pattern, checked by
 * the shapes that make a backtracking regex take exponential or polynomial time.
 */
import * as assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as fc from 'fast-check';
import { compileRule, matchPattern, parseRuleFile, writeSafetensors } from '../../src/core/index';
import { openAtomicFileSink } from '../../src/core/node/index';
import { tempDir } from './helpers';
import { assertRefused, fingerprint, assertUnchanged, fuzzRuns, fuzzSeed, runCli } from './hostile';

/** The regex the old compiler built: the reference the matcher must agree with. */
function referenceRegex(from: string): RegExp {
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  let src = '^';
  let last = 0;
  const re = /\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}/g;
  for (let m = re.exec(from); m; m = re.exec(from)) {
    src += esc(from.slice(last, m.index));
    const [, name, alts] = m as unknown as [string, string, string | undefined];
    if (alts === '*') src += '(.+?)';
    else if (alts !== undefined) src += `(${alts.split('|').map(esc).join('|')})`;
    else src += name === 'i' || name === 'j' || name === 'layer' ? '(\\d+)' : '([^.]+)';
    last = m.index + m[0].length;
  }
  return new RegExp(src + esc(from.slice(last)) + '$');
}

// Small alphabets so matches are frequent and ambiguous (several ways to split a name).
const atom = fc.constantFrom('a', 'b', '.', '0', '1', '_', 'ab', 'a.b', '\n');
const piece = fc.oneof(
  atom,
  fc.constant('{i}'),
  fc.constant('{name}'),
  fc.constant('{p:*}'),
  fc.array(fc.constantFrom('a', 'b', 'ab', '', 'a.', '0'), { minLength: 1, maxLength: 3 }).map((o) => `{c:${o.join('|')}}`),
);
// Placeholders need distinct names for the captures to be told apart.
const pattern = fc.array(piece, { minLength: 1, maxLength: 6 }).map((ps) => {
  let k = 0;
  return ps.map((p) => p.replace(/^\{(i|name|p|c)(?=[:}])/, (_, n: string) => `{${n === 'i' ? 'i' : n + k++}`)).join('').replace(/\{i\}(.*)\{i\}/, '{i}$1{j}');
});
const name = fc.array(atom, { maxLength: 10 }).map((a) => a.join(''));

describe(`hostile rule patterns (seed ${fuzzSeed})`, () => {
  it('match exactly as the backtracking regex does, captures included', () => {
    fc.assert(
      fc.property(pattern, name, (from, n) => {
        let rule;
        try {
          rule = compileRule({ from, to: 'x' });
        } catch {
          return; // a pattern reusing a name the target never needs
        }
        const want = referenceRegex(from).exec(n);
        const got = matchPattern(rule.pattern, n);
        assert.deepEqual(got, want ? want.slice(1) : undefined, `pattern ${JSON.stringify(from)} name ${JSON.stringify(n)}`);
      }),
      { seed: fuzzSeed, numRuns: fuzzRuns(3000) },
    );
  });

  it('never run long: catastrophic shapes end at once', () => {
    const shapes = fc.record({
      k: fc.integer({ min: 2, max: 24 }),
      kind: fc.constantFrom('paths', 'choices', 'segments', 'mixed'),
      len: fc.integer({ min: 1, max: 4000 }),
      tail: fc.constantFrom('x', '.weight', '', '!'),
    });
    fc.assert(
      fc.property(shapes, ({ k, kind, len, tail }) => {
        const part = (i: number) =>
          kind === 'paths' ? `{p${i}:*}` : kind === 'choices' ? `{c${i}:a|aa|a}` : kind === 'segments' ? `{s${i}}` : i % 2 ? `{p${i}:*}` : `{c${i}:a|aa}`;
        const from = Array.from({ length: k }, (_, i) => part(i)).join('') + 'x';
        const rule = compileRule({ from, to: 'y' });
        const n = 'a'.repeat(len) + tail;
        const t0 = process.hrtime.bigint();
        const got = matchPattern(rule.pattern, n);
        // Linear: a few ms here, where a backtracking regex takes exponential time on the same input.
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        assert.ok(ms < 2000, `${from} against ${len} characters took ${ms} ms`);
        if (tail === 'x' && kind === 'paths' && len >= k) assert.ok(got, 'a path pattern ending in x matches a long enough name ending in x');
      }),
      { seed: fuzzSeed, numRuns: fuzzRuns(60) },
    );
  });

  it('refuses oversized patterns and rule lists, naming the rule file', () => {
    assert.throws(() => parseRuleFile({ rules: [{ from: 'a'.repeat(5000), to: 'b' }] }, 'r.json'), /r\.json: rules\[0\]: .*over the limit/);
    assert.throws(() => parseRuleFile({ rules: Array.from({ length: 10_001 }, () => ({ from: 'a', to: 'b' })) }, 'r.json'), /r\.json: 10001 rules/);
  });

  it('the CLI plans with a rule file of 160 chained placeholders over 1,500 long names in seconds, the source unchanged', async function () {
    this.timeout(60_000);
    const dir = tempDir();
    try {
      const src = join(dir.path, 'src');
      const file = join(src, 'model.safetensors');
      mkdirSync(src);
      const names = Array.from({ length: 1500 }, (_, i) => `params.${'a'.repeat(120)}${i}`);
      await writeSafetensors(await openAtomicFileSink(file, { sources: [] }), names.map((n) => ({ name: n, dtype: 'F32' as const, shape: [2] })), () => new Uint8Array(8));
      const rules = join(dir.path, 'evil.rules.json');
      writeFileSync(rules, JSON.stringify({ rules: [{ from: 'params.' + '{xx:*}'.repeat(160) + 'a1', to: 'y' }] }));
      const before = fingerprint(src);
      const r = runCli(['convert', src, '--rules', rules, '--dry-run'], { timeoutMs: 20_000 });
      // No rule or preset maps these names: a clean refusal naming the checkpoint, reached quickly.
      assertRefused(r, file, 'convert with a rule of 160 chained placeholders');
      assertUnchanged(before, src, 'the source');
    } finally {
      dir.remove();
    }
  });
});
