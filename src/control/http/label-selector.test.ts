import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isWeftError } from '../../lib/errors.js';
import { parseLabelSelector } from './label-selector.js';

test('equality, inequality, existence', () => {
  const labels = { app: 'web', tier: 'front' };
  const yes = ['', 'app=web', 'app==web', 'app=web,tier=front', 'tier!=back', 'app', '!missing', ' app = web , tier '];
  const no = ['app=api', 'app!=web', 'missing', '!app', 'app=web,tier=back', 'missing='];
  for (const s of yes) assert.equal(parseLabelSelector(s)(labels), true, s);
  for (const s of no) assert.equal(parseLabelSelector(s)(labels), false, s);
  assert.equal(parseLabelSelector('app')(undefined), false);
  assert.equal(parseLabelSelector('!app')(undefined), true);
});

test('refuses what it cannot read', () => {
  for (const s of ['a=b=c', '!a=b', 'a===b', '=b', 'a in (b)']) {
    assert.throws(() => parseLabelSelector(s), (e) => isWeftError(e, 'WEFT_ERR_BAD_REQUEST'), s);
  }
});
