import * as assert from 'node:assert/strict';
import { ancestorIds, buildPytree, isGroup, nodeKeys, initialExpansion, keysLabel, openSafetensorsFile, pytreeRows, summarize, writeSafetensors, type Checkpoint, type PytreeGroup, type PytreeRow } from '../../src/core/index';
import { MemoryFiles } from './helpers';

async function checkpoint(specs: { name: string; dtype: 'F32' | 'BF16'; shape: number[] }[]): Promise<Checkpoint> {
  const fs = new MemoryFiles();
  await writeSafetensors(fs.sink('m.safetensors'), specs, (s) => new Uint8Array(s.shape.reduce((a, b) => a * b, 1) * (s.dtype === 'F32' ? 4 : 2)));
  return openSafetensorsFile(fs, 'm.safetensors');
}

const child = (g: PytreeGroup, key: string): PytreeGroup => {
  const c = g.children.find((n) => isGroup(n) && keysLabel(n.keys) === key);
  assert.ok(c && isGroup(c), `no group ${key}`);
  return c;
};
const show = (rows: PytreeRow[]) => rows.map((r) => `${'  '.repeat(r.depth)}${isGroup(r.node) ? (r.expanded ? '▾ ' : '▸ ') : ''}${keysLabel(nodeKeys(r.node))}`);

