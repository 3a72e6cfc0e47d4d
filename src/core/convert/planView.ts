/**
 * The conversion plan as rows a person reads: one row per tensor, with the problems that name it
 * beside it, plus a row for each source no rule maps and each target no source provides. The
 * plan webview, the Markdown copy and the CLI's table all render these rows, so the three cannot
 * disagree about what a plan holds.
 */
import type { Plan } from './plan';
import type { PlanRow, PlanView, Problem, Severity } from './planRow';
import { describeTransform } from './transforms';
import { configJson } from './configJson';

const RANK: Record<Severity, number> = { error: 0, warning: 1, info: 2 };
const worstFirst = (a: Problem, b: Problem) => RANK[a.severity] - RANK[b.severity];

/** One line about the model a config.json describes (layers, widths, heads, vocab, dtype). */
export function configSummary(c: Readonly<Record<string, unknown>>): string {
  return `${c.num_hidden_layers} layers, hidden ${c.hidden_size}, ${c.num_attention_heads} heads × ${c.head_dim} (${c.num_key_value_heads} kv), vocab ${c.vocab_size}, ${c.torch_dtype}${c.tie_word_embeddings ? ', tied lm_head' : ''}`;
}

/** The plan's rows and facts; `rules` is the user rule file the plan tried first, if any. */
export function planView(plan: Plan, rules?: string): PlanView {
  const facts: [string, string][] = [
    ['Source', plan.source],
    ['Preset', `${plan.preset.id} (${plan.preset.title}) → ${plan.architecture}`],
    ['Layout from', plan.preset.source],
  ];
  if (rules) facts.push(['User rules (tried first)', rules]);
  if (plan.prefix) facts.push(['Wrapper prefix left out of matching', plan.prefix]);
  if (plan.config) facts.push(['Model', configSummary(plan.config)]);

  type Draft = Omit<PlanRow, 'problems' | 'severity'> & { problems: Problem[] };
  const rows = plan.tensors.map((t): Draft => ({
    from: t.from,
    to: t.to,
    transforms: t.transforms.map(describeTransform).join(' · ') || '—',
    shape: `[${t.target.shape.join(', ')}]`,
    dtype: t.target.dtype,
    problems: [],
  }));
  const bySource = new Map(rows.map((r) => [r.from, r]));
  const byTarget = new Map(rows.map((r) => [r.to, r]));
  const unmapped = new Set(plan.unmapped);
  const extra = (from: string, to: string) => {
    const r: Draft = { from, to, transforms: '', shape: '', dtype: '', problems: [] };
    rows.push(r);
    if (from) bySource.set(from, r);
    if (to) byTarget.set(to, r);
    return r;
  };
  for (const n of plan.unmapped) if (!bySource.has(n)) extra(n, '');
  for (const p of plan.problems) {
    if (p.tensor === undefined) continue;
    // A problem names a source (unmapped, duplicate, transform) or a target (missing, shape); a
    // target no row writes is one no source provides.
    const row = bySource.get(p.tensor) ?? byTarget.get(p.tensor) ?? (unmapped.has(p.tensor) ? extra(p.tensor, '') : extra('', p.tensor));
    row.problems.push(p);
  }
  const counts: Record<Severity, number> = { error: 0, warning: 0, info: 0 };
  for (const p of plan.problems) counts[p.severity]++;
  return {
    facts,
    problems: [...plan.problems].sort(worstFirst),
    counts,
    rows: rows.map((r) => {
      const problems = r.problems.sort(worstFirst);
      return problems.length ? { ...r, problems, severity: problems[0]!.severity } : r;
    }),
    config: plan.config && configJson(plan.config),
  };
}

/** Text for a Markdown table cell: pipes and newlines would break the row, `<` would open a tag. */
export function markdownCell(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/[\r\n]+/g, ' ').replace(/</g, '&lt;');
}

/**
 * `s` as a Markdown code span, shown as written: a code span decodes no escapes and no entities, so
 * nothing is escaped; a newline becomes a space (a span is one line here). The fence is one backtick
 * longer than the longest run in `s`, so a backtick in a name does not close it; a space pads a name
 * that starts or ends with a backtick (or has a space at both ends, which the span would strip).
 */
export function markdownCode(s: string): string {
  const text = s.replace(/[\r\n]+/g, ' ');
  const fence = '`'.repeat(Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length)) + 1);
  const pad = /^`|`$/.test(text) || (/^ .* $/.test(text) && /[^ ]/.test(text)) ? ' ' : '';
  return `${fence}${pad}${text}${pad}${fence}`;
}

/**
 * markdownCode for a table cell: `|` also becomes `\|`, since a GFM table splits its cells before it
 * reads code spans, and takes `\|` as a pipe even inside one.
 */
export const markdownCodeCell = (s: string): string => markdownCode(s.replace(/\|/g, '\\|'));

const code = (s: string) => (s ? markdownCodeCell(s) : '—');

/** The plan as Markdown (what "Open as Markdown" and "Copy Markdown" give). */
export function planMarkdown(view: PlanView): string {
  const lines = ['# Conversion plan', ''];
  for (const [label, value] of view.facts) lines.push(`- **${label}**: ${label === 'Model' ? markdownCell(value) : value ? markdownCode(value) : '—'}`);
  if (view.problems.length) {
    lines.push('', '## Problems', '');
    for (const p of view.problems) lines.push(`- **${p.severity}** (${p.code}): ${markdownCell(p.message)}`);
  }
  const flagged = view.rows.some((r) => r.severity);
  lines.push('', `## Tensors (${view.rows.length})`, '', `| source | target | transforms | shape | dtype |${flagged ? ' problem |' : ''}`, `|---|---|---|---|---|${flagged ? '---|' : ''}`);
  for (const r of view.rows) {
    const problem = flagged ? ` ${r.problems.map((p) => `**${p.severity}**: ${markdownCell(p.message)}`).join('; ')} |` : '';
    lines.push(`| ${code(r.from)} | ${code(r.to)} | ${markdownCell(r.transforms || '—')} | ${r.shape || '—'} | ${r.dtype || '—'} |${problem}`);
  }
  if (view.config) lines.push('', '## config.json', '', '```json', view.config, '```');
  return lines.join('\n') + '\n';
}
