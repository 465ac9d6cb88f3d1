import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isWeftError } from '../errors.js';
import { parseSpiffeId, parseWorkloadId, spiffeId } from './spiffe.js';

test('spiffeId formats the workload form and parse reads it back', () => {
  const id = spiffeId('cluster.local', 'default', 'web');
  assert.equal(id, 'spiffe://cluster.local/ns/default/sa/web');
  assert.deepEqual(parseSpiffeId(id), { id, trustDomain: 'cluster.local', path: '/ns/default/sa/web', namespace: 'default', serviceAccount: 'web' });
  assert.equal(parseWorkloadId(id).serviceAccount, 'web');
});

test('the trust domain ID (no path) parses but is not a workload ID', () => {
  assert.deepEqual(parseSpiffeId('spiffe://example.org'), { id: 'spiffe://example.org', trustDomain: 'example.org', path: '' });
  assert.throws(() => parseWorkloadId('spiffe://example.org'), (e) => isWeftError(e, 'WEFT_ERR_INVALID'));
  assert.throws(() => parseWorkloadId('spiffe://example.org/foo/bar'), /ns\/<namespace>/);
});

test('IDs the SPIFFE standard forbids are refused with WEFT_ERR_INVALID and a reason', () => {
  const cases: [string, RegExp][] = [
    ['http://cluster.local/ns/a/sa/b', /must start with "spiffe:\/\/"/],
    ['SPIFFE://cluster.local/ns/a/sa/b', /scheme must be lowercase/],
    ['spiffe://Cluster.local/ns/a/sa/b', /trust domain must be lowercase/],
    ['spiffe:///ns/a/sa/b', /trust domain is empty/],
    ['spiffe://td:8080/ns/a', /no port/],
    ['spiffe://user@td/ns/a', /no port, user info/],
    ['spiffe://td/ns//sa/b', /must not be empty/],
    ['spiffe://td/ns/a/', /must not be empty/],
    ['spiffe://td/ns/./sa', /"\." or "\.\."/],
    ['spiffe://td/ns/../sa', /"\." or "\.\."/],
    ['spiffe://td/ns/a%20b', /may hold only/],
    ['spiffe://td/ns/a?x=1', /query/],
    ['spiffe://td/ns/a#frag', /fragment/],
    [`spiffe://td/${'a'.repeat(2048)}`, /longer than 2048/],
    [`spiffe://${'a'.repeat(256)}/x`, /longer than 255/],
  ];
  for (const [text, why] of cases) {
    assert.throws(() => parseSpiffeId(text), (e) => isWeftError(e, 'WEFT_ERR_INVALID') && why.test(e.message), text);
  }
});

test('spiffeId validates its parts', () => {
  assert.throws(() => spiffeId('Cluster.local', 'a', 'b'), (e) => isWeftError(e, 'WEFT_ERR_INVALID'));
  assert.throws(() => spiffeId('td', '', 'b'), /namespace: path segments must not be empty/);
  assert.throws(() => spiffeId('td', 'a', 'b/c'), /service account: path segment "b\/c"/);
  assert.throws(() => spiffeId('td', 'a', '..'), /service account/);
  // Uppercase and underscores are fine in paths (only the trust domain is lowercase).
  assert.equal(spiffeId('td', 'A_b', 'x.y-z'), 'spiffe://td/ns/A_b/sa/x.y-z');
});
