/**
 * The plan as rows (core/convert/planView): every problem sits on the row it names, sources no
 * rule maps and targets no source provides get rows of their own, and the Markdown renders the
 * same rows with the problems beside them and the names unable to break the table.
 */
import * as assert from 'node:assert/strict';
import { planMarkdown, planView, type Plan } from '../../src/core/index';

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
});
