/**
 * A rule maps source tensor names matching a pattern to a target name and a chain of transforms.
 * Patterns are dotted names with placeholders: `{i}` matches a layer index (digits), `{name}` one
 * path segment, `{p:q_proj|k_proj}` one of the listed segments, `{path:*}` one or more segments
 * (a module's whole path). The target reuses the captures.
 * A rule may require a rank, so a 2-D Dense rule never takes a 3-D einsum kernel. A rule may
 * unstack: one source tensor that holds several targets along an axis (MaxText's scanned layers,
 * Gemma's fused k/v) gives one target per index, or along several axes (MaxText's scanned experts,
 * (experts, layers, …)) one target per combination.
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
  /** One axis, or several (each a different source axis, numbered in the source's shape). */
  readonly unstack?: Unstack | readonly Unstack[];
  /** Where a user rule was written ("FILE: rules[3]"), for messages. */
  readonly origin?: string;
}

export interface CompiledRule extends Rule {
  readonly pattern: Pattern;
  readonly names: readonly string[];
}

/**
 * One piece of a compiled pattern. A pattern is a sequence of literals and placeholders; user rule
 * files write them, so they are matched by `matchPattern` below, a Pike VM: time linear in the name
 * times the pattern's size whatever the pattern, never a backtracking RegExp that a crafted pattern
 * could stall.
 */
type Piece =
  | { readonly kind: 'literal'; readonly text: string }
  | { readonly kind: 'digits' } // {i}, {j}, {layer}: one or more ASCII digits, longest first
  | { readonly kind: 'segment' } // {name}: one or more characters other than '.', longest first
  | { readonly kind: 'path' } // {name:*}: one or more characters but line breaks, shortest first
  | { readonly kind: 'choice'; readonly options: readonly string[] }; // {name:a|b}: in the order written

/** One instruction of the matcher's program. `split` tries `x` before `y` (that order decides the captures). */
type Op =
  | { readonly op: 'char'; readonly c: number }
  | { readonly op: 'class'; readonly test: (c: number) => boolean }
  | { readonly op: 'split'; readonly x: number; readonly y: number }
  | { readonly op: 'jump'; readonly to: number }
  | { readonly op: 'save'; readonly slot: number }
  | { readonly op: 'match' };

export interface Pattern {
  readonly pieces: readonly Piece[];
  readonly program: readonly Op[];
  /** Capture slots: two per placeholder (start, end). */
  readonly slots: number;
}

/** Rules in one rule file; presets hold a few dozen. */
export const MAX_RULES = 10_000;

/** Axes one rule unstacks: experts and layers are two; a tensor has few axes. */
export const MAX_UNSTACK_AXES = 8;

/** Targets one source tensor may unstack into (256 experts × 128 layers is 32,768). */
export const MAX_UNSTACK_TARGETS = 100_000;

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
    if (!names.includes(m[1]!) && !unstackAxes(rule).some((u) => u.as === m[1])) throw new JaxServeError('E_USAGE', `rule ${JSON.stringify(rule.from)} → ${JSON.stringify(rule.to)}: the target uses {${m[1]}}, which the pattern does not capture.`);
  }
  return { ...rule, pattern: { pieces, ...program(pieces) }, names };
}

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
const isLineBreak = (c: number) => c === 0x0a || c === 0x0d || c === 0x2028 || c === 0x2029;
const notDot = (c: number) => c !== 0x2e;
const notLineBreak = (c: number) => !isLineBreak(c);

