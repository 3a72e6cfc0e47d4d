/**
 * A rule maps source tensor names matching a pattern to a target name and a chain of transforms.
 * Patterns are dotted names with placeholders: `{i}` matches a layer index (digits), `{name}` one
 * path segment, `{p:q_proj|k_proj}` one of the listed segments, `{path:*}` one or more segments
 * (a module's whole path). The target reuses the captures.
 * A rule may require a rank, so a 2-D Dense rule never takes a 3-D einsum kernel. A rule may
 * unstack: one source tensor that holds several targets along an axis (MaxText's scanned layers,
 * Gemma's fused k/v) gives one target per index.
 */
import { JaxServeError } from '../errors';
import type { Layout, Transform } from './transforms';

export interface Unstack {
  /** The axis that holds the targets; it disappears (`select(axis, index)` starts each chain). */
  readonly axis: number;
  /** The capture the index fills in the target name. */
  readonly as: string;
  /** Names for the indices (['k', 'v']); the index itself when absent. */
  readonly names?: readonly string[];
}

export interface Rule {
  readonly from: string;
  readonly to: string;
  /**
   * The chain, or (presets only) a function of the source layout, for factors the shape settles
   * (MaxText's query pre-scale is 1/sqrt(head_dim)).
   */
  readonly transforms?: readonly Transform[] | ((source: Layout) => readonly Transform[]);
  /** Only tensors of this rank match. */
  readonly rank?: number;
  readonly unstack?: Unstack;
  /** Where a user rule was written ("FILE: rules[3]"), for messages. */
  readonly origin?: string;
}

export interface CompiledRule extends Rule {
  readonly pattern: Pattern;
  readonly names: readonly string[];
}

/**
 * One piece of a compiled pattern. A pattern is a sequence of literals and placeholders; user rule
 * files write them, so they are matched by `matchPattern` below (memoized, with a step budget
 * linear in the name), never by a backtracking RegExp that a crafted pattern could stall.
 */
type Piece =
  | { readonly kind: 'literal'; readonly text: string }
  | { readonly kind: 'digits' } // {i}, {j}, {layer}: one or more ASCII digits, longest first
  | { readonly kind: 'segment' } // {name}: one or more characters other than '.', longest first
  | { readonly kind: 'path' } // {name:*}: one or more characters but line breaks, shortest first
  | { readonly kind: 'choice'; readonly options: readonly string[] }; // {name:a|b}: in the order written

export interface Pattern {
  readonly pieces: readonly Piece[];
}

/** Steps one match may take per character of the name and piece of the pattern before it is refused. */
export const RULE_STEPS_PER_CHAR = 64;

/** Rules in one rule file; presets hold a few dozen. */
export const MAX_RULES = 10_000;

/** Characters of one rule pattern; real ones are under 100, and the matcher recurses once per piece. */
export const MAX_RULE_PATTERN_CHARS = 1024;

export function compileRule(rule: Rule): CompiledRule {
  if (rule.from.length > MAX_RULE_PATTERN_CHARS) throw new JaxServeError('E_LIMIT', `rule ${JSON.stringify(rule.from.slice(0, 60))}…: the pattern is ${rule.from.length} characters, over the limit of ${MAX_RULE_PATTERN_CHARS}.`);
  const names: string[] = [];
  const pieces: Piece[] = [];
  const literal = (text: string) => text && pieces.push({ kind: 'literal', text });
  const re = /\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}/g;
  let last = 0;
  for (let m = re.exec(rule.from); m; m = re.exec(rule.from)) {
    literal(rule.from.slice(last, m.index));
    const [, name, alts] = m as unknown as [string, string, string | undefined];
    names.push(name);
    if (alts === '*') pieces.push({ kind: 'path' });
    else if (alts !== undefined) pieces.push({ kind: 'choice', options: alts.split('|') });
    else pieces.push(name === 'i' || name === 'j' || name === 'layer' ? { kind: 'digits' } : { kind: 'segment' });
    last = m.index + m[0].length;
  }
  literal(rule.from.slice(last));
  for (const m of rule.to.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) {
    if (!names.includes(m[1]!) && m[1] !== rule.unstack?.as) throw new JaxServeError('E_USAGE', `rule ${JSON.stringify(rule.from)} → ${JSON.stringify(rule.to)}: the target uses {${m[1]}}, which the pattern does not capture.`);
  }
  return { ...rule, pattern: { pieces }, names };
}

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
const isLineBreak = (c: number) => c === 0x0a || c === 0x0d || c === 0x2028 || c === 0x2029;

