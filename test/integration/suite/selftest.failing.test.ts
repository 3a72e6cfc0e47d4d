/** Run only by the harness self-test, to show that a failing test inside VS Code fails the run. */
import * as assert from 'node:assert/strict';

describe('harness self-test', () => {
  it('fails on purpose', () => {
    assert.equal(1 + 1, 3, 'deliberate failure');
  });
});