/** The program for `pieces`, in the shape a backtracking regex of the same pattern explores. */
function program(pieces: readonly Piece[]): { program: Op[]; slots: number } {
  const code: Op[] = [];
  const chars = (text: string) => {
    for (let i = 0; i < text.length; i++) code.push({ op: 'char', c: text.charCodeAt(i) });
  };
  let slot = 0;
  for (const p of pieces) {
    if (p.kind === 'literal') {
      chars(p.text);
      continue;
    }
    code.push({ op: 'save', slot: slot++ });
    if (p.kind === 'choice') {
      // split(o1, split(o2, … on)) with a jump past the rest after each option.
      const jumps: number[] = [];
      p.options.forEach((o, k) => {
        const last = k === p.options.length - 1;
        const split = code.length;
        if (!last) code.push({ op: 'split', x: split + 1, y: -1 });
        chars(o);
        if (!last) {
          jumps.push(code.length);
          code.push({ op: 'jump', to: -1 });
          (code[split] as { y: number }).y = code.length;
        }
      });
      for (const j of jumps) (code[j] as { to: number }).to = code.length;
    } else {
      // One or more: greedy loops prefer another character, the lazy path prefers to stop.
      const test = p.kind === 'digits' ? isDigit : p.kind === 'segment' ? notDot : notLineBreak;
      const start = code.length;
      code.push({ op: 'class', test });
      const after = code.length + 1;
      code.push(p.kind === 'path' ? { op: 'split', x: after, y: start } : { op: 'split', x: start, y: after });
    }
    code.push({ op: 'save', slot: slot++ });
  }
  code.push({ op: 'match' });
  return { program: code, slots: slot };
}

/**
 * The captures of the whole of `name` against `pattern` (one per placeholder), or undefined. A
 * Pike VM: every thread advances one character at a time, in priority order, each instruction
 * entered at most once a character, so the work is at most the name's length times the program's
 * and the captures are the ones a backtracking regex would give (the first thread to match wins).
 */