describe('pytree of a checkpoint', () => {
  const specs = [
    { name: 'model.embed.weight', dtype: 'F32' as const, shape: [4, 2] },
    { name: 'model.layers.0.w', dtype: 'F32' as const, shape: [2, 3] },
    { name: 'model.layers.10.w', dtype: 'BF16' as const, shape: [4] },
    { name: 'model.layers.2.w', dtype: 'F32' as const, shape: [1] },
    { name: 'lm_head.weight', dtype: 'F32' as const, shape: [5] },
  ];

  it('counts tensors, parameters and bytes per subtree, and a shared dtype', async () => {
    const ck = await checkpoint(specs);
    const root = buildPytree(ck.tensors);
    assert.equal(root.tensors, 5);
    assert.equal(root.parameters, summarize(ck).parameterCount);
    assert.equal(root.bytes, summarize(ck).bytes);
    const model = child(root, 'model');
    assert.deepEqual([model.tensors, model.parameters, model.bytes, model.dtype], [4, 19, 68, undefined]);
    const layers = child(model, 'layers');
    assert.deepEqual([layers.tensors, layers.dtype], [3, undefined]);
    const lm = child(root, 'lm_head');
    assert.deepEqual([lm.parameters, lm.dtype], [5, 'F32']);
  });

  it('folds chains of single-group wrappers into one node', async () => {
    const ck = await checkpoint([
      { name: 'params.params.model.a.kernel', dtype: 'F32', shape: [2] },
      { name: 'params.params.model.b.kernel', dtype: 'F32', shape: [2] },
    ]);
    const root = buildPytree(ck.tensors);
    assert.equal(root.children.length, 1);
    assert.deepEqual(nodeKeys(root.children[0]!), ['params', 'params', 'model']);
    assert.equal(child(child(root, 'params.params.model'), 'a').id, JSON.stringify(['params', 'params', 'model', 'a']), 'paths run through folded keys');
    assert.deepEqual(show(pytreeRows(root, { open: 'all', ids: [] }, '')), ['▾ params.params.model', '  ▾ a', '    kernel', '  ▾ b', '    kernel']);
  });

  it('shows open groups only, sorts siblings (numbers as numbers, groups by their totals), and opens every group holding a filter match', async () => {
    const ck = await checkpoint(specs);
    const root = buildPytree(ck.tensors);
    const model = child(root, 'model');
    const layers = child(model, 'layers');
    // Unsorted, siblings keep file order (the writer put lm_head first).
    assert.equal(ck.tensors[0]!.name, 'lm_head.weight');
    assert.deepEqual(show(pytreeRows(root, { open: 'listed', ids: [] }, '')), ['▸ lm_head', '▸ model']);
    assert.deepEqual(show(pytreeRows(root, { open: 'listed', ids: [model.id] }, '')), ['▸ lm_head', '▾ model', '  ▸ embed', '  ▸ layers']);
    assert.deepEqual(show(pytreeRows(root, { open: 'all', ids: [layers.id] }, '', { key: 'name', descending: false })), [
      '▾ lm_head',
      '  weight',
      '▾ model',
      '  ▾ embed',
      '    weight',
      '  ▸ layers',
    ]);
    assert.deepEqual(show(pytreeRows(root, { open: 'all', ids: [] }, '', { key: 'name', descending: false })).filter((r) => /^ {4}▾/.test(r)), ['    ▾ 0', '    ▾ 2', '    ▾ 10']);
    // By parameters, largest first: model (19) before lm_head (5); inside layers 0 (6), 10 (4), 2 (1).
    const bySize = show(pytreeRows(root, { open: 'all', ids: [] }, '', { key: 'parameters', descending: true }));
    assert.equal(bySize[0], '▾ model');
    assert.deepEqual(bySize.filter((r) => /^ {4}▾/.test(r)), ['    ▾ 0', '    ▾ 10', '    ▾ 2']);
    // A filter shows the matches with their groups, all open, whatever was collapsed.
    assert.deepEqual(show(pytreeRows(root, { open: 'listed', ids: [] }, '/layers\\.(0|2)\\./')), ['▾ model', '  ▾ layers', '    ▾ 0', '      w', '    ▾ 2', '      w']);
    assert.deepEqual(pytreeRows(root, { open: 'all', ids: [] }, 'nothing matches'), []);
  });

  it('counts list indices up even unsorted, where the file has them in code-unit order; named siblings keep their place', async () => {
    const ck = await checkpoint(['layers.0.w', 'layers.1.w', 'layers.2.w', 'layers.10.w', 'layers.final.w', 'head.w'].map((name) => ({ name, dtype: 'F32' as const, shape: [1] })));
    assert.deepEqual(
      ck.tensors.map((t) => t.name),
      ['head.w', 'layers.0.w', 'layers.1.w', 'layers.10.w', 'layers.2.w', 'layers.final.w'],
      'the writer stores code-unit order',
    );
    const root = buildPytree(ck.tensors);
    const layers = child(root, 'layers');
    // The Pytree view lists `children`; the tree-table's rows walk them.
    assert.deepEqual(layers.children.map((c) => keysLabel(nodeKeys(c))), ['0', '1', '2', '10', 'final']);
    assert.deepEqual(show(pytreeRows(root, { open: 'listed', ids: [layers.id] }, '')), ['▸ head', '▾ layers', '  ▸ 0', '  ▸ 1', '  ▸ 2', '  ▸ 10', '  ▸ final']);
  });

  it('names the groups that hold a tensor, and opens a small tree fully but only the top of a large one', async () => {
    const ck = await checkpoint(specs);
    const root = buildPytree(ck.tensors);
    const ids = ancestorIds(root, 'model.layers.10.w')!;
    assert.deepEqual(ids.map((id) => JSON.parse(id)), [['model'], ['model', 'layers'], ['model', 'layers', 10]]);
    assert.equal(ancestorIds(root, 'no.such'), undefined);
    assert.deepEqual(initialExpansion(root), { open: 'all', ids: [] });
    const big = buildPytree(
      (await checkpoint(Array.from({ length: 40 }, (_, i) => [`model.layers.${i}.a`, `model.layers.${i}.b`]).flat().map((name) => ({ name, dtype: 'F32' as const, shape: [1] })))).tensors,
    );
    const e = initialExpansion(big);
    assert.equal(e.open, 'listed');
    // model.layers (folded) opens (40 rows); each layer would add 2 more, and 40 of them pass the budget only after 10.
    assert.equal(e.ids[0], JSON.stringify(['model', 'layers']));
    assert.ok(e.ids.length < 41);
    // One wrapper group holding more than the budget still opens.
    const wide = buildPytree(
      (await checkpoint(Array.from({ length: 200 }, (_, i) => ({ name: `layers.${i}.w`, dtype: 'F32' as const, shape: [1] })))).tensors,
    );
    assert.deepEqual(initialExpansion(wide), { open: 'listed', ids: [JSON.stringify(['layers'])] });
  });

  it('keeps a tensor beside a group of the same key, and repeated names apart', async () => {
    const ck = await checkpoint([
      { name: 'a', dtype: 'F32', shape: [1] },
      { name: 'a.b', dtype: 'F32', shape: [1] },
    ]);
    const root = buildPytree(ck.tensors);
    assert.deepEqual(show(pytreeRows(root, { open: 'all', ids: [] }, '')), ['a', '▾ a', '  b']);
  });
});
