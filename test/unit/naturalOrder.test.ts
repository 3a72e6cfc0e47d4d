/**
 * The natural order of names and key paths: counting order for numbers, and a total order (sorts
 * are only deterministic if the comparator is one) on any names, including the mixed ones.
 */
import * as assert from 'node:assert/strict';
import fc from 'fast-check';
import { compareKeyPaths, naturalCompare, openSafetensorsFile, sortTensors, writeSafetensors } from '../../src/core/index';
import { MemoryFiles } from './helpers';

const seed = Number(process.env.JAX_SERVE_FUZZ_SEED ?? 20261205);
const numRuns = Number(process.env.JAX_SERVE_FUZZ_RUNS ?? 300);

// Segments chosen to meet each other: values with and without leading zeros, digits beside
// letters (10a, 1a), numbers inside text (Dense_2, a1b10, a01b2), past 2^53, empty (a name may
// hold `..`), and case.
const SEGMENTS = ['0', '00', '007', '7', '9', '10', '10a', '1a', '2', 'a', 'b', 'B', '', '999', '1000', '9007199254740993', '9007199254740992', 'layers', 'x_1', 'x_01', 'x_10', 'Dense_2', 'Dense_10', 'a1b2', 'a1b10', 'a01b2', 'a1', 'a1b', 'ab'];
const name = fc.array(fc.tuple(fc.constantFrom(...SEGMENTS), fc.constantFrom('.', '/')), { minLength: 1, maxLength: 4 }).map((parts) => parts.map(([s, sep], i) => (i === 0 ? s : sep + s)).join(''));
const sign = (n: number) => Math.sign(n);