export function matchPattern(pattern: Pattern, name: string): string[] | undefined {
  // Most names fail on a literal they lack: a scan for each is cheaper than running the program.
  for (const p of pattern.pieces) if (p.kind === 'literal' && !name.includes(p.text)) return undefined;
  const code = pattern.program;
  const n = name.length;
  // Captures as a shared list of (slot, position) saves, newest first: a save is O(1), not a copy.
  type Caps = { readonly slot: number; readonly at: number; readonly prev: Caps } | null;
  let current: { pc: number[]; caps: Caps[] } = { pc: [], caps: [] };
  let next: { pc: number[]; caps: Caps[] } = { pc: [], caps: [] };
  // The step each instruction was last entered on: a thread reaching it again this step has lower priority.
  const seen = new Int32Array(code.length).fill(-1);
  const stackPc: number[] = [];
  const stackCaps: Caps[] = [];
  let matched: Caps | undefined;
  const add = (list: { pc: number[]; caps: Caps[] }, pc: number, caps: Caps, step: number): void => {
    // An explicit stack instead of recursion: a pattern of a thousand pieces must not overflow.
    stackPc.push(pc);
    stackCaps.push(caps);
    while (stackPc.length > 0) {
      const at = stackPc.pop()!;
      const c = stackCaps.pop()!;
      if (seen[at] === step) continue;
      seen[at] = step;
      const op = code[at]!;
      if (op.op === 'jump') {
        stackPc.push(op.to);
        stackCaps.push(c);
      } else if (op.op === 'split') {
        stackPc.push(op.y, op.x);
        stackCaps.push(c, c);
      } else if (op.op === 'save') {
        stackPc.push(at + 1);
        stackCaps.push({ slot: op.slot, at: step, prev: c });
      } else {
        list.pc.push(at);
        list.caps.push(c);
      }
    }
  };
  add(current, 0, null, 0);
  for (let i = 0; i <= n && matched === undefined; i++) {
    const ch = i < n ? name.charCodeAt(i) : -1;
    for (let k = 0; k < current.pc.length; k++) {
      const op = code[current.pc[k]!]!;
      if (op.op === 'match') {
        if (i === n) {
          matched = current.caps[k]!;
          break; // lower-priority threads cannot win
        }
        continue;
      }
      if (i < n && ((op.op === 'char' && op.c === ch) || (op.op === 'class' && op.test(ch)))) add(next, current.pc[k]! + 1, current.caps[k]!, i + 1);
    }
    if (i === n) break;
    [current, next] = [next, { pc: [], caps: [] }];
    if (current.pc.length === 0) return undefined;
  }
  if (matched === undefined) return undefined;
  const pos = new Array<number>(pattern.slots).fill(-1);
  for (let c = matched; c !== null; c = c.prev) if (pos[c.slot] === -1) pos[c.slot] = c.at;
  const out: string[] = [];
  for (let k = 0; k < pattern.slots; k += 2) out.push(name.slice(pos[k]!, pos[k + 1]!));
  return out;
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
    const m = matchPattern(rule.pattern, name);
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

/** A rule's unstacked axes as a list (none, one or several). */
export function unstackAxes(rule: Pick<Rule, 'unstack'>): readonly Unstack[] {
  const u = rule.unstack;
  return u === undefined ? [] : Array.isArray(u) ? (u as readonly Unstack[]) : [u as Unstack];
}

/**
 * The targets one matched source tensor gives: one, or one per index (per combination of indices)
 * of the unstacked axes, each chain starting with its selects, highest axis first so that each
 * select's axis is still the source's numbering. Throws, naming the tensor, when an axis does not fit.
 */
export function ruleTargets(m: RuleMatch, source: Layout, name: string): RuleTarget[] {
  const { rule } = m;
  const axes = unstackAxes(rule);
  if (axes.length === 0) return [{ target: m.target, transforms: chainFor(rule, source) }];
  for (const [k, u] of axes.entries()) {
    const n = source.shape[u.axis];
    if (n === undefined) throw new JaxServeError('E_USAGE', `${name} ${JSON.stringify(source.shape)}: the rule for ${rule.from} unstacks axis ${u.axis}, which it does not have.`);
    if (axes.findIndex((v) => v.axis === u.axis) !== k) throw new JaxServeError('E_USAGE', `the rule for ${rule.from} unstacks axis ${u.axis} twice.`);
    if (u.names && u.names.length !== n) throw new JaxServeError('E_USAGE', `${name} ${JSON.stringify(source.shape)}: axis ${u.axis} holds ${n}, the rule names ${u.names.length} (${u.names.join(', ')}).`);
  }
  const combinations = axes.reduce((a, u) => a * source.shape[u.axis]!, 1);
  if (combinations > MAX_UNSTACK_TARGETS) throw new JaxServeError('E_LIMIT', `${name} ${JSON.stringify(source.shape)}: the rule for ${rule.from} would make ${combinations} tensors of it, over the limit of ${MAX_UNSTACK_TARGETS}.`);
  if (combinations === 0) return [];
  const gone = new Set(axes.map((u) => u.axis));
  const sliced: Layout = { shape: source.shape.filter((_, i) => !gone.has(i)), dtype: source.dtype };
  const rest = chainFor(rule, sliced);
  const byAxis = [...axes].sort((a, b) => b.axis - a.axis);
  const out: RuleTarget[] = [];
  // Every combination, the first listed axis outermost (experts, then layers: expert 0's layers first).
  const index = new Array<number>(axes.length).fill(0);
  for (;;) {
    const captures: Record<string, string> = { ...m.captures };
    axes.forEach((u, k) => (captures[u.as] = u.names?.[index[k]!] ?? String(index[k])));
    const selects = byAxis.map((u) => ({ op: 'select', axis: u.axis, index: index[axes.indexOf(u)]! }) as const);
    out.push({ target: fill(rule.to, captures), transforms: [...selects, ...rest] });
    let k = axes.length - 1;
    while (k >= 0 && ++index[k]! >= source.shape[axes[k]!.axis]!) index[k--] = 0;
    if (k < 0) return out;
  }
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
    const us = r.unstack === undefined ? [] : Array.isArray(r.unstack) ? (r.unstack as unknown[]) : [r.unstack];
    if (us.length > MAX_UNSTACK_AXES) throw new JaxServeError('E_LIMIT', `${where}.unstack lists ${us.length} axes, over the limit of ${MAX_UNSTACK_AXES}.`);
    for (const u of us as (Record<string, unknown> | null)[]) {
      if (typeof u !== 'object' || u === null || !Number.isInteger(u.axis) || (u.axis as number) < 0 || typeof u.as !== 'string') throw new JaxServeError('E_FORMAT', `${where}.unstack needs {"axis": N, "as": "name"} (or a list of them).`);
      if (u.names !== undefined && !(Array.isArray(u.names) && u.names.every((n) => typeof n === 'string'))) throw new JaxServeError('E_FORMAT', `${where}.unstack.names must be a list of strings.`);
    }
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
