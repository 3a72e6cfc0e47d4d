import * as assert from 'node:assert/strict';
import {
  buildNameTree,
  buildPytree,
  initialExpansion,
  isGroup,
  keysLabel,
  listSafetensorsIndex,
  nameTreeRows,
  nodeKeys,
  openCheckpoint,
  pytreeRows,
  writeShardedSafetensors,
  type PytreeLeaf,
  type PytreeRow,
  type TensorSpec,
} from '../../src/core/index';
import { MemoryFiles } from './helpers';

const INDEX = 'model.safetensors.index.json';

/**
 * A sharded checkpoint in memory: names out of natural order, indices past 9, a layer's tensors in
 * several shards. One dtype, so each header lists its tensors in name order, as the index does
 * (writers order a header by element size first).
 */
async function sharded(): Promise<MemoryFiles> {
  const fs = new MemoryFiles();
  const specs: TensorSpec[] = [{ name: 'lm_head.weight', dtype: 'F32', shape: [4, 2] }];
  for (const l of [0, 10, 2, 1]) {
    for (const w of ['self_attn.q_proj', 'mlp.up_proj']) specs.push({ name: `model.layers.${l}.${w}.weight`, dtype: 'F32', shape: [2, 2] });
    specs.push({ name: `model.layers.${l}.input_layernorm.weight`, dtype: 'F32', shape: [2] });
  }
  specs.push({ name: 'model.embed_tokens.weight', dtype: 'F32', shape: [4, 2] });
  await writeShardedSafetensors(async (f) => fs.sink(f), specs, (s) => new Uint8Array(s.shape.reduce((a, b) => a * b, 4)), { maxShardBytes: 64 });
  return fs;
}

const show = <L extends PytreeLeaf>(rows: PytreeRow<L>[]) => rows.map((r) => `${'  '.repeat(r.depth)}${isGroup(r.node) ? `${r.expanded ? '▾' : '▸'} ${keysLabel(nodeKeys(r.node))} (${r.node.tensors})` : keysLabel(nodeKeys(r.node))}`);

describe('an index listed before its shards are read', () => {
  it('lists every tensor with its shard, in the order openCheckpoint yields them, with the index metadata', async () => {
    const fs = await sharded();
    const listing = await listSafetensorsIndex(fs, INDEX);
    const ck = await openCheckpoint(fs, INDEX);
    assert.ok(listing);
    assert.ok(ck.files.length >= 3, `several shards (${ck.files.length})`);
    assert.deepEqual(listing.tensors.map((t) => t.name), ck.tensors.map((t) => t.name));
    assert.deepEqual(listing.files, ck.files);
    assert.deepEqual([listing.format, listing.location, listing.metadata], [ck.format, ck.location, ck.metadata]);
    for (const t of listing.tensors) assert.ok(ck.files.includes(t.shard), t.shard);
    // The open that follows a listing takes its parsed index: the index is not read again.
    fs.files.delete(INDEX);
    fs.files.set(INDEX, new TextEncoder().encode('{"weight_map":{"other":"nowhere.safetensors"}}'));
    const again = await openCheckpoint(fs, INDEX, { parsedIndex: listing.index });
    assert.deepEqual(again.tensors.map((t) => t.name), ck.tensors.map((t) => t.name));
  });

  it('needs no shard: a shard with a broken header still lists, while openCheckpoint refuses it', async () => {
    const fs = await sharded();
    const shard = (await listSafetensorsIndex(fs, INDEX))!.files[1]!;
    fs.files.set(shard, new Uint8Array(16).fill(0xff));
    const listing = await listSafetensorsIndex(fs, INDEX);
    assert.equal(listing?.tensors.length, 14);
    await assert.rejects(openCheckpoint(fs, INDEX), /Failed to parse/);
  });

  it('checks shard names as openCheckpoint does, and lists nothing for a checkpoint that is not an index', async () => {
    const fs = new MemoryFiles();
    fs.files.set(INDEX, new TextEncoder().encode(JSON.stringify({ weight_map: { a: '../outside.safetensors' } })));
    await assert.rejects(listSafetensorsIndex(fs, INDEX), /climbs out with "\.\."/);
    await assert.rejects(openCheckpoint(fs, INDEX), /climbs out with "\.\."/);
    fs.files.set('model.safetensors', new Uint8Array(8));
    assert.equal(await listSafetensorsIndex(fs, 'model.safetensors'), undefined);
  });

  it('makes the tree the validated checkpoint makes: the same groups, ids, tensor counts, rows and first expansion', async () => {
    const fs = await sharded();
    const names = buildNameTree((await listSafetensorsIndex(fs, INDEX))!.tensors);
    const ck = await openCheckpoint(fs, INDEX);
    const tensors = buildPytree(ck.tensors);
    assert.deepEqual(initialExpansion(names, 8), initialExpansion(tensors, 8));
    assert.ok(initialExpansion(names, 8).ids.length > 0, 'the budget opens some groups, not all');
    for (const expansion of [initialExpansion(tensors, 8), { open: 'all' as const, ids: [] }]) {
      for (const filter of ['', 'proj', '/layers\\.1\\d?\\./']) {
        assert.deepEqual(show(nameTreeRows(names, expansion, filter)), show(pytreeRows(tensors, expansion, filter)), `${JSON.stringify(expansion)} ${filter}`);
      }
    }
    // Names know no sizes: the groups count tensors only.
    assert.deepEqual([names.tensors, names.parameters, names.bytes, names.dtype], [14, 0, 0, undefined]);
  });

  it('sorts a name tree by name; other keys keep file order until the sizes are known', async () => {
    const fs = await sharded();
    const names = buildNameTree((await listSafetensorsIndex(fs, INDEX))!.tensors);
    const open = { open: 'all' as const, ids: [] };
    const unsorted = show(nameTreeRows(names, open, ''));
    assert.deepEqual(show(nameTreeRows(names, open, '', { key: 'bytes', descending: true })), unsorted);
    const byName = show(nameTreeRows(names, open, '', { key: 'name', descending: false }));
    assert.notDeepEqual(byName, unsorted);
    assert.deepEqual(byName.filter((r) => /^ {4}▸|^ {4}▾/.test(r)).map((r) => r.trim()), ['▾ 0 (3)', '▾ 1 (3)', '▾ 2 (3)', '▾ 10 (3)']);
    assert.deepEqual(show(nameTreeRows(names, open, '', { key: 'name', descending: true }))[0], '▾ model (13)');
  });
});
