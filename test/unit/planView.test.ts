/**
 * The plan as rows (core/convert/planView): every problem sits on the row it names, sources no
 * rule maps and targets no source provides get rows of their own, and the Markdown renders the
 * same rows with the problems beside them and the names unable to break the table.
 */
import * as assert from 'node:assert/strict';
import { marked } from 'marked';
import { markdownCode, markdownCodeCell, planMarkdown, planView, type Plan } from '../../src/core/index';

const layout = (shape: number[]) => ({ dtype: 'F32' as const, shape });

function plan(over: Partial<Plan> = {}): Plan {
  return {
    source: '/models/nnx.msgpack',
    preset: { id: 'talk-nnx-llama', title: 'Talk NNX Llama', source: 'the talk' },
    architecture: 'LlamaForCausalLM',
    prefix: '',
    tensors: [
      { from: 'layers.0.q.kernel', to: 'model.layers.0.self_attn.q_proj.weight', transforms: [{ op: 'transpose', axes: [1, 0] }], source: layout([4, 8]), target: layout([8, 4]), bytes: 128 },
      { from: 'embed.embedding', to: 'model.embed_tokens.weight', transforms: [], source: layout([16, 4]), target: layout([16, 4]), bytes: 256 },
    ],
    unmapped: ['extra|odd\nname'],
    problems: [
      { severity: 'warning', code: 'flatten-inferred', tensor: 'layers.0.q.kernel', message: 'read as a flattened map' },
      { severity: 'error', code: 'unmapped', tensor: 'extra|odd\nname', message: 'no rule maps it' },
      { severity: 'error', code: 'missing', tensor: 'lm_head.weight', message: 'needs lm_head.weight' },
      { severity: 'error', code: 'shape', tensor: 'model.layers.0.self_attn.q_proj.weight', message: 'would be [8, 4]' },
      { severity: 'info', code: 'note', message: 'a plan-wide note' },
    ],
    config: { num_hidden_layers: 1, hidden_size: 4, num_attention_heads: 1, head_dim: 4, num_key_value_heads: 1, vocab_size: 16, torch_dtype: 'float32' },
    adapters: [],
    ...over,
  };
}

describe('planView: the plan as rows', () => {
  it('puts each problem on the row it names (source or target), worst first, with the worst severity on the row', () => {
    const v = planView(plan());
    const q = v.rows.find((r) => r.from === 'layers.0.q.kernel')!;
    assert.deepEqual(q.problems.map((p) => p.code), ['shape', 'flatten-inferred']);
    assert.equal(q.severity, 'error');
    assert.equal(q.transforms, 'transpose(1, 0)');
    assert.equal(q.shape, '[8, 4]');
    const embed = v.rows.find((r) => r.from === 'embed.embedding')!;
    assert.equal(embed.severity, undefined);
    assert.equal(embed.transforms, '—');
    assert.deepEqual(v.counts, { error: 3, warning: 1, info: 1 });
    assert.deepEqual(v.problems.map((p) => p.severity), ['error', 'error', 'error', 'warning', 'info']);
  });

  it('gives an unmapped source and a missing target a row each, after the planned tensors', () => {
    const v = planView(plan());
    assert.equal(v.rows.length, 4);
    assert.deepEqual(v.rows.slice(2).map((r) => [r.from, r.to, r.severity, r.problems.map((p) => p.code)]), [
      ['extra|odd\nname', '', 'error', ['unmapped']],
      ['', 'lm_head.weight', 'error', ['missing']],
    ]);
  });

  it('lists the facts, the user rules and the prefix only when there are some', () => {
    assert.deepEqual(planView(plan()).facts.map(([k]) => k), ['Source', 'Preset', 'Layout from', 'Model']);
    const v = planView(plan({ prefix: 'params.', config: undefined }), '/r/jax-serve.rules.json');
    assert.deepEqual(v.facts.map(([k]) => k), ['Source', 'Preset', 'Layout from', 'User rules (tried first)', 'Wrapper prefix left out of matching']);
    assert.equal(v.config, undefined);
  });

  it('renders the same rows as Markdown: one table row each, problems beside them, names that cannot break the table', () => {
    const md = planMarkdown(planView(plan()));
    const table = md.split('\n').filter((l) => l.startsWith('| '));
    assert.equal(table.length, 1 + 4, 'a header and one line per row');
    assert.match(table[0]!, /\| source \| target \| transforms \| shape \| dtype \| problem \|/);
    assert.ok(table.every((l) => l.split(/(?<!\\)\|/).length === 8), 'six cells in every row: a pipe in a name is escaped');
    assert.match(md, /`extra\\\|odd name` \| — \|.*\*\*error\*\*: no rule maps it/);
    assert.match(md, /## Problems\n\n- \*\*error\*\* \(unmapped\)/);
    assert.match(md, /```json\n\{\n {2}"num_hidden_layers": 1,/);
    const clean = planMarkdown(planView(plan({ problems: [], unmapped: [] })));
    assert.doesNotMatch(clean, /problem \||## Problems/);
  });

  // marked (GFM tables) renders the Markdown; VS Code's preview (markdown-it) and GitHub agree with it
  // on these names.
  it('shows any name in a code cell as written: <, \\, |, backticks, a newline', () => {
    const names = ['w<b>&amp;', 'C:\\dir\\x', 'a|b|c', 'a`b', '`edge`', 'x``y`', 'two\nlines', '`'];
    const tensors = names.map((from, i) => ({ from, to: `t.${i}`, transforms: [], source: layout([1]), target: layout([1]), bytes: 4 }));
    const html = marked.parse(planMarkdown(planView(plan({ tensors, unmapped: [], problems: [] }))), { async: false });
    const decode = (h: string) => h.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
    const cells = [...html.matchAll(/<tr>\s*<td><code>(.*?)<\/code><\/td>\s*<td><code>t\.\d+<\/code><\/td>/g)].map((m) => decode(m[1]!));
    assert.deepEqual(cells, names.map((n) => n.replace('\n', ' ')));
  });

  it('escapes a pipe after a backslash the GFM way (marked departs from GFM there, so the cell text is checked); outside a table, nothing', () => {
    // GFM and markdown-it take `\|` as a pipe whatever precedes it: the cell `a\\|b` is the span `a\|b`.
    assert.equal(markdownCodeCell('a\\|b'), '`a\\\\|b`');
    assert.equal(markdownCodeCell('plain'), '`plain`');
    assert.equal(markdownCodeCell('a`b'), '``a`b``');
    assert.equal(markdownCodeCell('`a'), '`` `a ``');
    assert.equal(markdownCodeCell(' a '), '`  a  `', 'a space at both ends survives the span stripping one');
    assert.equal(markdownCode('C:\\a|b<c'), '`C:\\a|b<c`', 'a code span in a list item shows its text as written');
  });

  it('shows the facts as written too (a list item: a pipe needs no escape there)', () => {
    const html = marked.parse(planMarkdown(planView(plan({ source: 'C:\\m|x<y>`.msgpack' }))), { async: false });
    const decode = (h: string) => h.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
    assert.ok(decode(html).includes('<li><strong>Source</strong>: <code>C:\\m|x<y>`.msgpack</code></li>'), html.slice(0, 400));
  });
});