/**
 * The captures of the whole of `name` against `pattern` (one per placeholder), or undefined. Tries
 * alternatives in the order a backtracking regex would, so the captures are the ones it would give;
 * a (piece, position) pair that failed once is never tried again, which bounds the work, and a
 * match that still takes more than RULE_STEPS_PER_CHAR steps per character and piece is refused.
 */
export function matchPattern(pattern: Pattern, name: string, what = 'a rule'): string[] | undefined {
  const { pieces } = pattern;
  const n = name.length;
  const failed = new Set<number>();
  const captures: string[] = [];
  const budget = RULE_STEPS_PER_CHAR * (n + 1) * (pieces.length + 1);
  let steps = 0;
  const step = () => {
    if (++steps > budget) throw new JaxServeError('E_LIMIT', `${what} took more than ${budget} steps to match a ${n}-character tensor name; simplify its pattern (fewer {name:*} or choices next to each other).`);
  };
  const at = (k: number, pos: number): boolean => {
    if (k === pieces.length) return pos === n;
    const key = k * (n + 1) + pos;
    if (failed.has(key)) return false;
    const piece = pieces[k]!;
    const tryEnd = (end: number): boolean => {
      step();
      if (!at(k + 1, end)) return false;
      if (piece.kind !== 'literal') captures[captureIndex[k]!] = name.slice(pos, end);
      return true;
    };
    let ok = false;
    switch (piece.kind) {
      case 'literal':
        step();
        ok = name.startsWith(piece.text, pos) && at(k + 1, pos + piece.text.length);
        break;
      case 'digits':
      case 'segment': {
        let end = pos;
        const accept = piece.kind === 'digits' ? isDigit : (c: number) => c !== 0x2e;
        while (end < n && accept(name.charCodeAt(end))) end++;
        for (; end > pos && !ok; end--) ok = tryEnd(end);
        break;
      }
      case 'path':
        for (let end = pos + 1; end <= n && !isLineBreak(name.charCodeAt(end - 1)) && !ok; end++) ok = tryEnd(end);
        break;
      case 'choice':
        for (const o of piece.options) if (name.startsWith(o, pos) && (ok = tryEnd(pos + o.length))) break;
        break;
    }
    if (!ok) failed.add(key);
    return ok;
  };
  // The capture slot of each placeholder piece.
  const captureIndex: number[] = [];
  let c = 0;
  pieces.forEach((p, k) => (captureIndex[k] = p.kind === 'literal' ? -1 : c++));
  return at(0, 0) ? captures : undefined;
}

export interface RuleMatch {
  readonly rule: CompiledRule;
  readonly target: string;
  readonly captures: Readonly<Record<string, string>>;
}

/** The first rule that matches `name` (and its rank), with the target name filled in. */
export function matchRule(rules: readonly CompiledRule[], name: string, rank: number): RuleMatch | undefined {
  for (const rule of rules) {
    if (rule.rank !== undefined && rule.rank !== rank) continue;
    const m = matchPattern(rule.pattern, name, rule.origin ?? `the rule ${JSON.stringify(rule.from)}`);
    if (!m) continue;
    const captures: Record<string, string> = {};
    rule.names.forEach((n, k) => (captures[n] = m[k]!));
    return { rule, target: fill(rule.to, captures), captures };
  }
  return undefined;
}

function fill(pattern: string, captures: Readonly<Record<string, string>>): string {
  // Layer indices are written without leading zeros, whatever the source spelled.
  return pattern.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, n: string) => (/^\d+$/.test(captures[n]!) ? String(Number(captures[n])) : captures[n]!));
}

export interface RuleTarget {
  readonly target: string;
  readonly transforms: readonly Transform[];
}

/**
 * The targets one matched source tensor gives: one, or one per index of an unstacked axis (each
 * chain starting with its `select`). Throws, naming the tensor, when the axis does not fit.
 */
