/**
 * A rule maps source tensor names matching a pattern to a target name and a chain of transforms.
 * Patterns are dotted names with placeholders: `{i}` matches a layer index (digits), `{name}` one
 * path segment, `{p:q_proj|k_proj}` one of the listed segments. The target reuses the captures.
 * A rule may require a rank, so a 2-D Dense rule never takes a 3-D einsum kernel.
 */
import { JaxServeError } from '../errors';
import type { Transform } from './transforms';

export interface Rule {
  readonly from: string;
  readonly to: string;
  readonly transforms?: readonly Transform[];
  /** Only tensors of this rank match. */
  readonly rank?: number;
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
    if (alts !== undefined) src += `(${alts.split('|').map(escape).join('|')})`;
    else src += name === 'i' || name === 'j' || name === 'layer' ? '(\\d+)' : '([^.]+)';
    last = m.index + m[0].length;
  }
  src += escape(rule.from.slice(last)) + '$';
  for (const m of rule.to.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) {
    if (!names.includes(m[1]!)) throw new JaxServeError('E_USAGE', `rule ${JSON.stringify(rule.from)} → ${JSON.stringify(rule.to)}: the target uses {${m[1]}}, which the pattern does not capture.`);
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
    // Layer indices are written without leading zeros, whatever the source spelled.
    const target = rule.to.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, n: string) => (/^\d+$/.test(captures[n]!) ? String(Number(captures[n])) : captures[n]!));
    return { rule, target, captures };
  }
  return undefined;
}

/** The Dense rule every preset shares: (in, out) kernel -> (out, in) weight. */
export const TRANSPOSE_2D: readonly Transform[] = [{ op: 'transpose', axes: [1, 0] }];
