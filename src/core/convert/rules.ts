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
}

export interface CompiledRule extends Rule {
  readonly regex: RegExp;
  readonly names: readonly string[];
}

export function compileRule(rule: Rule): CompiledRule {
  const names: string[] = [];
  let src = '^';
  const re = /\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}/g;
  let last = 0;
  for (let m = re.exec(rule.from); m; m = re.exec(rule.from)) {
    src += escape(rule.from.slice(last, m.index));
    const [, name, alts] = m as unknown as [string, string, string | undefined];
    names.push(name);
    if (alts === '*') src += '(.+?)';
    else if (alts !== undefined) src += `(${alts.split('|').map(escape).join('|')})`;
    else src += name === 'i' || name === 'j' || name === 'layer' ? '(\\d+)' : '([^.]+)';
    last = m.index + m[0].length;
  }
  src += escape(rule.from.slice(last)) + '$';
  for (const m of rule.to.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) {
    if (!names.includes(m[1]!) && m[1] !== rule.unstack?.as) throw new JaxServeError('E_USAGE', `rule ${JSON.stringify(rule.from)} → ${JSON.stringify(rule.to)}: the target uses {${m[1]}}, which the pattern does not capture.`);
  }
  return { ...rule, regex: new RegExp(src), names };
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
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
    const m = rule.regex.exec(name);
    if (!m) continue;
    const captures: Record<string, string> = {};
    rule.names.forEach((n, k) => (captures[n] = m[k + 1]!));
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
    const rule = r as unknown as Rule;
    compileRule(rule); // names the rule when its target uses a capture the pattern lacks
    return rule;
  });
}