export function ruleTargets(m: RuleMatch, source: Layout, name: string): RuleTarget[] {
  const { rule } = m;
  const u = rule.unstack;
  if (!u) return [{ target: m.target, transforms: chainFor(rule, source) }];
  const n = source.shape[u.axis];
  if (n === undefined) throw new JaxServeError('E_USAGE', `${name} ${JSON.stringify(source.shape)}: the rule for ${rule.from} unstacks axis ${u.axis}, which it does not have.`);
  if (u.names && u.names.length !== n) throw new JaxServeError('E_USAGE', `${name} ${JSON.stringify(source.shape)}: axis ${u.axis} holds ${n}, the rule names ${u.names.length} (${u.names.join(', ')}).`);
  const sliced: Layout = { shape: source.shape.filter((_, i) => i !== u.axis), dtype: source.dtype };
  const rest = chainFor(rule, sliced);
  return Array.from({ length: n }, (_, index) => ({
    target: fill(rule.to, { ...m.captures, [u.as]: u.names?.[index] ?? String(index) }),
    transforms: [{ op: 'select', axis: u.axis, index } as const, ...rest],
  }));
}

function chainFor(rule: Rule, source: Layout): readonly Transform[] {
  const t = rule.transforms;
  return typeof t === 'function' ? t(source) : (t ?? []);
}

/** The Dense rule every preset shares: (in, out) kernel -> (out, in) weight. */
export const TRANSPOSE_2D: readonly Transform[] = [{ op: 'transpose', axes: [1, 0] }];

const OPS: Record<string, readonly string[]> = {
  transpose: ['axes'],
  reshape: ['shape'],
  merge: ['axis'],
  split: ['axis', 'size'],
  select: ['axis', 'index'],
  deinterleave: ['axis'],
  interleave: ['axis'],
  scale: ['factor'],
  add: ['value'],
  cast: ['dtype'],
};

/**
 * A user rule file (`jax-serve.rules.json`, schema in schemas/rules.schema.json), checked field by
 * field so a mistake names the rule and the field instead of failing later in the plan.
 */
export function parseRuleFile(json: unknown, file: string): Rule[] {
  const rules = (json as { rules?: unknown } | null)?.rules;
  if (!Array.isArray(rules)) throw new JaxServeError('E_FORMAT', `${file}: expected {"rules": [{"from": …, "to": …, "transforms": […]}]}.`);
  if (rules.length > MAX_RULES) throw new JaxServeError('E_LIMIT', `${file}: ${rules.length} rules, over the limit of ${MAX_RULES}.`);
  return rules.map((r: Record<string, unknown> | null, i): Rule => {
    const where = `${file}: rules[${i}]`;
    if (typeof r?.from !== 'string' || typeof r?.to !== 'string') throw new JaxServeError('E_FORMAT', `${where} needs "from" and "to" strings.`);
    if (r.rank !== undefined && !(Number.isInteger(r.rank) && (r.rank as number) >= 0)) throw new JaxServeError('E_FORMAT', `${where}.rank must be a whole number.`);
    if (r.transforms !== undefined && !Array.isArray(r.transforms)) throw new JaxServeError('E_FORMAT', `${where}.transforms must be a list.`);
    ((r.transforms ?? []) as Record<string, unknown>[]).forEach((t, k) => {
      const fields = OPS[String(t?.op)];
      if (!fields) throw new JaxServeError('E_FORMAT', `${where}.transforms[${k}]: unknown op ${JSON.stringify(t?.op)} (known: ${Object.keys(OPS).join(', ')}).`);
      for (const f of fields) if (t[f] === undefined) throw new JaxServeError('E_FORMAT', `${where}.transforms[${k}] (${String(t.op)}) needs "${f}".`);
    });
    const u = r.unstack as Record<string, unknown> | undefined;
    if (u !== undefined && (typeof u !== 'object' || !Number.isInteger(u.axis) || typeof u.as !== 'string')) throw new JaxServeError('E_FORMAT', `${where}.unstack needs {"axis": N, "as": "name"}.`);
    const rule = { ...(r as unknown as Rule), origin: where };
    try {
      compileRule(rule); // names the rule when its target uses a capture the pattern lacks
    } catch (e) {
      if (e instanceof JaxServeError) throw new JaxServeError(e.code, `${where}: ${e.message}`);
      throw e;
    }
    return rule;
  });
}