describe('natural order of names', () => {
  it('counts: layers.0, 1, 2, … 10 and 1000 after 999, not in code-unit order', () => {
    const names = Array.from({ length: 12 }, (_, i) => `layers.${i}.w`);
    const stored = [...names].sort();
    assert.notDeepEqual(stored, names, 'code-unit order puts 10 before 2');
    assert.deepEqual([...stored].sort(naturalCompare), names);
    assert.ok(naturalCompare('999', '1000') < 0);
    assert.ok(naturalCompare('a.999.b', 'a.1000.a') < 0, 'the number decides before the segments after it');
    assert.ok(naturalCompare('9007199254740992', '9007199254740993') < 0, 'past 2^53, compared exactly');
  });

  it('orders leading zeros: 007 and 7 are the same number, and 007 comes first (code unit breaks the tie)', () => {
    assert.ok(naturalCompare('007', '7') < 0);
    assert.ok(naturalCompare('7', '007') > 0);
    assert.ok(naturalCompare('007', '8') < 0, 'the value decides before the zeros');
    assert.ok(naturalCompare('l.007.w', 'l.7.a') > 0, 'zeros break a tie only after every segment: w after a decides first');
  });

  it('counts numbers inside a segment: Dense_2 < Dense_10, layers_2 < layers_10, block2 < block10, a1b2 < a1b10', () => {
    const pairs: [string, string][] = [['params.Dense_2.kernel', 'params.Dense_10.kernel'], ['layers_2', 'layers_10'], ['block2', 'block10'], ['a1b2', 'a1b10'], ['x_9', 'x_0010']];
    for (const [small, big] of pairs) {
      assert.ok(small > big, `code-unit order puts ${big} first`);
      assert.ok(naturalCompare(small, big) < 0, `${small} before ${big}`);
      assert.ok(naturalCompare(big, small) > 0, `${big} after ${small}`);
    }
    const dense = Array.from({ length: 12 }, (_, i) => `params.Dense_${i}.kernel`);
    assert.deepEqual([...dense].sort().sort(naturalCompare), dense);
    assert.ok(naturalCompare('block2.a', 'block2.b') < 0, 'equal runs: the next segment decides');
    assert.ok(naturalCompare('a1', 'a1b') < 0, 'a run prefix first');
    assert.ok(naturalCompare('x_007', 'x_7') < 0 && naturalCompare('x_7', 'x_007') > 0, 'same value inside a segment: code unit breaks the tie');
  });

  it('puts a number before text run by run, so mixed names still order: 1a < 9 < 10 < 10a < a (text by code unit)', () => {
    assert.deepEqual(['a', '10a', '1a', '10', '9'].sort(naturalCompare), ['1a', '9', '10', '10a', 'a']);
    assert.deepEqual(['ab', 'a1b', 'a1', 'a10', 'a2b'].sort(naturalCompare), ['a1', 'a1b', 'a2b', 'a10', 'ab'], 'a digit run before a text run at the same place');
    assert.ok(naturalCompare('a', 'a.b') < 0, 'a prefix first');
    assert.ok(naturalCompare('a.b', 'a/b') < 0, 'separators tie, then code unit');
  });

  it(`is a total order on any names: 0 only when equal, antisymmetric, transitive (seed ${seed}, ${numRuns} runs)`, () => {
    fc.assert(
      fc.property(name, name, name, (a, b, c) => {
        assert.equal(naturalCompare(a, b) === 0, a === b);
        assert.equal(sign(naturalCompare(a, b)) + sign(naturalCompare(b, a)), 0);
        if (naturalCompare(a, b) <= 0 && naturalCompare(b, c) <= 0) assert.ok(naturalCompare(a, c) <= 0, `${a} ≤ ${b} ≤ ${c}`);
      }),
      { seed, numRuns },
    );
    // A sorted list is in order pair by pair (a non-transitive comparator leaves some pair out of order).
    fc.assert(
      fc.property(fc.array(name, { maxLength: 40 }), (names) => {
        const sorted = [...names].sort(naturalCompare);
        for (let i = 0; i < sorted.length; i++) for (let j = i + 1; j < sorted.length; j++) assert.ok(naturalCompare(sorted[i]!, sorted[j]!) <= 0, `${sorted[i]} before ${sorted[j]}`);
      }),
      { seed, numRuns: Math.ceil(numRuns / 3) },
    );
  });

  it(`orders key paths key by key: a list index before the dict key of the same digits, a prefix first (seed ${seed})`, () => {
    assert.deepEqual(
      [['layers', 10], ['layers', 2], ['layers', '2'], ['layers'], ['layers', 0, 'w']].sort(compareKeyPaths),
      [['layers'], ['layers', 0, 'w'], ['layers', 2], ['layers', '2'], ['layers', 10]],
    );
    const key = fc.oneof(fc.constantFrom(...SEGMENTS), fc.nat(1100));
    const path = fc.array(key, { maxLength: 3 });
    fc.assert(
      fc.property(path, path, path, (a, b, c) => {
        assert.equal(compareKeyPaths(a, b) === 0, a.length === b.length && a.every((k, i) => k === b[i]));
        assert.equal(sign(compareKeyPaths(a, b)) + sign(compareKeyPaths(b, a)), 0);
        if (compareKeyPaths(a, b) <= 0 && compareKeyPaths(b, c) <= 0) assert.ok(compareKeyPaths(a, c) <= 0);
      }),
      { seed, numRuns },
    );
  });

  it("is the list's name sort: ascending counts up, descending counts down", async () => {
    const fs = new MemoryFiles();
    const specs = [1000, 2, 10, 999, 0, 1].map((i) => ({ name: `model.layers.${i}.w`, dtype: 'F32' as const, shape: [1] }));
    await writeSafetensors(fs.sink('m.safetensors'), specs, () => new Uint8Array(4));
    const ck = await openSafetensorsFile(fs, 'm.safetensors');
    const layer = (n: string) => Number(n.split('.')[2]);
    assert.deepEqual(ck.tensors.map((t) => layer(t.name)), [0, 1, 10, 1000, 2, 999], 'the writer stores code-unit order');
    assert.deepEqual(sortTensors(ck.tensors, 'name', false).map((t) => layer(t.name)), [0, 1, 2, 10, 999, 1000]);
    assert.deepEqual(sortTensors(ck.tensors, 'name', true).map((t) => layer(t.name)), [1000, 999, 10, 2, 1, 0]);
  });
});
